"""Pure builder: one NetworkPolicy per component, admitting only the peers its enabled features
need, each to the one port it needs.

Features (:data:`FEATURES`), each a function of the spec and the install that yields peers:

- ``edge``: the ingress controller's or Gateway's proxy pods, to the serving port, when the
  component is routed (spec.ingress enabled; a keyless translator is never routed). Presets:
  ingress-nginx (namespace ``ingress-nginx``, its controller pods), Envoy Gateway (namespace
  ``envoy-gateway-system``, pods labelled ``app.kubernetes.io/component: proxy``,
  ``app.kubernetes.io/managed-by: envoy-gateway``), Istio (an Ingress: ``istio-system`` pods
  labelled ``istio: ingressgateway``; a Gateway: pods in the Gateway's namespace labelled with
  its name), or custom selectors;
- ``clients``: pods labelled ``reflector.monadical.com/client: "true"`` in the namespaces the CR
  names (default: its own), to the serving port;
- ``monitoring``: every pod of the monitoring namespaces, to the metrics port only;
- ``operator``: the operator's pods, to the serving port, when it probes readiness;
- ``transcriber``: on the diarizer, the file transcriber's pods (same namespace), to the serving
  port, when the diarizer is enabled (it calls the diarizer for speaker-attributed transcription).

Later features (KEDA) add a function to :data:`FEATURES`. Kubelet
probes are not subject to NetworkPolicy. A rule never has an empty ``from`` (that admits all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rgpu_contract as contract

from . import components as c
from . import diarization, routing
from .context import Install
from .inferenceservice import keyless

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
Obj = dict[str, Any]


@dataclass(frozen=True)
class Peer:
    feature: str  #: which feature admits it (docs/operator.md, Network policy)
    source: Obj  #: a NetworkPolicyPeer
    port: int


def _in(namespaces: list[str] | tuple[str, ...]) -> Obj:
    values = sorted(set(namespaces))
    return {"matchExpressions": [{"key": NAMESPACE_LABEL, "operator": "In", "values": values}]}


def _ns(name: str) -> Obj:
    return {"matchLabels": {NAMESPACE_LABEL: name}}


def edge_preset(spec: Obj, install: Install) -> str:
    preset = spec["networkPolicy"]["edge"].get("preset") or install.edge
    if preset == "auto":
        return "envoy-gateway" if routing.kind(spec) == "HTTPRoute" else "ingress-nginx"
    return str(preset)


def edge_sources(spec: Obj, install: Install, namespace: str) -> list[Obj]:
    """NetworkPolicyPeers of the proxies that route traffic in."""
    preset = edge_preset(spec, install)
    edge = spec["networkPolicy"]["edge"]
    out: list[Obj] = []
    if preset == "ingress-nginx":
        # The ingress-nginx chart's controller pods (app.kubernetes.io/component: controller).
        out.append(
            {
                "namespaceSelector": _ns("ingress-nginx"),
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/name": "ingress-nginx",
                        "app.kubernetes.io/component": "controller",
                    }
                },
            }
        )
    elif preset == "envoy-gateway":
        # Envoy Gateway runs one proxy Deployment per Gateway in its own namespace.
        out.append(
            {
                "namespaceSelector": _ns("envoy-gateway-system"),
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/component": "proxy",
                        "app.kubernetes.io/managed-by": "envoy-gateway",
                    }
                },
            }
        )
    elif preset == "istio":
        gateway = spec["ingress"].get("gateway")
        if gateway:
            # Istio deploys a Gateway's proxies next to it, labelled with the Gateway's name.
            for ref in gateway["parentRefs"]:
                for key in ("gateway.networking.k8s.io/gateway-name", "istio.io/gateway-name"):
                    out.append(
                        {
                            "namespaceSelector": _ns(ref.get("namespace") or namespace),
                            "podSelector": {"matchLabels": {key: ref["name"]}},
                        }
                    )
        else:
            out.append(
                {"namespaceSelector": _ns("istio-system"), "podSelector": {"matchLabels": {"istio": "ingressgateway"}}}
            )
    elif preset == "custom":
        source: Obj = {"namespaceSelector": dict(edge["namespaceSelector"])}
        if edge.get("podSelector"):
            source["podSelector"] = dict(edge["podSelector"])
        out.append(source)
    extra = spec["networkPolicy"].get("ingressNamespaces") or []
    if extra:
        out.append({"namespaceSelector": _in(extra)})
    return out


Feature = Callable[[Obj, Install, str, c.Component], list[Peer]]


def edge(spec: Obj, install: Install, namespace: str, component: c.Component) -> list[Peer]:
    if not spec["ingress"]["enabled"] or keyless(spec, component) or not routing.routed(spec, component):
        return []
    return [Peer("edge", s, contract.HTTP_PORT) for s in edge_sources(spec, install, namespace)]


def clients(spec: Obj, install: Install, namespace: str, component: c.Component) -> list[Peer]:
    names = spec["networkPolicy"].get("clientNamespaces") or [namespace]
    source = {"namespaceSelector": _in(names), "podSelector": {"matchLabels": {c.LABEL_CLIENT: "true"}}}
    return [Peer("clients", source, contract.HTTP_PORT)]


def monitoring(spec: Obj, install: Install, namespace: str, component: c.Component) -> list[Peer]:
    names = spec["networkPolicy"].get("monitoringNamespaces")
    names = install.monitoring_namespaces if names is None else names
    return [Peer("monitoring", {"namespaceSelector": _in(names)}, contract.METRICS_PORT)] if names else []


def operator(spec: Obj, install: Install, namespace: str, component: c.Component) -> list[Peer]:
    if install.operator_peer is None:
        return []
    ns, labels = install.operator_peer
    source: Obj = {"namespaceSelector": _ns(ns)}
    if labels:
        source["podSelector"] = {"matchLabels": dict(labels)}
    return [Peer("operator", source, contract.HTTP_PORT)]


def transcriber(spec: Obj, install: Install, namespace: str, component: c.Component) -> list[Peer]:
    """The file transcriber calls the diarizer for speaker-attributed transcription."""
    if component.name != "diarizer" or not diarization.wired(spec, c.BY_NAME[diarization.CALLER]):
        return []
    return [Peer("transcriber", {"podSelector": diarization.caller_selector()}, contract.HTTP_PORT)]


FEATURES: tuple[Feature, ...] = (edge, clients, monitoring, operator, transcriber)


def peers(spec: Obj, install: Install, namespace: str, component: c.Component) -> list[Peer]:
    return [peer for feature in FEATURES for peer in feature(spec, install, namespace, component)]


def build(owner: Obj, spec: Obj, install: Install, component: c.Component) -> Obj:
    meta = owner["metadata"]
    found = peers(spec, install, meta["namespace"], component)
    rules = []
    for port in (contract.HTTP_PORT, contract.METRICS_PORT):
        sources = [p.source for p in found if p.port == port]
        if sources:
            rules.append({"from": sources, "ports": [{"protocol": "TCP", "port": port}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": c.metadata(owner, c.networkpolicy_name(meta["name"], component), component.name),
        "spec": {
            "podSelector": {"matchLabels": c.selector(meta["name"], component.name)},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }
