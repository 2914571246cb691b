"""Voice-activity detection and chunk planning for long audio.

Two layers: ``SileroVad`` turns audio into per-window speech probabilities with the Silero v6
ONNX model (onnxruntime, no torch; the model file ships in ``assets/``, MIT licence), and pure
functions turn probabilities into speech segments and segments into model-sized chunks. The
planning is what the reference does (batches of at most 30 s, silences inside a batch kept,
segments under 0.5 s padded) and it is shared by every transcription engine.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000
WINDOW = 512  # Silero's window at 16 kHz
CONTEXT = 64
DEFAULT_MODEL = Path(__file__).parent / "assets" / "silero_vad_v6.onnx"


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

    def audio(self, source: np.ndarray) -> np.ndarray:
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
    probs: np.ndarray, n_samples: int, params: VadParams = VadParams(), sample_rate: int = SAMPLE_RATE
) -> list[Segment]:
    """Hysteresis over window probabilities -> padded speech segments (Silero's algorithm)."""
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

    chunks: list[Chunk] = []
    current: Segment | None = None
    for piece in pieces:
        if current is not None and piece.end - current.start <= max_len:
            current = Segment(current.start, max(current.end, piece.end))
            continue
        if current is not None:
            chunks.append(current)
        current = piece
    if current is not None:
        chunks.append(current)
    return [Chunk(c.start, c.end, max(0, min_len - c.length)) for c in chunks]


def whole_file_chunks(
    n_samples: int, max_chunk_s: float = 30.0, min_chunk_s: float = 0.5, sample_rate: int = SAMPLE_RATE
) -> list[Chunk]:
    """Chunks for audio that skips VAD (short clips): the file itself, cut to the maximum."""
    if n_samples == 0:
        return [Chunk(0, 0, int(min_chunk_s * sample_rate))]
    return plan_chunks([Segment(0, n_samples)], max_chunk_s, min_chunk_s, sample_rate)


class SileroVad:
    """Silero VAD v6 on onnxruntime; thread-safe (one session, stateless calls)."""

    def __init__(self, model_path: Path | str | None = None):
        import onnxruntime

        path = Path(model_path or os.environ.get("REFLECTOR_GPU_VAD_MODEL") or DEFAULT_MODEL)
        if not path.is_file():
            raise FileNotFoundError(f"Silero VAD model not found at {path}")
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        opts.enable_cpu_mem_arena = False  # an arena keeps the peak of the largest block forever
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=opts)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """One speech probability per 512-sample window."""
        n_windows = -(-len(audio) // WINDOW)
        probs = np.zeros(n_windows, dtype=np.float32)
        h = np.zeros((1, 1, 128), dtype=np.float32)
        c = np.zeros((1, 1, 128), dtype=np.float32)
        previous_tail = np.zeros(CONTEXT, dtype=np.float32)
        block = 2_000  # windows per model call (64 s): bounded memory for multi-hour audio
        for first in range(0, n_windows, block):
            piece = np.asarray(audio[first * WINDOW : (first + block) * WINDOW], dtype=np.float32)
            windows = np.pad(piece, (0, (-len(piece)) % WINDOW)).reshape(-1, WINDOW)
            context = np.roll(windows[:, -CONTEXT:], 1, axis=0)
            context[0] = previous_tail
            previous_tail = windows[-1, -CONTEXT:].copy()
            batch = np.concatenate([context, windows], axis=1)
            out, h, c = self.session.run(None, {"input": batch, "h": h, "c": c})
            probs[first : first + len(windows)] = np.asarray(out).reshape(-1)
        return probs

    def segments(self, audio: np.ndarray, params: VadParams = VadParams()) -> list[Segment]:
        return speech_segments(self.probabilities(audio), len(audio), params)


@functools.lru_cache(maxsize=1)
def default_vad() -> SileroVad:
    return SileroVad()
