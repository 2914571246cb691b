"""The one resolver that decides what model a predictor loads, and says why it cannot.

Every predictor asks the same questions in the same order:

1. its own variable (``REFLECTOR_GPU_<PREDICTOR>_MODEL``), then the shared
   ``REFLECTOR_GPU_MODEL`` the operator sets from the ``ReflectorGPU`` resource;
2. KServe's ``--model_dir`` (``/mnt/models``, where the storage initializer put ``storageUri``),
   when it holds anything;
3. the local mode's packaged weights (``rgpu_local`` passes a builder; never in a cluster image);
4. the family's default hub name, if it has one;

and gets either a :class:`ModelChoice` or one ``ModelUnavailable`` naming the settings to change.
A value that exists on disk must look like a model of the family; a value that looks like a path
but does not exist is an error (never silently a hub name); anything else is a hub name, which
fails at load time with :func:`hub_unavailable` when no hub is reachable.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import rgpu_contract as contract

from .errors import ModelUnavailable

#: File endings that mark a value as a path even without a leading ``/`` or ``./``.
_PATH_SUFFIXES = (".nemo", ".yaml", ".yml", ".gguf", ".bin", ".onnx", ".safetensors")


@dataclass(frozen=True)
class ModelFamily:
    """How one predictor recognises its models."""

    #: Shown in messages ("Whisper", "Parakeet", ...).
    name: str
    #: Its own environment variable (``REFLECTOR_GPU_WHISPER_MODEL``).
    env: str
    #: What a local model looks like, for messages.
    expected: str
    #: Given a path that exists, the path to load (the directory itself, a file inside it), or
    #: None when it is not a model of this family.
    accepts: Callable[[Path], Path | None]
    #: Hub name used when nothing else is configured ('' for none).
    hub_default: str = ""


@dataclass(frozen=True)
class ModelChoice:
    """What to load: a local path or a hub name, and which setting chose it (for messages)."""

    source: str
    local: bool
    origin: str


def looks_like_path(value: str) -> bool:
    return value.startswith(("/", "./", "../", "~")) or value.lower().endswith(_PATH_SUFFIXES)


def _from_value(family: ModelFamily, value: str, origin: str) -> ModelChoice:
    path = Path(value).expanduser()
    if path.exists():
        found = family.accepts(path)
        if found is None:
            raise ModelUnavailable(f"{path} (from {origin}) is not a {family.name} model: expected {family.expected}")
        return ModelChoice(str(found), True, origin)
    if looks_like_path(value):
        raise ModelUnavailable(f"{family.name} model {value} (from {origin}) does not exist")
    return ModelChoice(value, False, origin)


def _holds_something(path: Path) -> bool:
    try:
        return path.is_dir() and any(path.iterdir())
    except OSError:
        return False


def resolve_model(
    family: ModelFamily,
    own: str = "",
    shared: str | None = None,
    model_dir: str | None = None,
    packaged: Callable[[], Path] | None = None,
    hub_default: str | None = None,
) -> ModelChoice:
    """Decide what ``family`` loads (see the module docstring for the order).

    ``shared`` defaults to ``REFLECTOR_GPU_MODEL`` from the environment; ``hub_default``
    overrides the family's (``''``: none). Blocking when ``packaged`` builds weights: call it from
    the predictor's load, not at import.
    """
    default = family.hub_default if hub_default is None else hub_default
    if shared is None:
        shared = os.environ.get(contract.ENV_MODEL, "")
    for value, origin in ((own, family.env), (shared, contract.ENV_MODEL)):
        if value.strip():
            return _from_value(family, value.strip(), origin)
    if model_dir and _holds_something(Path(model_dir)):
        return _from_value(family, model_dir, "--model_dir")
    if packaged is not None:
        try:
            built = packaged()
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelUnavailable(
                f"the packaged {family.name} model could not be prepared ({type(exc).__name__}: {exc}); "
                f"set {family.env} to {family.expected}"
            ) from exc
        return _from_value(family, str(built), "the local mode's packaged weights")
    if default:
        return ModelChoice(default, False, "the default hub model")
    raise ModelUnavailable(
        f"no {family.name} model configured: set {family.env} (or {contract.ENV_MODEL}) to {family.expected} "
        f"or a hub name, or pass --model_dir (KServe mounts storageUri at {contract.MODEL_DIR})"
    )


def hub_unavailable(family: ModelFamily, choice: ModelChoice, exc: BaseException) -> ModelUnavailable:
    """The error for a hub name that could not be loaded (offline, gated, misspelt)."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return ModelUnavailable(
        f"could not load {family.name} model '{choice.source}' (from {choice.origin}) from the hub "
        f"({type(exc).__name__}: {exc}){' (HF_HUB_OFFLINE is set)' if offline else ''}; without network access, "
        f"point {family.env} or --model_dir at {family.expected}"
    )
