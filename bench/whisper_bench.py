"""Whisper: our server vs the bare library on the same audio, measured side by side.

1. ``/transcriptions-from-url`` on meeting_three_voices vs a direct ``BatchedInferencePipeline``
   call on the same file (target: server <= 1.15x direct).
2. The reference's way (VAD chunks transcribed one at a time) vs our server (target: >= 1.8x).
3. Eight concurrent 5 s clips through the server vs the same clips in one direct batched
   library call (target: server throughput >= 0.9x).
Peak memory (VmHWM) of the server process and of the direct-call process is reported too.
Same settings everywhere: Whisper base, CPU int8, beam 5, word timestamps, batch 8, language en.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np

from bench.common import best as _best_of
from bench.common import free_port as _free_port
from bench.common import rss_mb as _peak_rss_mb
from bench.common import write_wav as _write_wav

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio"
KEY = "bench-key"
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))


def _best(fn, repeats: int | None = None) -> float:
    return _best_of(fn, REPEATS if repeats is None else repeats)


def main() -> None:
    from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio

    from rgpu_asr.audio import decode_file
    from rgpu_asr.chunking import plan_chunks
    from rgpu_asr.vad import default_vad
    from rgpu_local.models import whisper_base_dir

    if not AUDIO.is_dir():
        sys.exit(f"benchmark audio not found at {AUDIO}")
    model_dir = whisper_base_dir()
    meeting = AUDIO / "meeting_three_voices.wav"
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-bench-"))

    # 8 different 5 s clips of real and synthetic speech
    hello = decode_file(AUDIO / "test_mathieu_hello.wav")
    meet = decode_file(meeting)
    clips = [hello[i * 80000 : (i + 1) * 80000] for i in range(3)] + [
        meet[i * 80000 : (i + 1) * 80000] for i in range(5)
    ]
    clip_paths = []
    for i, clip in enumerate(clips):
        p = tmp / f"clip{i}.wav"
        _write_wav(p, clip)
        clip_paths.append(p)

    # origin for the URL route
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(AUDIO)))
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{origin.server_address[1]}/meeting_three_voices.wav"

    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "REFLECTOR_GPU_APIKEY": KEY,
        "REFLECTOR_GPU_URL_ALLOWLIST": "127.0.0.1",
        "REFLECTOR_GPU_WHISPER_MODEL": str(model_dir),
        "REFLECTOR_GPU_LOG_LEVEL": "WARNING",
        "REFLECTOR_GPU_UPLOAD_DIR": str(tmp / "uploads"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "rgpu_local"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/v2/models/whisper/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)

        model = WhisperModel(str(model_dir), device="cpu", compute_type="int8")
        pipeline = BatchedInferencePipeline(model)
        opts = dict(language="en", beam_size=5, word_timestamps=True)

        def server_file():
            r = httpx.post(
                base + "/v1/audio/transcriptions-from-url", json={"audio_file_url": url}, headers=headers, timeout=600
            )
            r.raise_for_status()

        def direct_file():
            segments, _ = pipeline.transcribe(str(meeting), batch_size=8, **opts)
            list(segments)

        def reference_sequential():
            audio = decode_audio(str(meeting))
            for chunk in plan_chunks(default_vad().segments(audio)):
                segments, _ = model.transcribe(chunk.audio(audio), vad_filter=False, **opts)
                list(segments)

        async def _concurrent():
            async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600) as c:
                rs = await asyncio.gather(
                    *(c.post("/v1/audio/transcriptions", files={"file": (p.name, p.read_bytes())}) for p in clip_paths)
                )
            for r in rs:
                r.raise_for_status()

        def server_clips():
            asyncio.run(_concurrent())

        def direct_clips():
            audios = [decode_audio(str(p)) for p in clip_paths]
            pieces, stamps, pos = [], [], 0
            for a in audios:
                pieces.append(a)
                stamps.append({"start": pos / 16000, "end": (pos + len(a)) / 16000})
                pos += len(a)
            segments, _ = pipeline.transcribe(np.concatenate(pieces), clip_timestamps=stamps, batch_size=8, **opts)
            list(segments)

        server_file()  # warm-up both sides
        direct_file()
        results = {
            "server_from_url_s": _best(server_file),
            "direct_batched_s": _best(direct_file),
            "reference_sequential_s": _best(reference_sequential, 1),
            "server_8_clips_s": _best(server_clips),
            "direct_8_clips_s": _best(direct_clips),
            "server_peak_rss_mb": _peak_rss_mb(server.pid),
            "direct_process_peak_rss_mb": _peak_rss_mb(),
        }
    finally:
        server.terminate()
        server.wait(30)
        origin.shutdown()

    r = results
    print("\nWhisper base int8, CPU, beam 5, word timestamps, batch 8 (best of %d)" % REPEATS)
    print(
        f"  meeting_three_voices (110 s): server {r['server_from_url_s']:.2f} s, direct BatchedInferencePipeline "
        f"{r['direct_batched_s']:.2f} s -> server/direct = {r['server_from_url_s'] / r['direct_batched_s']:.2f}x (target <= 1.15)"
    )
    print(
        f"  reference one-chunk-at-a-time {r['reference_sequential_s']:.2f} s -> server is "
        f"{r['reference_sequential_s'] / r['server_from_url_s']:.2f}x faster (target >= 1.8)"
    )
    print(
        f"  8 concurrent 5 s clips: server {r['server_8_clips_s']:.2f} s, one direct batched call "
        f"{r['direct_8_clips_s']:.2f} s -> server throughput = {r['direct_8_clips_s'] / r['server_8_clips_s']:.2f}x of direct (target >= 0.9)"
    )
    print(
        f"  peak memory: server process {r['server_peak_rss_mb']:.0f} MiB, direct-call process {r['direct_process_peak_rss_mb']:.0f} MiB"
    )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "whisper.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
