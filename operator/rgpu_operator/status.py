"""Pure: the ReflectorGPU status from what the reconciler saw.

Each component's state comes from, in order: the operator's own refusal of its spec
(``InvalidSpec``), the API server's answer to writing its InferenceService (``AdmissionRejected``
with the webhook's message, ``NameTaken``), KServe's report on the InferenceService (Ready, a
failed model load with KServe's failure info, a Deployment that cannot progress), KServe's
``InternalError`` Event (the Deployment refused: ``DeploymentRefused``), and the predictor's own
readiness answer (a load failure reported there). The overall Ready / Progressing / Degraded
conditions summarise them; one failing component never hides the others.

The time is an input (``now``) and a condition keeps its lastTransitionTime while its status
does not change, so an unchanged world gives an identical status (and the reconciler writes
nothing). Never contains key material.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rgpu_contract as contract

from . import autoscaling, kserve, llmruntime, monitoring, reflector_env, routing
from . import components as c
from .desired import Plan
from .inferenceservice import apikey_sources, model_source

Obj = dict[str, Any]
FAILED_TRANSITIONS = {"BlockedByFailedLoad", "InvalidSpec"}
#: Deployment conditions KServe copies into the InferenceService that mean "will not get better
#: by waiting" (``PropagateRawStatus``, inference_service_status.go).
STUCK_REASONS = {"ProgressDeadlineExceeded", "FailedCreate", "ReplicaFailure", "FailedDeploy"}
MESSAGE_MAX = 1024
#: KServe's FailureInfo reasons about the runtime an InferenceService names (``reconcileModel``,
#: pkg/controller/v1beta1/inferenceservice/components/predictor.go), and what they mean here.
RUNTIME_REASONS = {
    "RuntimeNotRecognized": "no ServingRuntime in this namespace or ClusterServingRuntime has this name "
    "(spec.llm.huggingface.servingRuntime)",
    "RuntimeDisabled": "the runtime is disabled",
    "NoSupportingRuntime": "the runtime does not support the huggingface model format or the protocol",
}


@dataclass(frozen=True)
class Facts:
    """What the reconciler learned about one component."""

    isvc: Obj | None = None  #: its live InferenceService (after our write)
    error: tuple[str, str] | None = None  #: (reason, message) of our failed write
    event: str | None = None  #: a recent KServe InternalError Event's message
    probe: tuple[int, str] | None = None  #: (HTTP status, detail) of its readiness route


def _condition(obj: Obj | None, kind: str) -> Obj | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            found: Obj = cond
            return found
    return None


def component_state(facts: Facts) -> tuple[str, str, str]:
    """(state, reason, message): Ready, Progressing or Degraded."""
    if facts.error:
        return "Degraded", facts.error[0], facts.error[1]
    isvc = facts.isvc
    if isvc is None:
        return "Progressing", "Creating", "InferenceService not created yet"
    status = isvc.get("status") or {}
    ready = _condition(isvc, "Ready")
    if ready and ready.get("status") == "True":
        return "Ready", "Ready", ""
    model = status.get("modelStatus") or {}
    failure = model.get("lastFailureInfo") or {}
    if model.get("transitionStatus") in FAILED_TRANSITIONS or failure:
        reason = str(failure.get("reason") or model.get("transitionStatus") or "Failed")
        message = str(failure.get("message") or (ready or {}).get("message") or "")
        runtime = ((isvc.get("spec") or {}).get("predictor") or {}).get("model", {}).get("runtime")
        if reason in RUNTIME_REASONS and runtime:
            # KServe's predictor reconciler says only "Waiting for runtime to become available".
            message = f"runtime {runtime}: {RUNTIME_REASONS[reason]} ({message})"
        return "Degraded", reason, message
    for kind in ("PredictorReady", "Ready"):
        cond = _condition(isvc, kind)
        if (
            cond
            and cond.get("status") == "False"
            and (cond.get("reason") in STUCK_REASONS or cond.get("severity") == "Error")
        ):
            return "Degraded", str(cond.get("reason") or "NotReady"), str(cond.get("message") or "")
    if facts.event:
        return "Degraded", "DeploymentRefused", facts.event
    if facts.probe and facts.probe[0] == 503:
        detail = facts.probe[1]
        if contract.MODEL_LOAD_FAILED in detail:
            reason = detail.split(contract.MODEL_LOAD_FAILED, 1)[1].lstrip(": ")
            return "Degraded", "ModelLoadFailed", reason or detail
        return "Progressing", "ModelNotReady", f"readiness: {detail}"
    if ready:
        return "Progressing", str(ready.get("reason") or "NotReady"), str(ready.get("message") or "")
    return "Progressing", "Pending", "waiting for KServe to report"


def _set(
    previous: list[Obj], kind: str, status: str, reason: str, message: str, generation: int | None, now: str
) -> Obj:
    old = next((p for p in previous if p.get("type") == kind), None)
    since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") else now
    cond: Obj = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message[: MESSAGE_MAX * 4],
        "lastTransitionTime": since,
    }
    if generation is not None:
        cond["observedGeneration"] = generation
    return cond


#: Access modes that let pods on several nodes mount one claim.
SHARED_MODES = ("ReadOnlyMany", "ReadWriteMany")


def _most_pods(block: Obj) -> int:
    """Pods a component can run: minReplicas under autoscaling.class none, else maxReplicas."""
    return int(block["minReplicas"] if block["autoscaling"]["class"] == "none" else block["maxReplicas"])


def _warnings(plan: Plan) -> list[str]:
    """A model PVC that is missing, or ReadWriteOnce while a component using it can scale past one
    pod (pods on other nodes could not mount it)."""
    spec, modes = plan.spec, plan.model_pvc_modes
    cache = spec["modelCache"]
    if cache["type"] != "PVC" or "pvc" not in cache or modes is None:
        return []
    claim = cache["pvc"]["claimName"]
    if not modes:
        return [f"modelCache.pvc: PersistentVolumeClaim {claim} not found; pods using it cannot start"]
    if set(modes) & set(SHARED_MODES):
        return []
    scaling = [
        comp.name
        for comp in c.COMPONENTS
        if c.enabled(spec, comp)
        and (model_source(spec, comp)[1] or "").startswith(f"pvc://{claim}/")
        and _most_pods(c.block(spec, comp)) > 1
    ]
    if not scaling:
        return []
    return [
        f"modelCache.pvc: PersistentVolumeClaim {claim} is {'/'.join(modes)}, which attaches to one node; "
        f"{', '.join(scaling)} can run more than one pod, and a pod on another node would not start: use "
        "ReadOnlyMany or ReadWriteMany"
    ]


def _monitoring(plan: Plan) -> Obj:
    made = [o["metadata"]["name"] for o in plan.present if o["kind"] == monitoring.KIND]
    if made:
        return {"podMonitor": made[0]}
    if monitoring.wanted(plan.spec) and not plan.podmonitor_served:
        return {
            "message": f"the API does not serve {monitoring.API_VERSION} {monitoring.KIND} (install the "
            "Prometheus Operator, or scrape port 9090 of the predictor pods another way)"
        }
    return {}


def build(
    owner: Obj,
    plan: Plan,
    facts: dict[str, Facts],
    previous: Obj | None,
    now: str,
    problems: list[str] | tuple[str, ...] = (),
) -> Obj:
    """The status for ``owner`` given its plan, what was learned per component, and problems
    found while reconciling (a named Secret missing, the KServe version unknown ...)."""
    meta = owner["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    generation = meta.get("generation")
    spec = plan.spec
    domain = plan.install.cluster_domain
    problems = [*(str(p) for p in plan.problems if p.component is None), *problems]
    if plan.host_taken_by:
        problems.append(
            f"spec.ingress.host: {spec['ingress']['host']} is already served by ReflectorGPU {plan.host_taken_by} "
            "(the oldest claim keeps it); no route was made (rule unique-host)"
        )
    comps: dict[str, Obj] = {}
    for comp in c.COMPONENTS:
        if not c.enabled(spec, comp):
            continue
        own = plan.blocked(comp.name)
        if own:
            state, reason, message = "Degraded", "InvalidSpec", "; ".join(str(p) for p in own)
        else:
            state, reason, message = component_state(facts.get(comp.name, Facts()))
        comps[comp.name] = {
            "inferenceService": c.isvc_name(name, comp),
            "ready": state == "Ready",
            "state": state,
            "reason": reason,
            "message": message[:MESSAGE_MAX],
            "url": routing.in_cluster_url(namespace, name, comp, domain),
            "image": plan.images.get(c.predictor(spec, comp)) or f"(the {llmruntime.serving_runtime(spec)} runtime's)",
            "autoscaling": autoscaling.status(spec, comp, namespace, c.isvc_name(name, comp)),
        }
    states = [v["state"] for v in comps.values()]
    degraded = [k for k, v in comps.items() if v["state"] == "Degraded"]
    waiting = [k for k, v in comps.items() if v["state"] != "Ready"]
    ready = not waiting and not problems
    previous_conditions = (previous or {}).get("conditions") or []
    detail = [*problems, *(f"{k}: {comps[k]['reason']}: {comps[k]['message']}".rstrip(": ") for k in degraded)]
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
            "; ".join(detail),
            generation,
            now,
        ),
    ]
    primary, _ = apikey_sources(spec, name)
    # Without its route (the host is another's), Reflector can only use the in-cluster URLs.
    urls_spec = spec if plan.host_taken_by is None else {**spec, "ingress": {**spec["ingress"], "enabled": False}}
    base = routing.base_url(urls_spec)
    endpoints = routing.endpoints(urls_spec, namespace, name, domain)
    out: Obj = {
        "ready": "True" if ready else "False",
        "componentStates": " ".join(f"{k}={v['state']}" for k, v in comps.items()),
        "url": base or endpoints.get("TRANSCRIPT_URL", ""),
        "conditions": conditions,
        "components": comps,
        "endpoints": endpoints,
        "reflector": reflector_env.settings(urls_spec, namespace, name, domain, primary),
        "images": dict(sorted(plan.images.items())),
        "kserve": {
            "version": str(plan.install.kserve),
            "deploymentMode": kserve.standard_mode(plan.install.kserve),
        },
        "apiKeySecret": dict(primary),
        llmruntime.STATUS_FIELD: spec["llm"]["runtime"],
        "modelCaches": sorted(o["metadata"]["name"] for o in plan.present if o["kind"] == "LocalModelCache"),
        "monitoring": _monitoring(plan),
        "warnings": _warnings(plan),
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out
