"""SIGTERM while requests are in flight: they finish, the process exits 0, nothing is left behind."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from support import KEYS, Service, shared_audio

pytestmark = pytest.mark.slow


def test_sigterm_lets_in_flight_requests_finish_then_exits_0(tmp_path):
    svc = Service({"REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper", "REFLECTOR_GPU_APIKEY": KEYS[0]}, tmp_path, "shutdown")
    try:
        svc.wait_ready("whisper")
        audio = shared_audio("test_mathieu_hello.wav").read_bytes()
        results: list[httpx.Response | Exception] = []

        def send(i: int) -> None:
            try:
                results.append(httpx.post(svc.base + "/v1/audio/transcriptions", headers={"Authorization": f"Bearer {KEYS[0]}"},
                                          files={"file": (f"f{i}.wav", audio)}, timeout=120))
            except Exception as exc:  # recorded, asserted below
                results.append(exc)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # the uploads are in, transcription is running
        svc.proc.terminate()
        for t in threads:
            t.join(120)
        code = svc.proc.wait(60)
    finally:
        svc.log.close()
    assert code == 0
    assert len(results) == 3 and all(isinstance(r, httpx.Response) and r.status_code == 200 for r in results), results
    assert all("everyone" in r.json()["text"].lower() for r in results)
    assert not list(svc.upload_dir.glob("*")), "temporary files left after shutdown"
