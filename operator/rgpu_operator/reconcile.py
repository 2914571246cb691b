"""Bring the world in line with one ReflectorGPU: apply what is missing or drifted, delete what
is no longer wanted, write status. Reads first and writes only differences, so a reconcile with
nothing to do makes no write calls. Safe to interrupt at any point and run again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from . import components as c
from . import secret
from . import status as status_builder
from .desired import Plan, Ref, all_refs, plan
from .diffing import merge_patch, up_to_date
from .inferenceservice import ImageDefaults, apikey_sources
from .kube import Kube
from .modelcache import API_VERSION as LMC_API_VERSION

log = logging.getLogger(__name__)

#: (type Normal|Warning, reason, message) -> posts a Kubernetes Event on the owner.
Notify = Callable[[str, str, str], None]


@dataclass
class Outcome:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    status_written: bool = False
    ready: bool = False

    @property
    def writes(self) -> int:
        return len(self.created) + len(self.updated) + len(self.deleted) + int(self.status_written)


def _label(obj: dict) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def _ours(live: dict, owner_name: str) -> bool:
    labels = live.get("metadata", {}).get("labels") or {}
    return labels.get(c.LABEL_MANAGED_BY) == c.FIELD_MANAGER and labels.get(c.LABEL_INSTANCE) == owner_name


def _secret(owner: dict, live: dict | None, new_key: Callable[[], str]) -> dict:
    """The Secret manifest to compare/apply; the key is drawn only if none is stored yet."""
    stored = ((live or {}).get("data") or {}).get(secret.KEY)
    if stored is None:
        return secret.build(owner, new_key())
    obj = secret.build(owner, None)
    obj["data"] = {secret.KEY: stored}  # apply keeps owning the same value: never rotated here
    return obj


async def reconcile(
    kube: Kube,
    owner: dict,
    defaults: ImageDefaults,
    *,
    new_key: Callable[[], str],
    now: Callable[[], str],
    notify: Notify,
) -> Outcome:
    out = Outcome()
    meta = owner["metadata"]
    p: Plan = plan(owner, defaults)
    isvcs: dict[str, dict | None] = {}
    by_isvc = {c.isvc_name(meta["name"], comp): comp.name for comp in c.COMPONENTS}

    for desired in p.present:
        namespace = desired["metadata"].get("namespace")
        live = await kube.get(desired["apiVersion"], desired["kind"], namespace, desired["metadata"]["name"])
        if desired["kind"] == "Secret":
            desired = _secret(owner, live, new_key)
        if up_to_date(desired, live):
            result = live
        else:
            result = await kube.apply(desired)
            (out.updated if live else out.created).append(_label(desired))
            notify("Normal", "Updated" if live else "Created", f"{'updated' if live else 'created'} {_label(desired)}")
        if desired["kind"] == "InferenceService":
            isvcs[by_isvc[desired["metadata"]["name"]]] = result

    for ref in p.absent:
        await _delete_if_ours(kube, ref, meta, out, notify)
    await _prune_modelcaches(kube, owner, p, out, notify)

    problems = await _missing_secrets(kube, owner, p)
    new_status = status_builder.build(owner, p, isvcs, owner.get("status"), now(), problems)
    old_status = {k: v for k, v in (owner.get("status") or {}).items() if k in new_status}
    if old_status != new_status:
        log.debug("status patch for %s: %s", meta["name"], merge_patch(old_status, new_status))
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


async def _missing_secrets(kube: Kube, owner: dict, p: Plan) -> list[str]:
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


async def _delete_if_ours(kube: Kube, ref: Ref, meta: dict, out: Outcome, notify: Notify) -> None:
    namespace = meta["namespace"] if ref.namespaced else None
    live = await kube.get(ref.api_version, ref.kind, namespace, ref.name)
    if live is None or not _ours(live, meta["name"]) or live["metadata"].get("deletionTimestamp"):
        return
    await kube.delete(ref.api_version, ref.kind, namespace, ref.name)
    out.deleted.append(f"{ref.kind}/{ref.name}")
    notify("Normal", "Deleted", f"deleted {ref.kind}/{ref.name} (no longer in spec)")


async def _prune_modelcaches(kube: Kube, owner: dict, p: Plan, out: Outcome, notify: Notify, keep: bool = True) -> None:
    meta = owner["metadata"]
    wanted = {o["metadata"]["name"] for o in p.present if o["kind"] == "LocalModelCache"} if keep else set()
    had = (owner.get("status") or {}).get("modelCaches") or []
    if keep and p.spec["modelCache"]["type"] != "LocalModelCache" and not had:
        return  # never used caches: no cluster-wide list call
    label = {c.LABEL_OWNER: c.owner_label(meta["namespace"], meta["name"])}
    try:
        caches = await kube.list(LMC_API_VERSION, "LocalModelCache", None, label)
    except Exception as exc:  # noqa: BLE001 - KServe without LocalModelCache: nothing to prune
        log.debug("cannot list LocalModelCaches: %s", exc)
        return
    for cache in caches:
        name = cache["metadata"]["name"]
        if name not in wanted:
            await kube.delete(LMC_API_VERSION, "LocalModelCache", None, name)
            out.deleted.append(f"LocalModelCache/{name}")
            notify("Normal", "Deleted", f"deleted LocalModelCache/{name}")


def _announce(old: dict, new: dict, notify: Notify) -> None:
    def cond(status: dict, kind: str) -> str | None:
        return next((x["status"] for x in status.get("conditions") or [] if x["type"] == kind), None)

    if cond(old, "Ready") != cond(new, "Ready"):
        if cond(new, "Ready") == "True":
            notify("Normal", "Ready", "all components are ready; endpoints in status.endpoints")
        elif cond(old, "Ready") == "True":
            notify("Warning", "NotReady", next(x["message"] for x in new["conditions"] if x["type"] == "Ready"))
    if cond(new, "Degraded") == "True" and cond(old, "Degraded") != "True":
        notify("Warning", "Degraded", next(x["message"] for x in new["conditions"] if x["type"] == "Degraded"))


async def finalize(kube: Kube, owner: dict, notify: Notify) -> Outcome:
    """Delete every child (owner references would, but not for cluster-scoped caches, and not
    on servers without garbage collection)."""
    out = Outcome()
    meta = owner["metadata"]
    for ref in all_refs(meta["name"]):
        await _delete_if_ours(kube, ref, meta, out, notify)
    p = plan(owner, ImageDefaults("", ""))
    await _prune_modelcaches(kube, owner, p, out, notify, keep=False)
    return out
