"""Fixtures that run the real service: the local-mode process over HTTP and a loopback origin.

The service under test is started exactly as a user starts it (``python -m rgpu_local``) with
real packaged Whisper weights; tests talk to it over HTTP only. Shared helpers live in
``support.py``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from support import KEYS, ORIGIN_HOST, Service, shared_audio, start_origin


@pytest.fixture(scope="session")
def origin():
    """Base URL of a loopback origin on 127.0.0.2 (allowlisted by the service under test)."""
    server, url = start_origin(ORIGIN_HOST)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def key_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "apikeys"
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def service(tmp_path_factory, key_file):
    """The local mode with real Whisper base, two env keys, a key file, loopback origin allowlisted."""
    shared_audio("test_mathieu_hello.wav")
    tmp = tmp_path_factory.mktemp("service")
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper",
            "REFLECTOR_GPU_APIKEY": ",".join(KEYS),
            "REFLECTOR_GPU_APIKEY_FILE": str(key_file),
            "REFLECTOR_GPU_URL_ALLOWLIST": f"{ORIGIN_HOST}/32",
            "REFLECTOR_GPU_MAX_UPLOAD_MB": "8",
            "REFLECTOR_GPU_MAX_DOWNLOAD_MB": "8",
            "REFLECTOR_GPU_FETCH_READ_TIMEOUT_S": "2",
            "REFLECTOR_GPU_LOG_LEVEL": "DEBUG",
        },
        tmp,
        "service",
    )
    try:
        svc.wait_listening()
        ready = httpx.get(svc.base + "/v2/health/ready", timeout=5).json()
        assert ready.get("ready") is True, f"service not ready: {ready}\n{svc.log_path.read_text()[-3000:]}"
        yield svc
    finally:
        code = svc.stop()
    svc.assert_clean_exit(code)
    log = svc.log_path.read_text()
    assert "uvicorn.access" in log, "the service log is not being written"
    leaked = [k for k in (*KEYS, "rotated-key-3") if k in log]
    assert not leaked, f"API keys appear in the service log: {leaked}"


@pytest.fixture
def api(service):
    with httpx.Client(base_url=service.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=300) as client:
        yield client
