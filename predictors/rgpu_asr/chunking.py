"""Chunk planning for long audio (pure functions).

What the reference does, shared by every transcription engine: speech segments from VAD window
probabilities (Silero's hysteresis), merged into chunks of at most ``max_chunk_s`` (silences
inside a chunk kept), a segment longer than that cut into equal pieces, and a chunk shorter than
``min_chunk_s`` padded with silence (Parakeet fails on shorter input). Positions are samples at
16 kHz; ``Chunk.offset_s`` is where a chunk's times start in the file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .types import SAMPLE_RATE

#: Silero's window at 16 kHz: one speech probability per 512 samples.
WINDOW = 512


@dataclass(frozen=True)
class Segment:
    """A span of samples ``[start, end)``."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Chunk:
    """A span of the source audio handed to the model, plus silence appended to reach a minimum."""

    start: int
    end: int
    pad: int = 0

    def audio(self, source: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        piece = source[self.start : self.end]
        if self.pad:
            piece = np.concatenate([piece, np.zeros(self.pad, dtype=source.dtype)])
        return piece

    def offset_s(self, sample_rate: int = SAMPLE_RATE) -> float:
        return self.start / sample_rate

    def duration_s(self, sample_rate: int = SAMPLE_RATE) -> float:
        return (self.end - self.start) / sample_rate


@dataclass(frozen=True)
class VadParams:
    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_ms: int = 250
    min_silence_ms: int = 160
    speech_pad_ms: int = 200


def speech_segments(
    probs: npt.ArrayLike, n_samples: int, params: VadParams | None = None, sample_rate: int = SAMPLE_RATE
) -> list[Segment]:
    """Hysteresis over window probabilities -> padded speech segments (Silero's algorithm)."""
    params = params or VadParams()
    threshold = params.threshold
    neg = params.neg_threshold if params.neg_threshold is not None else max(threshold - 0.15, 0.01)
    min_silence = sample_rate * params.min_silence_ms // 1000
    min_speech = sample_rate * params.min_speech_ms // 1000
    pad = sample_rate * params.speech_pad_ms // 1000

    raw: list[list[int]] = []
    start: int | None = None
    silence_from: int | None = None
    for i, p in enumerate(np.asarray(probs, dtype=np.float32).reshape(-1)):
        pos = i * WINDOW
        if p >= threshold:
            silence_from = None
            if start is None:
                start = pos
        elif p < neg and start is not None:
            if silence_from is None:
                silence_from = pos
            if pos - silence_from >= min_silence:
                if silence_from - start >= min_speech:
                    raw.append([start, silence_from])
                start, silence_from = None, None
    if start is not None and n_samples - start >= min_speech:
        raw.append([start, n_samples])

    # Pad each side, never overlapping the neighbour: split the gap when it is too small.
    for i, seg in enumerate(raw):
        if i == 0:
            seg[0] = max(0, seg[0] - pad)
        if i + 1 < len(raw):
            gap = raw[i + 1][0] - seg[1]
            give = min(pad, gap // 2)
            seg[1] += give
            raw[i + 1][0] -= give
        else:
            seg[1] = min(n_samples, seg[1] + pad)
    return [Segment(s, e) for s, e in raw if e > s]


def plan_chunks(
    segments: list[Segment],
    max_chunk_s: float = 30.0,
    min_chunk_s: float = 0.5,
    sample_rate: int = SAMPLE_RATE,
) -> list[Chunk]:
    """Merge speech segments into chunks of at most ``max_chunk_s`` (silences inside kept).

    A segment longer than the maximum is cut into equal pieces; a chunk shorter than
    ``min_chunk_s`` gets silence appended (Parakeet fails on shorter input).
    """
    max_len = int(max_chunk_s * sample_rate)
    min_len = int(min_chunk_s * sample_rate)
    pieces: list[Segment] = []
    for seg in sorted(segments, key=lambda s: s.start):
        n = max(1, -(-seg.length // max_len))
        step = -(-seg.length // n)
        pieces.extend(Segment(s, min(s + step, seg.end)) for s in range(seg.start, seg.end, step))

    merged: list[Segment] = []
    current: Segment | None = None
    for piece in pieces:
        if current is not None and piece.end - current.start <= max_len:
            current = Segment(current.start, max(current.end, piece.end))
            continue
        if current is not None:
            merged.append(current)
        current = piece
    if current is not None:
        merged.append(current)
    return [Chunk(c.start, c.end, max(0, min_len - c.length)) for c in merged]


def whole_file_chunks(
    n_samples: int, max_chunk_s: float = 30.0, min_chunk_s: float = 0.5, sample_rate: int = SAMPLE_RATE
) -> list[Chunk]:
    """Chunks for audio that skips VAD (short clips): the file itself, cut to the maximum."""
    if n_samples == 0:
        return [Chunk(0, 0, int(min_chunk_s * sample_rate))]
    return plan_chunks([Segment(0, n_samples)], max_chunk_s, min_chunk_s, sample_rate)
