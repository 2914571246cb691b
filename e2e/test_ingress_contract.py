"""The Reflector HTTP contract through a real cluster's ingress (run by e2e/run.sh).

Configured by the environment e2e/run.sh sets: RGPU_E2E_BASE_URL (where the ingress controller
listens), RGPU_E2E_HOST (the ReflectorGPU's ingress host), RGPU_E2E_API_KEY (read from the
generated Secret). Optional: RGPU_E2E_AUDIO_URL, a public audio file for the from-url route.
Without RGPU_E2E_BASE_URL every test skips: there is no cluster to talk to.
"""

from __future__ import annotations

import io
import math
import os
import struct
import wave
from pathlib import Path

import httpx
import pytest

BASE = os.environ.get("RGPU_E2E_BASE_URL", "")
HOST = os.environ.get("RGPU_E2E_HOST", "")
KEY = os.environ.get("RGPU_E2E_API_KEY", "")
AUDIO_URL = os.environ.get("RGPU_E2E_AUDIO_URL", "")
SHARED_WAV = Path(__file__).resolve().parents[2] / "shared" / "audio" / "test_short.wav"

pytestmark = pytest.mark.skipif(
    not (BASE and HOST and KEY),
    reason=("needs a cluster: set RGPU_E2E_BASE_URL, RGPU_E2E_HOST and RGPU_E2E_API_KEY (e2e/run.sh does)"),
)


def _wav() -> tuple[str, bytes]:
    """Real speech when ../shared is there, else 2 s of a 440 Hz tone (shape checks only)."""
    if SHARED_WAV.is_file():
        return SHARED_WAV.name, SHARED_WAV.read_bytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(
            b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000))) for i in range(32000))
        )
    return "tone.wav", buf.getvalue()


@pytest.fixture(scope="module")
def client():
    with httpx.Client(base_url=BASE, headers={"Host": HOST, "Authorization": f"Bearer {KEY}"}, timeout=600) as c:
        yield c


@pytest.fixture(scope="module")
def anonymous():
    with httpx.Client(base_url=BASE, headers={"Host": HOST}, timeout=60) as c:
        yield c


def _check_words(words: list[dict]) -> None:
    last = 0.0
    for w in words:
        assert set(w) >= {"word", "start", "end"}
        assert w["start"] <= w["end"] and w["start"] >= last - 1e-6
        last = w["start"]


@pytest.mark.parametrize(
    "path",
    [
        "/transcriber/v1/audio/transcriptions",
        "/transcriber/transcribe",
        "/transcriber/v1/audio/transcriptions-from-url",
        "/padding/pad",
    ],
)
def test_every_route_needs_the_key(anonymous, path):
    r = anonymous.post(path)
    assert r.status_code == 401, r.text
    assert r.headers.get("www-authenticate", "").startswith("Bearer")
    r = anonymous.post(path, headers={"Authorization": "Bearer wrong-key"})
    assert r.status_code == 401


def test_transcription_upload(client):
    name, data = _wav()
    r = client.post(
        "/transcriber/v1/audio/transcriptions", files={"file": (name, data, "audio/wav")}, data={"language": "en"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["text"], str) and body["filename"] == name
    _check_words(body["words"])


def test_batch_of_files_keeps_request_order(client):
    name, data = _wav()
    files = [("files", ("a-" + name, data, "audio/wav")), ("files", ("b-" + name, data, "audio/wav"))]
    r = client.post("/transcriber/v1/audio/transcriptions", files=files, data={"batch": "true"})
    assert r.status_code == 200, r.text
    assert [x["filename"] for x in r.json()["results"]] == ["a-" + name, "b-" + name]


def test_openai_sdk_verbose_json(client):
    openai = pytest.importorskip("openai")
    sdk = openai.OpenAI(
        base_url=f"{BASE}/transcriber/v1", api_key=KEY, default_headers={"Host": HOST}, timeout=600, max_retries=0
    )
    name, data = _wav()
    result = sdk.audio.transcriptions.create(
        model="whisper-1",
        file=(name, data),
        language="en",
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert isinstance(result.text, str) and result.duration > 0
    _check_words([w.model_dump() for w in (result.words or [])])


def test_the_file_pool_has_its_own_path_for_uploads(client):
    """/transcriber-file/... reaches the file transcriber (where diarized uploads go). The CPU sample
    runs no diarizer, so diarized_json is a clear 400 there, never a transcript without speakers."""
    name, data = _wav()
    r = client.post("/transcriber-file/v1/audio/transcriptions", files={"file": (name, data, "audio/wav")})
    assert r.status_code == 200, r.text
    _check_words(r.json()["words"])
    r = client.post(
        "/transcriber-file/v1/audio/transcriptions",
        files={"file": (name, data, "audio/wav")},
        data={"response_format": "diarized_json"},
    )
    assert r.status_code == 400 and "diarizer" in r.json()["detail"], r.text


def test_legacy_transcribe(client):
    name, data = _wav()
    r = client.post("/transcriber/transcribe", files={"file": (name, data, "audio/wav")})
    assert r.status_code == 200, r.text
    assert "text" in r.json() and "words" in r.json()


def test_bad_input_is_a_4xx_with_detail(client):
    r = client.post("/transcriber/v1/audio/transcriptions", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code in (400, 415, 422), r.text
    assert "detail" in r.json()
    r = client.post("/transcriber/v1/audio/transcriptions-from-url", json={})
    assert r.status_code in (400, 422) and "detail" in r.json()


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:9/a.wav"])
def test_from_url_refuses_private_addresses(client, url):
    r = client.post("/transcriber/v1/audio/transcriptions-from-url", json={"audio_file_url": url})
    assert r.status_code == 400 and "not allowed" in r.json()["detail"]


@pytest.mark.skipif(not AUDIO_URL, reason="set RGPU_E2E_AUDIO_URL to a public audio file to test from-url")
def test_from_url_shifts_word_times(client):
    r = client.post(
        "/transcriber/v1/audio/transcriptions-from-url", json={"audio_file_url": AUDIO_URL, "timestamp_offset": 100}
    )
    assert r.status_code == 200, r.text
    words = r.json()["words"]
    _check_words(words)
    assert all(w["start"] >= 100 for w in words)


def test_padding_validates_its_input(client):
    r = client.post(
        "/padding/pad",
        json={
            "track_url": "http://169.254.169.254/a.webm",
            "output_url": "http://169.254.169.254/b.webm",
            "start_time_seconds": 1,
            "track_index": 0,
        },
    )
    assert 400 <= r.status_code < 500, r.text
    r = client.post(
        "/padding/pad",
        json={
            "track_url": "https://example.com/a.webm",
            "output_url": "https://example.com/b",
            "start_time_seconds": 0,
            "track_index": 0,
        },
    )
    assert r.status_code in (400, 422), r.text


def test_disabled_components_are_not_routed(client):
    assert client.post("/diarizer/diarize", params={"audio_file_url": "https://example.com/a.wav"}).status_code == 404


@pytest.mark.parametrize(
    "path", ["/transcriber/docs", "/transcriber/openapi.json", "/transcriber/metrics", "/padding/metrics"]
)
def test_docs_and_metrics_are_not_reachable_through_the_ingress(client, path):
    """Only contract routes are routed (the predictors also serve /metrics on their own port and
    turn the API docs off in the cluster): nothing else answers, with or without the key."""
    assert client.get(path).status_code == 404
