"""Bounded load against the Whisper predictor (tiny.en, 1 s clips, loopback).

Below the configured bound no request fails; above it the excess gets 503 + ``Retry-After``
and nothing else; memory is stable across rounds. Latencies and memory are printed (run with
``-s``); performance itself is judged in bench/, not here.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import httpx
import pytest

from support import KEYS, Service, shared_audio

pytestmark = pytest.mark.slow


def _anon_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _round(base: str, clip: bytes, requests: int, concurrency: int) -> list[tuple[int, float, dict]]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(
        base_url=base,
        headers={"Authorization": f"Bearer {KEYS[0]}"},
        timeout=300,
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:

        async def one(i: int):
            async with sem:
                t0 = time.perf_counter()
                r = await client.post("/v1/audio/transcriptions", files={"file": (f"c{i}.wav", clip)})
                return r.status_code, time.perf_counter() - t0, dict(r.headers)

        return await asyncio.gather(*(one(i) for i in range(requests)))


@pytest.fixture(scope="module")
def one_second_clip() -> bytes:
    data = shared_audio("test_short.wav").read_bytes()
    # a 1 s slice of real speech: RIFF header (44 bytes) + 1 s of 48 kHz stereo int16
    import struct

    body = data[44 : 44 + 48000 * 4]
    header = data[:4] + struct.pack("<I", 36 + len(body)) + data[8:40] + struct.pack("<I", len(body))
    return header + body


def _service(tmp_path, bound: int) -> Service:
    from rgpu_local.models import whisper_tiny_en_dir

    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper",
            "REFLECTOR_GPU_APIKEY": KEYS[0],
            "REFLECTOR_GPU_WHISPER_MODEL": str(whisper_tiny_en_dir()),
            "REFLECTOR_GPU_MAX_IN_FLIGHT": str(bound),
            "REFLECTOR_GPU_MAX_QUEUED": "0",
        },
        tmp_path,
        f"load-{bound}",
    )
    svc.wait_ready("whisper")
    return svc


def test_no_failures_below_the_bound_and_stable_memory(tmp_path, one_second_clip):
    svc = _service(tmp_path, bound=64)
    try:
        memory, latencies = [], []
        for _ in range(3):
            results = asyncio.run(_round(svc.base, one_second_clip, requests=32, concurrency=32))
            assert [s for s, _, _ in results if s != 200] == []
            latencies += [t for _, t, _ in results]
            memory.append(_anon_rss_mb(svc.proc.pid))
        q = statistics.quantiles(latencies, n=20)
        print(
            f"\nload: 3 x 32 requests at concurrency 32: p50 {statistics.median(latencies):.2f} s, "
            f"p95 {q[18]:.2f} s, anonymous RSS after each round {[round(m) for m in memory]} MiB"
        )
        assert memory[2] - memory[0] < 100, f"memory grew across rounds: {memory}"
    finally:
        assert svc.stop() == 0
    assert not list(svc.upload_dir.glob("*"))


def test_beyond_the_bound_503_with_retry_after_and_nothing_else(tmp_path, one_second_clip):
    svc = _service(tmp_path, bound=4)
    try:
        results = asyncio.run(_round(svc.base, one_second_clip, requests=32, concurrency=32))
        statuses = [s for s, _, _ in results]
        assert set(statuses) <= {200, 503}, statuses
        assert statuses.count(503) > 0 and statuses.count(200) >= 4
        assert all(h.get("retry-after", "").isdigit() for s, _, h in results if s == 503)
        print(f"\noverload: 32 at once with a bound of 4 -> {statuses.count(200)} x 200, {statuses.count(503)} x 503")
    finally:
        assert svc.stop() == 0
