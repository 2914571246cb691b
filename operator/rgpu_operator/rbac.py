"""Least-privilege RBAC for the operator, as data (the chart and manifests render it).

Two install modes. Namespaced (``RGPU_OPERATOR_NAMESPACES`` set): a Role with :func:`rules`
``(cluster=False)`` in each watched namespace and nothing cluster-wide. Cluster-wide: one
ClusterRole with ``rules(cluster=True)``; it needs write on Secrets, Ingresses and
NetworkPolicies in every namespace only because a ReflectorGPU may be created in any of them.

Never granted: list or watch on Secrets (the operator reads only the Secret it generated and
checks that named ones exist, by name), Pods, CRDs or Namespaces (kopf runs with scanning
off). In both modes a Role in KServe's namespace may get the one ``kserve-controller-manager``
Deployment, to read KServe's version from its image (:func:`kserve_version_rules`; not needed
when the version is set).
"""

from __future__ import annotations

from typing import Any

from . import FIELD_MANAGER, GROUP, PLURAL, peering

READ = ["get", "list", "watch"]
WRITE = ["create", "patch", "delete"]
Obj = dict[str, Any]
KSERVE_DEPLOYMENT = "kserve-controller-manager"


def rules(*, cluster: bool = True) -> list[Obj]:
    out: list[Obj] = [
        # kopf watches ReflectorGPUs and patches its finalizer and progress annotations on them.
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": [*READ, "patch"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch"]},
        # Owner references with blockOwnerDeletion need update on the owner's finalizers.
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]},
        # The children: watched (readiness drives reconciles), applied, deleted.
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": [*READ, *WRITE]},
        # The generated API-key Secret by name; named Secrets are only checked to exist.
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", *WRITE]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", *WRITE]},
        # modelCache.type PVC: the claim's access modes, for status.warnings (read only).
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get"]},
        # list: the Ingresses and HTTPRoutes KServe made for our InferenceServices are found by
        # their owner reference and deleted.
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": ["get", "list", *WRITE]},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": ["get", "list", *WRITE]},
        # The PodMonitor for the predictors' metrics (when the API serves the kind).
        {"apiGroups": ["monitoring.coreos.com"], "resources": ["podmonitors"], "verbs": ["get", *WRITE]},
        # Envoy Gateway's extAuth in front of the LLM on KServe's runtime (llmroute).
        {"apiGroups": ["gateway.envoyproxy.io"], "resources": ["securitypolicies"], "verbs": ["get", *WRITE]},
        # Events on ReflectorGPUs (ours and kopf's).
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        # KServe's InternalError Events on our InferenceServices say why a Deployment was refused.
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    ]
    # kopf peering between replicas: watch the peering object, patch our entry in its status,
    # create it when missing (handlers._ensure_peering). Cluster-wide operators use the
    # cluster-scoped kind, namespaced ones a KopfPeering in each watched namespace.
    out.append(
        {
            "apiGroups": [peering.GROUP],
            "resources": [peering.CLUSTER_PLURAL if cluster else peering.NAMESPACED_PLURAL],
            "verbs": [*READ, "create", "patch"],
        }
    )
    if cluster:
        # Cluster-scoped, so only a cluster-wide install can manage them (modelCache LocalModelCache).
        out.append(
            {"apiGroups": ["serving.kserve.io"], "resources": ["localmodelcaches"], "verbs": ["get", "list", *WRITE]}
        )
    return out


def kserve_version_rules(deployment: str = KSERVE_DEPLOYMENT) -> list[Obj]:
    """Read KServe's controller Deployment (its image tag is the KServe version)."""
    return [{"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [deployment], "verbs": ["get"]}]


def cluster_role(name: str = FIELD_MANAGER) -> Obj:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": _labels()},
        "rules": rules(cluster=True),
    }


def role(namespace: str, name: str = FIELD_MANAGER, rule_list: list[Obj] | None = None) -> Obj:
    """Namespace-scoped variant for an operator watching only ``namespace``."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels()},
        "rules": rules(cluster=False) if rule_list is None else rule_list,
    }


def kserve_version_role(kserve_namespace: str = "kserve", name: str = f"{FIELD_MANAGER}-kserve-version") -> Obj:
    return role(kserve_namespace, name, kserve_version_rules())


def binding(role_obj: Obj, sa_namespace: str, sa_name: str = FIELD_MANAGER) -> Obj:
    cluster = role_obj["kind"] == "ClusterRole"
    meta: Obj = {"name": role_obj["metadata"]["name"], "labels": _labels()}
    if not cluster:
        meta["namespace"] = role_obj["metadata"]["namespace"]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding" if cluster else "RoleBinding",
        "metadata": meta,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_obj["kind"],
            "name": role_obj["metadata"]["name"],
        },
        "subjects": [{"kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace}],
    }


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": FIELD_MANAGER, "app.kubernetes.io/part-of": "reflector-gpu"}
