"""The live-transcription core (``rgpu_asr.live``), without a socket or a model: pcm16 decoding,
server-VAD turns on real speech with the real Silero VAD, stable partial text, bounded buffers."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from rgpu_asr.live import (
    Cleared,
    Committed,
    DecodeRequest,
    LiveInputError,
    LiveLimits,
    LiveStream,
    Pcm16Decoder,
    SpeechStarted,
    SpeechStopped,
    TurnDetection,
    join_words,
)
from rgpu_asr.repeats import repeated_tail
from rgpu_asr.types import SAMPLE_RATE, Word
from rgpu_asr.vad import default_vad
from support import shared_audio


def _pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def _ids():
    counter = itertools.count(1)
    return lambda: f"item_{next(counter)}"


def _wav16k(name: str) -> np.ndarray:
    from rgpu_asr.audio import load_audio

    return load_audio(shared_audio(name), name, None, None)


def test_pcm16_at_16k_passes_through_and_24k_is_resampled_without_seams():
    t16 = np.arange(16_000) / 16_000
    assert np.allclose(
        Pcm16Decoder(16_000).decode(_pcm(0.5 * np.sin(2 * np.pi * 440 * t16))),
        0.5 * np.sin(2 * np.pi * 440 * t16),
        atol=1e-4,
    )

    t24 = np.arange(24_000) / 24_000
    tone = _pcm(0.5 * np.sin(2 * np.pi * 1000 * t24) + 0.3 * np.sin(2 * np.pi * 10_000 * t24))  # 10 kHz: above 8 kHz
    whole = Pcm16Decoder(24_000).decode(tone)
    pieces = Pcm16Decoder(24_000)
    framed = np.concatenate([pieces.decode(tone[i : i + 4800]) for i in range(0, len(tone), 4800)])  # 100 ms frames
    assert np.array_equal(whole, framed), "frame boundaries must not change the output"
    n = len(whole)
    assert 15_900 <= n <= 16_000
    expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / 16_000)
    middle = slice(200, n - 200)
    assert np.max(np.abs(whole[middle] - expected[middle])) < 0.02, "the 1 kHz tone survives, aligned"


@pytest.mark.parametrize("data", [b"\x00", b"\x00\x01\x02"])
def test_an_odd_byte_count_is_refused_before_anything_changes(data):
    decoder = Pcm16Decoder(24_000)
    with pytest.raises(LiveInputError) as err:
        decoder.decode(data)
    assert err.value.code == "invalid_audio_length"
    assert len(decoder.decode(b"\x00\x00" * 4800)) > 3000


def test_unsupported_rates_and_knobs_are_refused():
    with pytest.raises(LiveInputError) as err:
        Pcm16Decoder(44_100)
    assert err.value.code == "unsupported_audio_format"
    with pytest.raises(LiveInputError):
        TurnDetection(threshold=1.5)
    with pytest.raises(LiveInputError):
        TurnDetection(silence_duration_ms=-1)


def test_partial_text_only_extends_a_prefix_two_decodes_agree_on():
    stream = LiveStream(_ids(), None, None, LiveLimits(partial_interval_s=0.5))
    events = stream.append(np.zeros(SAMPLE_RATE, np.float32))
    (req,) = [e for e in events if isinstance(e, DecodeRequest)]
    assert not req.final and len(req.audio) == SAMPLE_RATE

    def words(*ws):
        return [Word(w, 0.1 * i, 0.1 * i + 0.05) for i, w in enumerate(ws)]

    assert stream.partial(req.item_id, words(" Hi", " the")) == ""  # nothing to agree with yet
    stream.append(np.zeros(SAMPLE_RATE // 2, np.float32))
    assert stream.partial(req.item_id, words(" Hi", " there", " every")) == "Hi"
    stream.append(np.zeros(SAMPLE_RATE // 2, np.float32))
    assert stream.partial(req.item_id, words(" Hi", " there", " everyone,")) == " there"
    # A later decode that disagrees with what was sent sends nothing: text is never taken back.
    stream.append(np.zeros(SAMPLE_RATE // 2, np.float32))
    assert stream.partial(req.item_id, words(" Hey", " there", " everyone,", " today")) == ""
    events = stream.commit()
    assert [type(e) for e in events] == [Committed, DecodeRequest]
    final = events[1]
    assert final.final and final.item_id == req.item_id and len(final.audio) == 2.5 * SAMPLE_RATE
    delta, placed = stream.final(final.item_id, words(" Hi", " there", " everyone.", " Today"), offset_s=10.0)
    assert delta == " everyone. Today"
    assert placed[0] == Word(" Hi", 10.0, 10.05) and placed[-1].start == pytest.approx(10.3)
    with pytest.raises(LiveInputError) as err:
        stream.commit()
    assert err.value.code == "input_audio_buffer_commit_empty"


def test_a_stuttering_draft_never_confirms_its_stutter():
    """Two drafts that both loop the same way ("Thanks. Thanks.") agree on the loop; only the
    first copy counts, so no repeated word is ever sent as a delta."""
    stream = LiveStream(_ids(), None, None, LiveLimits(partial_interval_s=0.5))
    (req,) = [e for e in stream.append(np.zeros(SAMPLE_RATE, np.float32)) if isinstance(e, DecodeRequest)]

    def words(*ws):
        return [Word(w, 0.0, 0.1) for w in ws]

    assert stream.partial(req.item_id, words(" Thanks.", " Thanks.", " Thanks.")) == ""
    stream.append(np.zeros(SAMPLE_RATE // 2, np.float32))
    assert stream.partial(req.item_id, words(" Thanks.", " Thanks.")) == "Thanks."
    stream.append(np.zeros(SAMPLE_RATE // 2, np.float32))
    assert stream.partial(req.item_id, words(" Thanks.", " I", " would", " I", " would")) == ""
    stream.append(np.zeros(SAMPLE_RATE // 2, np.float32))
    assert stream.partial(req.item_id, words(" Thanks.", " I", " would", " like")) == " I would"


@pytest.mark.parametrize(
    ("words", "min_period", "cut"),
    [
        ("Sure, what is it? Sure, what is it?", 3, 4),
        ("a b c a b c a b", 3, 3),  # several copies, the last one cut short
        ("Thanks. Thanks.", 1, 1),
        ("Thanks. Thanks.", 3, 2),
        ("the the cat sat", 1, 4),  # a repeat that is not at the end
        ("one two three", 1, 3),
        ("", 1, 0),
        ("- -", 1, 2),  # punctuation alone never repeats
    ],
)
def test_repeated_tail_finds_where_the_decoder_started_saying_it_again(words, min_period, cut):
    assert repeated_tail(words.split(), min_period) == cut


def test_words_without_leading_spaces_are_joined_with_spaces():
    assert join_words(["hello ", "world "]) == "hello world"  # Parakeet: a trailing space
    assert join_words([" Hello", " world."]) == "Hello world."  # Whisper: a leading space
    assert join_words(["again "], continuing=True) == " again"
    assert join_words([" again"], continuing=True) == " again"
    assert join_words(["你好", "世界"]) == "你好世界"  # no boundary marks: joined as they are


def test_manual_buffer_is_capped_and_clear_keeps_the_clock():
    stream = LiveStream(_ids(), None, None, LiveLimits(max_buffer_s=2.0, partial_interval_s=10))
    stream.append(np.zeros(SAMPLE_RATE, np.float32))
    with pytest.raises(LiveInputError) as err:
        stream.append(np.zeros(SAMPLE_RATE + 1, np.float32))
    assert err.value.code == "input_audio_buffer_full"
    assert stream.buffered_s == 1.0
    assert stream.clear() == [Cleared()]
    assert stream.buffered_s == 0 and stream.clock == SAMPLE_RATE
    stream.append(np.zeros(SAMPLE_RATE // 2, np.float32))
    final = stream.commit()[-1]
    assert isinstance(final, DecodeRequest) and final.offset_s == 1.0, "times count from the session start"


def test_server_vad_finds_the_turns_of_a_real_meeting():
    """The real Silero VAD, streamed in 100 ms frames: one turn per pause in the reference, each
    committed once with the previous item's id, the buffer bounded between turns."""
    audio = _wav16k("meeting_three_voices.wav")
    reference = json.loads(shared_audio("meeting_three_voices.json").read_text())
    turns_ref = reference.get("turns") or reference.get("segments")
    stream = LiveStream(_ids(), default_vad().stream(), TurnDetection(), LiveLimits())
    events = []
    frame = SAMPLE_RATE // 10
    max_buffer = 0.0
    for i in range(0, len(audio), frame):
        events += stream.append(audio[i : i + frame])
        max_buffer = max(max_buffer, stream.buffered_s)
    events += stream.append(np.zeros(SAMPLE_RATE, np.float32))  # trailing silence ends the last turn
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    stops = [e for e in events if isinstance(e, SpeechStopped)]
    commits = [e for e in events if isinstance(e, Committed)]
    finals = [e for e in events if isinstance(e, DecodeRequest) and e.final]
    partials = [e for e in events if isinstance(e, DecodeRequest) and not e.final]
    assert len(starts) == len(stops) == len(commits) == len(finals)
    # The reference has 20 turns; the VAD may merge two that a short pause separates.
    assert abs(len(finals) - len(turns_ref)) <= 4, (len(finals), len(turns_ref))
    assert commits[0].previous_item_id is None
    assert all(c.previous_item_id == p.item_id for p, c in itertools.pairwise(commits))
    for start, stop in zip(starts, stops, strict=True):
        assert start.item_id == stop.item_id and start.audio_start_ms < stop.audio_end_ms
    # Each reference turn's start lies inside a detected turn (prefix padding included).
    spans = [(s.audio_start_ms / 1000, e.audio_end_ms / 1000) for s, e in zip(starts, stops, strict=True)]
    for turn in turns_ref:
        mid = (turn["start"] + turn["end"]) / 2
        assert any(a - 0.1 <= mid <= b + 0.1 for a, b in spans), turn
    assert partials, "partial decodes are asked for while speech goes on"
    assert max_buffer <= 30.5 + 1, "the buffer holds one turn at most"
    # A turn that a silence ends reuses the full decode asked for when that silence began: the
    # item's last speculative request, holding all of the turn's speech (the final one only adds
    # the rest of the silence), with no partial decode asked for in between.
    for final in finals:
        assert final.reuse, final
        at = events.index(final)
        spec = [
            i
            for i, e in enumerate(events[:at])
            if isinstance(e, DecodeRequest) and e.item_id == final.item_id and e.speculative
        ][-1]
        between = [e for e in events[spec + 1 : at] if isinstance(e, DecodeRequest) and e.item_id == final.item_id]
        assert not between, between
        audio_spec = events[spec].audio
        assert events[spec].offset_s == final.offset_s
        assert len(audio_spec) < len(final.audio) and np.array_equal(audio_spec, final.audio[: len(audio_spec)])
        assert len(final.audio) - len(audio_spec) <= SAMPLE_RATE * 500 // 1000  # at most the silence


def test_punctuation_or_case_changes_still_confirm_a_word():
    stream = LiveStream(_ids(), None, None, LiveLimits(partial_interval_s=0.5))
    (req,) = stream.append(np.zeros(SAMPLE_RATE, np.float32))
    words = [Word(w, 0, 0) for w in (" hi", " there")]
    assert stream.partial(req.item_id, words) == ""
    assert stream.partial(req.item_id, [Word(w, 0, 0) for w in (" Hi,", " there.", " every")]) == "Hi, there."


def test_a_final_decode_goes_ahead_of_queued_partial_work():
    """``submit(first=True)``: a live turn's final decode is not stuck behind best-effort work."""
    import asyncio
    import time as _time

    from rgpu_asr.batching import DynamicBatcher

    order: list[str] = []

    def run(key, items):
        _time.sleep(0.1)
        order.extend(items)
        return items

    async def main():
        batcher: DynamicBatcher[str, str] = DynamicBatcher(run, max_batch=1, max_wait_s=0)
        first = asyncio.create_task(batcher.submit(["busy"]))
        await asyncio.sleep(0.03)  # the worker is inside the first call now
        queued = [asyncio.create_task(batcher.submit([f"partial{i}"])) for i in range(2)]
        await asyncio.sleep(0)
        final = asyncio.create_task(batcher.submit(["final"], first=True))
        await asyncio.gather(first, final, *queued)
        batcher.close()

    asyncio.run(main())
    assert order == ["busy", "final", "partial0", "partial1"]
