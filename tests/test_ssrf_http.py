"""User-supplied URLs cannot reach private, loopback or metadata addresses (running service)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _post(api, url):
    return api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": url})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/a.wav",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/a.wav",
        "http://[::1]/a.wav",
        "http://[::ffff:127.0.0.1]/a.wav",
        "http://localhost/a.wav",  # a name that resolves to loopback
        "http://0.0.0.0/a.wav",
    ],
)
def test_private_and_metadata_addresses_are_blocked(api, url):
    r = _post(api, url)
    assert r.status_code == 400, r.text
    assert "not allowed" in r.json()["detail"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.wav", "gopher://x/"])
def test_non_http_schemes_are_refused(api, url):
    r = _post(api, url)
    assert r.status_code == 400 and "http" in r.json()["detail"]


def test_redirect_to_a_private_address_is_blocked(api, origin):
    r = _post(api, f"{origin}/redirect?to=http://127.0.0.1:9/a.wav")
    assert r.status_code == 400 and "not allowed" in r.json()["detail"]
    r = _post(api, f"{origin}/redirect?to=http://169.254.169.254/latest/meta-data/")
    assert r.status_code == 400


def test_allowlisted_loopback_origin_is_reachable_also_through_a_redirect(api, origin):
    r = _post(api, f"{origin}/redirect?to={origin}/audio/test_short.wav")
    assert r.status_code == 200, r.text
    assert r.json()["words"]
