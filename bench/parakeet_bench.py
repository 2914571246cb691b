"""Parakeet: our server vs a direct NeMo ``model.transcribe`` on the same audio, side by side.

No Parakeet weights exist offline, so both sides load the same random-weight FastConformer-TDT
``.nemo`` (``rgpu_local.parakeet_synthetic``; preset ``BENCH_PARAKEET_PRESET``: ``small`` ~14 M parameters
by default on CPU, ``full`` = parakeet-tdt-0.6b-v2's 0.6 B architecture for a GPU). Compute is
real (encoder, TDT greedy decoding, timestamps); only the text is meaningless.

1. ``/transcriptions-from-url`` on meeting_three_voices (file profile) vs one direct
   ``model.transcribe([wav], timestamps=True)`` on the same file (target: server <= 1.15x direct),
   and vs the server's own plan done by hand (decode, VAD chunks, batched ``transcribe`` calls):
   the pure server overhead.
2. Ten concurrent 5 s clips through the live profile vs the same ten clips in one direct
   batched ``transcribe`` call (target: server throughput >= 0.9x of direct).
3. With ``BENCH_PARAKEET_LONG_S`` (e.g. 3600): RTFx of the file path on that much audio (the
   meeting tiled), the figure to hold against the Open ASR leaderboard's 3386 on a GPU.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
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
from bench.common import write_wav as _write_wav

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio"
KEY = "bench-key"
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))


def _best(fn, repeats: int | None = None) -> float:
    return _best_of(fn, REPEATS if repeats is None else repeats)


PRESET = os.environ.get("BENCH_PARAKEET_PRESET", "small")
LONG_S = float(os.environ.get("BENCH_PARAKEET_LONG_S", "0"))
#: torch CPU threads on both sides (1 by default: on a small shared box more threads only contend).
CPU_THREADS = int(os.environ.get("BENCH_PARAKEET_CPU_THREADS", "1"))


def _model_path() -> Path:
    from rgpu_local.parakeet_synthetic import VERSION, build_tdt_nemo

    nemo = importlib.metadata.version("nemo_toolkit")
    path = REPO / ".cache" / "parakeet" / f"parakeet-{PRESET}-tdt-v{VERSION}-nemo{nemo}.nemo"
    if not path.is_file():
        build_tdt_nemo(path, PRESET)
    return path


class _Server:
    def __init__(self, profile: str, model: Path, tmp: Path, allow: str):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "REFLECTOR_GPU_APIKEY": KEY,
            "REFLECTOR_GPU_URL_ALLOWLIST": allow,
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "parakeet",
            "REFLECTOR_GPU_PARAKEET_MODEL": str(model),
            "REFLECTOR_GPU_PARAKEET_DEVICE": os.environ.get("REFLECTOR_GPU_PARAKEET_DEVICE", "auto"),
            "REFLECTOR_GPU_PARAKEET_CPU_THREADS": str(CPU_THREADS),
            "REFLECTOR_GPU_PROFILE": profile,
            "REFLECTOR_GPU_LOG_LEVEL": "WARNING",
            "REFLECTOR_GPU_UPLOAD_DIR": str(tmp / f"uploads-{profile}"),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rgpu_local"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait(self) -> None:
        for _ in range(1200):
            try:
                if httpx.get(self.base + "/v2/models/parakeet/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                sys.exit(f"parakeet server exited with {self.proc.returncode}")
            time.sleep(0.3)
        sys.exit("parakeet server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def main() -> None:
    import torch
    from nemo.collections.asr.models import ASRModel

    from rgpu_asr.audio import decode_file
    from rgpu_asr.chunking import plan_chunks
    from rgpu_asr.vad import default_vad
    from rgpu_parakeet.engine import ParakeetEngine, pick_device, pick_dtype, quiet_nemo

    if not AUDIO.is_dir():
        sys.exit(f"benchmark audio not found at {AUDIO}")
    quiet_nemo()
    if CPU_THREADS > 0:
        torch.set_num_threads(CPU_THREADS)
    model_path = _model_path()
    meeting = AUDIO / "meeting_three_voices.wav"
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-bench-parakeet-"))

    hello = decode_file(AUDIO / "test_mathieu_hello.wav")
    meet = decode_file(meeting)
    clips = [hello[i * 80000 : (i + 1) * 80000] for i in range(3)] + [
        meet[i * 80000 : (i + 1) * 80000] for i in range(7)
    ]
    clip_paths = []
    for i, clip in enumerate(clips):
        p = tmp / f"clip{i}.wav"
        _write_wav(p, clip)
        clip_paths.append(p)
    if LONG_S:
        reps = int(np.ceil(LONG_S * 16000 / len(meet)))
        _write_wav(tmp / "long.wav", np.tile(meet, reps)[: int(LONG_S * 16000)])

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp)))
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    (tmp / "meeting.wav").write_bytes(meeting.read_bytes())
    url = f"http://127.0.0.1:{origin.server_address[1]}/meeting.wav"

    headers = {"Authorization": f"Bearer {KEY}"}
    file_srv = _Server("file", model_path, tmp, "127.0.0.1")
    live_srv = _Server("live", model_path, tmp, "127.0.0.1")
    try:
        file_srv.wait()
        live_srv.wait()
        device = pick_device(os.environ.get("REFLECTOR_GPU_PARAKEET_DEVICE", "auto"))
        model = ASRModel.restore_from(str(model_path), map_location=torch.device(device))
        model.eval()
        ParakeetEngine._enable_timestamps(model)
        dtype = pick_dtype("auto", device)

        def direct(audio, batch_size):
            ctx = torch.autocast("cuda", dtype=dtype) if dtype is not None else torch.inference_mode()
            with torch.inference_mode(), ctx:
                return model.transcribe(audio, batch_size=batch_size, timestamps=True, verbose=False)

        def server_file(u=url):
            r = httpx.post(
                file_srv.base + "/v1/audio/transcriptions-from-url",
                json={"audio_file_url": u},
                headers=headers,
                timeout=3600,
            )
            r.raise_for_status()

        def direct_file():
            direct([str(meeting)], 1)

        def direct_chunked():
            # The server's own plan done by hand: decode, VAD chunks, one batched call per 8 chunks.
            audio = decode_file(meeting)
            chunks = [c.audio(audio) for c in plan_chunks(default_vad().segments(audio), 30.0, 0.5)]
            for i in range(0, len(chunks), 8):
                direct(chunks[i : i + 8], 8)

        async def _concurrent():
            async with httpx.AsyncClient(base_url=live_srv.base, headers=headers, timeout=600) as c:
                rs = await asyncio.gather(
                    *(c.post("/v1/audio/transcriptions", files={"file": (p.name, p.read_bytes())}) for p in clip_paths)
                )
            for r in rs:
                r.raise_for_status()

        def server_clips():
            asyncio.run(_concurrent())

        def direct_clips():
            direct([decode_file(p) for p in clip_paths], len(clip_paths))

        server_file()  # warm-up every side
        direct_file()
        direct_chunked()
        server_clips()
        direct_clips()
        results = {
            "preset": PRESET,
            "device": device,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "server_from_url_s": _best(server_file),
            "direct_file_s": _best(direct_file),
            "direct_chunked_s": _best(direct_chunked),
            "server_10_clips_s": _best(server_clips),
            "direct_10_clips_s": _best(direct_clips),
        }
        if LONG_S:
            long_url = url.replace("meeting.wav", "long.wav")
            results["long_audio_s"] = LONG_S
            results["server_long_s"] = _best(lambda: server_file(long_url), 1)
            results["server_long_rtfx"] = LONG_S / results["server_long_s"]
    finally:
        file_srv.stop()
        live_srv.stop()
        origin.shutdown()

    r = results
    print(
        f"\nParakeet ({r['preset']} random-weight FastConformer-TDT, {r['params_m']:.1f} M parameters, {r['device']}, "
        f"timestamps, {CPU_THREADS or 'default'} CPU thread(s), best of {REPEATS})"
    )
    print(
        f"  meeting_three_voices (110 s), file profile: server {r['server_from_url_s']:.2f} s, direct "
        f"model.transcribe {r['direct_file_s']:.2f} s -> server/direct = "
        f"{r['server_from_url_s'] / r['direct_file_s']:.2f}x (target <= 1.15)"
    )
    print(
        f"  same file, direct VAD chunks in batched transcribe calls (the server's plan without the server) "
        f"{r['direct_chunked_s']:.2f} s -> server overhead = {r['server_from_url_s'] / r['direct_chunked_s']:.2f}x"
    )
    print(
        f"  10 concurrent 5 s clips, live profile: server {r['server_10_clips_s']:.2f} s, one direct batched call "
        f"{r['direct_10_clips_s']:.2f} s -> server throughput = "
        f"{r['direct_10_clips_s'] / r['server_10_clips_s']:.2f}x of direct (target >= 0.9)"
    )
    if LONG_S:
        print(
            f"  {LONG_S:.0f} s of audio through the file path: {r['server_long_s']:.1f} s -> RTFx {r['server_long_rtfx']:.0f}"
        )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "parakeet.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
