"""Pure: the ReflectorGPU status from the children's observed state.

Each component's state comes from its InferenceService's own conditions; the overall Ready /
Progressing / Degraded conditions summarise them. The time is an input (``now``) and a
condition keeps its lastTransitionTime while its status does not change, so an unchanged world
gives an identical status (and the reconciler writes nothing). Never contains key material.
"""

from __future__ import annotations

from . import components as c
from . import routing
from .desired import Plan
from .inferenceservice import apikey_sources

FAILED_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}


def _condition(obj: dict | None, kind: str) -> dict | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def component_state(isvc: dict | None) -> tuple[str, str, str]:
    """(state, reason, message) of one InferenceService: Ready, Progressing or Degraded."""
    if isvc is None:
        return "Progressing", "Creating", "InferenceService not created yet"
    status = isvc.get("status") or {}
    ready = _condition(isvc, "Ready")
    model = status.get("modelStatus") or {}
    failure = model.get("lastFailureInfo") or {}
    if ready and ready.get("status") == "True":
        return "Ready", "Ready", ""
    if model.get("transitionStatus") in FAILED_TRANSITIONS or failure:
        return (
            "Degraded",
            failure.get("reason") or model.get("transitionStatus") or "Failed",
            failure.get("message") or (ready or {}).get("message") or "",
        )
    if ready and ready.get("status") == "False" and ready.get("severity") == "Error":
        return "Degraded", ready.get("reason") or "NotReady", ready.get("message") or ""
    if ready:
        return "Progressing", ready.get("reason") or "NotReady", ready.get("message") or ""
    return "Progressing", "Pending", "waiting for KServe to report"


def _set(
    previous: list[dict], kind: str, status: str, reason: str, message: str, generation: int | None, now: str
) -> dict:
    old = next((p for p in previous if p.get("type") == kind), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
    cond = {"type": kind, "status": status, "reason": reason, "message": message, "lastTransitionTime": since}
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


def build(
    owner: dict,
    plan: Plan,
    isvcs: dict[str, dict | None],
    previous: dict | None,
    now: str,
    problems: list[str] | tuple[str, ...] = (),
) -> dict:
    """The status for ``owner`` given its plan, the live InferenceServices (by component) and
    configuration problems found while reconciling (e.g. a named Secret that does not exist)."""
    meta = owner["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    generation = meta.get("generation")
    spec = plan.spec
    comps: dict[str, dict] = {}
    for comp in c.COMPONENTS:
        if not c.enabled(spec, comp):
            continue
        state, reason, message = component_state(isvcs.get(comp.name))
        comps[comp.name] = {
            "inferenceService": c.isvc_name(name, comp),
            "ready": state == "Ready",
            "state": state,
            "reason": reason,
            "message": message[:1024],
            "url": routing.in_cluster_url(namespace, name, comp),
        }
    states = [v["state"] for v in comps.values()]
    degraded = [k for k, v in comps.items() if v["state"] == "Degraded"]
    waiting = [k for k, v in comps.items() if v["state"] != "Ready"]
    ready = not waiting and not problems
    previous_conditions = (previous or {}).get("conditions") or []
    conditions = [
        _set(
            previous_conditions,
            "Ready",
            "True" if ready else "False",
            "AllComponentsReady" if ready else "ComponentsNotReady",
            "" if ready else "not ready: " + ", ".join(waiting or ["configuration"]),
            generation,
            now,
        ),
        _set(
            previous_conditions,
            "Progressing",
            "True" if "Progressing" in states else "False",
            "Reconciling" if "Progressing" in states else "Stable",
            "",
            generation,
            now,
        ),
        _set(
            previous_conditions,
            "Degraded",
            "True" if degraded or problems else "False",
            "ConfigurationError" if problems else "ComponentFailed" if degraded else "AsExpected",
            "; ".join([*problems, *(f"{k}: {comps[k]['reason']}" for k in degraded)]),
            generation,
            now,
        ),
    ]
    primary, _ = apikey_sources(spec, name)
    base = routing.base_url(spec, namespace, name)
    endpoints = routing.endpoints(spec, namespace, name)
    out = {
        "ready": "True" if ready else "False",
        "url": base or endpoints.get("TRANSCRIPT_URL", ""),
        "conditions": conditions,
        "components": comps,
        "endpoints": endpoints,
        "apiKeySecret": dict(primary),
        "modelCaches": sorted(o["metadata"]["name"] for o in plan.present if o["kind"] == "LocalModelCache"),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out
