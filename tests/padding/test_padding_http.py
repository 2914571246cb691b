"""POST /pad through HTTP against the local mode, with a loopback object store (GET + PUT)."""

from __future__ import annotations

import io
import re
import time
import uuid

import av
import httpx
import numpy as np
import pytest

from support import KEYS, shared_audio


def _decode(data_or_path) -> tuple[np.ndarray, tuple]:
    """All samples (channels x n, float) and (format, codec, rate, channels)."""
    src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else str(data_or_path)
    with av.open(src) as c:
        stream = c.streams.audio[0]
        frames = []
        for f in c.decode(stream):
            a = f.to_ndarray().astype(np.float32)
            if not f.format.is_planar:  # packed: one row of interleaved channels
                a = a.reshape(-1, len(f.layout.channels)).T
            frames.append(a)
        info = (c.format.name, stream.codec_context.name, stream.rate, stream.channels)
    samples = np.concatenate(frames, axis=1)
    if samples.dtype.kind == "i" or np.abs(samples).max() > 2:
        samples = samples / 32768.0
    return samples, info


def _counter(svc, outcome: str) -> float:
    text = httpx.get(svc.base + "/metrics").text
    m = re.search(rf'^reflector_gpu_padding_jobs_total{{outcome="{outcome}",predictor="padding"}} (\S+)', text, re.M)
    return float(m.group(1)) if m else 0.0


@pytest.mark.parametrize(
    "name,delay", [("test_short.wav", 2.5), ("test_mathieu_hello.mp3", 0.0125), ("two_speakers.wav", 37.123)]
)
def test_pad_uploads_delayed_opus_webm(pad_api, bucket, name, delay):
    base, store = bucket
    key = f"/out/{uuid.uuid4().hex}.webm"
    r = pad_api.post(
        "/pad",
        json={
            "track_url": f"{base}/audio/{name}",
            "output_url": f"{base}{key}",
            "start_time_seconds": delay,
            "track_index": 3,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["cancelled"] is False
    uploaded = store.objects[key]
    assert body["size"] == len(uploaded) > 0
    assert store.content_types[key] == "audio/webm"

    source, (_, _, src_rate, _) = _decode(shared_audio(name))
    out, (fmt, codec, rate, channels) = _decode(uploaded)
    assert "webm" in fmt and codec == "opus" and rate == 48_000 and channels == 2
    src_seconds = source.shape[1] / src_rate
    out_seconds = out.shape[1] / rate
    assert out_seconds == pytest.approx(src_seconds + delay, abs=0.020)
    # the leading delay is silence, and the track starts right after it
    lead = int((delay - 0.010) * rate)
    assert lead <= 0 or np.abs(out[:, :lead]).max() < 1e-3
    loud = np.nonzero(np.abs(out).max(axis=0) > 1e-3)[0]
    src_loud = np.nonzero(np.abs(source).max(axis=0) > 1e-3)[0]
    assert loud[0] / rate == pytest.approx(delay + src_loud[0] / src_rate, abs=0.020)


@pytest.mark.parametrize(
    "payload,fragment",
    [
        ({"start_time_seconds": 0}, "greater than 0"),
        ({"start_time_seconds": -1.5}, "greater than 0"),
        ({"start_time_seconds": 18000.5}, "at most 18000"),
        ({"track_url": ""}, "track_url cannot be empty"),
        ({"output_url": "  "}, "output_url cannot be empty"),
        ({"start_time_seconds": "soon"}, "start_time_seconds"),
        ({"track_url": None}, "track_url"),
    ],
)
def test_invalid_requests_are_400(pad_api, bucket, payload, fragment):
    base, _ = bucket
    body = {
        "track_url": f"{base}/audio/test_short.wav",
        "output_url": f"{base}/out/x.webm",
        "start_time_seconds": 1.0,
        "track_index": 0,
    }
    body.update(payload)
    body = {k: v for k, v in body.items() if v is not None}
    r = pad_api.post("/pad", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"]


@pytest.mark.parametrize(
    "track,output,status,fragment",
    [
        ("http://169.254.169.254/latest/meta-data", "{base}/out/a.webm", 400, "track_url is not allowed"),
        ("{base}/audio/test_short.wav", "http://127.0.0.1:9/put", 400, "output_url is not allowed"),
        ("file:///etc/passwd", "{base}/out/a.webm", 400, "only http and https"),
        ("{base}/audio/missing.wav", "{base}/out/a.webm", 404, "track_url not found"),
        ("{base}/text", "{base}/out/a.webm", 422, "track_url"),
        ("{base}/audio/test_short.wav", "{base}/status/403", 502, "answered 403"),
    ],
)
def test_url_failures(pad_api, bucket, track, output, status, fragment):
    base, store = bucket
    r = pad_api.post(
        "/pad",
        json={
            "track_url": track.format(base=base),
            "output_url": output.format(base=base),
            "start_time_seconds": 1.0,
            "track_index": 0,
        },
    )
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"]
    assert "/out/a.webm" not in store.objects


def test_auth_required(padding, bucket):
    base, _ = bucket
    body = {
        "track_url": f"{base}/audio/test_short.wav",
        "output_url": f"{base}/out/auth.webm",
        "start_time_seconds": 1.0,
        "track_index": 0,
    }
    assert httpx.post(padding.base + "/pad", json=body).status_code == 401
    r = httpx.post(padding.base + "/pad", json=body, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.post(padding.base + "/pad", json=body, headers={"Authorization": f"Bearer {KEYS[1]}"}, timeout=60)
    assert r.status_code == 200 and r.json()["cancelled"] is False


def _wait(predicate, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("phase", ["download", "upload"])
def test_caller_disconnect_cancels_the_job(padding, bucket, phase):
    """The caller hangs up mid-job: the service stops (nothing uploaded, no temp files) and counts it cancelled."""
    base, store = bucket
    key = f"/out/{uuid.uuid4().hex}.webm"
    if phase == "download":
        track, output, gone = (
            f"{base}/drip/two_speakers.wav?s=10",
            f"{base}{key}",
            "drip-aborted /drip/two_speakers.wav",
        )
    else:
        track, output, gone = f"{base}/audio/test_short.wav", f"{base}/slowput{key}", f"put-abandoned /slowput{key}"
    before = _counter(padding, "cancelled")
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            padding.base + "/pad",
            json={"track_url": track, "output_url": output, "start_time_seconds": 5.0, "track_index": 1},
            headers={"Authorization": f"Bearer {KEYS[0]}"},
            timeout=httpx.Timeout(10, read=2.0),
        )
    assert _wait(lambda: _counter(padding, "cancelled") >= before + 1), "the job was not cancelled"
    assert _wait(lambda: gone in store.events), f"the service kept transferring: {store.events}"
    assert key not in store.objects and f"put-complete /slowput{key}" not in store.events
    if phase == "upload":
        assert f"put-started /slowput{key}" in store.events
    assert _wait(lambda: not any(padding.upload_dir.glob("*"))), list(padding.upload_dir.glob("*"))
