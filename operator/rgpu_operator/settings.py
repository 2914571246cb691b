"""Typed operator settings, read once from the environment (``RGPU_OPERATOR_*``).

Per-install choices live here, not in the ReflectorGPU: the KServe version (its admission
rules differ per version), where the ingress controller or Gateway proxies run, and which
namespace monitoring scrapes from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from . import __version__

PREFIX = "RGPU_OPERATOR_"
#: Where ``edge`` presets exist (see :mod:`networkpolicy`); ``auto`` picks by route kind.
EDGE_PRESETS = ("auto", "ingress-nginx", "envoy-gateway", "istio", "none")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(PREFIX + name, "")
    try:
        value = float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{PREFIX}{name} must be positive, got {raw!r}")
    return value


def _int_or_none(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(PREFIX + name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{PREFIX}{name} must be an integer, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(PREFIX + name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{PREFIX}{name} must be true or false, got {raw!r}")


def _labels(raw: str) -> tuple[tuple[str, str], ...]:
    out = []
    for item in _list(raw):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{PREFIX}POD_LABELS entries must be key=value, got {item!r}")
        out.append((key.strip(), value.strip()))
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """What the operator watches, the KServe it drives, and the defaults it fills into specs."""

    #: Namespaces watched; empty means cluster-wide (needs the ClusterRole).
    namespaces: tuple[str, ...] = ()
    #: Default image registry/prefix: image = <registry>/reflector-gpu-<predictor>:<tag>.
    image_registry: str = "ghcr.io/monadical-sas"
    #: Default image tag: the operator's own version. A ReflectorGPU keeps the image it first
    #: resolved (status.images) until its spec names one or opts in (images.policy).
    image_tag: str = __version__
    #: The installed KServe's version (``0.15``, ``0.16`` ...); empty: read it from the image tag
    #: of ``kserve_deployment`` in ``kserve_namespace`` (needs get on that one Deployment).
    kserve_version: str = ""
    kserve_namespace: str = "kserve"
    kserve_deployment: str = "kserve-controller-manager"
    #: Which pods route traffic in (NetworkPolicy peer): an ``EDGE_PRESETS`` name; ``auto`` is
    #: ingress-nginx for an Ingress, Envoy Gateway for an HTTPRoute. A ReflectorGPU may override.
    edge: str = "auto"
    #: Namespaces whose pods may scrape the predictors' metrics port (NetworkPolicy peer).
    monitoring_namespaces: tuple[str, ...] = ("monitoring",)
    #: The cluster's DNS domain (in-cluster URLs written to status).
    cluster_domain: str = "cluster.local"
    #: Ask not-ready predictors why (their per-model readiness route), to report the reason.
    probe_readiness: bool = True
    #: Base URL of a predictor Service for that probe; ``{service}`` and ``{namespace}`` filled in.
    probe_url: str = "http://{service}.{namespace}.svc"
    #: This operator's namespace and pod labels (downward API): the NetworkPolicy admits it to
    #: the serving port for the readiness probe. Empty namespace: no such peer.
    pod_namespace: str = ""
    pod_labels: tuple[tuple[str, str], ...] = ()
    #: How often every ReflectorGPU is re-checked (restores hand-edited or deleted children).
    resync_seconds: float = 300.0
    #: Per-request timeout for Kubernetes API calls.
    request_timeout_seconds: float = 30.0
    #: Attempts per API call on 429/5xx/timeouts before the handler retries later.
    api_attempts: int = 4
    #: Base delay of the exponential backoff between those attempts.
    api_backoff_seconds: float = 0.5
    #: Port of kopf's liveness endpoint (``/healthz``); 0 disables it.
    health_port: int = 8080
    #: Port of the operator's Prometheus metrics (reconciles, durations); 0 disables it.
    metrics_port: int = 8081
    #: Name of the kopf peering object (ClusterKopfPeering, or a KopfPeering per watched
    #: namespace) shared by the replicas; empty runs standalone (one replica only).
    peering: str = ""
    #: kopf peering priority; unset: from the start time, so the newest replica works.
    priority: int | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source: Mapping[str, str] = os.environ if env is None else env

        def get(name: str, default: str) -> str:
            return source.get(PREFIX + name) or default

        edge = get("EDGE", cls.edge).strip()
        if edge not in EDGE_PRESETS:
            raise ValueError(f"{PREFIX}EDGE must be one of {', '.join(EDGE_PRESETS)}, got {edge!r}")
        monitoring = source.get(PREFIX + "MONITORING_NAMESPACES")
        return cls(
            namespaces=_list(get("NAMESPACES", "")),
            image_registry=get("IMAGE_REGISTRY", cls.image_registry).rstrip("/"),
            image_tag=get("IMAGE_TAG", cls.image_tag),
            kserve_version=get("KSERVE_VERSION", "").strip(),
            kserve_namespace=get("KSERVE_NAMESPACE", cls.kserve_namespace),
            kserve_deployment=get("KSERVE_DEPLOYMENT", cls.kserve_deployment),
            edge=edge,
            monitoring_namespaces=cls.monitoring_namespaces if monitoring is None else _list(monitoring),
            cluster_domain=get("CLUSTER_DOMAIN", cls.cluster_domain).strip("."),
            probe_readiness=_bool(source, "PROBE_READINESS", cls.probe_readiness),
            probe_url=get("PROBE_URL", cls.probe_url),
            pod_namespace=get("POD_NAMESPACE", ""),
            pod_labels=_labels(get("POD_LABELS", "")),
            resync_seconds=_float(source, "RESYNC_SECONDS", cls.resync_seconds),
            request_timeout_seconds=_float(source, "REQUEST_TIMEOUT_SECONDS", cls.request_timeout_seconds),
            api_attempts=int(_float(source, "API_ATTEMPTS", cls.api_attempts)),
            api_backoff_seconds=_float(source, "API_BACKOFF_SECONDS", cls.api_backoff_seconds),
            health_port=int(get("HEALTH_PORT", str(cls.health_port))),
            metrics_port=int(get("METRICS_PORT", str(cls.metrics_port))),
            peering=get("PEERING", "").strip(),
            priority=_int_or_none(source, "PRIORITY"),
        )
