"""Least-privilege RBAC for the operator, as data (the chart and manifests render it).

No list/watch on Secrets (the operator never reads keys: it only creates the generated
Secret and checks it exists), no CRD or namespace access (kopf runs with scanning disabled),
no pods. Cluster-scoped LocalModelCaches need the ClusterRole; the namespaced variant omits them.
"""

from __future__ import annotations

from . import FIELD_MANAGER, GROUP, PLURAL, peering

READ = ["get", "list", "watch"]
WRITE = ["create", "patch", "delete"]


def rules(*, cluster: bool = True) -> list[dict]:
    out = [
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": [*READ, "patch"]},
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/status"], "verbs": ["get", "patch"]},
        # Owner references with blockOwnerDeletion need update on the owner's finalizers.
        {"apiGroups": [GROUP], "resources": [f"{PLURAL}/finalizers"], "verbs": ["update"]},
        {"apiGroups": ["serving.kserve.io"], "resources": ["inferenceservices"], "verbs": [*READ, *WRITE]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", *WRITE]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses", "networkpolicies"], "verbs": ["get", *WRITE]},
        {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"], "verbs": ["get", *WRITE]},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
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
        out.append(
            {"apiGroups": ["serving.kserve.io"], "resources": ["localmodelcaches"], "verbs": ["get", "list", *WRITE]}
        )
    return out


def cluster_role(name: str = FIELD_MANAGER) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": _labels()},
        "rules": rules(cluster=True),
    }


def role(namespace: str, name: str = FIELD_MANAGER) -> dict:
    """Namespace-scoped variant for an operator watching only ``namespace``."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": _labels()},
        "rules": rules(cluster=False),
    }


def binding(role_obj: dict, sa_namespace: str, sa_name: str = FIELD_MANAGER) -> dict:
    cluster = role_obj["kind"] == "ClusterRole"
    meta = {"name": role_obj["metadata"]["name"], "labels": _labels()}
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


def _labels() -> dict:
    return {"app.kubernetes.io/name": FIELD_MANAGER, "app.kubernetes.io/part-of": "reflector-gpu"}
