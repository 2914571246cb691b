"""Pure builder: KServe LocalModelCache objects (modelCache.type LocalModelCache).

LocalModelCache is cluster-scoped, so it cannot carry an owner reference to a namespaced
ReflectorGPU: it is labelled with its owner and removed by the operator's finalizer.
KServe matches an InferenceService to a cache by its storage URI.
"""

from __future__ import annotations

from typing import Any

from . import components as c
from .inferenceservice import model_source

API_VERSION = "serving.kserve.io/v1alpha1"


def build_all(owner: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    cache = spec["modelCache"]
    if cache["type"] != "LocalModelCache":
        return []
    meta = owner["metadata"]
    out: dict[str, dict[str, Any]] = {}
    for comp in c.COMPONENTS:
        if not c.enabled(spec, comp):
            continue
        _, uri = model_source(spec, comp)
        if not uri or uri.startswith("pvc://"):
            continue
        name = c.modelcache_name(meta["namespace"], meta["name"], comp, uri)
        out.setdefault(
            uri,
            {
                "apiVersion": API_VERSION,
                "kind": "LocalModelCache",
                "metadata": c.metadata(owner, name, "modelcache", namespaced=False),
                "spec": {
                    "sourceModelUri": uri,
                    "modelSize": cache["localModelCache"]["modelSize"],
                    "nodeGroups": list(cache["localModelCache"]["nodeGroups"]),
                },
            },
        )
    return list(out.values())
