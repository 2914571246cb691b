"""Pure: the LLM on KServe's Hugging Face runtime with vLLM (``llm.runtime: huggingface``).

``custom`` is our own predictor image (``rgpu-llm``: ``transformers.generate``, the legacy
``/llm`` route, our key check). ``huggingface`` is KServe's ``kserve-huggingfaceserver``
ClusterServingRuntime (``../shared/kserve/kserve-huggingfaceserver.yaml``): paged attention,
continuous batching, structured output, and OpenAI routes under ``/openai/v1``
(``OPENAI_ROUTE_PREFIX``, ``kserve/protocol/rest/openai/endpoints.py``). It checks no key, so
the route to it is authenticated at the edge (:mod:`llmroute`).

Which runtime a CR gets when ``spec.llm.runtime`` is unset (CRD defaulting cannot tell a new CR
from an existing one, so the schema has no default and the operator decides, once):

- the runtime recorded in ``status.llmRuntime`` (what it resolved before) stays;
- a CR that has a status but no recorded runtime was reconciled by an operator before this
  field: it keeps ``custom``;
- a new CR (no status yet) gets ``huggingface`` when its LLM pool has GPUs, else ``custom``.

The resolved value is recorded in ``status.llmRuntime``, so it never flips by itself; setting
the field switches.
"""

from __future__ import annotations

import re
from typing import Any

import rgpu_contract as contract

from . import components as c
from . import modelcache

Obj = dict[str, Any]

HUGGINGFACE = "huggingface"
CUSTOM = "custom"
RUNTIMES = (HUGGINGFACE, CUSTOM)
#: KServe's ClusterServingRuntime for Hugging Face models (``metadata.name`` of its YAML).
DEFAULT_SERVING_RUNTIME = "kserve-huggingfaceserver"
#: The format that runtime lists in ``supportedModelFormats`` (``autoSelect: true``).
MODEL_FORMAT = "huggingface"
#: Reflector's LLM context window setting.
DEFAULT_MAX_MODEL_LEN = 16000
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
#: ``--dtype`` choices (``dtype_choices`` in huggingfaceserver ``__main__.py``; vLLM's own
#: ``--dtype`` accepts the same names).
DTYPES = ("auto", "float16", "bfloat16", "float32", "half", "float")
#: Where KServe serves the OpenAI routes: ``KSERVE_OPENAI_ROUTE_PREFIX`` (default ``/openai``)
#: + ``/v1/chat/completions`` ... (``register_openai_endpoints``, kserve_openai_endpoints.py).
OPENAI_PREFIX = "/openai/v1"
#: The status field recording the resolved runtime.
STATUS_FIELD = "llmRuntime"
#: Status fields every operator version writes on its first reconcile: their presence means the
#: resource existed before (kopf keeps its own state in annotations, never in status).
RECONCILED = ("observedGeneration", "conditions", "components", "reflector")
#: Startup allowance: the runtime loads the model (and downloads a hub model) before its HTTP
#: server answers at all (``load_model()`` runs before ``ModelServer.start``, huggingfaceserver
#: ``__main__.py``), so the liveness checks wait up to an hour instead of the custom predictor's 15
#: minutes.
STARTUP_PERIOD_S = 10
STARTUP_FAILURES = 360
#: Where the storage initializer puts ``storageUri`` (the runtime's ``--model_dir`` default).
MODEL_DIR = "/mnt/models"


def pool_gpus(spec: Obj) -> int:
    """GPUs per pod of the LLM's pool (0 when the pool is missing or CPU-only)."""
    pool = spec["pools"].get(spec["llm"].get("pool") or "")
    return int(((pool or {}).get("gpu") or {}).get("count", 1)) if pool is not None else 0


def resolve(owner: Obj, spec: Obj) -> str:
    """The runtime the LLM runs on (see the module docstring)."""
    explicit = spec["llm"].get("runtime")
    if explicit:
        return str(explicit)
    status = owner.get("status") or {}
    recorded = status.get(STATUS_FIELD)
    if recorded in RUNTIMES:
        return str(recorded)
    if any(key in status for key in RECONCILED):
        return CUSTOM  # reconciled before the field existed: existing CRs keep custom
    return HUGGINGFACE if pool_gpus(spec) > 0 else CUSTOM


def on_huggingface(spec: Obj) -> bool:
    """The spec (runtime resolved by :func:`desired.plan`) runs the LLM on KServe's runtime."""
    return bool(spec["llm"].get("runtime") == HUGGINGFACE)


def serving_runtime(spec: Obj) -> str:
    return str(spec["llm"]["huggingface"].get("servingRuntime") or DEFAULT_SERVING_RUNTIME)


def served_model_name(spec: Obj) -> str:
    """The name the runtime serves the model under (``--model_name``), and so ``LLM_MODEL``.

    Slash-free: KServe puts it in paths (``/v1/models/{name}``, ``/v2/models/{name}/ready``),
    where a hub name's ``/`` would not match. The last part of the hub name, lower-cased, with
    anything else than ``[a-z0-9._-]`` replaced (``microsoft/phi-4`` -> ``phi-4``); ``llm``
    when the model only has a storageUri."""
    llm = spec["llm"]
    chosen = llm["huggingface"].get("servedModelName")
    if chosen:
        return str(chosen)
    name = str((llm.get("model") or {}).get("name") or "").rstrip("/").rsplit("/", 1)[-1].lower()
    slug = re.sub(r"[^a-z0-9._-]+", "-", name).strip("-.")
    return slug or "llm"


def model_name(spec: Obj, component: c.Component) -> str:
    """The KServe model name a component's pods serve (what readiness is asked for)."""
    if component.name == "llm" and on_huggingface(spec):
        return served_model_name(spec)
    return c.predictor(spec, component)


def args(spec: Obj) -> list[str]:
    """The runtime's arguments (huggingfaceserver ``__main__.py``; KServe appends them after the
    runtime's own ``--model_name={{.Name}}``, and argparse keeps the last value).

    - ``--backend=vllm``: never ``auto``, which silently falls back to the transformers backend
      when vLLM is missing, and that backend ignores ``response_format``; with ``vllm`` a missing
      vLLM is an error (``load_model``: "Backend is set to 'vllm' but vLLM is not available").
      KServe still takes the transformers backend for an architecture vLLM does not support
      (``is_vllm_backend_enabled`` also asks ``infer_vllm_supported_from_model_architecture``),
      whatever ``--backend`` says: docs/llm.md names that limit.
    - ``--model_id``: the hub name when no storageUri is given (otherwise ``--model_dir``'s
      default ``/mnt/models`` is where the storage initializer put it).
    - ``--max_model_len``, ``--dtype``: the parser's own names; ``--gpu-memory-utilization``:
      vLLM's engine argument (added by ``maybe_add_vllm_cli_parser``).
    """
    llm = spec["llm"]
    hf = llm["huggingface"]
    out = ["--backend=vllm", f"--model_name={served_model_name(spec)}"]
    model = llm.get("model") or {}
    if not model.get("storageUri") and model.get("name") and not _pvc_uri(spec):
        out.append(f"--model_id={model['name']}")
    out += [
        f"--max_model_len={hf['maxModelLen']}",
        f"--dtype={hf['dtype']}",
        f"--gpu-memory-utilization={hf['gpuMemoryUtilization']}",
    ]
    return out


def _pvc_uri(spec: Obj) -> str | None:
    cache = spec["modelCache"]
    name = (spec["llm"].get("model") or {}).get("name")
    if cache["type"] == "PVC" and name:
        return f"pvc://{cache['pvc']['claimName']}/{name}"
    return None


def storage_uri(spec: Obj) -> str | None:
    """The cache Job's PVC path (modelCache.type Job), ``llm.model.storageUri``, or the PVC model
    cache's path for the model name."""
    cached = modelcache.for_model(spec, spec["llm"].get("model") or {})
    if cached is not None:
        return cached.uri
    uri = (spec["llm"].get("model") or {}).get("storageUri")
    return str(uri) if uri else _pvc_uri(spec)


def build(isvc: Obj, spec: Obj) -> Obj:
    """The LLM InferenceService on the Hugging Face runtime, from the custom one ``isvc`` built by
    :func:`inferenceservice.build` (so resources, the pool's scheduling and GPUs, the labels,
    cluster-local visibility, the deployment mode and the update strategy are the same as every
    other component's): its container becomes ``predictor.model`` on the runtime.

    Dropped: our command and the API-key volume (the runtime checks no key; :mod:`llmroute`
    authenticates at the edge), our metrics port (the runtime serves ``/metrics`` on 8080,
    its ``prometheus.kserve.io/port``), and the read-only root filesystem (vLLM and torch
    write caches outside ``/tmp``)."""
    pred = isvc["spec"]["predictor"]
    container = pred.pop("containers")[0]
    served = served_model_name(spec)
    # Our predictors' settings (REFLECTOR_GPU_*, STORAGE_URI) mean nothing to the runtime;
    # HOME, HF_TOKEN and the user's env stay.
    env = [e for e in container["env"] if not e["name"].startswith("REFLECTOR_GPU_") and e["name"] != "STORAGE_URI"]
    env.append({"name": "HF_HOME", "value": "/tmp/huggingface"})
    security = {k: v for k, v in container["securityContext"].items() if k != "readOnlyRootFilesystem"}
    model: Obj = {
        "modelFormat": {"name": MODEL_FORMAT},
        "runtime": serving_runtime(spec),
        "args": args(spec),
        "env": env,
        "resources": container["resources"],
        "ports": [{"name": "http", "containerPort": container["ports"][0]["containerPort"], "protocol": "TCP"}],
        "readinessProbe": {**container["readinessProbe"], "httpGet": _readiness(container, served)},
        "livenessProbe": container["livenessProbe"],
        "startupProbe": {
            **container["startupProbe"],
            "periodSeconds": STARTUP_PERIOD_S,
            "failureThreshold": STARTUP_FAILURES,
        },
        "terminationMessagePolicy": container["terminationMessagePolicy"],
        "securityContext": security,
        "volumeMounts": [m for m in container["volumeMounts"] if m["name"] == "tmp"],
    }
    uri = storage_uri(spec)
    if uri:
        model["storageUri"] = uri
    pred["volumes"] = [v for v in pred["volumes"] if v["name"] == "tmp"]
    pred["model"] = model
    isvc["metadata"]["labels"][c.LABEL_COMPONENT] = "llm"
    return isvc


def _readiness(container: Obj, served: str) -> Obj:
    return {"path": contract.model_readiness_path(served), "port": container["ports"][0]["containerPort"]}
