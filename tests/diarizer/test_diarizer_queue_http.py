"""Admission through HTTP with the diarizer's defaults (issue 17): concurrent meetings queue
instead of failing. One diarization is worked on at a time (``maxInFlight`` 1), the others wait
in the FIFO queue (``maxQueued`` 4); the gauges show them while they wait."""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest

from support import KEYS, ORIGIN_HOST, Service, shared_audio

pytestmark = pytest.mark.slow

_SAMPLE = re.compile(r'^(reflector_gpu_\w+)\{route="/diarize"\} ([0-9.e+-]+)$', re.M)


def _series(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in _SAMPLE.findall(text)}


@pytest.fixture(scope="module")
def default_diarizer(tmp_path_factory, packaged_pipeline):
    """The diarizer in the local mode with the admission defaults (no MAX_IN_FLIGHT/MAX_QUEUED)."""
    shared_audio("two_speakers.wav")
    tmp = tmp_path_factory.mktemp("diarizer-defaults")
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "diarizer",
            "REFLECTOR_GPU_APIKEY": KEYS[0],
            "REFLECTOR_GPU_URL_ALLOWLIST": f"{ORIGIN_HOST}/32",
            "REFLECTOR_GPU_DIARIZER_CPU_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
        },
        tmp,
        "diarizer-defaults",
    )
    with svc.running("diarizer"):
        yield svc


def test_three_concurrent_diarizations_queue_and_all_complete(default_diarizer, origin):
    base = default_diarizer.base
    results: list[httpx.Response] = []
    seen = {"inflight": 0.0, "queued": 0.0}
    done = threading.Event()

    def call():
        with httpx.Client(headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=600) as c:
            results.append(
                c.post(f"{base}/diarize", params={"audio_file_url": f"{origin}/audio/two_speakers.wav", "timestamp": 0})
            )

    def watch():
        with httpx.Client(timeout=10) as c:
            while not done.is_set():
                series = _series(c.get(f"{base}/metrics").text)
                seen["inflight"] = max(seen["inflight"], series.get("reflector_gpu_inflight_requests", 0.0))
                seen["queued"] = max(seen["queued"], series.get("reflector_gpu_queued_requests", 0.0))
                time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=call) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        done.set()
        watcher.join()

    codes = [r.status_code for r in results]
    assert codes == [200, 200, 200], [(r.status_code, r.text[:200]) for r in results]
    assert all(r.json()["diarization"] for r in results)
    # One worked on at a time, the other two waited in the queue (and the gauge said so).
    assert seen["inflight"] == 1, seen
    assert seen["queued"] >= 1, seen
    after = _series(httpx.get(f"{base}/metrics").text)
    assert after["reflector_gpu_inflight_requests"] == 0 and after["reflector_gpu_queued_requests"] == 0
    assert after["reflector_gpu_queue_wait_seconds_count"] == 3
    # The waits add up to at least one diarization (the last waited for two).
    assert after["reflector_gpu_queue_wait_seconds_sum"] > 0.5
