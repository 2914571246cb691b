"""Generate the chart's derived files from the operator's Python (the one source of truth).

    python charts/gen_chart.py           # write them
    python charts/gen_chart.py --check   # exit 1 when a file is missing or differs (CI drift check)

Generated (do not edit by hand):

- ``reflector-gpu/crds/<crd>.yaml``: the ReflectorGPU CRD, from ``rgpu_operator.gen.chart_files``
  (the same text as ``manifests/crd/``).
- ``reflector-gpu/files/rbac-rules.yaml``: the operator's RBAC rules (``rgpu_operator.rbac``),
  which ``templates/rbac.yaml`` renders into the ClusterRole or the per-namespace Roles.
- ``reflector-gpu/files/dashboard.json``: the Grafana dashboard (``charts/dashboard.py``), which
  ``templates/dashboard.yaml`` puts in a ConfigMap for Grafana's sidecar.
- ``reflector-gpu/values.schema.json``: the values schema; ``reflectorGPU.spec`` is the CRD's own
  spec schema, tightened to reject unknown keys (the API server would silently prune them).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHART = HERE / "reflector-gpu"
REPO = HERE.parent
sys.path[:0] = [str(REPO / "operator"), str(REPO / "predictors"), str(HERE)]

from dashboard import dashboard  # noqa: E402  (charts/dashboard.py)

from rgpu_operator import gen  # noqa: E402
from rgpu_operator.schema import spec_schema  # noqa: E402
from rgpu_operator.settings import EDGE_PRESETS  # noqa: E402

GENERATED_BY = "python charts/gen_chart.py"


# --- values.schema.json ------------------------------------------------------------------------


def _str(desc: str, **kw) -> dict:
    return {"type": "string", "description": desc, **kw}


def _int(desc: str, **kw) -> dict:
    return {"type": "integer", "description": desc, **kw}


def _bool(desc: str) -> dict:
    return {"type": "boolean", "description": desc}


def _obj(desc: str, props: dict | None = None, *, closed: bool = True, **kw) -> dict:
    out: dict = {"type": "object", "description": desc}
    if props is not None:
        out["properties"] = props
        if closed:
            out["additionalProperties"] = False
    return {**out, **kw}


def _map(desc: str) -> dict:
    return {"type": "object", "description": desc, "additionalProperties": {"type": "string"}}


def _free(desc: str) -> dict:
    """A Kubernetes object the API server validates (affinity, securityContext ...)."""
    return {"type": "object", "description": desc}


_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def _tighten(schema: dict) -> dict:
    """The CRD spec schema as a values schema: Kubernetes-only keywords dropped, objects with
    declared properties closed (unknown keys rejected instead of pruned)."""
    out = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-"):
            continue
        if key == "properties":
            out[key] = {k: _tighten(v) for k, v in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _tighten(value)
        elif key == "anyOf":
            out[key] = [_tighten(v) for v in value]
        elif key == "format" and value in ("int32", "int64"):
            continue
        else:
            out[key] = copy.deepcopy(value)
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _values_spec() -> dict:
    """The CRD's spec schema as a values schema, plus what its CEL rules say and JSON Schema can:
    no Serverless/Knative, no scale to zero."""
    out = _tighten(spec_schema())
    out["properties"]["deploymentMode"]["enum"] = ["RawDeployment", "Standard"]

    def walk(node: dict) -> None:
        for key, sub in (node.get("properties") or {}).items():
            if key == "minReplicas":
                sub["minimum"] = 1
            walk(sub)

    walk(out)
    return out


def values_schema() -> dict:
    positive = {"type": "number", "exclusiveMinimum": 0}
    schema = _obj(
        "Values of the reflector-gpu chart (see values.yaml for each field).",
        {
            "global": _free("Helm global values (unused by this chart)."),
            "nameOverride": _str(
                "Replaces the chart name in object names.", pattern=r"^$|" + _DNS_LABEL[1:], maxLength=40
            ),
            "fullnameOverride": _str("Replaces the object name prefix.", pattern=r"^$|" + _DNS_LABEL[1:], maxLength=52),
            "commonLabels": _map("Labels added to every object."),
            "image": _obj(
                "The operator image.",
                {
                    "registry": _str("Registry and path prefix.", minLength=1),
                    "repository": _str("Image name.", minLength=1),
                    "tag": _str("Tag; empty uses appVersion."),
                    "override": _str("Full image reference; replaces registry/repository/tag."),
                    "pullPolicy": _str("Image pull policy.", enum=["Always", "IfNotPresent", "Never"]),
                },
                required=["registry", "repository", "pullPolicy"],
            ),
            "imagePullSecrets": {
                "type": "array",
                "description": "Pull Secret names.",
                "items": _str("Secret name.", pattern=_DNS_SUBDOMAIN),
                "maxItems": 16,
            },
            "replicaCount": _int(
                "Operator pods: 0 pauses it; more than 1 needs operator.peering.enabled.", minimum=0, maximum=5
            ),
            "operator": _obj(
                "Operator settings (RGPU_OPERATOR_* environment).",
                {
                    "watchNamespaces": {
                        "type": "array",
                        "uniqueItems": True,
                        "maxItems": 64,
                        "description": "Watched namespaces; empty = cluster-wide.",
                        "items": _str("Namespace.", pattern=_DNS_LABEL, maxLength=63),
                    },
                    "predictorImages": _obj(
                        "Default predictor images.",
                        {
                            "registry": _str("Registry and path prefix of the predictor images.", minLength=1),
                            "tag": _str("Tag; empty uses appVersion."),
                        },
                        required=["registry"],
                    ),
                    "resyncSeconds": {**positive, "description": "Periodic re-check interval (s)."},
                    "requestTimeoutSeconds": {**positive, "description": "API call timeout (s)."},
                    "apiAttempts": _int("Attempts per API call.", minimum=1, maximum=20),
                    "apiBackoffSeconds": {**positive, "description": "Backoff base (s)."},
                    "healthPort": _int("kopf liveness port.", minimum=1024, maximum=65535),
                    "metricsPort": _int("Operator metrics port; 0: off.", minimum=0, maximum=65535),
                    "kserve": _obj(
                        "The KServe the operator drives.",
                        {
                            "version": _str(
                                "KServe version (0.15, 0.16 ...); empty: read from its controller's image.",
                                pattern=r"^$|^v?[0-9]+\.[0-9]+(\.[0-9]+)?$",
                            ),
                            "namespace": _str("KServe's namespace.", pattern=_DNS_LABEL, maxLength=63),
                            "deployment": _str("KServe's controller Deployment.", pattern=_DNS_SUBDOMAIN),
                        },
                        required=["version", "namespace", "deployment"],
                    ),
                    "edge": _str(
                        "Where the ingress/Gateway proxies run (NetworkPolicy peer).", enum=list(EDGE_PRESETS)
                    ),
                    "monitoringNamespaces": {
                        "type": "array",
                        "uniqueItems": True,
                        "maxItems": 16,
                        "description": "Namespaces admitted to the predictors' metrics port.",
                        "items": _str("Namespace.", pattern=_DNS_LABEL, maxLength=63),
                    },
                    "probeReadiness": _bool("Ask not-ready predictors why (readiness route), for status."),
                    "clusterDomain": _str("The cluster's DNS domain.", pattern=_DNS_SUBDOMAIN),
                    "extraEnv": {
                        "type": "array",
                        "description": "Extra core/v1 EnvVars.",
                        "items": _obj(
                            "An EnvVar.",
                            {
                                "name": _str("Name.", minLength=1),
                                "value": _str("Value."),
                                "valueFrom": _free("Source."),
                            },
                            required=["name"],
                        ),
                    },
                    "peering": _obj(
                        "kopf peering between operator replicas.",
                        {
                            "enabled": _bool("Peering on (replicas coordinate); off: standalone, one replica."),
                        },
                        required=["enabled"],
                    ),
                },
                required=["watchNamespaces", "predictorImages", "healthPort", "peering", "kserve", "edge"],
            ),
            "monitoring": _obj(
                "Prometheus Operator and Grafana objects.",
                {
                    "podMonitor": _obj(
                        "PodMonitor for the operator (when the kind is served).",
                        {
                            "enabled": _bool("Render it."),
                            "interval": _str("Scrape interval.", pattern=r"^([0-9]+(ms|s|m|h))+$"),
                            "labels": _map("Extra labels."),
                        },
                        required=["enabled", "interval"],
                    ),
                    "dashboard": _obj(
                        "Grafana dashboard ConfigMap.",
                        {
                            "enabled": _bool("Render it."),
                            "labels": _map("Labels the Grafana sidecar selects on."),
                            "annotations": _map("Annotations."),
                        },
                        required=["enabled"],
                    ),
                },
            ),
            "serviceAccount": _obj(
                "The operator's ServiceAccount.",
                {
                    "create": _bool("Create it."),
                    "name": _str("Name; empty uses the full name.", pattern=r"^$|" + _DNS_SUBDOMAIN[1:]),
                    "annotations": _map("Annotations."),
                },
                required=["create"],
            ),
            "rbac": _obj("RBAC.", {"create": _bool("Create the (Cluster)Role and binding.")}, required=["create"]),
            "podAnnotations": _map("Pod annotations."),
            "podLabels": _map("Extra pod labels."),
            "podSecurityContext": _obj(
                "Pod security context (restricted by default).",
                {
                    "runAsNonRoot": {"const": True, "description": "Must stay true."},
                    "runAsUser": _int("UID.", minimum=1),
                    "runAsGroup": _int("GID.", minimum=1),
                    "fsGroup": _int("fsGroup.", minimum=1),
                    "seccompProfile": _obj(
                        "Seccomp profile.",
                        {
                            "type": _str("RuntimeDefault or Localhost.", enum=["RuntimeDefault", "Localhost"]),
                            "localhostProfile": _str("Profile path (Localhost)."),
                        },
                        required=["type"],
                    ),
                    "supplementalGroups": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "description": "Extra groups.",
                    },
                },
                required=["runAsNonRoot", "seccompProfile"],
            ),
            "securityContext": _obj(
                "Container security context (restricted by default).",
                {
                    "allowPrivilegeEscalation": {"const": False, "description": "Must stay false."},
                    "readOnlyRootFilesystem": {"const": True, "description": "Must stay true."},
                    "runAsNonRoot": {"const": True, "description": "Must stay true."},
                    "runAsUser": _int("UID.", minimum=1),
                    "capabilities": _obj(
                        "Capabilities.",
                        {
                            "drop": {
                                "type": "array",
                                "contains": {"const": "ALL"},
                                "items": {"type": "string"},
                                "description": "Must drop ALL.",
                            },
                            "add": {"type": "array", "maxItems": 0, "description": "None may be added."},
                        },
                        required=["drop"],
                    ),
                    "seccompProfile": _obj(
                        "Seccomp profile.",
                        {
                            "type": _str("RuntimeDefault or Localhost.", enum=["RuntimeDefault", "Localhost"]),
                            "localhostProfile": _str("Profile path (Localhost)."),
                        },
                        required=["type"],
                    ),
                },
                required=["allowPrivilegeEscalation", "readOnlyRootFilesystem", "capabilities"],
            ),
            "resources": _free("core/v1 ResourceRequirements of the operator."),
            "livenessProbe": _obj(
                "Liveness probe timing (path and port are fixed).",
                {
                    "initialDelaySeconds": _int("Delay.", minimum=0),
                    "periodSeconds": _int("Period.", minimum=1),
                    "timeoutSeconds": _int("Timeout.", minimum=1),
                    "failureThreshold": _int("Failures.", minimum=1),
                },
            ),
            "nodeSelector": _map("Node labels."),
            "tolerations": {"type": "array", "items": {"type": "object"}, "description": "Tolerations."},
            "affinity": _free("Affinity."),
            "priorityClassName": _str("PriorityClass."),
            "reflectorGPU": _obj(
                "A ready-made ReflectorGPU.",
                {
                    "create": _bool("Render it."),
                    # <name>-transcriber-live must stay a 53-character InferenceService name (NOTES
                    # prints the predictors' in-cluster URLs from it).
                    "name": _str("Name.", pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", maxLength=36, minLength=1),
                    "namespace": _str(
                        "Namespace; empty = release namespace.", pattern=r"^$|" + _DNS_LABEL[1:], maxLength=63
                    ),
                    "labels": _map("Extra labels."),
                    "annotations": _map("Annotations."),
                    "uninstallTimeoutSeconds": _int(
                        "Pre-delete hook wait; 0 disables the hook.", minimum=0, maximum=3600
                    ),
                    "spec": _values_spec(),
                },
                required=["create", "name"],
            ),
        },
    )
    # Two standalone operators would reconcile the same resources at once.
    schema["if"] = {"properties": {"replicaCount": {"minimum": 2}}, "required": ["replicaCount"]}
    schema["then"] = {
        "properties": {
            "operator": {
                "properties": {
                    "peering": {
                        "properties": {
                            "enabled": {"const": True, "description": "More than one replica needs peering."}
                        }
                    }
                }
            }
        }
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": f"Generated by `{GENERATED_BY}` from operator/rgpu_operator; do not edit.",
        **schema,
    }


# --- the files -------------------------------------------------------------------------------


def files() -> dict[str, str]:
    """Path relative to the chart -> content."""
    out = dict(gen.chart_files())
    rules = gen.dump(gen.rbac_rules())
    out["files/rbac-rules.yaml"] = rules.replace(
        gen.HEADER, f"# Generated by `{GENERATED_BY}` from rgpu_operator.rbac; do not edit.\n", 1
    )
    out["values.schema.json"] = json.dumps(values_schema(), indent=2) + "\n"
    out["files/dashboard.json"] = json.dumps(dashboard(), indent=2) + "\n"
    return out


def drift(chart: Path = CHART) -> list[str]:
    return gen.stale(chart, files())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    args = parser.parse_args(argv)
    return gen.sync(CHART, files(), check=args.check, command=GENERATED_BY)


if __name__ == "__main__":
    raise SystemExit(main())
