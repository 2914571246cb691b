"""Pure: a ReflectorGPU and what was observed -> every child that should exist, every child that
should not, and what stops the plan.

The reconciler applies ``present`` and deletes ``absent``; both are plain manifests/refs so the
whole plan is testable without a cluster, and ``render`` prints ``present``. A spec-wide problem
(a CEL rule broken by a CR stored before the CRD had it) leaves every child as it is; a
component's problem leaves that component's children as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import components as c
from . import (
    images,
    inferenceservice,
    kserve,
    llmroute,
    llmruntime,
    modelcache,
    monitoring,
    networkpolicy,
    routing,
    rules,
    secret,
)
from .context import Install, Observed
from .inferenceservice import ISVC_API_VERSION
from .schema import defaulted_spec

Obj = dict[str, Any]


@dataclass(frozen=True)
class Ref:
    """Identifies a child by API version, kind and name (namespace: the owner's, unless cluster)."""

    api_version: str
    kind: str
    name: str
    namespaced: bool = True


def ref(obj: Obj) -> Ref:
    return Ref(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], "namespace" in obj["metadata"])


@dataclass
class Plan:
    spec: Obj  #: the defaulted spec the plan was built from
    install: Install
    present: list[Obj] = field(default_factory=list)
    absent: list[Ref] = field(default_factory=list)
    #: True when the API-key Secret is ours to create (no existingSecret).
    owns_secret: bool = True
    problems: list[rules.Problem] = field(default_factory=list)
    #: Predictor -> image, for every enabled component.
    images: dict[str, str] = field(default_factory=dict)
    #: The ingress host belongs to this other ReflectorGPU; no route is made.
    host_taken_by: str | None = None
    #: The API serves PodMonitor (API discovery); status says when one is wanted but cannot be.
    podmonitor_served: bool = False
    #: modelCache.type PVC: the claim's access modes as read (None: not read, empty: not found).
    model_pvc_modes: tuple[str, ...] | None = None
    #: A child applied only once another is written (the LLM's HTTPRoute needs its
    #: SecurityPolicy: without it the route would reach a runtime that checks no key).
    requires: dict[Ref, Ref] = field(default_factory=dict)

    @property
    def stopped(self) -> bool:
        """A spec-wide problem: nothing is written."""
        return any(p.component is None for p in self.problems)

    def blocked(self, component: str) -> list[rules.Problem]:
        return [p for p in self.problems if p.component == component]

    def component_of(self, obj: Obj) -> str | None:
        labels = obj["metadata"].get("labels") or {}
        name = labels.get(c.LABEL_COMPONENT)
        return name if name in c.BY_NAME else None


def child_refs(owner: str) -> list[Ref]:
    """Every namespaced child name a ReflectorGPU called ``owner`` can ever have."""
    return [
        Ref("v1", "Secret", c.secret_name(owner)),
        *(Ref(ISVC_API_VERSION, "InferenceService", c.isvc_name(owner, comp)) for comp in c.COMPONENTS),
        *(Ref("networking.k8s.io/v1", "NetworkPolicy", c.networkpolicy_name(owner, comp)) for comp in c.COMPONENTS),
        Ref("networking.k8s.io/v1", "NetworkPolicy", c.legacy_networkpolicy_name(owner)),
        Ref("networking.k8s.io/v1", "Ingress", c.routing_name(owner)),
        Ref("gateway.networking.k8s.io/v1", "HTTPRoute", c.routing_name(owner)),
        Ref(monitoring.API_VERSION, monitoring.KIND, monitoring.podmonitor_name(owner)),
        # The LLM's own routes before their policy: deleted in this order, the route goes first.
        Ref("gateway.networking.k8s.io/v1", "HTTPRoute", llmroute.route_name(owner)),
        Ref("networking.k8s.io/v1", "Ingress", llmroute.route_name(owner)),
        Ref(llmroute.SECURITY_POLICY_API_VERSION, "SecurityPolicy", llmroute.route_name(owner)),
    ]


def plan(owner: Obj, install: Install, observed: Observed | None = None, key: str | None = None) -> Plan:
    """What should exist for ``owner`` (a ReflectorGPU body). ``key``: a fresh API key, used only
    in the Secret manifest (the reconciler writes it only when the Secret is missing)."""
    observed = observed or Observed()
    spec = defaulted_spec(owner.get("spec"))
    spec["llm"]["runtime"] = llmruntime.resolve(owner, spec)
    out = Plan(
        spec=spec,
        install=install,
        owns_secret=secret.wanted(spec),
        problems=rules.problems(spec) + rules.install_problems(spec, install.kserve),
    )
    out.host_taken_by = observed.host_taken_by
    out.podmonitor_served = observed.podmonitor_served
    out.model_pvc_modes = observed.model_pvc_modes
    name = owner["metadata"]["name"]
    pinned = images.pinned_from(owner)
    for comp in c.COMPONENTS:
        if c.enabled(spec, comp) and not (comp.name == "llm" and llmruntime.on_huggingface(spec)):
            predictor = c.predictor(spec, comp)
            out.images[predictor] = images.resolve(spec, predictor, install, pinned)
    if out.stopped:
        return out
    blocked = {p.component for p in out.problems}
    if out.owns_secret:
        out.present.append(secret.build(owner, key))
    for comp in c.COMPONENTS:
        if not c.enabled(spec, comp) or comp.name in blocked:
            continue
        live_mode = observed.deployment_modes.get(comp.name)
        mode = kserve.mode_for_update(install.kserve, live_mode)
        if comp.name == "llm" and llmruntime.on_huggingface(spec):
            isvc = inferenceservice.build(owner, spec, comp, install, "", mode)
            out.present.append(llmruntime.build(isvc, spec))
        else:
            image = out.images[c.predictor(spec, comp)]
            out.present.append(inferenceservice.build(owner, spec, comp, install, image, mode))
        if spec["networkPolicy"]["enabled"]:
            out.present.append(networkpolicy.build(owner, spec, install, comp))
    kind = routing.kind(spec) if out.host_taken_by is None else None
    if kind == "Ingress":
        out.present.append(routing.ingress(owner, spec))
    elif kind == "HTTPRoute":
        out.present.append(routing.httproute(owner, spec))
    if out.host_taken_by is None:
        llm_routes = llmroute.objects(owner, spec, install.cluster_domain)
        out.present.extend(llm_routes)
        policies = [o for o in llm_routes if o["kind"] == "SecurityPolicy"]
        for obj in llm_routes:
            if obj["kind"] == "HTTPRoute" and policies:
                out.requires[ref(obj)] = ref(policies[0])
    out.present.extend(modelcache.build_all(owner, spec))
    if monitoring.wanted(spec) and observed.podmonitor_served:
        out.present.append(monitoring.podmonitor(owner, spec))
    wanted = {ref(obj) for obj in out.present}
    keep = {
        Ref(ISVC_API_VERSION, "InferenceService", c.isvc_name(name, c.BY_NAME[b])) for b in blocked if b is not None
    } | {Ref("networking.k8s.io/v1", "NetworkPolicy", c.networkpolicy_name(name, c.BY_NAME[b])) for b in blocked if b}
    # A kind the API does not serve has nothing to delete (and answers every call with 404).
    if not observed.podmonitor_served:
        keep.add(Ref(monitoring.API_VERSION, monitoring.KIND, monitoring.podmonitor_name(name)))
    out.absent = [r for r in child_refs(name) if r not in wanted and r not in keep]
    return out
