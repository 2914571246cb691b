"""The ReflectorGPU CustomResourceDefinition: the one source of truth for the API.

``crd()`` builds the CRD (schema, defaults, enums, ranges, CEL rules, printer columns);
``manifests/crd`` and the chart's copy are generated from it (``python -m rgpu_operator.gen``).
``apply_defaults`` applies the schema's own defaults the way the API server does, so builders
behave the same whether or not a spec has been through an API server (the emulator has none).
"""

from __future__ import annotations

import copy
from typing import Any

import rgpu_contract as contract

from . import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from .components import COMPONENTS

DEPLOYMENT_MODES = ("RawDeployment", "Serverless")
MODEL_CACHE_TYPES = ("None", "PVC", "LocalModelCache")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MAX_POOLS = 16
MAX_REPLICAS = 100
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Pool names are DNS labels so CEL and error messages can quote them plainly.
POOL_NAME_MAX = 63

# --- tiny schema helpers -----------------------------------------------------------------


def _s(desc: str, **kw: Any) -> dict:
    return {"type": "string", "description": desc, **kw}


def _i(desc: str, **kw: Any) -> dict:
    return {"type": "integer", "format": "int32", "description": desc, **kw}


def _b(desc: str, default: bool | None = None) -> dict:
    out: dict = {"type": "boolean", "description": desc}
    if default is not None:
        out["default"] = default
    return out


def _o(desc: str, props: dict | None = None, **kw: Any) -> dict:
    out: dict = {"type": "object", "description": desc}
    if props is not None:
        out["properties"] = props
    out.update(kw)
    return out


def _map(desc: str, values: dict | None = None, **kw: Any) -> dict:
    return _o(desc, additionalProperties=values or {"type": "string"}, **kw)


def _a(desc: str, items: dict, **kw: Any) -> dict:
    return {"type": "array", "description": desc, "items": items, **kw}


_QUANTITY = {
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "x-kubernetes-int-or-string": True,
    "pattern": (
        r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
        r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
    ),
}


def _resources() -> dict:
    return _o(
        "CPU/memory requests and limits for the predictor container (a core/v1 "
        "ResourceRequirements without claims). GPUs come from the pool; do not set them here.",
        {
            "requests": _map('Minimum resources, e.g. {cpu: "2", memory: 8Gi}.', _QUANTITY),
            "limits": _map("Maximum resources, e.g. {memory: 16Gi}.", _QUANTITY),
        },
    )


def _toleration() -> dict:
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


def _model(desc: str, default_name: str = "") -> dict:
    name: dict = _s("Model name the predictor loads (a hub name or a path in the image).", maxLength=253)
    if default_name:
        name["default"] = default_name
    return _o(
        desc,
        {
            "name": name,
            "storageUri": _s(
                "Model location KServe's storage initializer downloads to "
                f"{contract.MODEL_DIR} (s3://, gs://, hf://, pvc://, https://...). "
                "When set, it wins over name.",
                maxLength=2048,
            ),
        },
        default={},
    )


def _scaling(desc: str, pool: str, concurrency: int, *, gpu: bool = True) -> dict:
    props = {
        "minReplicas": _i(
            "Fewest predictor pods. 0 (scale to zero) requires deploymentMode Serverless.",
            minimum=0,
            maximum=MAX_REPLICAS,
            default=1,
        ),
        "maxReplicas": _i("Most predictor pods; must be >= minReplicas.", minimum=1, maximum=MAX_REPLICAS, default=1),
        "targetConcurrency": _i(
            "In-flight requests per pod: the autoscaling target (Serverless) and the predictor's "
            "admission limit, above which it answers 503 with Retry-After.",
            minimum=1,
            maximum=1000,
            default=concurrency,
        ),
        "resources": _resources(),
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
                }
            ],
        },
    )


def _component(desc: str, pool: str, concurrency: int, enabled: bool, *, model: bool = True, gpu: bool = True) -> dict:
    out = _scaling(desc, pool, concurrency, gpu=gpu)
    out["properties"]["enabled"] = _b("Deploy this component.", enabled)
    if model:
        out["properties"]["model"] = _model("Which model the component serves.")
    return out


def default_pools() -> dict:
    """The GPU pools a spec gets when it names none (GPU feature discovery product labels)."""

    def gpu_pool(product: str) -> dict:
        return {
            "nodeSelector": {"nvidia.com/gpu.product": product},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "gpu": {"resourceName": "nvidia.com/gpu", "count": 1},
        }

    return {"a10g": gpu_pool("NVIDIA-A10G"), "l40s": gpu_pool("NVIDIA-L40S")}


def _pool() -> dict:
    return _o(
        "Where and on what hardware a component runs.",
        {
            "nodeSelector": _map(
                "Node labels the pods require, e.g. "
                "{nvidia.com/gpu.product: NVIDIA-A10G} or a cloud instance-type label."
            ),
            "tolerations": _a("Taints the pods tolerate, e.g. nvidia.com/gpu:NoSchedule.", _toleration(), maxItems=32),
            "affinity": _o(
                "A core/v1 Affinity for the pods (node, pod and anti-affinity).",
                **{"x-kubernetes-preserve-unknown-fields": True},
            ),
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


def spec_schema() -> dict:
    comps = {c.name: c for c in COMPONENTS}
    transcriber = _o(
        "Speech-to-text: two InferenceServices of the same engine, 'live' for short clips "
        f"({contract.TRANSCRIPTIONS_PATH}) and 'file' for long recordings "
        f"({contract.TRANSCRIPTIONS_FROM_URL_PATH}), each on its own pool.",
        {
            "engine": _s("Transcription engine.", enum=list(contract.ENGINES), default="parakeet"),
            "model": _model("Which model the engine serves; empty name uses the engine's default."),
            "live": _scaling(
                "Short clips: high concurrency, batched into one model call.",
                comps["transcriber-live"].default_pool,
                10,
            ),
            "file": _scaling(
                "Long recordings fetched by URL: VAD-chunked, low concurrency.",
                comps["transcriber-file"].default_pool,
                2,
            ),
        },
        default={},
    )
    image_names = sorted({*contract.ENGINES, "diarizer", "translator", "llm", "padding"})
    return _o(
        "Desired state of a Reflector GPU service.",
        {
            "deploymentMode": _s(
                "KServe deployment mode. RawDeployment (Deployment + HPA) needs no Knative; "
                "Serverless (Knative) allows scale to zero.",
                enum=list(DEPLOYMENT_MODES),
                default="RawDeployment",
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
                    "tag": _s("Image tag; empty uses the operator's default (its own version)."),
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
                1,
                True,
            ),
            "translator": _component("Text translation.", comps["translator"].default_pool, 4, True),
            "llm": _component("LLM with /llm and an OpenAI-compatible chat API.", comps["llm"].default_pool, 4, False),
            "padding": _component(
                "Audio padding job (CPU only).", comps["padding"].default_pool, 4, True, model=False, gpu=False
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
                "(/transcriber, /diarizer, /translator, /llm, /padding). An Ingress by default, "
                "or a Gateway API HTTPRoute when gateway is set.",
                {
                    "enabled": _b("Expose the service outside the cluster.", False),
                    "host": _s(
                        "Public host name, e.g. gpu.example.com.",
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
            "networkPolicy": _o(
                "A NetworkPolicy so predictor pods take traffic only from the ingress controller's "
                f"namespaces and pods labelled {GROUP}/client=true in this namespace.",
                {
                    "enabled": _b("Emit the NetworkPolicy.", True),
                    "ingressNamespaces": _a(
                        "Namespaces allowed in (the ingress controller's, monitoring).",
                        _s("Namespace name."),
                        default=["ingress-nginx"],
                        maxItems=16,
                    ),
                },
                default={},
            ),
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
                        "The PersistentVolumeClaim holding models (type PVC).",
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
                            "modelSize": {
                                **_QUANTITY,
                                "description": "Space each cached model needs.",
                                "default": "20Gi",
                            },
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
            "urlAllowlist": _a(
                "Host names or CIDRs that user-supplied URLs (audio_file_url, "
                "padding URLs) may reach despite the private-address guard.",
                _s("Host name or CIDR."),
                maxItems=64,
            ),
            "env": _a(
                "Extra environment variables for every predictor container.",
                _o("A core/v1 EnvVar.", {"name": _s("Variable name."), "value": _s("Value.")}, required=["name"]),
                maxItems=64,
            ),
        },
        default={},
        **{"x-kubernetes-validations": cel_rules()},
    )


def _pool_rule(path: str, guard: str = "") -> dict:
    rule = f"{path}.pool in self.pools"
    if guard:
        rule = f"!{guard} || {rule}"
    return {
        "rule": rule,
        "message": f"spec.{path[5:]}.pool must name an entry of spec.pools",
        "fieldPath": f"{path[4:]}.pool",
    }


def cel_rules() -> list[dict]:
    """Cross-field rules on spec (evaluated by the API server, tested with cel-python)."""
    rules = [
        _pool_rule("self.transcriber.live"),
        _pool_rule("self.transcriber.file"),
        _pool_rule("self.diarizer", "self.diarizer.enabled"),
        _pool_rule("self.translator", "self.translator.enabled"),
        _pool_rule("self.llm", "self.llm.enabled"),
        {
            "rule": "!self.padding.enabled || self.padding.pool == '' || self.padding.pool in self.pools",
            "message": "spec.padding.pool must be empty or name an entry of spec.pools",
            "fieldPath": ".padding.pool",
        },
    ]
    blocks = [
        "self.transcriber.live",
        "self.transcriber.file",
        "self.diarizer",
        "self.translator",
        "self.llm",
        "self.padding",
    ]
    zero = " && ".join(f"{b}.minReplicas > 0" for b in blocks)
    rules.append(
        {
            "rule": f"self.deploymentMode == 'Serverless' || ({zero})",
            "message": "minReplicas: 0 (scale to zero) requires deploymentMode: Serverless",
        }
    )
    return rules


def status_schema() -> dict:
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
            "reason": _s("Reason from the InferenceService."),
            "message": _s("Message from the InferenceService."),
            "url": _s("In-cluster URL of the predictor."),
        },
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
            "url": _s("Base URL Reflector calls (the ingress, or in-cluster when ingress is disabled)."),
            "conditions": conditions,
            "components": _map("Per-component state, keyed by component name.", component),
            "endpoints": _o(
                "The exact Reflector settings; unset for disabled components.",
                {
                    v: _s(f"Value for Reflector's {v}.")
                    for v in ("TRANSCRIPT_URL", "DIARIZATION_URL", "TRANSLATE_URL", "LLM_URL", "PADDING_URL")
                },
            ),
            "modelCaches": _a("LocalModelCaches the operator created (cluster-scoped).", _s("Name.")),
            "apiKeySecret": _o(
                "Where Reflector reads the API key (never the key itself).",
                {
                    "name": _s("Secret name in this namespace."),
                    "key": _s("Key inside the Secret."),
                },
            ),
        },
    )


def crd() -> dict:
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
                            "name": "Engine",
                            "type": "string",
                            "jsonPath": ".spec.transcriber.engine",
                            "description": "Transcription engine.",
                        },
                        {
                            "name": "URL",
                            "type": "string",
                            "jsonPath": ".status.url",
                            "description": "Base URL Reflector calls.",
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


def openapi_schema() -> dict:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def apply_defaults(schema: dict, value: Any) -> Any:
    """Return ``value`` with the schema's defaults filled in, as the API server defaults it."""
    value = copy.deepcopy(value)
    _default(schema, value)
    return value


def _default(schema: dict, value: Any) -> None:
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


def defaulted_spec(spec: dict | None) -> dict:
    return apply_defaults(spec_schema(), spec or {})
