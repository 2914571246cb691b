"""Diarizer: our server vs a direct pyannote pipeline call, real-time factor, memory on long audio.

1. ``POST /diarize`` on meeting_three_voices (110 s) vs the same pipeline called directly on the
   decoded waveform in this process (target: server <= 1.1x direct).
2. Real-time factor of the direct call on this machine.
3. Peak memory (VmHWM) of a fresh server process diarizing a 30-minute recording built by
   concatenating the fixtures (``BENCH_LONG_MIN`` minutes; 0 skips it), next to its memory once
   the pipeline is loaded.
Same pipeline everywhere: the packaged one (pyannote PyanNet segmentation from the whisperx
wheel + Resemblyzer encoder), CPU.
"""

from __future__ import annotations

import json
import os
import shutil
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
from bench.common import rss_mb as _rss_mb
from bench.common import write_wav as _write_wav

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio"
KEY = "bench-key"
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))


def _best(fn, repeats: int | None = None) -> float:
    return _best_of(fn, REPEATS if repeats is None else repeats)


LONG_MIN = float(os.environ.get("BENCH_LONG_MIN", "30"))


class _Server:
    def __init__(self, pipeline_dir: Path, tmp: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PORT": str(self.port),
            "REFLECTOR_GPU_APIKEY": KEY,
            "REFLECTOR_GPU_URL_ALLOWLIST": "127.0.0.1",
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "diarizer",
            "REFLECTOR_GPU_DIARIZER_MODEL": str(pipeline_dir),
            "REFLECTOR_GPU_LOG_LEVEL": "WARNING",
            "REFLECTOR_GPU_UPLOAD_DIR": str(tmp / "uploads"),
            "REFLECTOR_GPU_FETCH_TOTAL_TIMEOUT_S": "7200",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rgpu_local"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(1200):
            try:
                if httpx.get(self.base + "/v2/models/diarizer/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("diarizer server exited")
            time.sleep(0.3)
        raise RuntimeError("diarizer server not ready")

    def diarize(self, url: str, timeout: float = 7200) -> list[dict]:
        r = httpx.post(
            self.base + "/diarize",
            params={"audio_file_url": url},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=timeout,
        )
        r.raise_for_status()
        return r.json()["diarization"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def main() -> None:
    from rgpu_asr.audio import decode_file
    from rgpu_asr.models import resolve_model
    from rgpu_diarizer.pipeline import FAMILY, load_pipeline, run_pipeline
    from rgpu_local.diarizer_weights import packaged_pipeline_dir

    if not AUDIO.is_dir():
        sys.exit(f"benchmark audio not found at {AUDIO}")
    pipeline_dir = packaged_pipeline_dir(REPO / ".cache", download=True)
    meeting = AUDIO / "meeting_three_voices.wav"
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-bench-"))

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp)))
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    (tmp / "meeting.wav").write_bytes(meeting.read_bytes())
    base_url = f"http://127.0.0.1:{origin.server_address[1]}"
    results: dict[str, float] = {}

    server = _Server(pipeline_dir, tmp)
    try:
        pipeline = load_pipeline(resolve_model(FAMILY, str(pipeline_dir), shared=""), device="cpu")
        duration = len(decode_file(meeting)) / 16000

        def server_call():
            server.diarize(f"{base_url}/meeting.wav")

        def direct_call():
            run_pipeline(pipeline, decode_file(meeting))

        server_call()  # warm-up both sides
        direct_call()
        results["server_s"] = _best(server_call)
        results["direct_s"] = _best(direct_call)
        results["audio_s"] = duration
        results["server_peak_rss_mb"] = _rss_mb(server.proc.pid)
        results["direct_process_peak_rss_mb"] = _rss_mb()
    finally:
        server.stop()

    if LONG_MIN > 0:
        pieces, total = [], 0
        fixtures = [
            decode_file(AUDIO / n) for n in ("meeting_three_voices.wav", "two_speakers.wav", "test_mathieu_hello.wav")
        ]
        while total < LONG_MIN * 60 * 16000:
            for f in fixtures:
                pieces.append(f)
                total += len(f)
        _write_wav(tmp / "long.wav", np.concatenate(pieces)[: int(LONG_MIN * 60 * 16000)])
        del pieces, fixtures
        server = _Server(pipeline_dir, tmp)
        try:
            results["long_loaded_rss_mb"] = _rss_mb(server.proc.pid, "VmRSS:")
            t0 = time.perf_counter()
            segments = server.diarize(f"{base_url}/long.wav")
            results["long_s"] = time.perf_counter() - t0
            results["long_audio_s"] = LONG_MIN * 60
            results["long_speakers"] = len({s["speaker"] for s in segments})
            results["long_peak_rss_mb"] = _rss_mb(server.proc.pid)
        finally:
            server.stop()
    origin.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)

    r = results
    print(f"\nDiarizer (packaged pipeline: pyannote PyanNet + Resemblyzer), CPU, best of {REPEATS}")
    print(
        f"  meeting_three_voices ({r['audio_s']:.0f} s): server {r['server_s']:.2f} s, direct pipeline call "
        f"{r['direct_s']:.2f} s -> server/direct = {r['server_s'] / r['direct_s']:.2f}x (target <= 1.1)"
    )
    print(
        f"  real-time factor (direct): {r['direct_s'] / r['audio_s']:.3f}; server: {r['server_s'] / r['audio_s']:.3f}"
    )
    print(
        f"  peak memory: server process {r['server_peak_rss_mb']:.0f} MiB, direct-call process {r['direct_process_peak_rss_mb']:.0f} MiB"
    )
    if "long_s" in r:
        print(
            f"  {LONG_MIN:.0f}-minute recording: {r['long_s']:.1f} s (RTF {r['long_s'] / r['long_audio_s']:.3f}), "
            f"{r['long_speakers']} speakers; server memory {r['long_loaded_rss_mb']:.0f} MiB loaded -> "
            f"peak {r['long_peak_rss_mb']:.0f} MiB"
        )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "diarizer.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
