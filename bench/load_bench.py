"""Load on the Whisper predictor: N requests at concurrency C, three rounds (issue 9's long run).

Reports per round: failures, 503s, p50/p95 latency, throughput (clips/s), and the server's
anonymous RSS after the round (stable memory means flat numbers). The CI test
(`tests/test_load_http.py`) is the short version of this.

    BENCH_LOAD_REQUESTS=200 BENCH_LOAD_CONCURRENCY=32 python -m bench load
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import free_port, rss_mb, write_wav

REPO = Path(__file__).resolve().parents[1]
AUDIO = REPO.parent / "shared" / "audio"
KEY = "bench-key"
REQUESTS = int(os.environ.get("BENCH_LOAD_REQUESTS", "200"))
CONCURRENCY = int(os.environ.get("BENCH_LOAD_CONCURRENCY", "32"))
ROUNDS = int(os.environ.get("BENCH_LOAD_ROUNDS", "3"))
CLIP_S = float(os.environ.get("BENCH_LOAD_CLIP_S", "5"))


async def _round(base: str, clips: list[bytes]) -> tuple[list[int], list[float], float]:
    sem = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=900, limits=limits
    ) as c:

        async def one(i: int) -> tuple[int, float]:
            async with sem:
                t0 = time.perf_counter()
                r = await c.post("/v1/audio/transcriptions", files={"file": (f"c{i}.wav", clips[i % len(clips)])})
                return r.status_code, time.perf_counter() - t0

        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(REQUESTS)))
        wall = time.perf_counter() - t0
    return [s for s, _ in results], [t for _, t in results], wall


def main() -> None:
    from rgpu_asr.audio import decode_file
    from rgpu_local.models import whisper_base_dir

    if not AUDIO.is_dir():
        sys.exit(f"benchmark audio not found at {AUDIO}")
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-load-"))
    n = int(CLIP_S * 16000)
    meeting = decode_file(AUDIO / "meeting_three_voices.wav")
    clips = []
    for i in range(8):
        path = tmp / f"clip{i}.wav"
        write_wav(path, meeting[i * n : (i + 1) * n])
        clips.append(path.read_bytes())

    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "REFLECTOR_GPU_APIKEY": KEY,
        "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper",
        "REFLECTOR_GPU_WHISPER_MODEL": str(whisper_base_dir()),
        "REFLECTOR_GPU_LOG_LEVEL": "WARNING",
        "REFLECTOR_GPU_UPLOAD_DIR": str(tmp / "uploads"),
        "REFLECTOR_GPU_MAX_PENDING_REQUESTS": str(max(CONCURRENCY, 64)),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "rgpu_local"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/v2/models/whisper/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        print(
            f"\nWhisper base int8 CPU: {ROUNDS} rounds of {REQUESTS} x {CLIP_S:g} s clips at concurrency {CONCURRENCY}"
        )
        for k in range(ROUNDS):
            statuses, latencies, wall = asyncio.run(_round(base, clips))
            q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
            failed = sum(1 for s in statuses if s != 200)
            print(
                f"  round {k + 1}: {failed} failed ({statuses.count(503)} x 503), p50 {statistics.median(latencies):.2f} s, "
                f"p95 {q[18]:.2f} s, {REQUESTS / wall:.2f} clips/s, server anonymous RSS "
                f"{rss_mb(server.pid, 'RssAnon:'):.0f} MiB (peak RSS {rss_mb(server.pid):.0f} MiB)"
            )
    finally:
        server.terminate()
        server.wait(60)
    left = list((tmp / "uploads").glob("*")) if (tmp / "uploads").exists() else []
    print(f"  temporary files left: {len(left)}")


if __name__ == "__main__":
    main()
