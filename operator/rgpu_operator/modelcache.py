"""Pure: modelCache.type Job, models fetched once onto a PVC before a GPU is held (like NVIDIA
NIM's NIMCache).

Per model, a batch/v1 Job on a CPU node runs KServe's storage-initializer image (the operator's
``RGPU_OPERATOR_STORAGE_INITIALIZER_IMAGE``) to copy it onto ``modelCache.pvc.claimName`` at
``models/<digest>``: a hub name is fetched as ``hf://<name>`` with the component's
hubTokenSecret as ``HF_TOKEN``; any other storageUri (s3://, gs://, hf://, https://) is passed
as is. The digest is of the claim and the source, so one model used by two components, or by two
ReflectorGPUs in a namespace with the same claim, is one Job and one directory. The Job has no owner reference (it
may serve several owners); it is labelled and stays as the record of the cache. InferenceServices
using the model are created only once its Job is Complete, and mount the files read-only through
``pvc://<claim>/models/<digest>``.

A failed Job is reported (status.modelCache, reason and message from its Failed condition) and,
``modelCache.job.retrySeconds`` after it failed, deleted, so the next reconcile starts a new one.

LocalModelCache (KServe's node-local cache) was removed: it was made after nothing, with no
ordering against the InferenceServices, and a second ReflectorGPU could duplicate its
sourceModelUri cluster-wide. A ReflectorGPU still naming it is treated as type None (status
warns); the LocalModelCaches an earlier version made are deleted (``LEGACY_API_VERSION``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import FIELD_MANAGER, GROUP, names
from . import components as c

Obj = dict[str, Any]
LEGACY_API_VERSION = "serving.kserve.io/v1alpha1"
JOB_API_VERSION = "batch/v1"
#: Label on every cache Job: the model's digest.
LABEL_MODEL = f"{GROUP}/model-cache"
ANNOTATION_SOURCE = f"{GROUP}/model-source"
MOUNT = "/mnt/cache"
SUBDIR = "models"
#: Job states written to status.modelCache.
CACHING, CACHED, FAILED = "Caching", "Cached", "Failed"
#: Non-root like KServe's storage-initializer image (USER 1000).
RUN_AS = 1000
DEFAULT_RESOURCES: Obj = {
    "requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "1Gi"},
    "limits": {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "4Gi"},
}


@dataclass(frozen=True)
class CacheModel:
    """One model to cache: where it comes from and where it lands."""

    source: str  #: what the storage initializer fetches (hf://<name> for a hub name)
    digest: str
    claim: str
    components: tuple[str, ...] = ()
    token: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def job_name(self) -> str:
        return names.subdomain(f"rgpu-model-{self.digest}")

    @property
    def path(self) -> str:
        return f"{SUBDIR}/{self.digest}"

    @property
    def uri(self) -> str:
        return f"pvc://{self.claim}/{self.path}"


def enabled(spec: Obj) -> bool:
    cache = spec["modelCache"]
    return bool(cache["type"] == "Job" and (cache.get("pvc") or {}).get("claimName"))


def _source(model: Mapping[str, Any]) -> str | None:
    uri = str(model.get("storageUri") or "")
    if uri:
        return None if uri.startswith("pvc://") else uri
    name = str(model.get("name") or "")
    return f"hf://{name}" if name else None


def for_model(spec: Obj, model: Mapping[str, Any]) -> CacheModel | None:
    """The cache of one model block (``{name, storageUri}``), or None (no Job cache, or already
    on a PVC)."""
    if not enabled(spec):
        return None
    source = _source(model)
    if source is None:
        return None
    claim = spec["modelCache"]["pvc"]["claimName"]
    # The claim is part of the identity: the same model for another claim is another cache.
    return CacheModel(source, names.digest(f"{claim}\n{source}"), claim)


def _model_block(spec: Obj, comp: c.Component) -> Mapping[str, Any] | None:
    if comp.name == "padding":
        return None
    section = spec["transcriber"] if comp.section == "transcriber" else c.block(spec, comp)
    model: Mapping[str, Any] | None = section.get("model")
    return model


def models(spec: Obj) -> dict[str, CacheModel]:
    """Digest -> model to cache, for every enabled component (the first token seen is used)."""
    out: dict[str, CacheModel] = {}
    for comp in c.COMPONENTS:
        if not c.enabled(spec, comp):
            continue
        model = _model_block(spec, comp)
        found = for_model(spec, model) if model is not None else None
        if found is None:
            continue
        section = spec["transcriber"] if comp.section == "transcriber" else c.block(spec, comp)
        token = section.get("hubTokenSecret")
        prev = out.get(found.digest)
        out[found.digest] = CacheModel(
            found.source,
            found.digest,
            found.claim,
            (*(prev.components if prev else ()), comp.name),
            prev.token if prev and prev.token else token,
        )
    return out


def job(namespace: str, model: CacheModel, spec: Obj, image: str) -> Obj:
    """The batch/v1 Job filling ``<claim>/models/<digest>`` (no owner reference: shared)."""
    settings = spec["modelCache"]["job"]
    env: list[Obj] = [{"name": "HF_HOME", "value": "/tmp/hf"}]
    if model.token:
        ref = {"name": model.token["name"], "key": model.token["key"]}
        if model.token.get("optional") is not None:
            ref["optional"] = bool(model.token["optional"])
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": ref}})
    for item in settings.get("env") or []:
        extra: Obj = {"name": item["name"]}
        if "valueFrom" in item:
            extra["valueFrom"] = {kind: dict(src) for kind, src in item["valueFrom"].items()}
        else:
            extra["value"] = item.get("value", "")
        env.append(extra)
    resources = {
        kind: {**DEFAULT_RESOURCES[kind], **((settings.get("resources") or {}).get(kind) or {})}
        for kind in ("requests", "limits")
    }
    labels = {
        c.LABEL_NAME: c.PART_OF,
        c.LABEL_PART_OF: c.PART_OF,
        c.LABEL_MANAGED_BY: FIELD_MANAGER,
        c.LABEL_COMPONENT: "model-cache",
        LABEL_MODEL: model.digest,
    }
    account = settings.get("serviceAccountName") or ""
    pod: Obj = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": bool(account),
        "securityContext": c.non_root_pod(RUN_AS),
        "containers": [
            {
                "name": "fetch",
                "image": image,
                "args": [model.source, f"{MOUNT}/{model.path}"],
                "env": env,
                "resources": resources,
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "cache", "mountPath": MOUNT}, {"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [
            {"name": "cache", "persistentVolumeClaim": {"claimName": model.claim}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    if account:
        pod["serviceAccountName"] = account
    if settings.get("nodeSelector"):
        pod["nodeSelector"] = dict(settings["nodeSelector"])
    if settings.get("tolerations"):
        pod["tolerations"] = [dict(t) for t in settings["tolerations"]]
    return {
        "apiVersion": JOB_API_VERSION,
        "kind": "Job",
        "metadata": {
            "name": model.job_name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {ANNOTATION_SOURCE: model.source[:1024]},
        },
        "spec": {
            "backoffLimit": int(settings["backoffLimit"]),
            "activeDeadlineSeconds": int(settings["activeDeadlineSeconds"]),
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }


def ours(live: Obj | None) -> bool:
    labels = ((live or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(c.LABEL_MANAGED_BY) == FIELD_MANAGER and LABEL_MODEL in labels


@dataclass(frozen=True)
class JobState:
    state: str  #: Caching, Cached or Failed
    reason: str = ""
    message: str = ""
    since: str = ""  #: the Failed condition's lastTransitionTime


def state(live: Obj | None) -> JobState | None:
    """What a live Job says about its cache (None: no Job)."""
    if live is None:
        return None
    if not ours(live):
        return JobState(FAILED, "NameTaken", f"Job {live['metadata']['name']} exists and is not the operator's")
    for cond in (live.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return JobState(CACHED)
        if cond.get("type") == "Failed":
            return JobState(
                FAILED,
                str(cond.get("reason") or "Failed"),
                str(cond.get("message") or ""),
                str(cond.get("lastTransitionTime") or ""),
            )
    return JobState(CACHING, "Running", "")
