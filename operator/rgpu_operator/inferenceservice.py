"""Pure builder: one KServe InferenceService per enabled component.

A custom predictor (our image, our command) with the pool's scheduling and GPUs, sized
resources (:mod:`sizing`), the API keys mounted as files (so a rotated Secret reaches running
pods), probes on KServe's health routes, a non-root read-only container, and:

- the label ``networking.kserve.io/visibility: cluster-local``: KServe then creates no Ingress
  or HTTPRoute of its own for it (``RawIngressReconciler.Reconcile``,
  ``kube_ingress_reconciler.go``; ``RawHTTPRouteReconciler.Reconcile``), which would reach the
  predictor around ours;
- the deployment mode under the name the installed KServe knows (:mod:`kserve`), and the
  autoscaler the component's ``autoscaling.class`` asks for (:mod:`autoscaling`: KEDA on in-flight
  + queued requests, fixed replicas, or CPU for padding);
- admission per pod from ``maxInFlight`` / ``maxQueued`` (``REFLECTOR_GPU_MAX_IN_FLIGHT`` /
  ``_MAX_QUEUED``);
- ``/metrics`` on its own port and the API docs off (``REFLECTOR_GPU_METRICS_PORT``,
  ``REFLECTOR_GPU_API_DOCS``), so the serving port only answers authenticated contract routes;
- a second, named container port for metrics: KServe's raw Service maps the first port to 80
  and exposes the others as they are (``createDefaultSvc``, ``service_reconciler.go``), and a
  Service with several ports needs every port named.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rgpu_contract as contract

from . import autoscaling, diarization, kserve, modelcache, quantity, sizing
from . import components as c
from .context import Install

ISVC_API_VERSION = "serving.kserve.io/v1beta1"
CONTAINER_NAME = "kserve-container"
APIKEY_VOLUME = "apikeys"
TMP_VOLUME = "tmp"
RUN_AS = 10001  # the uid the images create (images/*.Dockerfile)
#: Hugging Face's token variable (huggingface_hub reads it; the diarizer falls back to it).
ENV_HUB_TOKEN = "HF_TOKEN"

Obj = dict[str, Any]


def command(predictor: str) -> list[str]:
    """Console script the image runs (``rgpu-<predictor>`` unless the contract says otherwise)."""
    return [contract.PREDICTOR_COMMANDS.get(predictor, f"rgpu-{predictor}")]


def model_source(spec: Obj, component: c.Component) -> tuple[str | None, str | None]:
    """(what the predictor loads, storageUri for KServe's storage initializer or None)."""
    if component.name == "padding":
        return None, None
    model = spec["transcriber"]["model"] if component.section == "transcriber" else c.block(spec, component)["model"]
    uri = model.get("storageUri") or ""
    cache = spec["modelCache"]
    if not uri and cache["type"] == "PVC" and model.get("name"):
        uri = f"pvc://{cache['pvc']['claimName']}/{model['name']}"
    cached = modelcache.for_model(spec, model)
    if cached is not None:
        uri = cached.uri  # filled by the cache Job; the InferenceService waits for it
    if uri:
        return contract.MODEL_DIR, uri
    return model.get("name") or None, None


def apikey_sources(spec: Obj, owner: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(primary secret ref {name, key}, every ref the predictors accept)."""
    auth = spec["auth"]
    existing = auth.get("existingSecret")
    primary = (
        {"name": existing["name"], "key": existing.get("key", "apikey")}
        if existing
        else {"name": c.secret_name(owner), "key": "apikey"}
    )
    return primary, [primary, *({"name": k["name"], "key": k["key"]} for k in auth.get("additionalKeys", []))]


def keyless(spec: Obj, component: c.Component) -> bool:
    """The translator serving without a key, behind its NetworkPolicy (translator.auth)."""
    return component.name == "translator" and spec["translator"]["auth"] == "networkPolicy"


def _apikey_volume(refs: list[dict[str, str]]) -> Obj:
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


#: Seconds a SIGTERMed predictor keeps serving with readiness false (endpoint removal propagates).
SHUTDOWN_DRAIN_S = 5


def shutdown_grace_s(component: c.Component) -> int:
    """How long in-flight requests may take to finish after the drain: long recordings (file
    transcription, diarization) take minutes, the rest seconds."""
    return 300 if component.profile == "file" or component.name == "diarizer" else 60


def termination_grace_s(component: c.Component) -> int:
    """The pod's terminationGracePeriodSeconds: drain + in-flight grace + a margin to exit."""
    return SHUTDOWN_DRAIN_S + shutdown_grace_s(component) + 5


def _secret_env(name: str, ref: Mapping[str, Any]) -> Obj:
    key_ref: Obj = {"name": ref["name"], "key": ref["key"]}
    if "optional" in ref:
        key_ref["optional"] = ref["optional"]
    return {"name": name, "valueFrom": {"secretKeyRef": key_ref}}


def _user_env(item: Mapping[str, Any]) -> Obj:
    out: Obj = {"name": item["name"]}
    if "valueFrom" in item:
        out["valueFrom"] = {kind: dict(ref) for kind, ref in item["valueFrom"].items()}
    else:
        out["value"] = item.get("value", "")
    return out


def hub_token(spec: Obj, component: c.Component) -> Mapping[str, Any] | None:
    section = spec["transcriber"] if component.section == "transcriber" else c.block(spec, component)
    ref: Mapping[str, Any] | None = section.get("hubTokenSecret")
    return ref


def _env(spec: Obj, component: c.Component, block: Obj, wiring: list[Obj] | None = None) -> list[Obj]:
    model, uri = model_source(spec, component)
    env: list[Obj] = [
        {"name": contract.ENV_API_KEY_FILE, "value": contract.API_KEY_MOUNT_DIR},
        {"name": c.ENV_MAX_IN_FLIGHT, "value": str(block["maxInFlight"])},
        {"name": c.ENV_MAX_QUEUED, "value": str(block["maxQueued"])},
        {"name": contract.ENV_SHUTDOWN_DRAIN_S, "value": str(SHUTDOWN_DRAIN_S)},
        {"name": contract.ENV_SHUTDOWN_GRACE_S, "value": str(shutdown_grace_s(component))},
        {"name": contract.ENV_METRICS_PORT, "value": str(contract.METRICS_PORT)},
        {"name": contract.ENV_API_DOCS, "value": "false"},
        {"name": contract.ENV_MAX_UPLOAD_MB, "value": sizing.cap_mb(spec, "upload")},
        {"name": contract.ENV_MAX_DOWNLOAD_MB, "value": sizing.cap_mb(spec, "download")},
        {"name": "HOME", "value": "/tmp"},
    ]
    if keyless(spec, component):
        env = [e for e in env if e["name"] != contract.ENV_API_KEY_FILE]
        env.insert(0, {"name": contract.ENV_AUTH_DISABLED, "value": "true"})
    if component.profile:
        env.append({"name": contract.ENV_PROFILE, "value": component.profile})
    if component.name == "translator":
        env.append({"name": contract.ENV_TRANSLATOR_ENGINE, "value": spec["translator"]["engine"]})
    if model:
        env.append({"name": c.ENV_MODEL, "value": model})
    if uri:
        env.append({"name": "STORAGE_URI", "value": uri})
    if spec.get("urlAllowlist"):
        env.append({"name": contract.ENV_URL_ALLOWLIST, "value": ",".join(spec["urlAllowlist"])})
    token = hub_token(spec, component)
    if token:
        env.append(_secret_env(ENV_HUB_TOKEN, token))
    env += wiring or []
    ours = {e["name"] for e in env}
    for item in [*(block.get("env") or []), *(spec.get("env") or [])]:  # component first: it wins
        if item["name"] not in ours:
            env.append(_user_env(item))
            ours.add(item["name"])
    return env


def _probe(path: str, period: int, failures: int) -> Obj:
    return {
        "httpGet": {"path": path, "port": contract.HTTP_PORT},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _model_on_node(spec: Obj, component: c.Component) -> tuple[bool, int]:
    """(the predictor downloads the model into /tmp itself, GiB of KServe's model volume)."""
    model, uri = model_source(spec, component)
    disk = sizing.SIZES[component.name].model_disk_gi
    if uri:
        return False, 0 if uri.startswith("pvc://") else disk
    return component.name != "padding", 0


def build(owner: Obj, spec: Obj, component: c.Component, install: Install, image: str, mode: str) -> Obj:
    """The InferenceService for ``component`` of ``owner`` (a ReflectorGPU body, spec defaulted).

    ``mode``: the deployment-mode annotation (:func:`kserve.standard_mode` for a new object, the
    live ``status.deploymentMode`` for an existing one)."""
    name = owner["metadata"]["name"]
    block = c.block(spec, component)
    pool = spec["pools"].get(block.get("pool") or "")
    predictor = c.predictor(spec, component)
    _, refs = apikey_sources(spec, name)

    meta = c.metadata(owner, c.isvc_name(name, component), component.name)
    meta["labels"][kserve.LABEL_VISIBILITY] = kserve.CLUSTER_LOCAL
    namespace = owner["metadata"]["namespace"]
    klass, scaling = autoscaling.predictor_fields(spec, component, block, install, namespace, meta["name"])
    meta["annotations"] = {kserve.ANN_DEPLOYMENT_MODE: mode, kserve.ANN_AUTOSCALER_CLASS: klass}

    on_node, model_volume = _model_on_node(spec, component)
    tmp_gi = sizing.tmp_size_gi(spec, component, block, on_node)
    resources: Obj = sizing.resources(spec, component, block, tmp_gi, model_volume)
    if component.gpu and pool and pool["gpu"]["count"] > 0:
        resources["limits"][pool["gpu"]["resourceName"]] = str(pool["gpu"]["count"])

    mounts: list[Obj] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}]
    volumes: list[Obj] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": quantity.gib(tmp_gi)}}]
    if not keyless(spec, component):
        mounts.insert(0, {"name": APIKEY_VOLUME, "mountPath": contract.API_KEY_MOUNT_DIR, "readOnly": True})
        volumes.insert(0, _apikey_volume(refs))
    container = {
        "name": CONTAINER_NAME,
        "image": image,
        "imagePullPolicy": spec["images"]["pullPolicy"],
        "command": command(predictor),
        # The KServe model name is the predictor's name: the readiness probe below asks for it.
        "args": ["--model_name", predictor],
        "ports": [
            {"name": "http", "containerPort": contract.HTTP_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": contract.METRICS_PORT, "protocol": "TCP"},
        ],
        "env": _env(
            spec,
            component,
            block,
            diarization.env(spec, component, owner["metadata"]["namespace"], name, install.cluster_domain),
        ),
        "resources": resources,
        # Per-model readiness: KServe's server-wide /v2/health/ready stays true when the model
        # failed to load, the per-model path answers 503 until it is loaded.
        "readinessProbe": _probe(contract.model_readiness_path(predictor), 10, 3),
        "livenessProbe": _probe(contract.LIVENESS_PATH, 15, 4),
        # Model loading can take minutes; liveness only starts once this passes.
        "startupProbe": _probe(contract.LIVENESS_PATH, 10, 90),
        # A crash reports its last log lines: KServe copies the termination message into
        # status.modelStatus.lastFailureInfo (PropagateModelStatus, inference_service_status.go).
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    strategy = block["deploymentStrategy"]
    predictor_spec: Obj = {
        **scaling,
        "deploymentStrategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": strategy["maxSurge"], "maxUnavailable": strategy["maxUnavailable"]},
        },
        "labels": c.selector(name, component.name),
        "securityContext": c.non_root_pod(RUN_AS),
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": termination_grace_s(component),
    }
    if block.get("serviceAccountName"):
        predictor_spec["serviceAccountName"] = block["serviceAccountName"]
    if pool:
        if pool.get("nodeSelector"):
            predictor_spec["nodeSelector"] = dict(pool["nodeSelector"])
        if pool.get("tolerations"):
            predictor_spec["tolerations"] = [dict(t) for t in pool["tolerations"]]
        for key in ("affinity", "runtimeClassName", "priorityClassName"):
            if pool.get(key):
                predictor_spec[key] = pool[key]
    pull = [*spec["images"].get("pullSecrets", []), *(block.get("imagePullSecrets") or [])]
    if pull:
        predictor_spec["imagePullSecrets"] = [{"name": s} for s in dict.fromkeys(pull)]
    return {
        "apiVersion": ISVC_API_VERSION,
        "kind": "InferenceService",
        "metadata": meta,
        "spec": {"predictor": predictor_spec},
    }
