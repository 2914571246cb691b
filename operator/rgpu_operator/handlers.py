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

from . import API_VERSION, FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION, peering
from . import components as c
from .inferenceservice import ImageDefaults
from .kube import ApiError, Kube, connection_from_environment
from .reconcile import finalize, reconcile
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
    utc = datetime.timezone.utc  # noqa: UP017 - datetime.UTC is 3.11+, the project supports 3.10
    return datetime.datetime.now(utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_key() -> str:
    return secrets.token_urlsafe(32)


def _notifier(owner: dict):
    ref = {"apiVersion": API_VERSION, "kind": KIND, "metadata": owner["metadata"]}

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
        memo["kube"] = Kube(connection_from_environment(), memo["settings"])
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
    return memo["locks"].setdefault((namespace, name), asyncio.Lock())


async def _run(namespace: str, name: str, memo: kopf.Memo) -> None:
    """Reconcile the ReflectorGPU as it is now: re-read under the lock, because the triggering
    body may predate our own last status write (and a stale status would be rewritten)."""
    settings: Settings = memo["settings"]
    kube: Kube = memo["kube"]
    async with _lock(memo, namespace, name):
        try:
            owner = await kube.get(API_VERSION, KIND, namespace, name)
            if owner is None or owner["metadata"].get("deletionTimestamp"):
                return
            await reconcile(
                kube, owner, ImageDefaults.from_settings(settings), new_key=_new_key, now=_now, notify=_notifier(owner)
            )
        except ApiError as exc:
            raise kopf.TemporaryError(f"API call failed: {exc}", delay=settings.api_backoff_seconds * 4) from exc
        except ValueError as exc:  # a spec the builders cannot honour (CEL should catch it first)
            raise kopf.PermanentError(str(exc)) from exc


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE)
async def apply_spec(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    await _run(namespace, name, memo)


@kopf.timer(*RESOURCE, interval=SETTINGS.resync_seconds, initial_delay=SETTINGS.resync_seconds)
async def resync(namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    await _run(namespace, name, memo)


@kopf.on.event(
    "serving.kserve.io",
    "v1beta1",
    "inferenceservices",
    labels={c.LABEL_MANAGED_BY: FIELD_MANAGER, c.LABEL_INSTANCE: kopf.PRESENT},
)
async def inferenceservice_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """A child changed (readiness) or vanished: re-read its owner and reconcile it."""
    meta = body.get("metadata", {})
    owner_name = (meta.get("labels") or {}).get(c.LABEL_INSTANCE)
    try:
        await _run(meta.get("namespace"), owner_name, memo)
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
