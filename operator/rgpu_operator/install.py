"""Pure builders: what installs the operator (namespace, service account, RBAC, Deployment) and
sample ReflectorGPU resources. Rendered to manifests/ by :mod:`rgpu_operator.gen`."""

from __future__ import annotations

from typing import Any

from . import API_VERSION, FIELD_MANAGER, KIND, __version__, peering, rbac

NAMESPACE = "reflector-gpu-system"
IMAGE = f"ghcr.io/monadical-sas/reflector-gpu-operator:{__version__}"
HEALTH_PORT = 8080
METRICS_PORT = 8081


def _labels() -> dict[str, Any]:
    return {"app.kubernetes.io/name": FIELD_MANAGER, "app.kubernetes.io/part-of": "reflector-gpu"}


def namespace(name: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**_labels(), "pod-security.kubernetes.io/enforce": "restricted"}},
    }


def service_account(ns: str = NAMESPACE) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": FIELD_MANAGER, "namespace": ns, "labels": _labels()},
    }


def pod_labels() -> str:
    """The operator pod's labels as RGPU_OPERATOR_POD_LABELS (the predictors' NetworkPolicy
    admits these pods for the readiness probe)."""
    return ",".join(f"{k}={v}" for k, v in _labels().items())


def deployment(ns: str = NAMESPACE, watch_namespaces: str = "", image: str = IMAGE) -> dict[str, Any]:
    """The operator with kopf peering on: scale it up for standbys; a rolling update hands over
    to the new pod (the newest replica works, see :mod:`peering`)."""
    env = [
        {"name": "RGPU_OPERATOR_NAMESPACES", "value": watch_namespaces},
        {"name": "RGPU_OPERATOR_PEERING", "value": peering.DEFAULT_NAME},
        # kopf's identity of this replica in the peering object.
        {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "RGPU_OPERATOR_IMAGE_REGISTRY", "value": "ghcr.io/monadical-sas"},
        {"name": "RGPU_OPERATOR_IMAGE_TAG", "value": __version__},
        # Empty: read from the kserve-controller-manager image (the kserve-version Role).
        {"name": "RGPU_OPERATOR_KSERVE_VERSION", "value": ""},
        {"name": "RGPU_OPERATOR_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "RGPU_OPERATOR_POD_LABELS", "value": pod_labels()},
        {"name": "RGPU_OPERATOR_HEALTH_PORT", "value": str(HEALTH_PORT)},
        {"name": "RGPU_OPERATOR_METRICS_PORT", "value": str(METRICS_PORT)},
    ]
    container = {
        "name": "operator",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "rgpu_operator"],
        "env": env,
        "ports": [
            {"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "health"},
            "initialDelaySeconds": 10,
            "periodSeconds": 20,
            "timeoutSeconds": 5,
        },
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": FIELD_MANAGER, "namespace": ns, "labels": _labels()},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": _labels()},
            "template": {
                "metadata": {"labels": _labels()},
                "spec": {
                    "serviceAccountName": FIELD_MANAGER,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def cluster_install() -> list[dict[str, Any]]:
    role = rbac.cluster_role()
    version = rbac.kserve_version_role()
    return [
        namespace(),
        service_account(),
        role,
        rbac.binding(role, NAMESPACE),
        version,
        rbac.binding(version, NAMESPACE),
        deployment(),
    ]


def namespaced_install(ns: str = "reflector") -> list[dict[str, Any]]:
    """The operator inside ``ns``, watching only ``ns``, with a Role instead of a ClusterRole."""
    role = rbac.role(ns)
    version = rbac.kserve_version_role()
    return [
        service_account(ns),
        role,
        rbac.binding(role, ns),
        version,
        rbac.binding(version, ns),
        deployment(ns, watch_namespaces=ns),
    ]


def _sample(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "namespace": "reflector"}, "spec": spec}


def _gpu_pool(selector: dict[str, str], **extra: str) -> dict[str, Any]:
    return {
        "nodeSelector": selector,
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        **extra,
    }


def samples() -> dict[str, dict[str, Any]]:
    """Sample resources by file name; each validates against the CRD and renders (tested)."""
    return {
        "minimal.yaml": _sample("reflector-gpu", {}),
        # The primary path: a Gateway API HTTPRoute (ingress-nginx reached end of life in 2026).
        "gateway-whisper.yaml": _sample(
            "reflector-gpu-whisper",
            {
                "transcriber": {
                    "engine": "whisper",
                    "model": {"name": "large-v3"},
                    "live": {"minReplicas": 1, "maxReplicas": 3},
                    "file": {"minReplicas": 1, "maxReplicas": 2},
                },
                "diarizer": {"enabled": False},
                "translator": {"enabled": False},
                "ingress": {
                    "enabled": True,
                    "host": "gpu.example.com",
                    "gateway": {"parentRefs": [{"name": "public", "namespace": "gateway-system"}]},
                },
                "auth": {"existingSecret": {"name": "reflector-gpu-apikey", "key": "apikey"}},
                "modelCache": {"type": "PVC", "pvc": {"claimName": "models"}},
            },
        ),
        # The LLM on KServe's Hugging Face runtime with vLLM, behind a Gateway with Envoy Gateway's
        # extAuth (the key is checked by the padding predictor's /auth; docs/llm.md).
        "gateway-llm-vllm.yaml": _sample(
            "reflector-gpu",
            {
                "llm": {
                    "enabled": True,
                    "runtime": "huggingface",
                    "pool": "l40s",
                    "model": {"name": "microsoft/phi-4"},
                    "hubTokenSecret": {"name": "hf-token", "key": "token"},
                    "huggingface": {"maxModelLen": 16000, "dtype": "bfloat16", "gpuMemoryUtilization": 0.9},
                },
                "ingress": {
                    "enabled": True,
                    "host": "gpu.example.com",
                    "gateway": {"parentRefs": [{"name": "public", "namespace": "gateway-system"}]},
                },
                "networkPolicy": {"edge": {"preset": "envoy-gateway"}},
            },
        ),
        "ingress-tls.yaml": _sample(
            "reflector-gpu",
            {
                "transcriber": {
                    "engine": "parakeet",
                    "model": {"name": "nvidia/parakeet-tdt-0.6b-v2"},
                    # Scaled by KEDA (through KServe) on in-flight + queued requests.
                    "live": {"minReplicas": 1, "maxReplicas": 4, "autoscaling": {"class": "keda"}},
                    "file": {"minReplicas": 1, "maxReplicas": 2, "autoscaling": {"class": "keda"}},
                },
                # pyannote is small (< 100 MB of weights): an A10G is plenty. Its pipelines are
                # gated on the hub: the token comes from a Secret.
                "diarizer": {
                    "pool": "a10g",
                    "maxReplicas": 2,
                    "autoscaling": {"class": "keda"},
                    "model": {"name": "pyannote/speaker-diarization-community-1"},
                    "hubTokenSecret": {"name": "hf-token", "key": "token"},
                },
                "translator": {"engine": "m2m100", "model": {"name": "facebook/m2m100_418M"}},
                "llm": {"enabled": True, "model": {"storageUri": "hf://HuggingFaceTB/SmolLM2-1.7B-Instruct"}},
                "pools": {
                    "a10g": _gpu_pool({"nvidia.com/gpu.product": "NVIDIA-A10G"}),
                    "l40s": _gpu_pool({"nvidia.com/gpu.product": "NVIDIA-L40S"}),
                },
                "ingress": {
                    "enabled": True,
                    "host": "gpu.example.com",
                    "tlsSecretName": "gpu-example-com-tls",
                    "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                },
                "networkPolicy": {"edge": {"preset": "ingress-nginx"}},
                "keda": {"serverAddress": "http://prometheus-operated.monitoring.svc:9090"},
                "auth": {"additionalKeys": [{"name": "reflector-gpu-next-key", "key": "apikey"}]},
            },
        ),
        "eks-instance-types.yaml": _sample(
            "reflector-gpu",
            {
                "pools": {
                    "a10g": _gpu_pool({"node.kubernetes.io/instance-type": "g5.xlarge"}),
                    "l40s": _gpu_pool({"node.kubernetes.io/instance-type": "g6e.xlarge"}),
                },
                "translator": {"engine": "nllb", "model": {"name": "facebook/nllb-200-distilled-600M"}},
                "images": {
                    "registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com/reflector",
                    "tag": __version__,
                    "pullSecrets": [],
                },
                "ingress": {"enabled": True, "host": "gpu.internal.example.com", "className": "nginx"},
                "networkPolicy": {"edge": {"preset": "ingress-nginx"}, "monitoringNamespaces": ["monitoring"]},
            },
        ),
    }
