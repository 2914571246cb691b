"""Thin kopf handlers: fetch, call :mod:`reconcile`, map errors to kopf retries. No logic here.

Triggers: the ReflectorGPU itself (create / update / resume), a periodic resync (restores
children edited or deleted by hand), and events of our InferenceServices (readiness changes,
deletion). All paths run the same idempotent reconcile under a per-object lock.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import secrets
from collections.abc import Mapping
from typing import Any

import kopf

from . import API_VERSION, FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION, metrics, peering, probe
from .api import ApiError, Kube
from .context import Install
from .kserve import Version, parse_version, version_from_image
from .reconcile import Notify, Options, Outcome, finalize, reconcile
from .rules import Problem
from .settings import Settings

log = logging.getLogger(__name__)
SETTINGS = Settings.from_env()
RESOURCE = (GROUP, VERSION, PLURAL)


def plain(value: Any) -> Any:
    """kopf bodies are read-only mapping views; builders want plain, deep-copied dicts."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_key() -> str:
    return secrets.token_urlsafe(32)


def _notifier(owner: dict[str, Any]) -> Notify:
    ref: Any = {"apiVersion": API_VERSION, "kind": KIND, "metadata": owner["metadata"]}  # kopf reads it as a Body

    def notify(type_: str, reason: str, message: str) -> None:
        kopf.event(ref, type=type_, reason=reason, message=message)

    return notify


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.scanning.disabled = True  # no CRD/namespace RBAC needed; resources found at start
    settings.posting.reporting_component = FIELD_MANAGER
    settings.posting.level = logging.WARNING  # events: our explicit ones plus kopf's failures
    memo.setdefault("settings", SETTINGS)
    if "kube" not in memo:
        memo["kube"] = Kube(memo["settings"])
    memo.setdefault("locks", {})
    if memo["settings"].peering:
        await _ensure_peering(memo["kube"], memo["settings"])


async def _ensure_peering(kube: Kube, settings: Settings) -> None:
    """kopf registers in the peering object but never creates it, and without one every replica
    would work at once, silently. The chart and manifests ship the kopf.dev CRDs; the object is
    made here (one ``kubectl apply`` of a CRD and an object of its kind fails: not established)."""
    for obj in peering.peering_objects(settings.peering, settings.namespaces):
        meta = obj["metadata"]
        try:
            if await kube.get(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]) is None:
                await kube.create(obj)
                log.info("created %s %s", obj["kind"], meta["name"])
        except ApiError as exc:
            if exc.status == 409:  # another replica made it first
                continue
            hint = (
                " (are the kopf.dev peering CRDs installed? they ship in the chart's crds/ and manifests/crd/)"
                if exc.status == 404
                else ""
            )
            raise kopf.PermanentError(
                f"cannot set up peering {obj['kind']} {meta['name']!r}: {exc}{hint}; "
                "RGPU_OPERATOR_PEERING='' runs a single replica without peering"
            ) from exc


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    if "kube" in memo:
        await memo["kube"].close()


def _lock(memo: kopf.Memo, namespace: str, name: str) -> asyncio.Lock:
    lock: asyncio.Lock = memo["locks"].setdefault((namespace, name), asyncio.Lock())
    return lock


async def kserve_version(kube: Kube, settings: Settings, memo: kopf.Memo) -> Version | str:
    """The installed KServe's version: the setting, else the ``kserve-controller-manager`` image
    tag (read once; retried until it works). A string says why it is unknown."""
    if settings.kserve_version:
        return parse_version(settings.kserve_version)
    if isinstance(memo.get("kserve"), Version):
        found: Version = memo["kserve"]
        return found
    where = f"Deployment {settings.kserve_namespace}/{settings.kserve_deployment}"
    try:
        deploy = await kube.get("apps/v1", "Deployment", settings.kserve_namespace, settings.kserve_deployment)
    except ApiError as exc:
        return f"cannot read {where} ({exc.status} {exc.reason})"
    if deploy is None:
        return f"{where} not found"
    for container in deploy.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
        version = version_from_image(str(container.get("image") or ""))
        if version is not None:
            memo["kserve"] = version
            log.info("KServe %s (from the image of %s)", version, where)
            return version
    return f"no versioned image in {where}"


async def reconcile_resource(
    kube: Kube, settings: Settings, memo: kopf.Memo, namespace: str, name: str, notify: Notify | None = None
) -> Outcome | None:
    """One reconcile of the ReflectorGPU as it is now (None: it is gone or going). ``notify``
    defaults to posting Kubernetes Events on it."""
    owner = await kube.get(API_VERSION, KIND, namespace, name)
    if owner is None or owner["metadata"].get("deletionTimestamp"):
        return None
    version = await kserve_version(kube, settings, memo)
    unknown = None
    if isinstance(version, str):
        unknown = Problem(
            "RGPU_OPERATOR_KSERVE_VERSION",
            "kserve-version",
            f"the KServe version is unknown: {version}; set the operator's KServe version "
            "(chart value operator.kserve.version)",
        )
        version = parse_version("0.16")  # only labels the status: nothing is written
    options = Options(
        scope=settings.namespaces,
        probe=probe.readiness if settings.probe_readiness else None,
        probe_url=settings.probe_url,
    )
    return await reconcile(
        kube,
        owner,
        Install.from_settings(settings, version),
        new_key=_new_key,
        now=_now,
        notify=notify or _notifier(owner),
        options=options,
        stop=unknown,
    )


async def _run(namespace: str, name: str, memo: kopf.Memo) -> None:
    """Reconcile under the per-object lock; re-read there, because the triggering body may
    predate our own last status write (and a stale status would be rewritten)."""
    settings: Settings = memo["settings"]
    async with _lock(memo, namespace, name), metrics.reconciling() as timer:
        try:
            outcome = await reconcile_resource(memo["kube"], settings, memo, namespace, name)
        except ApiError as exc:
            raise kopf.TemporaryError(f"API call failed: {exc}", delay=settings.api_backoff_seconds * 4) from exc
        timer.result = "gone" if outcome is None else "retry" if outcome.retry else "ok"
    if outcome is not None and outcome.retry:
        raise kopf.TemporaryError(
            "some children failed transiently: " + "; ".join(outcome.retry), delay=settings.api_backoff_seconds * 4
        )


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def apply_spec(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await _run(namespace or "", name, memo)


@kopf.timer(*RESOURCE, interval=SETTINGS.resync_seconds, initial_delay=SETTINGS.resync_seconds)
async def resync(*, namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    await _run(namespace or "", name, memo)


def _owner_name(body: Mapping[str, Any]) -> str | None:
    """The ReflectorGPU controlling an InferenceService (its controller reference)."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == KIND and str(ref.get("apiVersion", "")).startswith(GROUP):
            return str(ref["name"])
    return None


@kopf.on.event(
    "serving.kserve.io",
    "v1beta1",
    "inferenceservices",
    labels={"app.kubernetes.io/managed-by": FIELD_MANAGER},
)
async def inferenceservice_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A child changed (readiness) or vanished: re-read its owner and reconcile it."""
    meta = body.get("metadata", {})
    owner_name = _owner_name(body)
    if owner_name is None or not meta.get("namespace"):
        return
    try:
        await _run(str(meta["namespace"]), owner_name, memo)
    except (kopf.TemporaryError, kopf.PermanentError) as exc:
        log.warning(
            "reconcile after %s/%s event failed (the resync retries): %s", meta.get("namespace"), meta.get("name"), exc
        )


@kopf.on.delete(*RESOURCE)
async def delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    owner = plain(body)
    meta = owner["metadata"]
    async with _lock(memo, meta["namespace"], meta["name"]):
        try:
            await finalize(memo["kube"], owner, _notifier(owner))
        except ApiError as exc:
            raise kopf.TemporaryError(f"cleanup failed: {exc}", delay=memo["settings"].api_backoff_seconds * 4) from exc
    memo["locks"].pop((meta["namespace"], meta["name"]), None)
