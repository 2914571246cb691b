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
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import AUTH, local_service, require_audio, rss_mb, write_clips

REQUESTS = int(os.environ.get("BENCH_LOAD_REQUESTS", "200"))
CONCURRENCY = int(os.environ.get("BENCH_LOAD_CONCURRENCY", "32"))
ROUNDS = int(os.environ.get("BENCH_LOAD_ROUNDS", "3"))
CLIP_S = float(os.environ.get("BENCH_LOAD_CLIP_S", "5"))


async def _round(base: str, clips: list[bytes]) -> tuple[list[int], list[float], float]:
    sem = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=base, headers=AUTH, timeout=900, limits=limits) as c:

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
    from rgpu_local.models import whisper_base_dir

    require_audio()
    tmp = Path(tempfile.mkdtemp(prefix="rgpu-load-"))
    clips = [path.read_bytes() for path in write_clips(tmp, 8, CLIP_S)]
    env = {
        "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper",
        "REFLECTOR_GPU_WHISPER_MODEL": str(whisper_base_dir()),
        "REFLECTOR_GPU_MAX_IN_FLIGHT": str(CONCURRENCY),
        "REFLECTOR_GPU_MAX_QUEUED": "32",
    }
    with local_service("whisper", env, tmp / "uploads") as server:
        print(
            f"\nWhisper base int8 CPU: {ROUNDS} rounds of {REQUESTS} x {CLIP_S:g} s clips at concurrency {CONCURRENCY}"
        )
        for k in range(ROUNDS):
            statuses, latencies, wall = asyncio.run(_round(server.base, clips))
            q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
            failed = sum(1 for s in statuses if s != 200)
            print(
                f"  round {k + 1}: {failed} failed ({statuses.count(503)} x 503), "
                f"p50 {statistics.median(latencies):.2f} s, p95 {q[18]:.2f} s, {REQUESTS / wall:.2f} clips/s, "
                f"server anonymous RSS {rss_mb(server.pid, 'RssAnon:'):.0f} MiB (peak RSS {rss_mb(server.pid):.0f} MiB)"
            )
    left = list((tmp / "uploads").glob("*")) if (tmp / "uploads").exists() else []
    print(f"  temporary files left: {len(left)}")


if __name__ == "__main__":
    main()
