"""Engine rules that need no model: languages by model name, model source resolution, profiles."""

from __future__ import annotations

import pytest

from rgpu_asr.errors import InvalidInput
from rgpu_parakeet.engine import ParakeetEngine, languages_for, to_chunk_transcript
from rgpu_parakeet.settings import ParakeetSettings


def _engine(source: str, **settings) -> ParakeetEngine:
    e = ParakeetEngine(ParakeetSettings(**settings))
    e.languages = languages_for(source, e.settings.languages)
    return e


def test_v2_is_english_only():
    e = _engine("/mnt/models/parakeet-tdt-0.6b-v2.nemo")
    assert e.resolve_language("en") == "en" and e.resolve_language(None) == "en" and e.resolve_language("EN") == "en"
    with pytest.raises(InvalidInput, match="only supports English"):
        e.resolve_language("fr")


def test_v3_accepts_its_25_european_languages():
    e = _engine("nvidia/parakeet-tdt-0.6b-v3")
    assert len(e.languages) == 25
    assert e.resolve_language("fr") == "fr" and e.resolve_language("uk") == "uk" and e.resolve_language("auto") is None
    with pytest.raises(InvalidInput, match="supported:"):
        e.resolve_language("ja")


def test_languages_can_be_configured():
    assert _engine("x.nemo", languages="en, de").languages == ("en", "de")


def test_profiles_set_batching(monkeypatch):
    monkeypatch.setenv("REFLECTOR_GPU_PROFILE", "file")
    e = ParakeetEngine(ParakeetSettings())
    assert (e.profile, e.limits.max_batch, e.limits.max_chunk_s, e.limits.min_chunk_s) == ("file", 8, 30.0, 0.5)
    monkeypatch.setenv("REFLECTOR_GPU_PROFILE", "live")
    monkeypatch.setenv("REFLECTOR_GPU_PARAKEET_BATCH_SIZE", "32")
    e = ParakeetEngine(ParakeetSettings())
    assert (e.profile, e.limits.max_batch) == ("live", 32) and e.limits.max_wait_s > 0
    monkeypatch.setenv("REFLECTOR_GPU_PROFILE", "nightly")
    with pytest.raises(ValueError, match="live, file"):
        ParakeetSettings()


def test_hypothesis_to_words():
    class Hyp:
        text = " hello world. again "
        timestamp = {
            "word": [
                {"word": "hello", "start": 0.123, "end": 0.456},
                {"word": "world.", "start": 0.5, "end": 0.9},
                {"word": "again", "start": 1.0, "end": 1.2},
            ],
            "segment": [
                {"segment": "hello world.", "start": 0.12, "end": 0.9},
                {"segment": "again", "start": 1.0, "end": 1.2},
            ],
        }

    t = to_chunk_transcript(Hyp(), 2.0)
    assert [(w.word, w.start, w.end) for w in t.words] == [
        ("hello ", 0.12, 0.46),
        ("world. ", 0.5, 0.9),
        ("again ", 1.0, 1.2),
    ]
    assert [s.text for s in t.segments] == ["hello world.", "again"]
