"""Let torchaudio import next to a CPU build of torch (for every torch-based engine).

PyPI's ``torchaudio`` wheels are CUDA builds whose compiled extension (``_torchaudio.abi3.so``,
linked against ``libc10_cuda.so``) cannot be loaded next to the CPU torch wheel, so ``import
torchaudio`` raises ``OSError`` — and with it every library that imports torchaudio at module
level or lazily (pyannote.audio, NeMo's ASR collection, transformers' audio models). They only
need torchaudio's pure-Python parts. ``install()`` adds an import hook for
``torchaudio._extension``: the real module runs, and if loading the compiled library fails, the
module is completed the way torchaudio itself is when it ships without an extension
(``_IS_TORCHAUDIO_EXT_AVAILABLE = False``). With a matching torch/torchaudio pair (a CUDA image)
the real extension loads and the hook changes nothing. The hook imports nothing itself, so
processes that never touch torchaudio (Whisper) pay nothing, and nothing installs it on import:
the diarizer's entry point and the local mode call ``install()``; NeMo and pyannote loaders call
``import_torchaudio()`` before they import those libraries.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import threading
import types
from collections.abc import Sequence

log = logging.getLogger("rgpu.torchaudio")

_TARGET = "torchaudio._extension"
_lock = threading.Lock()
#: Why torchaudio's compiled extension is not used (None when it loaded, or before import).
torchaudio_fallback_reason: str | None = None


class _ExtensionLoader(importlib.abc.Loader):
    def __init__(self, real: importlib.abc.Loader):
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        global torchaudio_fallback_reason
        try:
            self.real.exec_module(module)
            return
        except OSError as exc:
            torchaudio_fallback_reason = f"{type(exc).__name__}: {exc}"
        from torchaudio._internal.module_utils import fail_with_message

        setattr(module, "_IS_TORCHAUDIO_EXT_AVAILABLE", False)  # noqa: B010 - a module's globals
        setattr(module, "_IS_ALIGN_AVAILABLE", False)  # noqa: B010
        reason = "torchaudio's compiled extension is unavailable (CPU torch with a CUDA torchaudio)"
        setattr(module, "fail_if_no_align", fail_with_message(reason))  # noqa: B010
        log.info(
            "torchaudio's compiled extension is unavailable (%s); using its pure-Python parts",
            torchaudio_fallback_reason,
        )


class _ExtensionFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _ExtensionLoader(spec.loader)
        return spec


def install() -> None:
    """Register the import hook once (cheap: it imports nothing)."""
    with _lock:
        if not any(isinstance(f, _ExtensionFinder) for f in sys.meta_path):
            sys.meta_path.insert(0, _ExtensionFinder())


def import_torchaudio() -> types.ModuleType | None:
    """``import torchaudio`` through the hook; None when torchaudio is not installed."""
    install()
    if importlib.util.find_spec("torchaudio") is None:
        return None
    return importlib.import_module("torchaudio")
