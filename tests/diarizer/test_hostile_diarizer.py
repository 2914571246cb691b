"""Hostile inputs to the diarizer: each gets a clear answer with a ``detail``, never a crash.

Already covered in ``test_diarizer_http.py::test_bad_requests`` / ``test_bad_audio`` (not
repeated here): URLs to 127.0.0.1, 169.254.169.254 and ``[::1]`` and a redirect to a private
address (400 ``not allowed``), ``ftp://`` (400), random bytes named ``.wav`` (422), a text file
(400), ``num_speakers=0`` and ``min_speakers > max_speakers`` (400), a negative or non-numeric
``timestamp`` (400).
"""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from media import tone_wav, wav_bytes
from support import ORIGIN_HOST

pytestmark = pytest.mark.slow


FILES = {
    "/fifty-ms.wav": tone_wav(0.05),
    "/silence-30s.wav": wav_bytes(np.zeros(16000 * 30)),
}


class _Files(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        body = FILES.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")


@pytest.fixture(scope="module")
def files():
    server = ThreadingHTTPServer((ORIGIN_HOST, 0), _Files)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{ORIGIN_HOST}:{server.server_address[1]}"
    server.shutdown()


def test_metadata_address_is_400(api):
    """The representative SSRF case through the diarizer's own route (the guard is rgpu_serving.fetch)."""
    r = api.post("/diarize", json={"audio_file_url": "http://169.254.169.254/latest/meta-data/iam/"})
    assert r.status_code == 400 and "not allowed" in r.json()["detail"], r.text


def test_fifty_milliseconds_of_audio_is_200(api, files):
    r = api.post("/diarize", params={"audio_file_url": f"{files}/fifty-ms.wav"})
    assert r.status_code == 200, r.text
    segments = r.json()["diarization"]
    assert isinstance(segments, list)
    for s in segments:
        assert 0 <= s["start"] < s["end"] <= 0.05 + 0.1, s


def test_silent_recording_has_no_segments(api, files):
    r = api.post("/diarize", params={"audio_file_url": f"{files}/silence-30s.wav"})
    assert r.status_code == 200, r.text
    assert r.json() == {"diarization": []}


@pytest.mark.parametrize("field", ["num_speakers", "min_speakers", "max_speakers"])
@pytest.mark.parametrize("value", [-1, 10**9, 10**30])
def test_absurd_speaker_counts_are_400(api, origin, field, value):
    r = api.post("/diarize", params={"audio_file_url": f"{origin}/audio/test_short.wav", field: value})
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]


@pytest.mark.parametrize(
    "raw,fragment",
    [
        ("2.5", "num_speakers"),
        ("true", "num_speakers"),
        ('"3"', "num_speakers"),
        ("1e9", "num_speakers"),
        # not JSON (RFC 8259): KServe's parser refuses the body before the predictor sees it
        ("NaN", "Unrecognized request format"),
        ("Infinity", "Unrecognized request format"),
        ("1e400", "Unrecognized request format"),
    ],
)
def test_bad_speaker_counts_in_kserve_v1_are_400(api, raw, fragment):
    """The V1 instance is free-form JSON: the option parsing sees floats, booleans and strings."""
    audio = base64.b64encode(tone_wav(0.5)).decode()
    body = '{"instances": [{"audio_b64": "%s", "num_speakers": %s}]}' % (audio, raw)
    r = api.post("/v1/models/diarizer:predict", content=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"], r.text


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "1e400"])
def test_non_finite_numbers_in_the_diarize_body_are_400(api, origin, raw):
    """Python's JSON parser (the /diarize body) accepts these literals; validation refuses them."""
    url = f"{origin}/audio/test_short.wav"
    for field in ("timestamp", "num_speakers"):
        body = '{"audio_file_url": "%s", "%s": %s}' % (url, field, raw)
        r = api.post("/diarize", content=body.encode(), headers={"Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert field in r.json()["detail"], r.text


@pytest.mark.parametrize("audio_b64", ["", "!!!not base64!!!", base64.b64encode(b"\0" * 64).decode(), 12, None])
def test_bad_base64_audio_in_kserve_v1_is_4xx(api, audio_b64):
    r = api.post("/v1/models/diarizer:predict", json={"instances": [{"audio_b64": audio_b64}]})
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["detail"]
