"""Hostile inputs to ``POST /pad``: each gets a clear 4xx with a ``detail``, never a crash.

Already covered in ``test_padding_http.py`` (not repeated here): a metadata-address track URL
and a loopback output URL (400 ``... is not allowed``), ``file://`` (400), a text file as the
track (422), delays of 0, -1.5, 18000.5 and ``"soon"`` (400).
"""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.slow


def _body(base: str, **over) -> dict:
    body = {
        "track_url": f"{base}/audio/test_short.wav",
        "output_url": f"{base}/out/hostile.webm",
        "start_time_seconds": 1.0,
        "track_index": 0,
    }
    body.update(over)
    return body


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400", "1e308", "-1e-300", '"NaN"', '"inf"'])
def test_absurd_delays_are_400(pad_api, bucket, raw):
    """Non-finite and huge delays, as JSON number literals Python's parser accepts and as strings."""
    base, store = bucket
    template = (
        '{"track_url": "%s/audio/test_short.wav", "output_url": "%s/out/absurd.webm", '
        '"start_time_seconds": %s, "track_index": 0}'
    )
    r = pad_api.post(
        "/pad", content=(template % (base, base, raw)).encode(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert "start_time_seconds" in r.json()["detail"]
    assert "/out/absurd.webm" not in store.objects


@pytest.mark.parametrize(
    "track,output",
    [
        ("http://10.0.0.1/track.wav", "{base}/out/private.webm"),
        ("{base}/audio/test_short.wav", "http://169.254.169.254/latest/meta-data"),
        ("{base}/audio/test_short.wav", "http://[::1]:9/put"),
    ],
)
def test_private_addresses_are_400_before_any_work(pad_api, bucket, track, output):
    base, store = bucket
    r = pad_api.post("/pad", json=_body(base, track_url=track.format(base=base), output_url=output.format(base=base)))
    assert r.status_code == 400, r.text
    assert "not allowed" in r.json()["detail"]
    assert "/out/private.webm" not in store.objects


def test_bytes_that_are_not_audio_are_422(pad_api, bucket, origin):
    """One MiB of zero bytes (the shared origin's ``/big``) as the track."""
    base, store = bucket
    r = pad_api.post("/pad", json=_body(base, track_url=f"{origin}/big?mb=1", output_url=f"{base}/out/zeros.webm"))
    assert r.status_code == 422, r.text
    assert "track_url" in r.json()["detail"]
    assert "/out/zeros.webm" not in store.objects


@pytest.mark.parametrize("body", [{}, [], "x", {"track_url": 5, "output_url": [], "start_time_seconds": {}}])
def test_malformed_bodies_are_400(pad_api, body):
    r = pad_api.post("/pad", json=body)
    assert r.status_code == 400, r.text
    assert r.json()["detail"]


def test_tiny_delay_is_accepted(pad_api, bucket):
    """The smallest positive delay is valid (not an absurd value): it pads and uploads."""
    base, store = bucket
    r = pad_api.post("/pad", json=_body(base, start_time_seconds=math.ulp(0.0), output_url=f"{base}/out/ulp.webm"))
    assert r.status_code == 200, r.text
    assert store.objects["/out/ulp.webm"]
