"""Bring the world in line with one ReflectorGPU: apply what is missing or drifted, delete what
is no longer wanted, write status. Reads first and writes only differences, so a reconcile with
nothing to do makes no write calls. Safe to interrupt at any point and run again.

A child that fails does not stop the others: its error (the server's message) goes into its
component's status, transient ones make the handler retry soon.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import API_VERSION, KIND, kserve, llmruntime, modelcache, monitoring, secret
from . import components as c
from . import status as status_builder
from .api import ApiError, Kube
from .context import Install, Observed
from .desired import Plan, Ref, child_refs, plan
from .desired import ref as ref_of
from .diffing import merge_patch, up_to_date
from .hosts import host_taken_by
from .inferenceservice import ISVC_API_VERSION, apikey_sources
from .modelcache import LEGACY_API_VERSION as LMC_API_VERSION
from .rules import Problem
from .schema import defaulted_spec
from .status import Facts

log = logging.getLogger(__name__)

Obj = dict[str, Any]
#: (type Normal|Warning, reason, message) -> posts a Kubernetes Event on the owner.
Notify = Callable[[str, str, str], None]
#: (predictor Service base URL, model name) -> (status, detail) of its readiness, or None.
Probe = Callable[[str, str], Awaitable[tuple[int, str] | None]]
#: KServe's Events older than this no longer describe the Deployment.
EVENT_WINDOW = datetime.timedelta(minutes=10)
REJECTED = {400, 403, 409, 422}


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    status_written: bool = False
    ready: bool = False
    #: Transient failures: the handler asks kopf to retry soon.
    retry: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted) + int(self.status_written)


@dataclass(frozen=True)
class Options:
    """How one reconcile reaches beyond the API server (the handler builds it from settings)."""

    #: Namespaces watched (empty: cluster-wide); where other ReflectorGPUs are looked for.
    scope: tuple[str, ...] = ()
    probe: Probe | None = None
    #: ``{service}``/``{namespace}`` template of a predictor Service's base URL.
    probe_url: str = "http://{service}.{namespace}.svc"


def _label(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _ours(live: Obj, owner: Obj) -> bool:
    return c.owned_by(live, owner["metadata"]["uid"])


def _secret(owner: Obj, live: Obj | None, new_key: Callable[[], str]) -> Obj:
    """The Secret manifest to compare/apply; the key is drawn only if none is stored yet."""
    stored = ((live or {}).get("data") or {}).get(secret.KEY)
    if stored is None:
        return secret.build(owner, new_key())
    obj = secret.build(owner, None)
    obj["data"] = {secret.KEY: stored}  # apply keeps owning the same value: never rotated here
    return obj


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


async def _others(kube: Kube, scope: tuple[str, ...]) -> list[Obj]:
    if not scope:
        return await kube.list(API_VERSION, KIND)
    out: list[Obj] = []
    for ns in scope:
        out += await kube.list(API_VERSION, KIND, ns)
    return out


async def _observe(kube: Kube, owner: Obj, options: Options) -> tuple[dict[str, Obj | None], Observed]:
    meta = owner["metadata"]
    isvcs: dict[str, Obj | None] = {}
    modes: dict[str, str] = {}
    for comp in c.COMPONENTS:
        live = await kube.get(ISVC_API_VERSION, "InferenceService", meta["namespace"], c.isvc_name(meta["name"], comp))
        isvcs[comp.name] = live
        mode = ((live or {}).get("status") or {}).get("deploymentMode")
        if live is not None and _ours(live, owner) and mode:
            modes[comp.name] = str(mode)
    taken = None
    if (owner.get("spec") or {}).get("ingress", {}).get("enabled"):
        taken = host_taken_by(owner, await _others(kube, options.scope))
    # Asked on every reconcile, also when disabled: a PodMonitor made earlier is then deleted.
    served = await kube.serves(monitoring.API_VERSION, monitoring.KIND)
    pvc_modes = None
    cache = (owner.get("spec") or {}).get("modelCache") or {}
    if cache.get("type") in ("PVC", "Job") and (cache.get("pvc") or {}).get("claimName"):
        claim = await kube.get("v1", "PersistentVolumeClaim", meta["namespace"], cache["pvc"]["claimName"])
        pvc_modes = tuple(((claim or {}).get("spec") or {}).get("accessModes") or ()) if claim else ()
    jobs: dict[str, modelcache.JobState | None] = {}
    for digest, model in modelcache.models(defaulted_spec(owner.get("spec"))).items():
        live_job = await kube.get(modelcache.JOB_API_VERSION, "Job", meta["namespace"], model.job_name)
        jobs[digest] = modelcache.state(live_job)
    return isvcs, Observed(
        deployment_modes=modes,
        host_taken_by=taken,
        podmonitor_served=served,
        model_pvc_modes=pvc_modes,
        model_jobs=jobs,
    )


async def reconcile(
    kube: Kube,
    owner: Obj,
    install: Install,
    *,
    new_key: Callable[[], str],
    now: Callable[[], str],
    notify: Notify,
    options: Options | None = None,
    stop: Problem | None = None,
) -> Outcome:
    """``stop``: a problem outside the spec (e.g. the KServe version unknown) that must keep
    every child as it is; it is reported like a spec problem."""
    options = options or Options()
    out = Outcome()
    meta = owner["metadata"]
    isvcs, observed = await _observe(kube, owner, options)
    p = plan(owner, install, observed)
    if stop is not None:
        p.problems.append(stop)
    errors: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    if not p.stopped:
        await _model_jobs(kube, owner, p, out, notify, problems, now())
        await _apply_all(kube, owner, p, isvcs, errors, problems, out, new_key, notify)
        for ref in p.absent:
            await _delete_if_ours(kube, ref, owner, out, notify, problems)
        await _remove_kserve_routes(kube, owner, isvcs, out, notify)
        await _prune_modelcaches(kube, owner, p, out, notify)
    problems += await _missing_secrets(kube, owner, p)
    facts = await _facts(kube, owner, p, isvcs, errors, now(), options)
    new_status = status_builder.build(owner, p, facts, owner.get("status"), now(), problems)
    old_status = {k: v for k, v in (owner.get("status") or {}).items() if k in new_status}
    if old_status != new_status:
        await kube.patch_status(owner, merge_patch(old_status, new_status))
        out.status_written = True
        _announce(old_status, new_status, notify)
    out.ready = new_status["ready"] == "True"
    if out.writes:
        log.info(
            "reconciled %s/%s: created=%s updated=%s deleted=%s ready=%s",
            meta["namespace"],
            meta["name"],
            out.created,
            out.updated,
            out.deleted,
            out.ready,
        )
    return out


def _retry_due(found: modelcache.JobState, retry_seconds: int, now: str) -> bool:
    """A failed Job of ours whose backoff has passed (no failure time given: at once)."""
    if found.state != modelcache.FAILED or found.reason == "NameTaken":
        return False
    failed, current = _parse_time(found.since), _parse_time(now)
    if failed is None or current is None:
        return True
    return (current - failed).total_seconds() >= retry_seconds


async def _model_jobs(
    kube: Kube, owner: Obj, p: Plan, out: Outcome, notify: Notify, problems: list[str], now: str
) -> None:
    """Create the missing cache Jobs; replace a failed one once its backoff has passed."""
    namespace = owner["metadata"]["namespace"]
    retry_s = int(p.spec["modelCache"]["job"]["retrySeconds"])
    for digest, found in p.cache_states.items():
        if found is None or not _retry_due(found, retry_s, now):
            continue
        name = p.caches[digest].job_name
        try:
            if not await kube.delete(modelcache.JOB_API_VERSION, "Job", namespace, name):
                continue  # already gone (another resource using the model retried it)
        except ApiError as exc:
            _failed(exc, out, problems, f"Job {name}")
            continue
        out.deleted.append(f"Job/{name}")
        notify("Normal", "Retrying", f"deleted failed Job/{name} ({found.reason}); a new one fetches the model")
    for job in p.cache_jobs:
        name = job["metadata"]["name"]
        try:
            await kube.apply(job)
        except ApiError as exc:
            if exc.transient:
                out.retry.append(str(exc))
            problems.append(f"Job {name}: {exc.message or exc}")
            notify("Warning", "ApplyFailed", f"Job/{name}: {exc.message or exc}")
            continue
        out.created.append(f"Job/{name}")
        notify(
            "Normal",
            "Created",
            f"created Job/{name} to cache {job['metadata']['annotations'][modelcache.ANNOTATION_SOURCE]}",
        )


async def _apply_all(
    kube: Kube,
    owner: Obj,
    p: Plan,
    isvcs: dict[str, Obj | None],
    errors: dict[str, tuple[str, str]],
    problems: list[str],
    out: Outcome,
    new_key: Callable[[], str],
    notify: Notify,
) -> None:
    failed: set[Ref] = set()
    for desired in p.present:
        kind, name = desired["kind"], desired["metadata"]["name"]
        comp = p.component_of(desired) if kind in ("InferenceService", "NetworkPolicy") else None
        needed = p.requires.get(ref_of(desired))
        if needed is not None and needed in failed:
            # Never the LLM's route without its SecurityPolicy: it would reach a runtime that
            # checks no key. A route already there goes too.
            failed.add(ref_of(desired))
            problems.append(f"{kind} {name}: not applied: its {needed.kind} {needed.name} could not be written")
            await _delete_if_ours(kube, ref_of(desired), owner, out, notify, problems)
            continue
        failed.add(ref_of(desired))  # until written below
        namespace = desired["metadata"].get("namespace")
        if kind == "InferenceService" and comp is not None:
            live = isvcs.get(comp)
        else:
            live = await kube.get(desired["apiVersion"], kind, namespace, name)
        if live is not None and namespace is not None and not _ours(live, owner):
            message = f"{kind} {name} already exists and is not this ReflectorGPU's: remove or rename it" + (
                ", or set spec.auth.existingSecret" if kind == "Secret" else ""
            )
            if comp is not None:
                errors.setdefault(comp, ("NameTaken", message))
            else:
                problems.append(f"{kind} {name}: NameTaken: {message}")
            continue
        if kind == "Secret":
            desired = _secret(owner, live, new_key)
        if up_to_date(desired, live):
            failed.discard(ref_of(desired))
            continue
        try:
            result = await kube.apply(desired)
        except ApiError as exc:
            if exc.transient:
                out.retry.append(str(exc))
            reason = "AdmissionRejected" if exc.status in REJECTED else "ApplyFailed"
            message = exc.message or str(exc)
            if comp is not None:
                errors.setdefault(comp, (reason, f"{kind} {name}: {message}"))
            else:
                problems.append(f"{kind} {name}: {reason}: {message}")
            notify("Warning", reason, f"{_label(desired)}: {message}")
            continue
        failed.discard(ref_of(desired))
        (out.updated if live else out.created).append(_label(desired))
        notify("Normal", "Updated" if live else "Created", f"{'updated' if live else 'created'} {_label(desired)}")
        if kind == "InferenceService" and comp is not None:
            isvcs[comp] = result


async def _facts(
    kube: Kube,
    owner: Obj,
    p: Plan,
    isvcs: dict[str, Obj | None],
    errors: dict[str, tuple[str, str]],
    now: str,
    options: Options,
) -> dict[str, Facts]:
    meta = owner["metadata"]
    enabled = [comp for comp in c.COMPONENTS if c.enabled(p.spec, comp)]

    def is_ready(isvc: Obj | None) -> bool:
        conds = ((isvc or {}).get("status") or {}).get("conditions") or []
        return any(x.get("type") == "Ready" and x.get("status") == "True" for x in conds)

    waiting = [comp for comp in enabled if isvcs.get(comp.name) is not None and not is_ready(isvcs[comp.name])]
    events = await _kserve_events(kube, meta["namespace"], {c.isvc_name(meta["name"], x) for x in waiting}, now)
    probes: dict[str, tuple[int, str] | None] = {}
    if options.probe is not None and waiting:
        asked = [
            options.probe(
                options.probe_url.format(service=c.predictor_service(meta["name"], comp), namespace=meta["namespace"]),
                llmruntime.model_name(p.spec, comp),
            )
            for comp in waiting
        ]
        # Concurrently: a predictor that does not answer costs its timeout once, not once each.
        probes = dict(zip((comp.name for comp in waiting), await asyncio.gather(*asked), strict=True))
    out: dict[str, Facts] = {}
    for comp in enabled:
        name = c.isvc_name(meta["name"], comp)
        out[comp.name] = Facts(
            isvc=isvcs.get(comp.name),
            error=errors.get(comp.name),
            event=events.get(name),
            probe=probes.get(comp.name),
        )
    return out


async def _kserve_events(kube: Kube, namespace: str, names: set[str], now: str) -> dict[str, str]:
    """The newest recent Warning ``InternalError`` KServe posted on each named InferenceService
    (the controller posts one when a component, e.g. its Deployment, cannot be reconciled:
    ``Reconcile`` in ``controller.go``)."""
    if not names:
        return {}
    try:
        events = await kube.list("v1", "Event", namespace, fields={"involvedObject.kind": "InferenceService"})
    except ApiError as exc:
        log.debug("cannot read events in %s: %s", namespace, exc)
        return {}
    cutoff = (_parse_time(now) or datetime.datetime.now(datetime.UTC)) - EVENT_WINDOW
    newest: dict[str, tuple[datetime.datetime, str]] = {}
    for event in events:
        involved = event.get("involvedObject") or {}
        name = involved.get("name")
        if name not in names or event.get("type") != "Warning" or event.get("reason") != "InternalError":
            continue
        when = _parse_time(
            event.get("lastTimestamp")
            or event.get("eventTime")
            or (event.get("metadata") or {}).get("creationTimestamp")
        )
        if when is None or when < cutoff:
            continue
        if name not in newest or when > newest[name][0]:
            newest[name] = (when, str(event.get("message") or ""))
    return {name: message for name, (_, message) in newest.items()}


async def _missing_secrets(kube: Kube, owner: Obj, p: Plan) -> list[str]:
    """User-named Secrets (existingSecret, additionalKeys) that do not exist: pods would not start.
    Only existence matters here; the values are not looked at."""
    meta = owner["metadata"]
    _, refs = apikey_sources(p.spec, meta["name"])
    out = []
    for ref in refs:
        if p.owns_secret and ref["name"] == c.secret_name(meta["name"]):
            continue
        if await kube.get("v1", "Secret", meta["namespace"], ref["name"]) is None:
            out.append(f"Secret {ref['name']} (spec.auth) not found")
    return out


def _failed(exc: ApiError, out: Outcome, problems: list[str], what: str) -> None:
    """A transient API failure is retried soon; any other is reported on the resource."""
    if exc.transient:
        out.retry.append(str(exc))
    else:
        problems.append(f"{what}: {exc.message}")


async def _delete_if_ours(
    kube: Kube, ref: Ref, owner: Obj, out: Outcome, notify: Notify, problems: list[str] | None = None
) -> None:
    meta = owner["metadata"]
    namespace = meta["namespace"] if ref.namespaced else None
    try:
        live = await kube.get(ref.api_version, ref.kind, namespace, ref.name)
        if live is None or not _ours(live, owner) or live["metadata"].get("deletionTimestamp"):
            return
        await kube.delete(ref.api_version, ref.kind, namespace, ref.name)
    except ApiError as exc:
        if problems is None:
            raise
        _failed(exc, out, problems, f"{ref.kind} {ref.name}")
        return
    out.deleted.append(f"{ref.kind}/{ref.name}")
    notify("Normal", "Deleted", f"deleted {ref.kind}/{ref.name} (no longer in spec)")


async def _remove_kserve_routes(
    kube: Kube, owner: Obj, isvcs: dict[str, Obj | None], out: Outcome, notify: Notify
) -> None:
    """Delete the Ingresses and HTTPRoutes KServe made for our InferenceServices before they were
    labelled cluster-local (upgrades): they reach the predictors around our route. KServe stops
    making them once the label is there, but never deletes one it made
    (``RawIngressReconciler.Reconcile``, ``RawHTTPRouteReconciler.Reconcile``). They are found by
    their controller reference to the InferenceService."""
    uids = {
        live["metadata"]["uid"]
        for live in isvcs.values()
        if live is not None
        and _ours(live, owner)
        and (live["metadata"].get("labels") or {}).get(kserve.LABEL_VISIBILITY) == kserve.CLUSTER_LOCAL
    }
    if not uids:
        return
    namespace = owner["metadata"]["namespace"]
    for api_version, kind in (("networking.k8s.io/v1", "Ingress"), ("gateway.networking.k8s.io/v1", "HTTPRoute")):
        try:
            found = await kube.list(api_version, kind, namespace)
        except ApiError as exc:
            if exc.transient:
                out.retry.append(str(exc))
            else:
                log.warning("cannot list %ss: %s", kind, exc)
            continue
        for obj in found:
            if any(c.owned_by(obj, uid) for uid in uids) and not obj["metadata"].get("deletionTimestamp"):
                await kube.delete(api_version, kind, namespace, obj["metadata"]["name"])
                out.deleted.append(f"{kind}/{obj['metadata']['name']}")
                notify(
                    "Normal",
                    "Deleted",
                    f"deleted {kind}/{obj['metadata']['name']}, made by KServe: it bypassed the authenticated route",
                )


async def _prune_modelcaches(
    kube: Kube, owner: Obj, p: Plan | None, out: Outcome, notify: Notify, keep: bool = True
) -> None:
    meta = owner["metadata"]
    wanted: set[str] = set()  # none are made any more: every one found is an earlier version's
    had = (owner.get("status") or {}).get("modelCaches") or []
    if keep and p is not None and p.spec["modelCache"]["type"] != "LocalModelCache" and not had:
        return  # never used caches: no cluster-wide list call
    label = {c.LABEL_OWNER: c.owner_label(meta["namespace"], meta["name"])}
    try:
        caches = await kube.list(LMC_API_VERSION, "LocalModelCache", None, label)
    except ApiError as exc:  # KServe without LocalModelCache, or no cluster rights
        log.debug("cannot list LocalModelCaches: %s", exc)
        return
    for cache in caches:
        name = cache["metadata"]["name"]
        if name not in wanted:
            try:
                await kube.delete(LMC_API_VERSION, "LocalModelCache", None, name)
            except ApiError as exc:  # e.g. KServe's webhook while an InferenceService uses it
                log.warning("cannot delete LocalModelCache %s (retried next reconcile): %s", name, exc)
                continue
            out.deleted.append(f"LocalModelCache/{name}")
            notify("Normal", "Deleted", f"deleted LocalModelCache/{name}")


def _announce(old: Obj, new: Obj, notify: Notify) -> None:
    def cond(status: Obj, kind: str) -> str | None:
        return next((x["status"] for x in status.get("conditions") or [] if x["type"] == kind), None)

    def message(status: Obj, kind: str) -> str:
        return str(next(x["message"] for x in status["conditions"] if x["type"] == kind))

    if cond(old, "Ready") != cond(new, "Ready"):
        if cond(new, "Ready") == "True":
            notify("Normal", "Ready", "all components are ready; Reflector's settings are in status.reflector")
        elif cond(old, "Ready") == "True":
            notify("Warning", "NotReady", message(new, "Ready"))
    if cond(new, "Degraded") == "True" and (
        cond(old, "Degraded") != "True" or message(old, "Degraded") != message(new, "Degraded")
    ):
        notify("Warning", "Degraded", message(new, "Degraded"))


async def finalize(kube: Kube, owner: Obj, notify: Notify) -> Outcome:
    """Delete every child (owner references would, but not for cluster-scoped caches, and not
    on servers without garbage collection)."""
    out = Outcome()
    for ref in child_refs(owner["metadata"]["name"]):
        await _delete_if_ours(kube, ref, owner, out, notify)
    await _prune_modelcaches(kube, owner, None, out, notify, keep=False)
    return out
