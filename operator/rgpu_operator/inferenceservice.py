"""Pure builder: one KServe InferenceService per enabled component.

A custom predictor (our image, our command) with the pool's scheduling and GPUs, the API keys
mounted as files (so a rotated Secret reaches running pods), probes on KServe's health routes,
and a non-root, read-only container.
"""

from __future__ import annotations

from dataclasses import dataclass

import rgpu_contract as contract

from . import components as c
from .settings import Settings

ISVC_API_VERSION = "serving.kserve.io/v1beta1"
ANN_DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"
ANN_AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
CONTAINER_NAME = "kserve-container"
APIKEY_VOLUME = "apikeys"
TMP_VOLUME = "tmp"
#: CPU utilisation target for the HPA in RawDeployment mode (HPA cannot scale on concurrency).
RAW_CPU_TARGET = 80
RUN_AS = 10001  # the uid the images create (images/*.Dockerfile)


@dataclass(frozen=True)
class ImageDefaults:
    registry: str
    tag: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageDefaults:
        return cls(settings.image_registry, settings.image_tag)


def image(spec: dict, predictor: str, defaults: ImageDefaults) -> str:
    images = spec.get("images", {})
    override = images.get("overrides", {}).get(predictor)
    if override:
        return override
    registry = (images.get("registry") or defaults.registry).rstrip("/")
    return f"{registry}/reflector-gpu-{predictor}:{images.get('tag') or defaults.tag}"


def command(predictor: str) -> list[str]:
    """Console script the image runs (``rgpu-<predictor>`` unless the contract says otherwise)."""
    return [contract.PREDICTOR_COMMANDS.get(predictor, f"rgpu-{predictor}")]


def model_source(spec: dict, component: c.Component) -> tuple[str | None, str | None]:
    """(what the predictor loads, storageUri for KServe's storage initializer or None)."""
    if component.name == "padding":
        return None, None
    model = spec["transcriber"]["model"] if component.section == "transcriber" else c.block(spec, component)["model"]
    uri = model.get("storageUri") or ""
    cache = spec["modelCache"]
    if not uri and cache["type"] == "PVC" and model.get("name"):
        uri = f"pvc://{cache['pvc']['claimName']}/{model['name']}"
    if uri:
        return contract.MODEL_DIR, uri
    return model.get("name") or None, None


def apikey_sources(spec: dict, owner: str) -> tuple[dict, list[dict]]:
    """(primary secret ref {name, key}, every ref the predictors accept)."""
    auth = spec["auth"]
    existing = auth.get("existingSecret")
    primary = (
        {"name": existing["name"], "key": existing.get("key", "apikey")}
        if existing
        else {"name": c.secret_name(owner), "key": "apikey"}
    )
    return primary, [primary, *({"name": k["name"], "key": k["key"]} for k in auth.get("additionalKeys", []))]


def _apikey_volume(refs: list[dict]) -> dict:
    return {
        "name": APIKEY_VOLUME,
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"secret": {"name": ref["name"], "items": [{"key": ref["key"], "path": f"key-{i}"}]}}
                for i, ref in enumerate(refs)
            ],
        },
    }


def _resources(block: dict, pool: dict | None, gpu: bool) -> dict:
    res = block.get("resources") or {}
    out = {kind: dict(res[kind]) for kind in ("requests", "limits") if res.get(kind)}
    if gpu and pool and pool["gpu"]["count"] > 0:
        out.setdefault("limits", {})[pool["gpu"]["resourceName"]] = str(pool["gpu"]["count"])
    return out


#: Seconds a SIGTERMed predictor keeps serving with readiness false (endpoint removal propagates).
SHUTDOWN_DRAIN_S = 5


def shutdown_grace_s(component: c.Component) -> int:
    """How long in-flight requests may take to finish after the drain: long recordings (file
    transcription, diarization) take minutes, the rest seconds."""
    return 300 if component.profile == "file" or component.name == "diarizer" else 60


def termination_grace_s(component: c.Component) -> int:
    """The pod's terminationGracePeriodSeconds: drain + in-flight grace + a margin to exit."""
    return SHUTDOWN_DRAIN_S + shutdown_grace_s(component) + 5


def _env(spec: dict, component: c.Component, block: dict) -> list[dict]:
    model, uri = model_source(spec, component)
    env = [
        {"name": contract.ENV_API_KEY_FILE, "value": contract.API_KEY_MOUNT_DIR},
        {"name": c.ENV_MAX_CONCURRENCY, "value": str(block["targetConcurrency"])},
        {"name": contract.ENV_SHUTDOWN_DRAIN_S, "value": str(SHUTDOWN_DRAIN_S)},
        {"name": contract.ENV_SHUTDOWN_GRACE_S, "value": str(shutdown_grace_s(component))},
        {"name": "HOME", "value": "/tmp"},
    ]
    if component.profile:
        env.append({"name": contract.ENV_PROFILE, "value": component.profile})
    if model:
        env.append({"name": c.ENV_MODEL, "value": model})
    if uri:
        env.append({"name": "STORAGE_URI", "value": uri})
    if spec.get("urlAllowlist"):
        env.append({"name": contract.ENV_URL_ALLOWLIST, "value": ",".join(spec["urlAllowlist"])})
    ours = {e["name"] for e in env}
    env += [dict(e) for e in spec.get("env", []) if e["name"] not in ours]
    return env


def _probe(path: str, period: int, failures: int) -> dict:
    return {
        "httpGet": {"path": path, "port": contract.HTTP_PORT},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def build(owner: dict, spec: dict, component: c.Component, defaults: ImageDefaults) -> dict:
    """The InferenceService for ``component`` of ``owner`` (a ReflectorGPU body, spec defaulted)."""
    name = owner["metadata"]["name"]
    block = c.block(spec, component)
    pool = spec["pools"].get(block.get("pool") or "")
    predictor = c.predictor(spec, component)
    serverless = spec["deploymentMode"] == "Serverless"
    _, refs = apikey_sources(spec, name)

    meta = c.metadata(owner, c.isvc_name(name, component), component.name)
    meta["annotations"] = {ANN_DEPLOYMENT_MODE: spec["deploymentMode"]}
    if not serverless:
        meta["annotations"][ANN_AUTOSCALER_CLASS] = "hpa"

    container = {
        "name": CONTAINER_NAME,
        "image": image(spec, predictor, defaults),
        "imagePullPolicy": spec["images"]["pullPolicy"],
        "command": command(predictor),
        # The KServe model name is the predictor's name: the readiness probe below asks for it.
        "args": ["--model_name", predictor],
        "ports": [{"containerPort": contract.HTTP_PORT, "protocol": "TCP"}],
        "env": _env(spec, component, block),
        "resources": _resources(block, pool, component.gpu),
        # Per-model readiness: KServe's server-wide /v2/health/ready stays true when the model
        # failed to load, the per-model path answers 503 until it is loaded.
        "readinessProbe": _probe(contract.model_readiness_path(predictor), 10, 3),
        "livenessProbe": _probe(contract.LIVENESS_PATH, 15, 4),
        # Model loading can take minutes; liveness only starts once this passes.
        "startupProbe": _probe(contract.LIVENESS_PATH, 10, 90),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": APIKEY_VOLUME, "mountPath": contract.API_KEY_MOUNT_DIR, "readOnly": True},
            {"name": TMP_VOLUME, "mountPath": "/tmp"},
        ],
    }
    predictor_spec: dict = {
        "minReplicas": block["minReplicas"],
        "maxReplicas": block["maxReplicas"],
        "labels": c.selector(name, component.name),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [_apikey_volume(refs), {"name": TMP_VOLUME, "emptyDir": {}}],
        "terminationGracePeriodSeconds": termination_grace_s(component),
    }
    if serverless:
        predictor_spec.update(
            scaleMetric="concurrency",
            scaleTarget=block["targetConcurrency"],
            containerConcurrency=block["targetConcurrency"],
        )
    else:
        predictor_spec.update(scaleMetric="cpu", scaleTarget=RAW_CPU_TARGET)
    if pool:
        if pool.get("nodeSelector"):
            predictor_spec["nodeSelector"] = dict(pool["nodeSelector"])
        if pool.get("tolerations"):
            predictor_spec["tolerations"] = [dict(t) for t in pool["tolerations"]]
        for key in ("affinity", "runtimeClassName", "priorityClassName"):
            if pool.get(key):
                predictor_spec[key] = pool[key]
    if spec["images"].get("pullSecrets"):
        predictor_spec["imagePullSecrets"] = [{"name": s} for s in spec["images"]["pullSecrets"]]
    return {
        "apiVersion": ISVC_API_VERSION,
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor_spec},
    }
