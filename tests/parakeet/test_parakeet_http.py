"""The Parakeet predictor through HTTP: a tiny random-weight FastConformer-TDT loaded with NeMo's
``ASRModel.restore_from`` and run with ``transcribe(timestamps=True)`` by the real local mode.

The text is meaningless (untrained weights); everything else is checked: response shapes of
every route, word timing, padding of very short clips, the English-only language rule, request
order for several files, and how many model calls the live and file profiles make.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import math
import re

import httpx
import pytest

from media import tone_wav
from support import KEYS, shared_audio

pytestmark = pytest.mark.slow


def _assert_words(words, lo: float, hi: float) -> None:
    assert words, "no words"
    for w in words:
        assert set(w) == {"word", "start", "end"}, w
        assert isinstance(w["word"], str) and w["word"].strip() and w["word"].endswith(" "), w  # Whisper-style
        assert lo - 1e-6 <= w["start"] <= w["end"] <= hi + 1e-6, (w, lo, hi)
        for t in (w["start"], w["end"]):
            assert abs(t * 100 - round(t * 100)) < 1e-6, f"not rounded to 10 ms: {w}"
    for a, b in itertools.pairwise(words):
        assert a["start"] <= b["start"] and a["end"] <= b["start"] + 1e-6, (a, b)


def _batches(svc) -> tuple[float, float, dict[str, float]]:
    """(model calls, chunks, cumulative histogram buckets) from the predictor's batch-size metric."""
    text = httpx.get(svc.base + "/metrics", timeout=10).text
    count = re.search(r'reflector_gpu_batch_items_count\{predictor="parakeet"\} ([0-9.e+]+)', text)
    total = re.search(r'reflector_gpu_batch_items_sum\{predictor="parakeet"\} ([0-9.e+]+)', text)
    buckets = dict(
        re.findall(r'reflector_gpu_batch_items_bucket\{le="([^"]+)",predictor="parakeet"\} ([0-9.e+]+)', text)
    )
    return (
        float(count.group(1)) if count else 0.0,
        float(total.group(1)) if total else 0.0,
        {k: float(v) for k, v in buckets.items()},
    )


# ---- shapes of every route --------------------------------------------------------------------
def test_upload_json_shape_and_word_timing(api):
    name = "test_mathieu_hello.wav"
    r = api.post(
        "/v1/audio/transcriptions",
        files={"file": (name, shared_audio(name).read_bytes())},
        data={"language": "en", "model": "parakeet-tdt-0.6b-v2"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"text", "words", "filename"} and body["filename"] == name
    assert body["text"] and body["text"] == body["text"].strip()
    _assert_words(body["words"], 0.0, 19.97)


def test_openai_sdk_verbose_json(live):
    openai = pytest.importorskip("openai", reason="the OpenAI SDK is a dev dependency")
    client = openai.OpenAI(base_url=live.base + "/v1", api_key=KEYS[1])
    with open(shared_audio("test_short.wav"), "rb") as f:
        t = client.audio.transcriptions.create(
            model="parakeet", file=f, response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert t.text and t.language == "en" and t.duration == pytest.approx(5.8, abs=0.15)
    assert t.words and all(w.start <= w.end <= t.duration + 1e-6 for w in t.words)
    assert t.segments and t.segments[0].start >= 0


def test_legacy_transcribe_route(api):
    r = api.post("/transcribe", files={"file": ("short.wav", shared_audio("test_short.wav").read_bytes())})
    assert r.status_code == 200, r.text
    words = r.json()["words"]
    assert words and all(set(w) == {"text", "start", "end"} for w in words)


def test_from_url_shape_and_timestamp_offset(api, origin):
    url = f"{origin}/audio/test_short.wav"
    base = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": url})
    assert base.status_code == 200, base.text
    shifted = api.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": url, "timestamp_offset": 42.5})
    assert shifted.status_code == 200, shifted.text
    a, b = base.json(), shifted.json()
    assert set(a) == {"text", "words"} and a["text"] == b["text"]
    _assert_words(a["words"], 0.0, 5.8)
    _assert_words(b["words"], 42.5, 42.5 + 5.8)
    for x, y in zip(a["words"], b["words"], strict=True):
        assert y["start"] == pytest.approx(x["start"] + 42.5, abs=0.011)
        assert y["end"] == pytest.approx(x["end"] + 42.5, abs=0.011)


def test_kserve_v1_and_v2(api):
    audio = base64.b64encode(shared_audio("test_short.wav").read_bytes()).decode()
    v1 = api.post("/v1/models/parakeet:predict", json={"instances": [{"audio_b64": audio}]})
    assert v1.status_code == 200, v1.text
    assert v1.json()["predictions"][0]["words"]
    v2 = api.post(
        "/v2/models/parakeet/infer",
        json={"inputs": [{"name": "audio_b64", "shape": [1], "datatype": "BYTES", "data": [audio]}]},
    )
    assert v2.status_code == 200, v2.text
    outputs = {o["name"]: o for o in v2.json()["outputs"]}
    assert outputs["text"]["data"][0] == v1.json()["predictions"][0]["text"]
    assert json.loads(outputs["words_json"]["data"][0])


# ---- audio and language rules -----------------------------------------------------------------
def test_clip_of_a_fifth_of_a_second_is_padded_and_succeeds(api):
    r = api.post("/v1/audio/transcriptions", files={"file": ("tiny.wav", tone_wav(0.2))})
    assert r.status_code == 200, r.text
    for w in r.json()["words"]:  # words the model put in the padding are pulled back inside the clip
        assert 0.0 <= w["start"] <= w["end"] <= 0.2 + 1e-6, w


@pytest.mark.parametrize("route", ["upload", "url", "legacy"])
def test_non_english_language_is_refused_by_an_english_model(api, origin, route):
    clip = shared_audio("test_short.wav").read_bytes()
    if route == "upload":
        r = api.post("/v1/audio/transcriptions", files={"file": ("a.wav", clip)}, data={"language": "fr"})
    elif route == "legacy":
        r = api.post("/transcribe", files={"file": ("a.wav", clip)}, data={"language": "fr"})
    else:
        r = api.post(
            "/v1/audio/transcriptions-from-url",
            json={"audio_file_url": f"{origin}/audio/test_short.wav", "language": "fr"},
        )
    assert r.status_code == 400, r.text
    assert "only supports English" in r.json()["detail"]


@pytest.mark.parametrize("field,batch", [("files", "true"), ("files[]", "false")])
def test_several_files_come_back_in_request_order(api, field, batch):
    clips = [
        ("c.wav", tone_wav(1.5, 330)),
        ("a.wav", shared_audio("test_short.wav").read_bytes()),
        ("b.wav", tone_wav(0.3, 440)),
        ("d.mp3", shared_audio("test_mathieu_hello.mp3").read_bytes()),
    ]
    r = api.post("/v1/audio/transcriptions", files=[(field, c) for c in clips], data={"batch": batch})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["filename"] for x in results] == [c[0] for c in clips]
    for x, hi in zip(results, (1.5, 5.8, 0.3, 20.0), strict=True):
        assert set(x) == {"filename", "text", "words"}
        if x["words"]:
            _assert_words(x["words"], 0.0, hi)
    # The same audio gives the same words alone as inside a batch.
    alone = api.post("/v1/audio/transcriptions", files={"file": clips[1]}).json()
    assert alone["words"] == results[1]["words"]


# ---- profiles ---------------------------------------------------------------------------------
def test_live_profile_batches_ten_concurrent_requests(live):
    clip = shared_audio("test_short.wav").read_bytes()

    async def send_all():
        async with httpx.AsyncClient(
            base_url=live.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=300
        ) as c:
            return await asyncio.gather(
                *(c.post("/v1/audio/transcriptions", files={"file": (f"c{i}.wav", clip)}) for i in range(10))
            )

    calls_before, items_before, _ = _batches(live)
    responses = asyncio.run(send_all())
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert len({json.dumps(r.json()["words"]) for r in responses}) == 1  # same clip, same words in any batch slot
    calls, items, _ = _batches(live)
    print(f"live profile: 10 concurrent requests -> {calls - calls_before:.0f} model calls")
    assert items - items_before == 10
    assert calls - calls_before < 10, f"ten concurrent clips took {calls - calls_before} model calls"


def test_file_profile_transcribes_a_long_recording_in_chunk_batches(file_service, origin):
    ref = json.loads(shared_audio("meeting_three_voices.json").read_text())
    calls_before, items_before, buckets_before = _batches(file_service)
    with httpx.Client(base_url=file_service.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=300) as c:
        r = c.post(
            "/v1/audio/transcriptions-from-url",
            json={"audio_file_url": f"{origin}/audio/meeting_three_voices.mp3", "timestamp_offset": 10},
        )
    assert r.status_code == 200, r.text
    body = r.json()
    _assert_words(body["words"], 10.0, 10.0 + ref["duration"])
    assert body["words"][-1]["end"] > 10.0 + ref["duration"] / 2, "words only cover the start of the recording"
    calls, items, buckets = _batches(file_service)
    chunks, model_calls = items - items_before, calls - calls_before
    print(f"file profile: {ref['duration']} s -> {chunks:.0f} VAD chunks in {model_calls:.0f} model calls")
    assert chunks >= math.ceil(ref["duration"] / 15 * 0.5), f"only {chunks} VAD chunks for {ref['duration']} s"
    assert model_calls == math.ceil(chunks / 4), f"{chunks} chunks took {model_calls} calls (batches of 4 expected)"
    over_four = (buckets["+Inf"] - buckets_before.get("+Inf", 0)) - (buckets["4.0"] - buckets_before.get("4.0", 0))
    assert over_four == 0, "a model call exceeded the configured batch size"


def test_service_log_is_quiet(live, api):
    api.post("/v1/audio/transcriptions", files={"file": ("s.wav", tone_wav(1.0))})
    log = live.log_path.read_text()
    assert "POST /v1/audio/transcriptions" in log
    for noise in ("[NeMo I", "[NeMo W", "Timestamps requested", "Transcribing:"):
        assert noise not in log, f"NeMo chatter in the service log: {noise!r}"


# ---- model source -----------------------------------------------------------------------------
def test_hub_name_offline_is_not_ready_with_a_clear_reason(parakeet_services):
    svc = parakeet_services["offline"]
    ready = httpx.get(f"{svc.base}/v2/models/parakeet/ready", timeout=10)
    assert ready.status_code == 503
    r = httpx.post(
        svc.base + "/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {KEYS[0]}"},
        files={"file": ("a.wav", tone_wav(1.0))},
        timeout=30,
    )
    assert r.status_code == 503 and "Retry-After" in r.headers
    detail = r.json()["detail"]
    assert "nvidia/parakeet-tdt-0.6b-v2" in detail and "REFLECTOR_GPU_PARAKEET_MODEL" in detail, detail
