"""Hostile inputs to Parakeet's transcription routes (the shared core's, as for Whisper): each
gets a clear answer with a ``detail``, never a crash.

Already covered in ``test_parakeet_http.py``: a 0.2 s clip (200, padded), a non-English
``language`` (400). The URL guard, upload limits, multipart limits and redirects are the shared
core's and are covered once for Whisper (``tests/test_hostile_inputs.py``, ``test_ssrf_http.py``);
one private-address case here proves Parakeet's URL route goes through the guard.
"""

from __future__ import annotations

import os

import pytest

from media import tone_wav, video_only_mp4  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/transcribe"])
@pytest.mark.parametrize("name,data", [("empty.webm", b""), ("random.mp3", os.urandom(8192))])
def test_undecodable_audio_is_422(api, route, name, data):
    r = api.post(route, files={"file": (name, data)})
    assert r.status_code == 422, r.text
    assert "could not decode audio" in r.json()["detail"]


def test_video_only_container_is_422(api):
    r = api.post("/v1/audio/transcriptions", files={"file": ("video-only.mp4", video_only_mp4())})
    assert r.status_code == 422, r.text
    assert "no audio stream" in r.json()["detail"]


def test_fifty_milliseconds_of_audio_is_padded_and_answered(api):
    r = api.post("/v1/audio/transcriptions", files={"file": ("tiny.wav", tone_wav(0.05))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["text"], str)
    for w in body["words"]:  # words in the padding are pulled back inside the clip
        assert 0.0 <= w["start"] <= w["end"] <= 0.05 + 1e-6, w


def test_private_address_is_400(api):
    r = api.post(
        "/v1/audio/transcriptions-from-url", json={"audio_file_url": "http://169.254.169.254/latest/meta-data"}
    )
    assert r.status_code == 400, r.text
    assert "not allowed" in r.json()["detail"]
