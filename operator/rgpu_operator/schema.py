"""The ReflectorGPU CustomResourceDefinition: the one source of truth for the API.

``crd()`` builds the CRD (schema, defaults, enums, ranges, CEL rules, printer columns);
``manifests/crd`` and the chart's copy are generated from it (``python -m rgpu_operator.gen``).
``apply_defaults`` applies the schema's own defaults the way the API server does, so builders
behave the same whether or not a spec has been through an API server. The CEL rules have a
Python twin in :mod:`rules` (the operator and ``render`` check specs without an API server;
a test keeps the two in agreement).
"""

from __future__ import annotations

import copy
from typing import Any

import rgpu_contract as contract

from . import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION, llmruntime
from .components import ADMISSION, AUTOSCALER_CLASSES, COMPONENTS, LABEL_CLIENT
from .settings import EDGE_PRESETS

#: Accepted so a CR naming them gets a clear CEL message instead of a silent prune; only the raw
#: names pass (the mode is the operator's setting now, see docs/operator.md).
DEPLOYMENT_MODES = ("RawDeployment", "Standard", "Serverless", "Knative")
MODEL_CACHE_TYPES = ("None", "PVC", "LocalModelCache")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TRANSLATOR_AUTH = ("apiKey", "networkPolicy")
IMAGE_POLICIES = ("Pinned", "FollowOperator")
#: ``""``: the operator's setting; ``custom``: the selectors given.
EDGE_CHOICES = ("", *EDGE_PRESETS, "custom")
MAX_POOLS = 16
MAX_REPLICAS = 100
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
#: Pool names are DNS labels so CEL and error messages can quote them plainly.
POOL_NAME_MAX = 63
#: Environment variable names that must never carry a plain value (rules.SECRET_NAME twin).
SECRET_ENV = r"(?i)(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|CREDENTIAL|PRIVATE_?KEY)"
#: ... unless the name says it holds a path (``REFLECTOR_GPU_APIKEY_FILE``).
PATH_ENV = r"_(FILE|PATH|DIR)$"

Schema = dict[str, Any]
#: Refusal of llm.runtime huggingface on a CPU pool (CEL messageExpression and rules.py).
LLM_NEEDS_GPU = (
    "llm.runtime huggingface needs GPUs: pool {pool} has none (gpu.count 0); use runtime custom on CPU pools"
)

#: Messages shared by the CEL rules and their twins in :mod:`rules`.
NO_SCALE_TO_ZERO = (
    "minReplicas: 0 (scale to zero) is not supported: KServe's Standard mode needs a request-holding proxy "
    "for it, and KEDA's HTTP add-on collides with KServe's own ScaledObject (docs/scaling.md, Scale to zero)"
)
NO_CPU_SCALING = (
    "autoscaling.class hpa scales on CPU utilisation, which says nothing about a busy GPU: use "
    "autoscaling.class keda (KServe's KEDA autoscaler on in-flight + queued requests, docs/scaling.md) "
    "or none (fixed replicas)"
)
KEDA_NEEDS_PROMETHEUS = (
    "autoscaling.class keda needs spec.keda.serverAddress (the Prometheus KEDA queries for "
    "reflector_gpu_inflight_requests + reflector_gpu_queued_requests)"
)

# --- tiny schema helpers -----------------------------------------------------------------


def _s(desc: str, **kw: Any) -> Schema:
    return {"type": "string", "description": desc, **kw}


def _i(desc: str, **kw: Any) -> Schema:
    return {"type": "integer", "format": "int32", "description": desc, **kw}


def _b(desc: str, default: bool | None = None) -> Schema:
    out: Schema = {"type": "boolean", "description": desc}
    if default is not None:
        out["default"] = default
    return out


def _o(desc: str, props: Schema | None = None, **kw: Any) -> Schema:
    out: Schema = {"type": "object", "description": desc}
    if props is not None:
        out["properties"] = props
    out.update(kw)
    return out


def _map(desc: str, values: Schema | None = None, **kw: Any) -> Schema:
    return _o(desc, additionalProperties=values or {"type": "string"}, **kw)


def _a(desc: str, items: Schema, **kw: Any) -> Schema:
    return {"type": "array", "description": desc, "items": items, **kw}


_QUANTITY: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
    "pattern": (
        r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
        r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
    ),
}
_INT_OR_PERCENT: Schema = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
    "pattern": r"^([0-9]+%?)$",
}


def _quantity(desc: str, **kw: Any) -> Schema:
    return {**_QUANTITY, "description": desc, **kw}


def _resources() -> Schema:
    sized = {"cpu", "memory", "ephemeral-storage"}
    only = {
        "rule": "self.all(k, k in " + str(sorted(sized)) + ")",
        "message": "only cpu, memory and ephemeral-storage may be set here (GPUs come from the pool)",
    }
    return _o(
        "Overrides of the sized defaults (docs/operator.md, Sizing) for cpu, memory and "
        "ephemeral-storage. A request alone raises the default limit to it, a limit alone lowers "
        "the default request; both given with the request above the limit is refused.",
        {
            "requests": _map(
                'e.g. {cpu: "4", memory: 16Gi}.', _QUANTITY, maxProperties=3, **{"x-kubernetes-validations": [only]}
            ),
            "limits": _map("e.g. {memory: 24Gi}.", _QUANTITY, maxProperties=3, **{"x-kubernetes-validations": [only]}),
        },
    )


def _toleration() -> Schema:
    return _o(
        "A core/v1 Toleration.",
        {
            "key": _s("Taint key; empty with operator Exists matches every taint."),
            "operator": _s("How key and value are compared.", enum=["Exists", "Equal"]),
            "value": _s("Taint value (operator Equal)."),
            "effect": _s("Taint effect to tolerate; empty matches all effects.", enum=["", *TAINT_EFFECTS]),
            "tolerationSeconds": {
                "type": "integer",
                "format": "int64",
                "description": "How long a NoExecute taint is tolerated.",
            },
        },
    )


def _key_ref(desc: str) -> Schema:
    return _o(
        desc,
        {
            "name": _s("Object name in this namespace.", maxLength=253),
            "key": _s("Key inside it.", maxLength=253),
            "optional": _b("Start even when it is missing."),
        },
        required=["name", "key"],
    )


def _env() -> Schema:
    item = _o(
        "A core/v1 EnvVar: a plain value, or a value from a Secret or ConfigMap key.",
        {
            "name": _s("Variable name.", maxLength=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"),
            "value": _s("Plain value (never for tokens, keys or passwords: use valueFrom.secretKeyRef)."),
            "valueFrom": _o(
                "Where the value comes from.",
                {
                    "secretKeyRef": _key_ref("A key of a Secret in this namespace."),
                    "configMapKeyRef": _key_ref("A key of a ConfigMap in this namespace."),
                },
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                            "message": "valueFrom needs exactly one of secretKeyRef and configMapKeyRef",
                        }
                    ]
                },
            ),
        },
        required=["name"],
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.value) && has(self.valueFrom))",
                    "message": "set value or valueFrom, not both",
                },
                {
                    "rule": f"!has(self.value) || !self.name.matches('{SECRET_ENV}') "
                    f"|| self.name.matches('{PATH_ENV}')",
                    "message": "a token, key or password must come from valueFrom.secretKeyRef, never a plain value",
                    "fieldPath": ".value",
                },
            ]
        },
    )
    return _a("Extra environment variables.", item, maxItems=64)


def _model(desc: str) -> Schema:
    return _o(
        desc,
        {
            "name": _s("Model name the predictor loads (a hub name or a path in the image).", maxLength=253),
            "storageUri": _s(
                "Model location KServe's storage initializer downloads to "
                f"{contract.MODEL_DIR} (s3://, gs://, hf://, pvc://, https://...). "
                "When set, it wins over name.",
                maxLength=2048,
            ),
        },
        default={},
    )


def _strategy(gpu: bool) -> Schema:
    surge, unavailable = (0, 1) if gpu else (1, 0)
    why = (
        "Defaults to maxSurge 0 / maxUnavailable 1: an update replaces a pod in place instead of "
        "needing a spare GPU (a single replica is briefly down)."
        if gpu
        else "Defaults to maxSurge 1 / maxUnavailable 0 (no GPU: roll without downtime)."
    )
    return _o(
        "Rolling update of the predictor Deployment (KServe's deploymentStrategy). " + why,
        {
            "maxSurge": {**_INT_OR_PERCENT, "description": "Extra pods during an update.", "default": surge},
            "maxUnavailable": {
                **_INT_OR_PERCENT,
                "description": "Pods that may be down during an update.",
                "default": unavailable,
            },
        },
        default={},
    )


def _autoscaling(gpu: bool) -> Schema:
    why = (
        "none (default): fixed at minReplicas (KServe's autoscalerClass none; maxReplicas is not used). "
        "keda: KServe's KEDA ScaledObject on in-flight + queued requests "
        "(reflector_gpu_inflight_requests + reflector_gpu_queued_requests from Prometheus, "
        "spec.keda.serverAddress), targetInFlight per replica. hpa (CPU utilisation) is refused: CPU "
        "says nothing about a busy GPU."
        if gpu
        else "hpa (default): CPU utilisation at 80% (this component runs on CPU). keda: in-flight + queued "
        "requests from Prometheus, as for the GPU components. none: fixed at minReplicas."
    )
    return _o(
        "How replicas follow load (docs/scaling.md). " + why,
        {"class": _s("The autoscaler.", enum=list(AUTOSCALER_CLASSES), default="none" if gpu else "hpa")},
        default={},
    )


def _scaling(desc: str, pool: str, limits: tuple[int, int], *, gpu: bool = True, model: bool = False) -> Schema:
    in_flight, queued = limits
    props: Schema = {
        "minReplicas": _i(
            "Fewest predictor pods (at least 1: scale to zero is not supported).",
            minimum=0,
            maximum=MAX_REPLICAS,
            default=1,
        ),
        "maxReplicas": _i(
            "Most predictor pods; must be >= minReplicas. Used by autoscaling.class keda and hpa.",
            minimum=1,
            maximum=MAX_REPLICAS,
            default=1,
        ),
        "maxInFlight": _i(
            "Requests one pod works on at once (REFLECTOR_GPU_MAX_IN_FLIGHT); /tmp is sized for this many "
            "spooled files. docs/scaling.md has the arithmetic behind the default.",
            minimum=1,
            maximum=1000,
            default=in_flight,
        ),
        "maxQueued": _i(
            "Requests one pod holds waiting, first come first served, behind those in flight "
            "(REFLECTOR_GPU_MAX_QUEUED); beyond it the pod answers 503 with Retry-After. Sized so a queued "
            "request still finishes within Reflector's timeout (docs/scaling.md).",
            minimum=0,
            maximum=10000,
            default=queued,
        ),
        "targetInFlight": _i(
            "Autoscaling target: in-flight + queued requests per pod above which KEDA adds a pod "
            "(autoscaling.class keda). Default: targetConcurrency when set, else maxInFlight (a pod "
            "is scaled past once it queues).",
            minimum=1,
            maximum=10000,
        ),
        "targetConcurrency": _i(
            "Deprecated (it was both the admission limit and the scaling target): use maxInFlight, "
            "maxQueued and targetInFlight. When set, it is read as targetInFlight (if that is unset) "
            "only; admission follows maxInFlight and maxQueued.",
            minimum=1,
            maximum=1000,
        ),
        "autoscaling": _autoscaling(gpu),
        "resources": _resources(),
        "deploymentStrategy": _strategy(gpu),
        "serviceAccountName": _s(
            "ServiceAccount of the predictor pods (default: the namespace's default).", maxLength=253
        ),
        "imagePullSecrets": _a(
            "More docker-registry Secrets for this component's pods (added to images.pullSecrets).",
            _s("Secret name.", maxLength=253),
            maxItems=8,
        ),
        "env": _env(),
    }
    if gpu:
        props["pool"] = _s(
            "Name of the entry in spec.pools whose nodes run this component.", default=pool, maxLength=POOL_NAME_MAX
        )
    else:
        props["pool"] = _s(
            "Optional entry in spec.pools for scheduling only (node selector, "
            "tolerations); this component never requests GPUs.",
            default=pool,
            maxLength=POOL_NAME_MAX,
        )
    if model:
        props["model"] = _model("Which model the component serves.")
        props["hubTokenSecret"] = _key_ref(
            "Hugging Face token for gated hub models (e.g. pyannote's pipelines), from a Secret: set as HF_TOKEN."
        )
    return _o(
        desc,
        props,
        default={},
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "minReplicas must be less than or equal to maxReplicas",
                    "fieldPath": ".minReplicas",
                },
                {
                    "rule": "self.minReplicas >= 1",
                    "message": NO_SCALE_TO_ZERO,
                    "fieldPath": ".minReplicas",
                },
                *(
                    [
                        {
                            "rule": "self.autoscaling.class != 'hpa'",
                            "message": NO_CPU_SCALING,
                            "fieldPath": ".autoscaling.class",
                        }
                    ]
                    if gpu
                    else []
                ),
            ]
        },
    )


def _component(
    desc: str, pool: str, limits: tuple[int, int], enabled: bool, *, model: bool = True, gpu: bool = True
) -> Schema:
    out = _scaling(desc, pool, limits, gpu=gpu, model=model)
    out["properties"]["enabled"] = _b("Deploy this component.", enabled)
    return out


def default_pools() -> Schema:
    """The GPU pools a spec gets when it names none (GPU feature discovery product labels)."""

    def gpu_pool(product: str) -> Schema:
        return {
            "nodeSelector": {"nvidia.com/gpu.product": product},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "gpu": {"resourceName": "nvidia.com/gpu", "count": 1},
        }

    return {"a10g": gpu_pool("NVIDIA-A10G"), "l40s": gpu_pool("NVIDIA-L40S")}


def _pool() -> Schema:
    return _o(
        "Where and on what hardware a component runs.",
        {
            "nodeSelector": _map(
                "Node labels the pods require, e.g. "
                "{nvidia.com/gpu.product: NVIDIA-A10G} or a cloud instance-type label."
            ),
            "tolerations": _a("Taints the pods tolerate, e.g. nvidia.com/gpu:NoSchedule.", _toleration(), maxItems=32),
            "affinity": {
                "type": "object",
                "description": "A core/v1 Affinity for the pods (node, pod and anti-affinity).",
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "runtimeClassName": _s("RuntimeClass of the pods, e.g. nvidia."),
            "priorityClassName": _s("PriorityClass of the pods."),
            "gpu": _o(
                "The accelerator each pod requests.",
                {
                    "resourceName": _s(
                        "Extended resource name of the GPU.",
                        default="nvidia.com/gpu",
                        pattern=r"^([a-z0-9.-]+/)?[A-Za-z0-9._-]+$",
                    ),
                    "count": _i("GPUs per pod; 0 runs on CPU.", minimum=0, maximum=16, default=1),
                },
                default={},
            ),
        },
    )


def _selector(desc: str) -> Schema:
    return _o(desc, {"matchLabels": _map("Labels that must all match.", maxProperties=16)})


def _network_policy() -> Schema:
    return _o(
        "One NetworkPolicy per component: its pods take traffic only from the peers each enabled "
        "feature needs (docs/operator.md, Network policy).",
        {
            "enabled": _b("Emit the NetworkPolicies.", True),
            "edge": _o(
                "Where the ingress controller's or Gateway's proxy pods run (admitted to the serving "
                "port when spec.ingress is enabled).",
                {
                    "preset": _s(
                        "Empty: the operator's setting (RGPU_OPERATOR_EDGE). auto: ingress-nginx for an "
                        "Ingress, Envoy Gateway for an HTTPRoute; ingress-nginx, envoy-gateway, istio; none; "
                        "custom: the selectors below.",
                        enum=list(EDGE_CHOICES),
                        default="",
                    ),
                    "namespaceSelector": _selector("custom: namespaces of the proxy pods."),
                    "podSelector": _selector("custom: labels of the proxy pods (empty: every pod there)."),
                },
                default={},
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "self.preset != 'custom' || has(self.namespaceSelector)",
                            "message": "edge.namespaceSelector is required with preset custom",
                        }
                    ]
                },
            ),
            "clientNamespaces": _a(
                f"Namespaces whose pods labelled {LABEL_CLIENT}=true may call the predictors "
                "(default: this namespace only).",
                _s("Namespace name.", maxLength=63),
                maxItems=16,
            ),
            "monitoringNamespaces": _a(
                "Namespaces admitted to the metrics port only (default: the operator's setting, "
                "RGPU_OPERATOR_MONITORING_NAMESPACES).",
                _s("Namespace name.", maxLength=63),
                maxItems=16,
            ),
            "ingressNamespaces": _a(
                "Deprecated (use edge): more namespaces admitted to the serving port.",
                _s("Namespace name.", maxLength=63),
                maxItems=16,
            ),
        },
        default={},
    )


def _llm(pool: str) -> Schema:
    out = _component(
        "The LLM Reflector's summaries, topics and titles use (OpenAI chat completions; docs/llm.md).",
        pool,
        ADMISSION["llm"],
        False,
    )
    props = out["properties"]
    props["runtime"] = _s(
        "huggingface: KServe's Hugging Face runtime with vLLM (paged attention, continuous batching, "
        "structured output), authenticated at the edge by the padding predictor's /auth route. custom: "
        "our own predictor (transformers.generate, the legacy /llm route; what CPU pools and local mode "
        "run). Unset: the operator decides once and records it in status.llmRuntime: a new ReflectorGPU "
        "gets huggingface when the pool has GPUs, custom otherwise; one reconciled before this field "
        "existed keeps custom. huggingface on a pool without GPUs is refused.",
        enum=list(llmruntime.RUNTIMES),
    )
    props["huggingface"] = _o(
        "Settings of the huggingface runtime (huggingfaceserver and vLLM arguments).",
        {
            "servingRuntime": _s(
                "The ClusterServingRuntime or ServingRuntime serving the model (it must support the "
                "huggingface model format). A name KServe does not know leaves the component Degraded "
                "(RuntimeNotRecognized).",
                default=llmruntime.DEFAULT_SERVING_RUNTIME,
                maxLength=253,
                pattern=DNS_SUBDOMAIN,
            ),
            "servedModelName": _s(
                "The model name clients send (LLM_MODEL); default: the last part of model.name "
                "(microsoft/phi-4 -> phi-4), or llm. No '/'.",
                maxLength=128,
                pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9._-]*$",
            ),
            "maxModelLen": _i(
                "--max_model_len: context window in tokens (Reflector's setting is 16000).",
                minimum=256,
                maximum=1048576,
                default=llmruntime.DEFAULT_MAX_MODEL_LEN,
            ),
            "dtype": _s("--dtype: weight data type.", enum=list(llmruntime.DTYPES), default="auto"),
            "gpuMemoryUtilization": {
                "type": "number",
                "description": "--gpu-memory-utilization: share of GPU memory vLLM may take (weights and KV cache).",
                "minimum": 0.05,
                "maximum": 1.0,
                "default": llmruntime.DEFAULT_GPU_MEMORY_UTILIZATION,
            },
        },
        default={},
    )
    return out


def spec_schema() -> Schema:
    comps = {c.name: c for c in COMPONENTS}
    transcriber = _o(
        "Speech-to-text: two InferenceServices of the same engine, 'live' for short clips "
        f"({contract.TRANSCRIPTIONS_PATH}) and 'file' for long recordings "
        f"({contract.TRANSCRIPTIONS_FROM_URL_PATH}), each on its own pool.",
        {
            "engine": _s("Transcription engine.", enum=list(contract.ENGINES), default="parakeet"),
            "model": _model("Which model the engine serves; empty name uses the engine's default."),
            "hubTokenSecret": _key_ref("Hugging Face token for gated hub models, from a Secret: set as HF_TOKEN."),
            "live": _scaling(
                "Short clips: high concurrency, batched into one model call.",
                comps["transcriber-live"].default_pool,
                ADMISSION["transcriber-live"],
            ),
            "file": _scaling(
                "Long recordings fetched by URL: VAD-chunked, low concurrency.",
                comps["transcriber-file"].default_pool,
                ADMISSION["transcriber-file"],
            ),
        },
        default={},
    )
    translator = _component("Text translation.", comps["translator"].default_pool, ADMISSION["translator"], True)
    translator["properties"]["engine"] = _s(
        "Model family; it must match the model (nllb: facebook/nllb-200-*, m2m100: facebook/m2m100_*, "
        "marian: Helsinki-NLP/opus-mt-*).",
        enum=list(contract.TRANSLATOR_ENGINES),
        default="nllb",
    )
    translator["properties"]["auth"] = _s(
        "apiKey: the predictor checks the API key (and is routed through the ingress). networkPolicy: "
        f"no key, not routed, reachable only from pods labelled {LABEL_CLIENT}=true: the workaround for "
        "Reflector's translator, which sends no key (docs/operator.md).",
        enum=list(TRANSLATOR_AUTH),
        default="apiKey",
    )
    image_names = sorted({*contract.ENGINES, "diarizer", "translator", "llm", "padding"})
    return _o(
        "Desired state of a Reflector GPU service.",
        {
            "deploymentMode": _s(
                "Deprecated: the KServe deployment mode is the operator's (Standard, the raw Deployment "
                "mode, under the name the installed KServe knows). RawDeployment and Standard are accepted "
                "and ignored; Serverless/Knative is refused.",
                enum=list(DEPLOYMENT_MODES),
            ),
            "pools": _map(
                "Named node pools components are scheduled on. Defaults: a10g and l40s, selecting "
                "nvidia.com/gpu.product and tolerating nvidia.com/gpu:NoSchedule.",
                _pool(),
                default=default_pools(),
                maxProperties=MAX_POOLS,
                minProperties=1,
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "self.all(name, name.matches('" + DNS_LABEL + "'))",
                            "message": "pool names must be DNS labels (lowercase letters, digits, '-')",
                        }
                    ]
                },
            ),
            "images": _o(
                "Predictor container images.",
                {
                    "registry": _s(
                        "Registry and path prefix; image = <registry>/reflector-gpu-<predictor>:<tag>. "
                        "Empty uses the operator's default."
                    ),
                    "tag": _s("Image tag; empty uses the operator's default (its own version), pinned in status."),
                    "policy": _s(
                        "Pinned: an image resolved from the operator's defaults is kept (status.images) "
                        "across operator upgrades, so GPU pods restart only when you choose. "
                        "FollowOperator: always the operator's current default.",
                        enum=list(IMAGE_POLICIES),
                        default="Pinned",
                    ),
                    "pullPolicy": _s(
                        "Image pull policy.", enum=["Always", "IfNotPresent", "Never"], default="IfNotPresent"
                    ),
                    "pullSecrets": _a(
                        "Names of docker-registry Secrets in this namespace.", _s("Secret name."), maxItems=16
                    ),
                    "overrides": _o(
                        "Full image reference per predictor, replacing registry/tag.",
                        {n: _s(f"Image for the {n} predictor.") for n in image_names},
                    ),
                },
                default={},
            ),
            "transcriber": transcriber,
            "diarizer": _component(
                "Speaker diarization (pyannote); one request at a time per GPU.",
                comps["diarizer"].default_pool,
                ADMISSION["diarizer"],
                True,
            ),
            "translator": translator,
            "llm": _llm(comps["llm"].default_pool),
            "padding": _component(
                "Audio padding job (CPU only).",
                comps["padding"].default_pool,
                ADMISSION["padding"],
                True,
                model=False,
                gpu=False,
            ),
            "files": _o(
                "Largest files the predictors accept: each is spooled to /tmp, whose size follows.",
                {
                    "maxUpload": _quantity("Largest upload (multipart).", default="1Gi"),
                    "maxDownload": _quantity("Largest download (audio_file_url, padding tracks).", default="4Gi"),
                },
                default={},
            ),
            "auth": _o(
                "API keys the predictors accept (Authorization: Bearer <key>).",
                {
                    "existingSecret": _o(
                        "Use this Secret instead of generating one.",
                        {
                            "name": _s("Secret name in this namespace.", maxLength=253),
                            "key": _s("Key inside the Secret holding the API key(s).", default="apikey"),
                        },
                        required=["name"],
                    ),
                    "additionalKeys": _a(
                        "More Secret keys whose values are accepted too, so keys rotate without downtime. "
                        "A value may also hold several keys, comma- or newline-separated.",
                        _o(
                            "A key inside a Secret.",
                            {
                                "name": _s("Secret name in this namespace."),
                                "key": _s("Key inside the Secret."),
                            },
                            required=["name", "key"],
                        ),
                        maxItems=8,
                    ),
                },
                default={},
            ),
            "ingress": _o(
                "How Reflector reaches the service: one host, a path prefix per component "
                "(/transcriber, /diarizer, /translator, /llm, /padding; /transcriber-file reaches the "
                "file transcriber, where diarized uploads go). A Gateway API HTTPRoute "
                "when gateway is set (the primary path), else an Ingress (ingress-nginx annotations).",
                {
                    "enabled": _b("Expose the service outside the cluster.", False),
                    "host": _s(
                        "Public host name, e.g. gpu.example.com. Two ReflectorGPUs cannot share one: the "
                        "oldest keeps it, the other reports HostConflict and gets no route.",
                        maxLength=253,
                        pattern=r"^$|^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                    ),
                    "className": _s("IngressClass; the rewrite annotations target ingress-nginx.", default="nginx"),
                    "tlsSecretName": _s(
                        "TLS Secret for the host; empty serves plain HTTP (or TLS terminated elsewhere; see scheme)."
                    ),
                    "scheme": _s(
                        "Scheme of the URLs in status; defaults to https when tlsSecretName or gateway is set.",
                        enum=["", "http", "https"],
                        default="",
                    ),
                    "annotations": _map(
                        "Extra annotations on the Ingress or HTTPRoute (e.g. cert-manager.io/cluster-issuer)."
                    ),
                    "maxBodySize": _s("Largest request body the Ingress accepts (ingress-nginx).", default="1g"),
                    "timeoutSeconds": _i(
                        "Proxy read/send timeout for long transcriptions.", minimum=1, maximum=86400, default=3600
                    ),
                    "gateway": _o(
                        "Emit an HTTPRoute attached to these Gateways instead of an Ingress.",
                        {
                            "parentRefs": _a(
                                "Gateways (or listeners) the route attaches to.",
                                _o(
                                    "A Gateway API ParentReference.",
                                    {
                                        "name": _s("Gateway name."),
                                        "namespace": _s("Gateway namespace; defaults to this namespace."),
                                        "sectionName": _s("Listener name."),
                                        "port": _i("Listener port.", minimum=1, maximum=65535),
                                    },
                                    required=["name"],
                                ),
                                minItems=1,
                                maxItems=8,
                            ),
                        },
                        required=["parentRefs"],
                    ),
                },
                default={},
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "!self.enabled || (has(self.host) && size(self.host) > 0)",
                            "message": "ingress.host is required when ingress is enabled",
                            "fieldPath": ".host",
                        }
                    ]
                },
            ),
            "networkPolicy": _network_policy(),
            "modelCache": _o(
                "Where model files are cached between pod restarts.",
                {
                    "type": _s(
                        "None: each pod downloads (or the image holds) the model. PVC: models "
                        "live at pvc://<claimName>/<model name> unless a storageUri is given. "
                        "LocalModelCache: the operator creates a KServe LocalModelCache per "
                        "storageUri so nodes pre-load it.",
                        enum=list(MODEL_CACHE_TYPES),
                        default="None",
                    ),
                    "pvc": _o(
                        "The PersistentVolumeClaim holding models (type PVC). It must be ReadOnlyMany or "
                        "ReadWriteMany when a component's replicas can land on several nodes (maxReplicas > 1 "
                        "with autoscaling): a ReadWriteOnce volume attaches to one node only, so pods elsewhere "
                        "never start. status.warnings says so.",
                        {
                            "claimName": _s("PVC name in this namespace."),
                        },
                        required=["claimName"],
                    ),
                    "localModelCache": _o(
                        "LocalModelCache settings (type LocalModelCache).",
                        {
                            "nodeGroups": _a(
                                "LocalModelNodeGroup names to cache on.", _s("Node group name."), minItems=1, maxItems=8
                            ),
                            "modelSize": _quantity("Space each cached model needs.", default="20Gi"),
                        },
                        required=["nodeGroups"],
                    ),
                },
                default={},
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "self.type != 'PVC' || has(self.pvc)",
                            "message": "modelCache.pvc is required when type is PVC",
                        },
                        {
                            "rule": "self.type != 'LocalModelCache' || has(self.localModelCache)",
                            "message": "modelCache.localModelCache is required when type is LocalModelCache",
                        },
                    ]
                },
            ),
            "monitoring": _o(
                "Prometheus Operator objects for the predictors' metrics.",
                {
                    "podMonitor": _o(
                        "A PodMonitor scraping every predictor pod's metrics port (9090, /metrics), made "
                        "when the API serves monitoring.coreos.com/v1 PodMonitor (API discovery); status "
                        "says when it cannot be. KEDA autoscaling reads what it scrapes.",
                        {
                            "enabled": _b("Make the PodMonitor when the kind is served.", True),
                            "interval": _s(
                                "Scrape interval.", default="15s", pattern=r"^(0|([0-9]+(ms|s|m|h))+)$", maxLength=16
                            ),
                            "labels": _map(
                                "Extra labels on the PodMonitor, e.g. release: kube-prometheus-stack for a "
                                "Prometheus whose podMonitorSelector needs it."
                            ),
                        },
                        default={},
                    )
                },
                default={},
            ),
            "keda": _o(
                "Where KEDA reads the predictors' load, for components with autoscaling.class keda: "
                "KServe (0.15 or later, Standard mode) creates a KEDA ScaledObject with one Prometheus "
                "trigger per component, sum(reflector_gpu_inflight_requests + reflector_gpu_queued_requests) "
                "over its pods, target targetInFlight per pod. Prometheus must scrape the predictors' "
                "metrics port (9090) with namespace and pod labels (e.g. a PodMonitor).",
                {
                    "serverAddress": _s(
                        "Prometheus base URL KEDA queries, e.g. http://prometheus-operated.monitoring.svc:9090.",
                        default="",
                        maxLength=2048,
                    ),
                    "authenticationRef": _s(
                        "Name of a KEDA TriggerAuthentication in this namespace for that Prometheus; needs "
                        "KServe 0.16 or later (the operator refuses it on older KServe).",
                        default="",
                        maxLength=253,
                    ),
                    "authModes": _s(
                        "KEDA's Prometheus authModes with authenticationRef (bearer, basic, tls, custom).",
                        default="",
                        maxLength=63,
                    ),
                },
                default={},
            ),
            "urlAllowlist": _a(
                "Host names or CIDRs that user-supplied URLs (audio_file_url, "
                "padding URLs) may reach despite the private-address guard.",
                _s("Host name or CIDR."),
                maxItems=64,
            ),
            "env": {**_env(), "description": "Extra environment variables for every predictor container."},
        },
        default={},
        **{"x-kubernetes-validations": cel_rules()},
    )


def _pool_rule(path: str, guard: str = "") -> Schema:
    rule = f"{path}.pool in self.pools"
    if guard:
        rule = f"!{guard} || {rule}"
    return {
        "rule": rule,
        "message": f"spec.{path[5:]}.pool must name an entry of spec.pools",
        "fieldPath": f"{path[4:]}.pool",
    }


def _keda_uses() -> list[str]:
    """CEL: each enabled component whose autoscaling.class is keda."""
    out = []
    for comp in COMPONENTS:
        path = f"self.{comp.section}" + (f".{comp.profile}" if comp.profile else "")
        uses = f"{path}.autoscaling.class == 'keda'"
        out.append(uses if comp.section == "transcriber" else f"({path}.enabled && {uses})")
    return out


def cel_rules() -> list[Schema]:
    """Cross-field rules on spec (evaluated by the API server; twins in :mod:`rules`)."""
    return [
        {
            "rule": "!has(self.deploymentMode) || self.deploymentMode in ['RawDeployment', 'Standard']",
            "message": "deploymentMode Serverless/Knative is not supported: these predictors need a "
            "termination grace, node selectors and long route timeouts Knative refuses; to scale on "
            "load use KEDA autoscaling (docs/operator.md, Autoscaling)",
            "fieldPath": ".deploymentMode",
        },
        _pool_rule("self.transcriber.live"),
        _pool_rule("self.transcriber.file"),
        _pool_rule("self.diarizer", "self.diarizer.enabled"),
        _pool_rule("self.translator", "self.translator.enabled"),
        _pool_rule("self.llm", "self.llm.enabled"),
        {
            "rule": "!(" + " || ".join(_keda_uses()) + ") || self.keda.serverAddress != ''",
            "message": KEDA_NEEDS_PROMETHEUS,
            "fieldPath": ".keda.serverAddress",
        },
        {
            "rule": "!self.llm.enabled || !has(self.llm.runtime) || self.llm.runtime != 'huggingface' "
            "|| !(self.llm.pool in self.pools) || self.pools[self.llm.pool].gpu.count > 0",
            "message": LLM_NEEDS_GPU.format(pool="<spec.llm.pool>"),
            "messageExpression": "'" + LLM_NEEDS_GPU.format(pool="' + self.llm.pool + '") + "'",
            "fieldPath": ".llm.runtime",
        },
        {
            "rule": "!self.padding.enabled || self.padding.pool == '' || self.padding.pool in self.pools",
            "message": "spec.padding.pool must be empty or name an entry of spec.pools",
            "fieldPath": ".padding.pool",
        },
    ]


def status_schema() -> Schema:
    cond = _o(
        "A metav1.Condition.",
        {
            "type": _s("Ready, Progressing or Degraded."),
            "status": _s("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": _s("CamelCase reason."),
            "message": _s("Human-readable detail."),
            "lastTransitionTime": _s("When status last changed.", format="date-time"),
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "Generation the condition was computed for.",
            },
        },
        required=["type", "status"],
    )
    conditions = _a(
        "Overall conditions: Ready, Progressing, Degraded.",
        cond,
        **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    component = _o(
        "State of one component.",
        {
            "inferenceService": _s("Name of its InferenceService."),
            "ready": _b("The InferenceService reports Ready."),
            "state": _s("Ready, Progressing or Degraded.", enum=["Ready", "Progressing", "Degraded"]),
            "reason": _s("Why, e.g. ModelLoadFailed, AdmissionRejected, DeploymentRefused, InvalidSpec."),
            "message": _s("The detail: KServe's or the API server's message, or the predictor's readiness answer."),
            "url": _s("In-cluster URL of the predictor."),
            "image": _s("The image it runs."),
            "autoscaling": _o(
                "How its replicas follow load.",
                {
                    "class": _s("autoscaling.class: keda, hpa or none."),
                    "query": _s(
                        "With keda: the Prometheus query KEDA runs (one series: in-flight + queued requests "
                        "over the component's pods)."
                    ),
                    "targetInFlight": _i("With keda: in-flight + queued requests per pod KEDA aims for."),
                },
            ),
        },
    )
    secret_ref = _o(
        "Where a Reflector setting's value is (never the value).",
        {"name": _s("Secret name in this namespace."), "key": _s("Key inside the Secret.")},
    )
    return _o(
        "Observed state, written by the operator.",
        {
            "observedGeneration": {
                "type": "integer",
                "format": "int64",
                "description": "The metadata.generation this status describes.",
            },
            "ready": _s("Ready condition status, for printing.", enum=["True", "False", "Unknown"]),
            "componentStates": _s("Every enabled component and its state, for kubectl get."),
            "url": _s("Base URL Reflector calls (the ingress, or in-cluster when ingress is disabled)."),
            "conditions": conditions,
            "components": _map("Per-component state, keyed by component name.", component),
            "endpoints": _o(
                "The Reflector URL settings; unset for disabled components (see reflector for all).",
                {
                    v: _s(f"Value for Reflector's {v}.")
                    for v in ("TRANSCRIPT_URL", "DIARIZATION_URL", "TRANSLATE_URL", "LLM_URL", "PADDING_URL")
                },
            ),
            "reflector": _o(
                "Reflector's settings for this service (server/reflector/settings.py).",
                {
                    "env": _map("Plain values, e.g. TRANSCRIPT_BACKEND=modal, TRANSCRIPT_URL."),
                    "secretEnv": _map(
                        "Settings whose value is the API key: where to read it (e.g. TRANSCRIPT_MODAL_API_KEY).",
                        secret_ref,
                    ),
                    "notes": _a("Workarounds in effect and what they mean for Reflector.", _s("A note.")),
                },
            ),
            "images": _map("Predictor -> the image resolved for it (kept across operator upgrades when Pinned)."),
            "kserve": _o(
                "The KServe the children were written for.",
                {
                    "version": _s("KServe minor version (the operator's setting or its detection)."),
                    "deploymentMode": _s("The mode name written on new InferenceServices."),
                },
            ),
            "modelCaches": _a("LocalModelCaches the operator created (cluster-scoped).", _s("Name.")),
            "warnings": _a(
                "What works now but may not later, e.g. a ReadWriteOnce model PVC for a component that can scale "
                "past one node.",
                _s("A warning."),
            ),
            "monitoring": _o(
                "Monitoring objects.",
                {
                    "podMonitor": _s("Name of the PodMonitor made for the predictors, when there is one."),
                    "message": _s("Why there is none although monitoring.podMonitor.enabled is set."),
                },
            ),
            llmruntime.STATUS_FIELD: _s(
                "The LLM runtime resolved for this resource (spec.llm.runtime, or the operator's choice "
                "when unset); kept so an unset field never switches it.",
                enum=list(llmruntime.RUNTIMES),
            ),
            "apiKeySecret": _o(
                "Where Reflector reads the API key (never the key itself).",
                {
                    "name": _s("Secret name in this namespace."),
                    "key": _s("Key inside the Secret."),
                },
            ),
        },
    )


def crd() -> Schema:
    """The CustomResourceDefinition, as a plain dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "reflector-gpu"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "listKind": f"{KIND}List",
                "shortNames": list(SHORT_NAMES),
                "categories": ["reflector"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": "Ready",
                            "type": "string",
                            "jsonPath": ".status.ready",
                            "description": "All enabled components serve.",
                        },
                        {
                            "name": "Components",
                            "type": "string",
                            "jsonPath": ".status.componentStates",
                            "description": "Each enabled component and its state.",
                        },
                        {
                            "name": "URL",
                            "type": "string",
                            "jsonPath": ".status.url",
                            "description": "Base URL Reflector calls.",
                            "priority": 1,
                        },
                        {
                            "name": "Engine",
                            "type": "string",
                            "jsonPath": ".spec.transcriber.engine",
                            "description": "Transcription engine.",
                            "priority": 1,
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A Reflector GPU service: transcription, diarization, translation, "
                            "LLM and padding predictors on KServe, behind one authenticated URL.",
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version."},
                                "kind": {"type": "string", "description": "Kind."},
                                "metadata": {"type": "object"},
                                "spec": spec_schema(),
                                "status": status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def openapi_schema() -> Schema:
    out: Schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return out


def apply_defaults(schema: Schema, value: Any) -> Any:
    """Return ``value`` with the schema's defaults filled in, as the API server defaults it."""
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                _default(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                _default(extra, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(schema["items"], item)


def defaulted_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = apply_defaults(spec_schema(), spec or {})
    return out
