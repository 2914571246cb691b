"""Hostile inputs to Parakeet's transcription routes (the shared core's, as for Whisper): each
gets a clear answer with a ``detail``, never a crash.

Already covered in ``test_parakeet_http.py``: a 0.2 s clip (200, padded), a non-English
``language`` (400). The URL guard, upload limits, multipart limits and redirects are the shared
core's and are covered once for Whisper (``tests/test_hostile_inputs.py``, ``test_ssrf_http.py``);
one private-address case here proves Parakeet's URL route goes through the guard.
"""

from __future__ import annotations

import io
import os
import wave

import av
import numpy as np
import pytest

pytestmark = pytest.mark.slow


def _wav(seconds: float) -> bytes:
    samples = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(16000 * seconds)) / 16000) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def _video_only_mp4() -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/transcribe"])
@pytest.mark.parametrize("name,data", [("empty.webm", b""), ("random.mp3", os.urandom(8192))])
def test_undecodable_audio_is_422(api, route, name, data):
    r = api.post(route, files={"file": (name, data)})
    assert r.status_code == 422, r.text
    assert "could not decode audio" in r.json()["detail"]


def test_video_only_container_is_422(api):
    r = api.post("/v1/audio/transcriptions", files={"file": ("video-only.mp4", _video_only_mp4())})
    assert r.status_code == 422, r.text
    assert "no audio stream" in r.json()["detail"]


def test_fifty_milliseconds_of_audio_is_padded_and_answered(api):
    r = api.post("/v1/audio/transcriptions", files={"file": ("tiny.wav", _wav(0.05))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["text"], str)
    for w in body["words"]:  # words in the padding are pulled back inside the clip
        assert 0.0 <= w["start"] <= w["end"] <= 0.05 + 1e-6, w


def test_private_address_is_400(api):
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": "http://169.254.169.254/latest/meta-data"})
    assert r.status_code == 400, r.text
    assert "not allowed" in r.json()["detail"]
