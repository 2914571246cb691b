"""How an InferenceService's replicas follow load: ``autoscaling.class`` per component.

- ``keda`` (KServe >= 0.15, Standard mode): annotation ``serving.kserve.io/autoscalerClass: keda``
  and ``spec.predictor.autoScaling.metrics`` with one ``External`` Prometheus metric. KServe's
  ``createKedaScaledObject`` / ``getKedaMetrics`` (``keda_reconciler.go``, ../shared/kserve)
  turn it into a KEDA ScaledObject trigger of type ``prometheus`` with metadata
  ``serverAddress``, ``query`` and ``threshold`` = ``target.value``; KEDA's Prometheus scaler
  treats ``threshold`` as a per-replica average (desired = ceil(value / threshold)). So:

  - the query returns one series (KEDA fails on a vector of several): ``sum`` of
    ``reflector_gpu_inflight_requests`` and ``reflector_gpu_queued_requests`` over the
    component's pods (KServe names them ``<isvc>-predictor-<hash>``);
  - ``target.value`` is ``targetInFlight``, work per replica;
  - no ``scaleMetric`` / ``scaleTarget``: ``validateScalingKedaCompExtension`` (the validating
    webhook, ``inference_service_validation.go``) answers "ScaleMetric is not supported for KEDA",
    and wants a non-empty ``query`` and a ``target.value`` on an External metric;
  - ``authenticationRef`` (``ExtMetricAuthentication`` in ``component.go``) only from KServe
    0.16: v0.15's API has no such field (:func:`rules.install_problems` refuses it there).

- ``hpa``: CPU utilisation (``scaleMetric: cpu``, ``scaleTarget: 80``), which
  ``validateScalingHPACompExtension`` accepts; allowed for padding (CPU) only, the GPU components
  refuse it (CRD rule and :mod:`rules`): CPU says nothing about a busy GPU.
- ``none``: ``autoscalerClass: none`` (``AutoscalerClassNone``, constants.go, known to every
  supported KServe, 0.15 included): KServe creates no autoscaler and runs ``minReplicas`` pods; the
  operator writes ``maxReplicas = minReplicas`` too, so the object says what runs (the CR's
  ``maxReplicas`` is not used; status shows the class).
"""

from __future__ import annotations

from typing import Any

import rgpu_contract as contract

from . import components as c
from .context import Install
from .kserve import KEDA_AUTH_SINCE

#: CPU utilisation target for the HPA (class hpa, padding only).
CPU_TARGET = 80

Obj = dict[str, Any]


def keda_query(namespace: str, isvc: str) -> str:
    """One series: in-flight + queued requests summed over the component's predictor pods."""
    metrics = f"{contract.METRIC_INFLIGHT}|{contract.METRIC_QUEUED}"
    return f'sum({{__name__=~"{metrics}",namespace="{namespace}",pod=~"{isvc}-predictor-.*"}})'


def predictor_fields(
    spec: Obj, component: c.Component, block: Obj, install: Install, namespace: str, isvc: str
) -> tuple[str, Obj]:
    """(autoscalerClass annotation, fields of ``spec.predictor``) for the component's class."""
    klass = block["autoscaling"]["class"]
    low, high = block["minReplicas"], block["maxReplicas"]
    if klass == "hpa":
        return "hpa", {"minReplicas": low, "maxReplicas": high, "scaleMetric": "cpu", "scaleTarget": CPU_TARGET}
    if klass == "none":
        return "none", {"minReplicas": low, "maxReplicas": low}
    keda = spec["keda"]
    external: Obj = {
        "metric": {
            "backend": "prometheus",
            "serverAddress": keda["serverAddress"],
            "query": keda_query(namespace, isvc),
        },
        "target": {"type": "Value", "value": c.target_in_flight(block)},
    }
    if keda["authenticationRef"] and install.kserve.tuple >= KEDA_AUTH_SINCE:
        auth: Obj = {"authenticationRef": {"name": keda["authenticationRef"]}}
        if keda["authModes"]:
            auth["authModes"] = keda["authModes"]
        external["authenticationRef"] = auth
    return "keda", {
        "minReplicas": low,
        "maxReplicas": high,
        "autoScaling": {"metrics": [{"type": "External", "external": external}]},
    }


def status(spec: Obj, component: c.Component, namespace: str, isvc: str) -> Obj:
    """What status shows: the class, and for keda the query KEDA runs and its per-pod target."""
    block = c.block(spec, component)
    klass = block["autoscaling"]["class"]
    out: Obj = {"class": klass}
    if klass == "keda":
        out["query"] = keda_query(namespace, isvc)
        out["targetInFlight"] = c.target_in_flight(block)
    return out
