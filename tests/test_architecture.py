"""The layers stand as the README draws them, and importing a package changes nothing global.

Layers, bottom up: ``rgpu_contract`` (names shared with the operator) <- ``rgpu_asr`` (the core:
audio, ASR pipeline, batching, model resolution; no HTTP) <- engines (``rgpu_<family>`` modules
that run models) <- the HTTP edge and KServe adapters (``rgpu_serving``, each family's
``predictor`` / ``openai_api`` / ``__main__``) <- the local mode (``rgpu_local``, each family's
``local``). No module imports a layer above its own; engines never import each other; the core
and the engines import no HTTP framework; the operator imports nothing of the predictors but the
contract.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO

PREDICTORS = REPO / "predictors"
OPERATOR = REPO / "operator"
FAMILIES = ("whisper", "parakeet", "diarizer", "translator", "llm", "padding")
ADAPTER_MODULES = ("predictor", "openai_api", "__main__")
HTTP = ("kserve", "fastapi", "starlette", "uvicorn", "httpx", "python_multipart")
LAYERS = {0: "contract", 1: "core (rgpu_asr)", 2: "engine", 3: "HTTP edge / KServe adapter", 4: "local mode"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int | None:
    """The layer of one of our modules (None: not ours)."""
    top, _, rest = module.partition(".")
    if top == "rgpu_contract":
        return 0
    if top == "rgpu_asr":
        return 1
    if top == "rgpu_serving":
        return 3
    if top == "rgpu_local":
        return 4
    if top.removeprefix("rgpu_") in FAMILIES:
        sub = rest.split(".")[0]
        if sub == "local":
            return 4
        return 3 if sub in ADAPTER_MODULES else 2
    return None


def imports_of(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, at any depth (function-local imports count)."""
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)
            elif node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def all_modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def violations() -> list[str]:
    found = []
    for module, path in all_modules(PREDICTORS).items():
        mine = layer(module)
        assert mine is not None, f"{module}: not in any layer; place it in the table above"
        family = module.split(".")[0]
        for target in sorted(imports_of(path, module)):
            theirs = layer(target)
            top = target.split(".")[0]
            if theirs is not None and theirs > mine:
                found.append(f"{module} ({LAYERS[mine]}) imports {target} ({LAYERS[theirs]})")
            if mine == theirs == 2 and top != family:
                found.append(f"{module} imports another engine: {target}")
            if mine == 3 and family == "rgpu_serving" and theirs == 2:
                found.append(f"the HTTP edge imports an engine: {module} -> {target}")
            if mine in (1, 2) and top in HTTP:
                found.append(f"{module} ({LAYERS[mine]}) imports the HTTP stack: {target}")
    for module, path in all_modules(OPERATOR).items():
        for target in imports_of(path, module):
            theirs = layer(target)
            if theirs is not None and theirs != 0:
                found.append(f"the operator imports predictor code: {module} -> {target}")
    return sorted(set(found))


def test_no_module_imports_a_layer_above_its_own():
    assert violations() == []


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """The rule is real: a core module importing the HTTP edge or an engine is caught."""
    fake = tmp_path / "predictors"
    (fake / "rgpu_asr").mkdir(parents=True)
    (fake / "rgpu_asr" / "bad.py").write_text(
        "def f():\n    from rgpu_serving.errors import ApiError\n    from .. import rgpu_whisper\n"
    )
    (fake / "rgpu_whisper").mkdir()
    (fake / "rgpu_whisper" / "engine.py").write_text("import fastapi\nfrom rgpu_parakeet.engine import X\n")
    monkeypatch.setattr(sys.modules[__name__], "PREDICTORS", fake)
    monkeypatch.setattr(sys.modules[__name__], "OPERATOR", tmp_path / "none")
    found = violations()
    assert any("rgpu_asr.bad (core (rgpu_asr)) imports rgpu_serving.errors" in v for v in found), found
    assert any("imports another engine" in v for v in found), found
    assert any("rgpu_whisper.engine (engine) imports the HTTP stack: fastapi" in v for v in found), found


_PROBE = r"""
import importlib, json, logging, os, pkgutil, signal, sys
def state():
    loggers = {n: (l.level, len(l.handlers), l.propagate) for n, l in logging.root.manager.loggerDict.items()
               if isinstance(l, logging.Logger) and (n.split(".")[0] == "rgpu" or n.startswith("rgpu_"))}
    return {
        "meta_path": [f"{type(f).__module__}.{type(f).__qualname__}" for f in sys.meta_path],
        "root": [logging.root.level, len(logging.root.handlers)],
        "rgpu_loggers": {n: v for n, v in loggers.items() if v != (0, 0, True)},
        "signals": [str(signal.getsignal(s)) for s in (signal.SIGTERM, signal.SIGINT)],
        "env": sorted(k for k in os.environ),
    }
package = sys.argv[1]
before = state()
pkg = importlib.import_module(package)
names = [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".") if m.name not in sys.argv[2:]]
for name in names:
    importlib.import_module(name)
print(json.dumps({"before": before, "after": state(), "modules": names}))
"""

#: Modules left out of the import probe, and why.
NOT_PROBED = {
    # A pyannote Model subclass: defining it imports pyannote, which imports torchaudio at module
    # level; here that needs the shim the entry points install first (rgpu_asr.torchaudio_compat).
    "rgpu_local.resemblyzer_embedding",
    # Their import runs the program (python -m entry points).
    "rgpu_local.__main__",
}


@pytest.mark.parametrize(
    "package", ["rgpu_contract", "rgpu_asr", "rgpu_serving", *(f"rgpu_{f}" for f in FAMILIES), "rgpu_local"]
)
def test_importing_a_package_changes_no_global_state(package):
    """Every module of the package imported in a fresh interpreter: no import hook of ours (the
    torchaudio shim is installed explicitly by the diarizer's entry point and the local mode), no
    logging configured, no signal handler, no environment variable."""
    skip = sorted(NOT_PROBED | {f"{package}.__main__"})
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, package, *skip], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    before, after = report["before"], report["after"]
    added_hooks = [h for h in after["meta_path"] if h not in before["meta_path"]]
    assert not [h for h in added_hooks if h.startswith("rgpu")], added_hooks
    assert after["root"] == before["root"]
    assert after["rgpu_loggers"] == {}
    assert after["signals"] == before["signals"]
    assert after["env"] == before["env"]
    assert len(report["modules"]) >= 1
