"""Authentication through HTTP: no key, wrong key, each valid key, open probes, rotation by file."""

from __future__ import annotations

import time

import httpx
import pytest

from support import KEYS, Service

ROUTES = [
    ("POST", "/v1/audio/transcriptions"),
    ("POST", "/v1/audio/transcriptions-from-url"),
    ("POST", "/transcribe"),
    ("POST", "/v1/models/whisper:predict"),
    ("POST", "/v2/models/whisper/infer"),
]


@pytest.mark.parametrize("method,path", ROUTES)
def test_no_key_is_401_with_www_authenticate(service, method, path):
    r = httpx.request(method, service.base + path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "api key" in r.json()["detail"].lower()


@pytest.mark.parametrize("header", ["Bearer wrong-key", "Basic dGVzdDp0ZXN0", "Bearer", KEYS[0], f"Bearer {KEYS[0]}x"])
def test_wrong_key_is_401(service, header):
    r = httpx.post(service.base + "/v1/audio/transcriptions-from-url", headers={"Authorization": header}, json={})
    assert r.status_code == 401


@pytest.mark.parametrize("key", KEYS)
def test_each_configured_key_is_accepted(service, key):
    r = httpx.post(
        service.base + "/v1/audio/transcriptions-from-url", headers={"Authorization": f"Bearer {key}"}, json={}
    )
    assert r.status_code == 400  # past auth: the body is what is wrong


@pytest.mark.parametrize(
    "path", ["/", "/v2/health/live", "/v2/health/ready", "/metrics", "/v1/models/whisper", "/v2/models/whisper/ready"]
)
def test_probes_and_metrics_stay_open(service, path):
    assert httpx.get(service.base + path).status_code == 200


def test_key_file_rotation_reaches_the_running_service(service, key_file):
    url = service.base + "/v1/audio/transcriptions-from-url"
    new = "rotated-key-3"
    assert httpx.post(url, headers={"Authorization": f"Bearer {new}"}, json={}).status_code == 401
    key_file.write_text(f"{new}\n")
    deadline = time.monotonic() + 10
    status = 401
    while time.monotonic() < deadline and status == 401:
        time.sleep(0.5)
        status = httpx.post(url, headers={"Authorization": f"Bearer {new}"}, json={}).status_code
    assert status == 400, "the key written to the key file was not picked up"
    key_file.write_text("")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and status != 401:
        time.sleep(0.5)
        status = httpx.post(url, headers={"Authorization": f"Bearer {new}"}, json={}).status_code
    assert status == 401, "a key removed from the key file still works"
    # env keys are unaffected by the file change
    assert httpx.post(url, headers={"Authorization": f"Bearer {KEYS[1]}"}, json={}).status_code == 400


def test_refuses_to_start_without_a_key(tmp_path):
    svc = Service({"REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper"}, tmp_path, "nokey")
    try:
        code = svc.proc.wait(120)
    finally:
        svc.log.close()
    assert code == 2
    out = svc.log_path.read_text()
    assert "refusing to start" in out and "REFLECTOR_GPU_APIKEY" in out and "REFLECTOR_GPU_AUTH_DISABLED" in out


@pytest.mark.parametrize(
    "model,reason",
    [
        ("{tmp}/no-such-model", "no-such-model"),
        ("large-v3", "from the hub"),  # a hub name, offline: a clear message, not a hang
    ],
)
def test_unloadable_model_reports_not_ready_with_the_reason(tmp_path, model, reason):
    """Auth explicitly disabled, and a model that cannot be had: serving goes on, 503s say why."""
    svc = Service(
        {
            "REFLECTOR_GPU_AUTH_DISABLED": "true",
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper",
            "REFLECTOR_GPU_WHISPER_MODEL": model.format(tmp=tmp_path),
            "HF_HUB_OFFLINE": "1",
        },
        tmp_path,
        "broken",
    )
    try:
        svc.wait_listening()
        assert httpx.get(svc.base + "/v2/health/live").status_code == 200
        assert httpx.get(svc.base + "/v2/models/whisper/ready").status_code == 503
        assert httpx.get(svc.base + "/v1/models/whisper").status_code == 503
        r = httpx.post(
            svc.base + "/v1/audio/transcriptions-from-url", json={"audio_file_url": "http://example.com/a.wav"}
        )
        assert r.status_code == 503
        assert r.headers["retry-after"].isdigit()
        assert "not ready" in r.json()["detail"] and reason in r.json()["detail"]
        assert "DISABLED" in svc.log_path.read_text()
    finally:
        assert svc.stop() == 0


def _ws_status(url: str, **kwargs) -> int:
    """The HTTP status a WebSocket upgrade got (101 when it was accepted)."""
    import asyncio

    import websockets

    async def attempt() -> int:
        try:
            async with websockets.connect(url, open_timeout=10, **kwargs):
                return 101
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    return asyncio.run(attempt())


def test_websocket_upgrades_need_a_key(service):
    """The auth middleware checks WebSocket scopes too (it used to pass every non-HTTP scope
    through): without a valid key the upgrade is answered 401 before any message; a valid key as
    a header, or as the subprotocol browsers use, gets the upgrade (the realtime route, 101)."""
    url = service.base.replace("http://", "ws://") + "/v1/realtime?intent=transcription"
    assert _ws_status(url) == 401
    assert _ws_status(url, additional_headers={"Authorization": "Bearer wrong-key"}) == 401
    assert _ws_status(url, subprotocols=["realtime", "openai-insecure-api-key.wrong-key"]) == 401
    assert _ws_status(url, additional_headers={"Authorization": f"Bearer {KEYS[0]}"}) == 101
    assert _ws_status(url, subprotocols=["realtime", f"openai-insecure-api-key.{KEYS[1]}"]) == 101


def test_local_mode_serves_docs_and_metrics_on_its_one_port(service):
    """On a laptop: the API docs browsable and /metrics scrapable without a key (in a container the
    docs need a key or are off and /metrics has its own port: test_entrypoints.py)."""
    for path in ("/docs", "/openapi.json", "/metrics"):
        assert httpx.get(service.base + path).status_code == 200, path


def test_which_paths_are_open_follows_the_settings():
    from rgpu_serving.app import open_paths
    from rgpu_serving.settings import ServingSettings

    cluster = open_paths(ServingSettings(metrics_port=9090, api_docs="false"))
    assert "/metrics" not in cluster and "/docs" not in cluster and "/v2/health/ready" in cluster
    assert "/docs" not in open_paths(ServingSettings(api_docs="auth"))
    assert {"/docs", "/openapi.json", "/metrics"} <= open_paths(ServingSettings(api_docs="open"))
