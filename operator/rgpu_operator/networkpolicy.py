"""Pure builder: predictor pods accept traffic only from the ingress path and labelled clients.

Allowed in: pods in the ingress controller's (or Gateway's) namespaces, and pods in this
namespace labelled ``reflector.monadical.com/client: "true"`` (e.g. Reflector itself when it
runs next to the service). Kubelet probes are not subject to NetworkPolicy.
"""

from __future__ import annotations

import rgpu_contract as contract

from . import components as c

NAMESPACE_LABEL = "kubernetes.io/metadata.name"


def namespaces(spec: dict, own_namespace: str) -> list[str]:
    allowed = list(spec["networkPolicy"]["ingressNamespaces"])
    gateway = spec["ingress"].get("gateway") if spec["ingress"]["enabled"] else None
    for ref in (gateway or {}).get("parentRefs", []):
        allowed.append(ref.get("namespace") or own_namespace)
    return sorted(set(allowed))


def build(owner: dict, spec: dict) -> dict:
    meta = owner["metadata"]
    sources: list[dict] = [{"podSelector": {"matchLabels": {c.LABEL_CLIENT: "true"}}}]
    allowed = namespaces(spec, meta["namespace"])
    if allowed:
        sources.append(
            {"namespaceSelector": {"matchExpressions": [{"key": NAMESPACE_LABEL, "operator": "In", "values": allowed}]}}
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": c.metadata(owner, c.networkpolicy_name(meta["name"]), "networkpolicy"),
        "spec": {
            "podSelector": {"matchLabels": c.selector(meta["name"])},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": contract.HTTP_PORT}]}],
        },
    }
