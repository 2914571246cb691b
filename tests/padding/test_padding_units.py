"""In-process checks of the padding audio path: cancellation, bad input, long delays."""

from __future__ import annotations

import threading

import av
import pytest

from rgpu_asr.errors import UndecodableAudio
from rgpu_padding.audio import OPUS_RATE, Cancelled, check_codecs, pad_file, valid_delay
from rgpu_serving.errors import status_of
from support import shared_audio


def test_codecs_present():
    check_codecs()


def test_a_set_cancel_flag_stops_the_encoder(tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        pad_file(shared_audio("meeting_three_voices.mp3"), tmp_path / "out.webm", 3.0, cancel)


def test_not_audio_is_422(tmp_path):
    bad = tmp_path / "bad.webm"
    bad.write_bytes(b"definitely not a media file" * 50)
    with pytest.raises(UndecodableAudio) as err:
        pad_file(bad, tmp_path / "out.webm", 1.0, threading.Event())
    assert status_of(err.value) == 422


def test_long_delay_is_sample_exact(tmp_path):
    out = tmp_path / "out.webm"
    result = pad_file(shared_audio("test_short.wav"), out, 600.0125, threading.Event())
    assert result.delay_samples == 28_800_600
    with av.open(str(out)) as c:
        samples = sum(f.samples for f in c.decode(c.streams.audio[0]))
    assert samples == result.delay_samples + round(result.input_seconds * OPUS_RATE)


@pytest.mark.parametrize(
    "value,ok",
    [
        (0.0, False),
        (-1.0, False),
        (1e-3, True),
        (18000.0, True),
        (18000.001, False),
        (float("nan"), False),
        (float("inf"), False),
    ],
)
def test_delay_bounds(value, ok):
    assert valid_delay(value, 18000.0) is ok
