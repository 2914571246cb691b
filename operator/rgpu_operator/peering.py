"""Peering between operator replicas (kopf's peering): one replica works, the others stand by.

kopf pauses an operator while a live peer with a *higher* priority is registered in the same
peering object, and pauses *every* operator when two share a priority (it treats that as a
deployment error). Replicas therefore take distinct priorities from their start time: the
newest replica works (an upgrade hands over to the new version at once) and the others are hot
standbys that resume when it goes away: at once when it exits cleanly (kopf removes its entry),
after kopf's peer lifetime (60 s) when it is killed.

Pure builders here (the kopf.dev CRDs, the peering object, the kopf options); the only I/O,
making sure the peering object exists, is in :mod:`handlers`.
"""

from __future__ import annotations

from typing import Any

from . import FIELD_MANAGER
from .settings import Settings

GROUP = "kopf.dev"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
CLUSTER_KIND = "ClusterKopfPeering"
NAMESPACED_KIND = "KopfPeering"
CLUSTER_PLURAL = "clusterkopfpeerings"
NAMESPACED_PLURAL = "kopfpeerings"
#: The peering object's name in the shipped manifests (the chart uses its release's full name).
DEFAULT_NAME = FIELD_MANAGER


def _crd(kind: str, plural: str, scope: str) -> dict[str, Any]:
    """kopf's own peering CRD (kopf's peering.yaml): the status holds one entry per operator."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "scope": scope,
            "group": GROUP,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "Liveness and priority of the kopf operators sharing this peering.",
                            "properties": {"status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                        }
                    },
                }
            ],
        },
    }


def crds() -> list[dict[str, Any]]:
    return [_crd(CLUSTER_KIND, CLUSTER_PLURAL, "Cluster"), _crd(NAMESPACED_KIND, NAMESPACED_PLURAL, "Namespaced")]


def peering_objects(name: str, namespaces: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The object(s) kopf registers in: one cluster-wide, or one per watched namespace."""
    if not namespaces:
        return [{"apiVersion": API_VERSION, "kind": CLUSTER_KIND, "metadata": {"name": name}}]
    return [
        {"apiVersion": API_VERSION, "kind": NAMESPACED_KIND, "metadata": {"name": name, "namespace": ns}}
        for ns in namespaces
    ]


def start_priority(now_s: float, jitter: int) -> int:
    """Later start, higher priority; ``jitter`` (0-999) separates replicas started in the same
    millisecond. Stays below 2**53 (exact in every JSON reader) for centuries."""
    if not 0 <= jitter < 1000:
        raise ValueError("jitter must be in [0, 1000)")
    return int(now_s * 1000) * 1000 + jitter


def kopf_options(settings: Settings, *, now_s: float, jitter: int) -> dict[str, Any]:
    """Keyword arguments of ``kopf.operator()`` for these settings."""
    options: dict[str, Any] = {"clusterwide": not settings.namespaces, "namespaces": list(settings.namespaces)}
    if not settings.peering:
        return {**options, "standalone": True}
    priority = settings.priority if settings.priority is not None else start_priority(now_s, jitter)
    return {**options, "standalone": False, "peering_name": settings.peering, "priority": priority}
