"""Importing torchaudio next to a CPU build of torch (shared by every torch-based engine).

PyPI's ``torchaudio`` wheels are CUDA builds whose compiled extension (``_torchaudio.abi3.so``,
linked against ``libc10_cuda.so``) cannot be loaded next to the CPU torch wheel: ``import
torchaudio`` then raises ``OSError``, and libraries that import it at module level (pyannote.audio,
NeMo's ASR collection) fail with it. They only need torchaudio's pure-Python parts, so when the
compiled extension fails to load we import torchaudio once more with a stand-in for
``torchaudio._extension`` that reports the extension as absent, exactly as torchaudio does itself
when it ships without one. With a matching torch/torchaudio pair (a CUDA image) the real
extension loads and nothing is replaced. When torchaudio is not installed at all, nothing happens.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
import types

log = logging.getLogger("rgpu.torchaudio")

_lock = threading.Lock()
#: Why torchaudio's compiled extension is not used (None when it loaded, or before import).
torchaudio_fallback_reason: str | None = None


def _extension_stub() -> types.ModuleType:
    """What ``torchaudio._extension`` provides when torchaudio has no compiled extension."""
    mod = types.ModuleType("torchaudio._extension")
    mod.__file__ = __file__
    mod._IS_TORCHAUDIO_EXT_AVAILABLE = False
    mod._IS_ALIGN_AVAILABLE = False

    def _load_lib(lib: str) -> bool:
        return False

    def _check_cuda_version():
        return None

    def fail_if_no_align(func):
        def wrapped(*args, **kwargs):
            raise RuntimeError("torchaudio's compiled extension is unavailable (CPU torch with a CUDA torchaudio)")

        return wrapped

    mod._load_lib = _load_lib
    mod._check_cuda_version = _check_cuda_version
    mod.fail_if_no_align = fail_if_no_align
    mod.__all__ = ["_check_cuda_version", "_IS_TORCHAUDIO_EXT_AVAILABLE"]
    return mod


def import_torchaudio():
    """``import torchaudio``, without its compiled extension when that cannot be loaded.

    Returns None when torchaudio is not installed. Idempotent and thread-safe.
    """
    with _lock:
        if importlib.util.find_spec("torchaudio") is None:
            return None
        return _import()


def _import():
    global torchaudio_fallback_reason
    try:
        import torchaudio

        return torchaudio
    except (OSError, ImportError, RuntimeError) as exc:
        torchaudio_fallback_reason = f"{type(exc).__name__}: {exc}"
    for name in [m for m in sys.modules if m == "torchaudio" or m.startswith("torchaudio.")]:
        del sys.modules[name]
    sys.modules["torchaudio._extension"] = _extension_stub()
    import torchaudio

    log.info("torchaudio's compiled extension is unavailable (%s); using its pure-Python parts", torchaudio_fallback_reason)
    return torchaudio
