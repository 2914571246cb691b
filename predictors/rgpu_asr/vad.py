"""Silero VAD v6 on onnxruntime: speech probabilities per 512-sample window.

The model file ships in ``assets/`` (MIT licence); no torch. ``segments`` hands the probabilities
to the pure planning in :mod:`rgpu_asr.chunking`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .chunking import WINDOW, Segment, VadParams, speech_segments

CONTEXT = 64
DEFAULT_MODEL = Path(__file__).parent / "assets" / "silero_vad_v6.onnx"
#: Environment variable naming another VAD model file.
ENV_VAD_MODEL = "REFLECTOR_GPU_VAD_MODEL"


class SileroVad:
    """Silero VAD v6 on onnxruntime; thread-safe (one session, stateless calls)."""

    def __init__(self, model_path: Path | str | None = None):
        import onnxruntime

        path = Path(model_path or os.environ.get(ENV_VAD_MODEL) or DEFAULT_MODEL)
        if not path.is_file():
            raise FileNotFoundError(f"Silero VAD model not found at {path}")
        opts = onnxruntime.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        opts.enable_cpu_mem_arena = False  # an arena keeps the peak of the largest block forever
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"], sess_options=opts)

    def probabilities(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """One speech probability per 512-sample window (the last one zero-padded)."""
        stream = self.stream()
        block = 2_000 * WINDOW  # windows per model call (64 s): bounded memory for multi-hour audio
        n_windows = -(-len(audio) // WINDOW)
        parts = [stream.push(audio[first : first + block]) for first in range(0, len(audio), block)]
        tail = stream.flush()
        probs = np.concatenate([*parts, tail]) if parts or len(tail) else np.zeros(0, np.float32)
        return probs[:n_windows].astype(np.float32)

    def stream(self) -> VadStream:
        """A streaming view: audio pushed in any piece sizes, one probability per full window."""
        return VadStream(self)

    def segments(self, audio: npt.NDArray[np.float32], params: VadParams | None = None) -> list[Segment]:
        return speech_segments(self.probabilities(audio), len(audio), params)


@functools.lru_cache(maxsize=1)
def default_vad() -> SileroVad:
    return SileroVad()


class VadStream:
    """Silero's recurrent state carried across pushes, so a live stream is scored exactly as the
    same audio in one piece would be. Not thread-safe: one per stream."""

    def __init__(self, vad: SileroVad):
        self.session = vad.session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._tail = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, audio: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities of the windows that ``audio`` completes (a rest waits for the next push)."""
        pending = np.concatenate([self._pending, np.asarray(audio, dtype=np.float32)])
        n = len(pending) // WINDOW
        self._pending = pending[n * WINDOW :].copy()
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        return self._run(pending[: n * WINDOW].reshape(n, WINDOW))

    def flush(self) -> npt.NDArray[np.float32]:
        """The probability of a last, zero-padded partial window (empty when there is none)."""
        if not len(self._pending):
            return np.zeros(0, dtype=np.float32)
        window = np.pad(self._pending, (0, WINDOW - len(self._pending))).reshape(1, WINDOW)
        self._pending = np.zeros(0, dtype=np.float32)
        return self._run(window)

    def _run(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        context = np.roll(windows[:, -CONTEXT:], 1, axis=0)
        context[0] = self._tail
        self._tail = windows[-1, -CONTEXT:].copy()
        batch = np.concatenate([context, windows], axis=1)
        out, self._h, self._c = self.session.run(None, {"input": batch, "h": self._h, "c": self._c})
        return np.asarray(out, dtype=np.float32).reshape(-1)
