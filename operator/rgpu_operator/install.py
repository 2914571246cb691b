"""Pure builders: what installs the operator (namespace, service account, RBAC, Deployment) and
sample ReflectorGPU resources. Rendered to manifests/ by :mod:`rgpu_operator.gen`."""

from __future__ import annotations

from . import API_VERSION, FIELD_MANAGER, KIND, __version__, peering, rbac

NAMESPACE = "reflector-gpu-system"
IMAGE = f"ghcr.io/monadical-sas/reflector-gpu-operator:{__version__}"
HEALTH_PORT = 8080


def _labels() -> dict:
    return {"app.kubernetes.io/name": FIELD_MANAGER, "app.kubernetes.io/part-of": "reflector-gpu"}


def namespace(name: str = NAMESPACE) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**_labels(), "pod-security.kubernetes.io/enforce": "restricted"}},
    }


def service_account(ns: str = NAMESPACE) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": FIELD_MANAGER, "namespace": ns, "labels": _labels()},
    }


def deployment(ns: str = NAMESPACE, watch_namespaces: str = "", image: str = IMAGE) -> dict:
    """The operator with kopf peering on: scale it up for standbys; a rolling update hands over
    to the new pod (the newest replica works, see :mod:`peering`)."""
    env = [
        {"name": "RGPU_OPERATOR_NAMESPACES", "value": watch_namespaces},
        {"name": "RGPU_OPERATOR_PEERING", "value": peering.DEFAULT_NAME},
        # kopf's identity of this replica in the peering object.
        {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "RGPU_OPERATOR_IMAGE_REGISTRY", "value": "ghcr.io/monadical-sas"},
        {"name": "RGPU_OPERATOR_IMAGE_TAG", "value": __version__},
        {"name": "RGPU_OPERATOR_HEALTH_PORT", "value": str(HEALTH_PORT)},
    ]
    container = {
        "name": "operator",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "rgpu_operator"],
        "env": env,
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
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


def cluster_install() -> list[dict]:
    role = rbac.cluster_role()
    return [namespace(), service_account(), role, rbac.binding(role, NAMESPACE), deployment()]


def namespaced_install(ns: str = "reflector") -> list[dict]:
    """The operator inside ``ns``, watching only ``ns``, with a Role instead of a ClusterRole."""
    role = rbac.role(ns)
    return [service_account(ns), role, rbac.binding(role, ns), deployment(ns, watch_namespaces=ns)]


def _sample(name: str, spec: dict) -> dict:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "namespace": "reflector"}, "spec": spec}


def samples() -> dict[str, dict]:
    """Sample resources by file name; each validates against the CRD (tested)."""
    return {
        "minimal.yaml": _sample("reflector-gpu", {}),
        "ingress-tls.yaml": _sample(
            "reflector-gpu",
            {
                "transcriber": {
                    "engine": "parakeet",
                    "live": {"minReplicas": 1, "maxReplicas": 4},
                    "file": {"minReplicas": 1, "maxReplicas": 2},
                },
                "diarizer": {"pool": "a100", "maxReplicas": 2},
                "llm": {"enabled": True, "model": {"storageUri": "hf://HuggingFaceTB/SmolLM2-1.7B-Instruct"}},
                "pools": {
                    "a10g": {
                        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A10G"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    },
                    "l40s": {
                        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L40S"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    },
                    "a100": {
                        "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                        "runtimeClassName": "nvidia",
                    },
                },
                "ingress": {
                    "enabled": True,
                    "host": "gpu.example.com",
                    "tlsSecretName": "gpu-example-com-tls",
                    "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                },
                "auth": {"additionalKeys": [{"name": "reflector-gpu-next-key", "key": "apikey"}]},
            },
        ),
        "gateway-whisper-serverless.yaml": _sample(
            "reflector-gpu-whisper",
            {
                "deploymentMode": "Serverless",
                "transcriber": {
                    "engine": "whisper",
                    "model": {"name": "large-v3"},
                    "live": {"minReplicas": 0, "maxReplicas": 3},
                    "file": {"minReplicas": 0, "maxReplicas": 2},
                },
                "diarizer": {"enabled": False},
                "translator": {"enabled": False},
                "padding": {"minReplicas": 0},
                "ingress": {
                    "enabled": True,
                    "host": "gpu.example.com",
                    "gateway": {"parentRefs": [{"name": "public", "namespace": "gateway-system"}]},
                },
                "auth": {"existingSecret": {"name": "reflector-gpu-apikey", "key": "apikey"}},
                "modelCache": {"type": "PVC", "pvc": {"claimName": "models"}},
            },
        ),
        "eks-instance-types.yaml": _sample(
            "reflector-gpu",
            {
                "pools": {
                    "a10g": {
                        "nodeSelector": {"node.kubernetes.io/instance-type": "g5.xlarge"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    },
                    "l40s": {
                        "nodeSelector": {"node.kubernetes.io/instance-type": "g6e.xlarge"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    },
                },
                "images": {
                    "registry": "123456789012.dkr.ecr.us-east-1.amazonaws.com/reflector",
                    "tag": __version__,
                    "pullSecrets": [],
                },
                "ingress": {"enabled": True, "host": "gpu.internal.example.com", "className": "nginx"},
                "networkPolicy": {"ingressNamespaces": ["ingress-nginx", "monitoring"]},
            },
        ),
    }
