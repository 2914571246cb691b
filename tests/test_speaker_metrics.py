"""The scores the diarized-transcription bench prints (``bench/speaker_metrics.py``): cpWER against
hand-counted cases, so the figures reported in docs/diarizer.md mean what the docs say."""

from __future__ import annotations

import pytest

from bench.speaker_metrics import cpwer, errors, wer

REF = {"alice": "good morning everyone", "bob": "hello there"}


def test_perfect_attribution_scores_the_plain_wer_whatever_the_labels():
    hyp = {"B": "hello their", "A": "good morning everyone"}  # one substitution, labels swapped
    assert cpwer(REF, hyp) == pytest.approx(1 / 5)
    assert wer("good morning everyone hello there", "good morning everyone hello their") == pytest.approx(1 / 5)


def test_a_word_on_the_wrong_speaker_counts_twice():
    hyp = {"A": "good morning", "B": "everyone hello there"}
    assert cpwer(REF, hyp) == pytest.approx(2 / 5)  # deleted from alice, inserted in bob


def test_missing_and_extra_speakers_are_padded_with_empty_texts():
    # bob merged into alice: his 2 words are inserted in alice and deleted from (empty) bob
    assert cpwer(REF, {"A": "good morning everyone hello there"}) == pytest.approx(4 / 5)
    three = {"A": "good morning everyone", "B": "hello", "C": "there"}
    # bob split in two: "there" is deleted from bob and inserted in a speaker with no reference
    assert cpwer(REF, three) == pytest.approx(2 / 5)
    assert cpwer(REF, {}) == 1.0
    assert errors("", "a b") == 2 and errors("Hello, World!", "hello world") == 0
