"""Delaying a track by prepending silence, streamed frame by frame through PyAV.

The decoder, a filter graph (``aresample`` to fill gaps, ``adelay`` for the leading silence)
and the Opus encoder work on one frame at a time, so memory stays flat whatever the track's
length. The delay is applied in samples at 48 kHz (sub-millisecond exact). A cancel flag is
checked on every decoded frame; when set the work stops with ``Cancelled``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from rgpu_asr.errors import UndecodableAudio
from rgpu_asr.threads import Cancelled

OPUS_RATE = 48_000  # Opus' native rate (padding's output; the models' input is 16 kHz)
LAYOUT = "stereo"
TIME_BASE = Fraction(1, OPUS_RATE)


@dataclass(frozen=True)
class PadResult:
    input_seconds: float  # audio decoded from the track
    output_seconds: float  # audio written (delay + track)
    delay_samples: int


def check_codecs() -> None:
    """Raise with a clear message when PyAV's FFmpeg lacks what padding needs."""
    import av
    import av.filter

    missing = []
    if "libopus" not in av.codecs_available:
        missing.append("the libopus encoder")
    for name in ("abuffer", "aresample", "adelay", "abuffersink"):
        if name not in av.filter.filters_available:
            missing.append(f"the {name} filter")
    if "webm" not in av.formats_available:
        missing.append("the webm muxer")
    if missing:
        raise RuntimeError(f"PyAV {av.__version__} lacks {', '.join(missing)}; install a PyAV wheel built with them")


def pad_file(src: Path, dst: Path, delay_s: float, cancel: threading.Event, bit_rate: int = 128_000) -> PadResult:
    """Write ``src`` delayed by ``delay_s`` seconds to ``dst`` as 48 kHz stereo Opus in WebM."""
    import av
    import av.filter
    from av.audio.resampler import AudioResampler

    delay = int(round(delay_s * OPUS_RATE))
    try:
        inp = av.open(str(src))
    except av.FFmpegError as exc:
        raise UndecodableAudio(f"track_url is not a decodable audio file: {exc}") from exc
    decoded, written = 0.0, 0
    with inp:
        stream = next((s for s in inp.streams if s.type == "audio"), None)
        if stream is None:
            raise UndecodableAudio("track_url has no audio stream")
        with av.open(str(dst), "w", format="webm") as out:
            ostream = out.add_stream("libopus", rate=OPUS_RATE)
            ostream.layout = LAYOUT
            ostream.bit_rate = bit_rate
            graph = av.filter.Graph()
            source = graph.add(
                "abuffer",
                args=f"time_base=1/{OPUS_RATE}:sample_rate={OPUS_RATE}:sample_fmt=s16:channel_layout={LAYOUT}",
            )
            resample = graph.add("aresample", args="async=1")  # fills gaps in the track's timeline with silence
            adelay = graph.add("adelay", args=f"delays={delay}S|{delay}S:all=1")
            sink = graph.add("abuffersink")
            source.link_to(resample)
            resample.link_to(adelay)
            adelay.link_to(sink)
            graph.configure()
            resampler = AudioResampler(format="s16", layout=LAYOUT, rate=OPUS_RATE)

            def drain() -> None:
                nonlocal written
                while True:
                    try:
                        frame = sink.pull()
                    except (av.BlockingIOError, av.EOFError):
                        return
                    assert isinstance(frame, av.AudioFrame)  # an audio filter graph's output
                    frame.time_base = TIME_BASE
                    written += frame.samples
                    for packet in ostream.encode(frame):
                        out.mux(packet)

            def push(frames) -> None:
                for frame in frames or ():
                    frame.sample_rate = OPUS_RATE
                    frame.time_base = TIME_BASE
                    source.push(frame)
                    drain()

            try:
                for frame in inp.decode(stream):
                    if cancel.is_set():
                        raise Cancelled()
                    assert isinstance(frame, av.AudioFrame)  # decoded from the audio stream
                    decoded += frame.samples / (frame.sample_rate or OPUS_RATE)
                    push(resampler.resample(frame))
            except av.FFmpegError as exc:
                raise UndecodableAudio(f"track_url could not be decoded: {exc}") from exc
            push(resampler.resample(None))
            source.push(None)
            drain()
            for packet in ostream.encode(None):
                out.mux(packet)
    return PadResult(decoded, written / OPUS_RATE, delay)


def valid_delay(seconds: float, limit: float) -> bool:
    return math.isfinite(seconds) and 0 < seconds <= limit
