"""SIGTERM while requests are in flight: readiness goes false at once, requests are still served
during the drain, in-flight ones finish, the process exits 0, nothing is left behind."""

from __future__ import annotations

import base64
import threading
import time

import httpx
import pytest

from support import KEYS, Service, shared_audio

pytestmark = pytest.mark.slow

DRAIN_S = 4.0


def test_sigterm_drains_then_lets_in_flight_requests_finish_then_exits_0(tmp_path):
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper",
            "REFLECTOR_GPU_APIKEY": KEYS[0],
            "REFLECTOR_GPU_SHUTDOWN_DRAIN_S": str(DRAIN_S),
            "REFLECTOR_GPU_LOG_LEVEL": "INFO",
        },
        tmp_path,
        "shutdown",
    )
    auth = {"Authorization": f"Bearer {KEYS[0]}"}
    try:
        svc.wait_ready("whisper")
        audio = shared_audio("test_mathieu_hello.wav").read_bytes()
        results: list[httpx.Response | Exception] = []

        def send(i: int) -> None:
            try:
                results.append(
                    httpx.post(
                        svc.base + "/v1/audio/transcriptions",
                        headers=auth,
                        files={"file": (f"f{i}.wav", audio)},
                        timeout=120,
                    )
                )
            except Exception as exc:  # recorded, asserted below
                results.append(exc)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the uploads are in, transcription is running
        assert httpx.get(svc.base + "/v2/models/whisper/ready", timeout=10).status_code == 200
        svc.proc.terminate()
        signalled = time.monotonic()
        time.sleep(0.5)
        # Draining: the readiness probe fails, but a request that still arrives is served.
        for probe in ("/v2/models/whisper/ready", "/v1/models/whisper", "/v2/health/ready"):
            assert httpx.get(svc.base + probe, timeout=10).status_code == 503, probe
        assert httpx.get(svc.base + "/v2/health/live", timeout=10).status_code == 200  # no kill mid-request
        late = threading.Thread(target=send, args=(3,))
        late.start()
        # KServe's V1 protocol too (its dataplane would reload a not-ready model: not while draining).
        v1 = httpx.post(
            svc.base + "/v1/models/whisper:predict",
            headers=auth,
            timeout=120,
            json={"instances": [{"audio_b64": base64.b64encode(audio).decode(), "language": "en"}]},
        )
        assert v1.status_code == 200 and "everyone" in str(v1.json()).lower(), v1.text[:300]
        for t in [*threads, late]:
            t.join(120)
        code = svc.proc.wait(60)
        took = time.monotonic() - signalled
    finally:
        svc.log.close()
    assert code == 0
    assert took >= DRAIN_S, f"exited {took:.1f} s after SIGTERM, before the {DRAIN_S} s drain"
    assert len(results) == 4 and all(isinstance(r, httpx.Response) and r.status_code == 200 for r in results), results
    assert all("everyone" in r.json()["text"].lower() for r in results)
    assert not list(svc.upload_dir.glob("*")), "temporary files left after shutdown"
    log = svc.log_path.read_text()
    assert log.index("readiness is false") < log.index("closing: no new connections")
