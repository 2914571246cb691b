"""Observability objects: a Prometheus Operator ``PodMonitor`` for the predictors' metrics port.

Made only when the API serves ``monitoring.coreos.com/v1`` ``PodMonitor``: the reconciler asks
API discovery (``GET /apis/monitoring.coreos.com/v1``, which every authenticated client may read:
a namespaced Role is enough), so a cluster without the Prometheus Operator gets no object the API
server would refuse, and status says why there is none.

One PodMonitor per ReflectorGPU selects every predictor pod of it (the pod labels KServe copies
from ``spec.predictor.labels``) on the named ``metrics`` port. Prometheus Operator adds the
``namespace`` and ``pod`` labels the KEDA query selects on (docs/scaling.md).
"""

from __future__ import annotations

from typing import Any

import rgpu_contract as contract

from . import components as c
from . import names

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PodMonitor"
#: The container port name the predictors' metrics are on (inferenceservice.build).
PORT_NAME = "metrics"

Obj = dict[str, Any]


def podmonitor_name(owner: str) -> str:
    return names.subdomain(f"{owner}-predictors")


def wanted(spec: Obj) -> bool:
    return bool(spec["monitoring"]["podMonitor"]["enabled"])


def podmonitor(owner: Obj, spec: Obj) -> Obj:
    name = owner["metadata"]["name"]
    settings = spec["monitoring"]["podMonitor"]
    meta = c.metadata(owner, podmonitor_name(name))
    meta["labels"].update(settings.get("labels") or {})
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": c.selector(name)},
            "podMetricsEndpoints": [
                {"port": PORT_NAME, "path": contract.METRICS_PATH, "interval": settings["interval"]}
            ],
        },
    }
