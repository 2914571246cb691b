"""Every error case of the contract answers its status with a clear ``detail`` (running service)."""

from __future__ import annotations

import pytest

from support import shared_audio

WAV = ("a.wav",)


def _detail(r) -> str:
    body = r.json()
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body["detail"].lower()


def test_missing_file_is_400(api):
    r = api.post("/v1/audio/transcriptions", data={"language": "en"}, files={"other": ("x.txt", b"x")})
    assert r.status_code == 400 and "file" in _detail(r)


def test_not_multipart_is_400(api):
    r = api.post("/v1/audio/transcriptions", json={"file": "x"})
    assert r.status_code == 400 and "multipart" in _detail(r)


def test_batch_without_files_is_400(api):
    r = api.post(
        "/v1/audio/transcriptions",
        data={"batch": "true"},
        files={"file": ("a.wav", shared_audio("test_short.wav").read_bytes())},
    )
    assert r.status_code == 400 and "files" in _detail(r)


def test_unsupported_extension_is_400(api):
    r = api.post("/v1/audio/transcriptions", files={"file": ("notes.txt", b"hello")})
    assert r.status_code == 400 and "extension" in _detail(r)


@pytest.mark.parametrize(
    "name,content",
    [
        ("fake.wav", b"this is a text file, not audio" * 10),
        ("random.mp3", bytes(range(256)) * 64),
        ("empty.webm", b""),
    ],
)
def test_undecodable_audio_is_422(api, name, content):
    r = api.post("/v1/audio/transcriptions", files={"file": (name, content)})
    assert r.status_code == 422, r.text
    assert "decode" in _detail(r)


def test_format_is_sniffed_when_there_is_no_extension(api):
    r = api.post("/v1/audio/transcriptions", files={"file": ("recording", shared_audio("test_short.wav").read_bytes())})
    assert r.status_code == 200, r.text


def test_bad_language_is_400(api):
    r = api.post(
        "/v1/audio/transcriptions",
        data={"language": "xx"},
        files={"file": ("a.wav", shared_audio("test_short.wav").read_bytes())},
    )
    assert r.status_code == 400 and "language" in _detail(r)


def test_bad_response_format_and_granularity_are_400(api):
    audio = shared_audio("test_short.wav").read_bytes()
    r = api.post("/v1/audio/transcriptions", data={"response_format": "xml"}, files={"file": ("a.wav", audio)})
    assert r.status_code == 400 and "response_format" in _detail(r)
    r = api.post(
        "/v1/audio/transcriptions", data={"timestamp_granularities[]": "char"}, files={"file": ("a.wav", audio)}
    )
    assert r.status_code == 400 and "granularit" in _detail(r)


def test_upload_over_the_limit_is_413(api):
    r = api.post("/v1/audio/transcriptions", files={"file": ("big.wav", b"\0" * (9 * 1024 * 1024))})
    assert r.status_code == 413 and "limit" in _detail(r)


def test_missing_audio_file_url_is_400(api):
    r = api.post("/v1/audio/transcriptions-from-url", json={"language": "en"})
    assert r.status_code == 400 and "audio_file_url" in _detail(r)


def test_invalid_json_types_are_400_with_a_string_detail(api):
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": "http://x", "timestamp_offset": "soon"})
    assert r.status_code == 400 and "timestamp_offset" in _detail(r)


def test_url_not_found_is_404(api, origin):
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": f"{origin}/audio/missing.mp3"})
    assert r.status_code == 404 and "not found" in _detail(r)


def test_upstream_error_is_502(api, origin):
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": f"{origin}/status/500"})
    assert r.status_code == 502 and "500" in _detail(r)


def test_unreachable_upstream_is_502(api, origin):
    closed = origin.rsplit(":", 1)[0] + ":1"
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": f"{closed}/a.wav"})
    assert r.status_code == 502


def test_upstream_timeout_is_504(api, origin):
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": f"{origin}/slow"})
    assert r.status_code == 504 and "timed out" in _detail(r)


def test_download_over_the_limit_is_413(api, origin):
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": f"{origin}/big?mb=9"})
    assert r.status_code == 413


def test_redirect_loop_is_502(api, origin):
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": f"{origin}/loop/0"})
    assert r.status_code == 502 and "redirect" in _detail(r)


def test_fetched_undecodable_file_is_422(api, origin):
    r = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": f"{origin}/big?mb=1"})
    assert r.status_code in (400, 422), r.text
