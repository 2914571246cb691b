"""Pure: a ReflectorGPU spec -> every child that should exist, and every child that should not.

The reconciler applies ``present`` and deletes ``absent``; both are plain manifests/refs so the
whole plan is testable without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import components as c
from . import inferenceservice, modelcache, networkpolicy, routing, secret
from .inferenceservice import ISVC_API_VERSION, ImageDefaults
from .schema import defaulted_spec


@dataclass(frozen=True)
class Ref:
    """Identifies a child by API version, kind and name (namespace: the owner's, unless cluster)."""

    api_version: str
    kind: str
    name: str
    namespaced: bool = True


def ref(obj: dict) -> Ref:
    return Ref(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], "namespace" in obj["metadata"])


@dataclass
class Plan:
    spec: dict  #: the defaulted spec the plan was built from
    present: list[dict] = field(default_factory=list)
    absent: list[Ref] = field(default_factory=list)
    #: True when the API-key Secret is ours to create (no existingSecret).
    owns_secret: bool = True


def all_refs(owner: str) -> list[Ref]:
    """Every namespaced child name a ReflectorGPU called ``owner`` can ever have."""
    return [
        Ref("v1", "Secret", c.secret_name(owner)),
        *(Ref(ISVC_API_VERSION, "InferenceService", c.isvc_name(owner, comp)) for comp in c.COMPONENTS),
        Ref("networking.k8s.io/v1", "NetworkPolicy", c.networkpolicy_name(owner)),
        Ref("networking.k8s.io/v1", "Ingress", c.routing_name(owner)),
        Ref("gateway.networking.k8s.io/v1", "HTTPRoute", c.routing_name(owner)),
    ]


def plan(owner: dict, defaults: ImageDefaults, key: str | None = None) -> Plan:
    """What should exist for ``owner`` (a ReflectorGPU body). ``key``: a fresh API key, used only
    in the Secret manifest (the reconciler writes it only when the Secret is missing)."""
    spec = defaulted_spec(owner.get("spec"))
    out = Plan(spec=spec, owns_secret=secret.wanted(spec))
    if out.owns_secret:
        out.present.append(secret.build(owner, key))
    for comp in c.COMPONENTS:
        if c.enabled(spec, comp):
            out.present.append(inferenceservice.build(owner, spec, comp, defaults))
    if spec["networkPolicy"]["enabled"]:
        out.present.append(networkpolicy.build(owner, spec))
    kind = routing.kind(spec)
    if kind == "Ingress":
        out.present.append(routing.ingress(owner, spec))
    elif kind == "HTTPRoute":
        out.present.append(routing.httproute(owner, spec))
    out.present.extend(modelcache.build_all(owner, spec))
    wanted = {ref(obj) for obj in out.present}
    out.absent = [r for r in all_refs(owner["metadata"]["name"]) if r not in wanted]
    return out
