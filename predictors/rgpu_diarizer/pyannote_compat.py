"""Importing pyannote.audio next to a CPU build of torch.

pyannote.audio imports ``torchaudio`` at module level, and PyPI's ``torchaudio`` wheels are
CUDA builds whose compiled extension (``_torchaudio.abi3.so``, linked against
``libc10_cuda.so``) cannot be loaded next to the CPU torch wheel: ``import torchaudio`` then
raises ``OSError``. pyannote only needs torchaudio's pure-Python parts (resampling, Kaldi
filterbanks), so when the compiled extension fails to load we import torchaudio once more with
a stand-in for ``torchaudio._extension`` that reports the extension as absent, exactly as
torchaudio does itself when it ships without one. With a matching torch/torchaudio pair (a CUDA
image) the real extension loads and nothing is replaced.

Also here: pyannote.audio 4 sends usage telemetry to pyannote.ai by default; a server must not
phone home, so it is off unless ``PYANNOTE_METRICS_ENABLED`` is set explicitly. And pyannote's
optional torchcodec decoder (which fails on this CPU build too) is never used: audio reaches
pyannote as an in-memory waveform, so its warning about torchcodec is silenced.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings

from rgpu_asr.torchaudio_compat import import_torchaudio

log = logging.getLogger("rgpu.diarizer")

_lock = threading.Lock()
_done = False


def prepare_pyannote() -> None:
    """Call before the first ``import pyannote.audio`` (idempotent, thread-safe)."""
    global _done
    with _lock:
        if _done:
            return
        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
        import_torchaudio()
        warnings.filterwarnings("ignore", message=r"(?s).*torchcodec is not installed correctly")
        _done = True
