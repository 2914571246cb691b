"""Speaker attribution, the pure core (``rgpu_asr.speakers``): properties over generated words and
turns, plus the rules each property cannot pin down alone (nearest turn, ties, segmentation,
first-appearance numbering, letters, reference matching, hint validation)."""

from __future__ import annotations

import asyncio
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rgpu_asr.diarization import both
from rgpu_asr.errors import InvalidInput
from rgpu_asr.speakers import (
    SpeakerHints,
    SpeakerTurn,
    SpeakerWord,
    assign_speakers,
    attribute,
    cosine_similarities,
    join_words,
    letters,
    match_references,
    split_segments,
)
from rgpu_asr.types import Transcript, Word

times = st.floats(min_value=0, max_value=600, allow_nan=False, allow_infinity=False)


@st.composite
def monotonic_words(draw, max_size=60):
    """Words as the transcriber gives them: start <= end <= next start."""
    n = draw(st.integers(min_value=0, max_value=max_size))
    t = draw(st.floats(min_value=0, max_value=5))
    words = []
    for i in range(n):
        t += draw(st.floats(min_value=0, max_value=3))  # pause before the word (may be 0)
        length = draw(st.floats(min_value=0, max_value=1.5))
        words.append(Word(f" w{i}", round(t, 2), round(t + length, 2)))
        t = round(t + length, 2)
    return words


@st.composite
def turn_lists(draw, max_size=25):
    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=max_size))):
        start = draw(times)
        out.append(SpeakerTurn(start, start + draw(st.floats(min_value=0, max_value=40)), draw(st.integers(0, 6))))
    return out


def transcript(words: list[Word]) -> Transcript:
    return Transcript("".join(w.word for w in words).strip(), words, [], "en", words[-1].end if words else 0.0)


@settings(max_examples=300, deadline=None)
@given(monotonic_words(), turn_lists(), st.randoms(use_true_random=False))
def test_every_word_gets_exactly_one_speaker_and_turn_order_does_not_matter(words, turns, rnd):
    speakers = assign_speakers(words, turns)
    assert len(speakers) == len(words)
    known = {t.speaker for t in turns} or {0}
    assert all(isinstance(s, int) and s in known for s in speakers)
    shuffled = list(turns)
    rnd.shuffle(shuffled)
    assert assign_speakers(words, shuffled) == speakers
    assert assign_speakers(words, list(reversed(turns))) == speakers
    d = attribute(transcript(words), turns)
    assert d == attribute(transcript(words), shuffled)


@settings(max_examples=300, deadline=None)
@given(monotonic_words(), turn_lists(), st.floats(min_value=0.05, max_value=5))
def test_attributed_words_and_segments_keep_time_order(words, turns, pause):
    d = attribute(transcript(words), turns, max_pause_s=pause)
    assert [(w.word, w.start, w.end) for w in d.words] == [(w.word, w.start, w.end) for w in words]
    for a, b in itertools.pairwise(d.words):
        assert a.start <= a.end <= b.start <= b.end
    # Segments cover the words in order, each word exactly once.
    assert " ".join(s.text for s in d.segments).split() == " ".join(w.word for w in words).split()
    for s in d.segments:
        assert s.start <= s.end
    for a, b in itertools.pairwise(d.segments):
        assert a.end <= b.start
        assert a.speaker != b.speaker or b.start - a.end > pause, "same speaker, short pause: one segment"
    # Speakers are numbered 0, 1, ... by first appearance.
    first = list(dict.fromkeys(w.speaker for w in d.words))
    assert first == list(range(len(first)))


@settings(max_examples=200, deadline=None)
@given(monotonic_words(max_size=30), turn_lists(max_size=10), st.floats(min_value=-1000, max_value=1000))
def test_offset_shifts_every_time_once(words, turns, offset):
    d = attribute(transcript(words), turns)
    moved = d.shifted(offset)
    for a, b in zip(d.words, moved.words, strict=True):
        assert b.start == pytest.approx(a.start + offset, abs=1e-3) and b.speaker == a.speaker
    for a, b in zip(d.segments, moved.segments, strict=True):
        assert b.end == pytest.approx(a.end + offset, abs=1e-3) and b.text == a.text
    assert d.shifted(0) is d


def test_maximum_overlap_wins_and_overlaps_of_one_speaker_add_up():
    words = [Word(" a", 0.0, 1.0), Word(" b", 1.0, 3.0)]
    turns = [SpeakerTurn(0.0, 0.6, 7), SpeakerTurn(0.5, 1.2, 3), SpeakerTurn(1.0, 1.7, 7), SpeakerTurn(1.7, 3.0, 3)]
    # word a: speaker 7 overlaps 0.6 s, speaker 3 0.5 s; word b: 7 has 0.7 s, 3 has 1.3 s
    assert assign_speakers(words, turns) == [7, 3]
    split = [SpeakerTurn(1.0, 1.5, 5), SpeakerTurn(2.0, 2.5, 5), SpeakerTurn(1.5, 2.0, 4)]
    assert assign_speakers([Word(" c", 1.0, 2.5)], split) == [5], "two turns of 5 (1.0 s) beat one of 4 (0.5 s)"


def test_a_word_without_overlap_takes_the_nearest_turn_and_ties_take_the_lowest_speaker():
    turns = [SpeakerTurn(0.0, 1.0, 2), SpeakerTurn(5.0, 6.0, 1)]
    words = [Word(" x", 1.5, 2.0), Word(" y", 4.0, 4.8), Word(" z", 2.9, 2.9)]
    assert assign_speakers(words, turns) == [2, 1, 2]
    # equidistant (2.0 s either side): the lowest speaker number
    assert assign_speakers([Word(" m", 3.0, 3.0)], [SpeakerTurn(0, 1, 4), SpeakerTurn(5, 6, 2)]) == [2]
    # a zero-length word inside two turns: distance 0 to both, the lowest speaker
    assert assign_speakers([Word(" n", 2.0, 2.0)], [SpeakerTurn(0, 5, 6), SpeakerTurn(1, 3, 4)]) == [4]
    # equal overlap: the lowest speaker
    assert assign_speakers([Word(" o", 0.0, 2.0)], [SpeakerTurn(0, 1, 9), SpeakerTurn(1, 2, 8)]) == [8]


def test_no_turns_means_one_speaker_and_no_words_means_nothing():
    assert assign_speakers([Word(" a", 0, 1), Word(" b", 1, 2)], []) == [0, 0]
    assert assign_speakers([], [SpeakerTurn(0, 1, 0)]) == []
    d = attribute(transcript([]), [SpeakerTurn(0, 1, 0)])
    assert d.words == [] and d.segments == [] and d.speakers == 0


def test_many_words_against_many_turns():
    """A 4-hour meeting's worth: 30 000 words, 3 000 turns, in blocks (bounded memory)."""
    rng = np.random.default_rng(0)
    starts = np.sort(rng.uniform(0, 14_400, 30_000))
    words = [Word(" w", float(s), float(s) + 0.3) for s in starts]
    turn_starts = np.arange(0, 14_400, 4.8)
    turns = [SpeakerTurn(float(s), float(s) + 4.8, int(i % 5)) for i, s in enumerate(turn_starts)]
    speakers = assign_speakers(words, turns)

    def expected(w: Word) -> int:  # the turn holding most of the word; equal shares: lowest speaker
        k = int(w.start // 4.8)
        shares = {}
        for j in (k, k + 1):
            if j < len(turns):
                t = turns[j]
                shares[t.speaker] = shares.get(t.speaker, 0.0) + max(0.0, min(w.end, t.end) - max(w.start, t.start))
        best = max(shares.values())
        return min(s for s, v in shares.items() if v == best)

    assert speakers == [expected(w) for w in words]


def test_segments_split_on_speaker_change_and_long_pauses_and_join_words():
    w = [
        SpeakerWord(" Hello", 0.0, 0.4, 0),
        SpeakerWord(" there.", 0.4, 0.8, 0),
        SpeakerWord(" Hi!", 0.9, 1.2, 1),
        SpeakerWord(" Again", 3.0, 3.5, 1),  # 1.8 s pause: new segment, same speaker
        SpeakerWord(" one", 3.6, 4.0, 1),
    ]
    segments = split_segments(w, max_pause_s=1.0)
    assert [(s.speaker, s.text, s.start, s.end) for s in segments] == [
        (0, "Hello there.", 0.0, 0.8),
        (1, "Hi!", 0.9, 1.2),
        (1, "Again one", 3.0, 4.0),
    ]
    assert join_words(["Bonjour", "à", "tous"]) == "Bonjour à tous"  # engines without leading spaces


def test_speakers_are_renumbered_by_first_appearance_and_names_follow():
    words = [Word(" a", 0, 1), Word(" b", 2, 3), Word(" c", 4, 5)]
    turns = [SpeakerTurn(0, 1, 5), SpeakerTurn(2, 3, 2), SpeakerTurn(4, 5, 5), SpeakerTurn(9, 10, 0)]
    d = attribute(transcript(words), turns, names={2: "Alice", 0: "Nobody heard"})
    assert [w.speaker for w in d.words] == [0, 1, 0]
    assert d.names == {1: "Alice"}, "speaker 0 of the turns said no word: its name goes nowhere"


def test_letters():
    assert [letters(i) for i in (0, 1, 25, 26, 27, 51, 52, 701, 702)] == [
        "A",
        "B",
        "Z",
        "AA",
        "AB",
        "AZ",
        "BA",
        "ZZ",
        "AAA",
    ]


def test_references_match_one_to_one_most_similar_first_above_the_threshold():
    sims = np.array(
        [
            [0.95, 0.90, 0.10],  # reference 0: speaker 0 (0.95)
            [0.97, 0.89, 0.20],  # reference 1: best is speaker 0 too (0.97): it takes speaker 0
            [0.30, 0.20, 0.50],  # reference 2: nothing above 0.8
        ]
    )
    assert match_references(sims, 0.8) == {0: 1, 1: 0}
    assert match_references(sims, 0.96) == {0: 1}
    assert match_references(np.zeros((0, 3)), 0.5) == {}
    assert match_references(np.array([[0.9, 0.9]]), 0.5) == {0: 0}, "a tie goes to the lower speaker"
    got = cosine_similarities(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([[2.0, 0.0], [1.0, 1.0]]))
    assert got[0].tolist() == pytest.approx([1.0, 2**-0.5])
    assert got[1].tolist() == [-1.0, -1.0], "a zero vector is similar to nothing"


@pytest.mark.parametrize(
    "hints, fragment",
    [
        ({"num_speakers": 0}, "num_speakers"),
        ({"num_speakers": 2.5}, "num_speakers"),
        ({"num_speakers": True}, "num_speakers"),
        ({"min_speakers": "3"}, "min_speakers"),
        ({"max_speakers": 101}, "at most 100"),
        ({"min_speakers": 4, "max_speakers": 2}, "must not exceed"),
        ({"num_speakers": 3, "min_speakers": 2}, "cannot be combined"),
        ({"num_speakers": 3, "max_speakers": 5}, "cannot be combined"),
    ],
)
def test_bad_hints_are_refused_naming_the_problem(hints, fragment):
    with pytest.raises(InvalidInput) as err:
        SpeakerHints.build(**hints)
    assert fragment in err.value.detail


def test_good_hints():
    assert SpeakerHints.build() == SpeakerHints()
    assert SpeakerHints.build(num_speakers=3.0).as_params() == {"num_speakers": 3}
    assert SpeakerHints.build(min_speakers=2, max_speakers=2).as_params() == {"min_speakers": 2, "max_speakers": 2}
    assert SpeakerHints.build(max_speakers=120, speaker_limit=127).max_speakers == 120


def test_both_cancels_the_other_when_one_fails():
    events: list[str] = []

    async def slow() -> int:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            events.append("slow cancelled")
            raise
        return 1

    async def failing() -> int:
        await asyncio.sleep(0.01)
        raise InvalidInput("bad clip")

    async def run() -> None:
        with pytest.raises(InvalidInput):
            await both(slow(), failing())
        assert events == ["slow cancelled"]
        assert await both(asyncio.sleep(0, "a"), asyncio.sleep(0.01, "b")) == ("a", "b")

    asyncio.run(run())
