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

    def segments(self, audio: npt.NDArray[np.float32], params: VadParams | None = None) -> list[Segment]:
        return speech_segments(self.probabilities(audio), len(audio), params)


@functools.lru_cache(maxsize=1)
def default_vad() -> SileroVad:
    return SileroVad()
