"""Typed operator settings, read once from the environment (``RGPU_OPERATOR_*``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import __version__

PREFIX = "RGPU_OPERATOR_"


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _float(env: dict, name: str, default: float) -> float:
    raw = env.get(PREFIX + name, "")
    try:
        value = float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{PREFIX}{name} must be positive, got {raw!r}")
    return value


def _int_or_none(env: dict, name: str) -> int | None:
    raw = env.get(PREFIX + name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """What the operator watches and the defaults it fills into specs."""

    #: Namespaces watched; empty means cluster-wide (needs the ClusterRole).
    namespaces: tuple[str, ...] = ()
    #: Default image registry/prefix: image = <registry>/reflector-gpu-<predictor>:<tag>.
    image_registry: str = "ghcr.io/monadical-sas"
    #: Default image tag: the operator's own version, so operator and predictors move together.
    image_tag: str = __version__
    #: How often every ReflectorGPU is re-checked (restores hand-edited or deleted children).
    resync_seconds: float = 300.0
    #: Per-request timeout for Kubernetes API calls.
    request_timeout_seconds: float = 30.0
    #: Attempts per API call on 409/429/5xx/timeouts before the handler retries later.
    api_attempts: int = 4
    #: Base delay of the exponential backoff between those attempts.
    api_backoff_seconds: float = 0.5
    #: Port of kopf's liveness endpoint (``/healthz``); 0 disables it.
    health_port: int = 8080
    #: Name of the kopf peering object (ClusterKopfPeering, or a KopfPeering per watched
    #: namespace) shared by the replicas; empty runs standalone (one replica only).
    peering: str = ""
    #: kopf peering priority; unset: from the start time, so the newest replica works.
    priority: int | None = None

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        env = dict(os.environ if env is None else env)

        def get(name: str, default: str) -> str:
            return env.get(PREFIX + name) or default

        return cls(
            namespaces=_list(get("NAMESPACES", "")),
            image_registry=get("IMAGE_REGISTRY", cls.image_registry).rstrip("/"),
            image_tag=get("IMAGE_TAG", cls.image_tag),
            resync_seconds=_float(env, "RESYNC_SECONDS", cls.resync_seconds),
            request_timeout_seconds=_float(env, "REQUEST_TIMEOUT_SECONDS", cls.request_timeout_seconds),
            api_attempts=int(_float(env, "API_ATTEMPTS", cls.api_attempts)),
            api_backoff_seconds=_float(env, "API_BACKOFF_SECONDS", cls.api_backoff_seconds),
            health_port=int(get("HEALTH_PORT", str(cls.health_port))),
            peering=get("PEERING", "").strip(),
            priority=_int_or_none(env, "PRIORITY"),
        )
