"""The components a ReflectorGPU deploys, and how each is named, labelled and routed.

One table so that builders, status and routing agree on names. Route paths come from the
shared contract (``rgpu_contract``); nothing here imports predictor code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rgpu_contract as contract

from . import API_VERSION, FIELD_MANAGER, GROUP, KIND, names

#: The env var naming the model (hub name or local directory) a predictor loads.
ENV_MODEL = contract.ENV_MODEL
#: Admission per pod: requests worked on at once, and requests waiting behind them (503 beyond).
ENV_MAX_IN_FLIGHT = contract.ENV_MAX_IN_FLIGHT
ENV_MAX_QUEUED = contract.ENV_MAX_QUEUED

#: Component -> default (maxInFlight, maxQueued); docs/scaling.md has the arithmetic. The
#: predictors' own defaults (``default_limits``) are the same.
ADMISSION: dict[str, tuple[int, int]] = {
    "transcriber-live": (10, 20),
    "transcriber-file": (2, 8),
    "diarizer": (1, 4),
    "translator": (4, 16),
    "llm": (4, 16),
    "padding": (4, 16),
}
#: ``autoscaling.class`` values: KServe's ``serving.kserve.io/autoscalerClass`` (constants.go,
#: ``AutoscalerAllowedClassList``: hpa, external, keda, none).
AUTOSCALER_CLASSES = ("none", "keda", "hpa")

#: Common labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
#: Namespace/name of the owning ReflectorGPU (cluster-scoped children have no owner reference).
LABEL_OWNER = f"{GROUP}/owner"
#: Pods carrying this label (value "true") may call the predictors through the NetworkPolicy.
LABEL_CLIENT = f"{GROUP}/client"
PART_OF = "reflector-gpu"


@dataclass(frozen=True)
class Component:
    """One InferenceService the operator may deploy."""

    name: str  #: component name, also the suffix of the InferenceService name
    section: str  #: key of the spec block that configures it
    profile: str | None = None  #: transcriber profile (live/file), for the scaling sub-block
    gpu: bool = True  #: padding runs on CPU only
    default_pool: str = ""
    prefix: str = ""  #: ingress path prefix (the live and file transcribers share one)
    env_var: str | None = None  #: the Reflector setting pointing at this prefix

    @property
    def path(self) -> str:
        """Where its block lives in the spec, for error messages (``spec.transcriber.live``)."""
        return f"spec.{self.section}" + (f".{self.profile}" if self.profile else "")


COMPONENTS: tuple[Component, ...] = (
    Component("transcriber-live", "transcriber", "live", True, "a10g", "/transcriber", "TRANSCRIPT_URL"),
    Component("transcriber-file", "transcriber", "file", True, "l40s", "/transcriber", None),
    Component("diarizer", "diarizer", None, True, "a10g", "/diarizer", "DIARIZATION_URL"),
    Component("translator", "translator", None, True, "a10g", "/translator", "TRANSLATE_URL"),
    Component("llm", "llm", None, True, "l40s", "/llm", "LLM_URL"),
    Component("padding", "padding", None, False, "", "/padding", "PADDING_URL"),
)
BY_NAME = {c.name: c for c in COMPONENTS}
#: Reflector settings, in the order the docs list them.
ENDPOINT_VARS = ("TRANSCRIPT_URL", "DIARIZATION_URL", "TRANSLATE_URL", "LLM_URL", "PADDING_URL")
#: The OpenAI-compatible client appends /chat/completions to LLM_URL, so it points at /v1.
ENDPOINT_SUFFIX = {"LLM_URL": "/v1"}


def routes(component: Component) -> tuple[str, ...]:
    """Paths the ingress sends to ``component`` (from the shared contract)."""
    return contract.COMPONENT_ROUTES[component.name]


def dedicated_routes(component: Component) -> tuple[str, tuple[str, ...]]:
    """(public prefix, paths) ``component`` also serves under a prefix of its own, named after it
    (``/transcriber-file``: diarized uploads reach the file pool by path)."""
    paths = contract.DEDICATED_ROUTES.get(component.name, ())
    return (f"/{component.name}" if paths else "", paths)


def target_in_flight(block: dict[str, Any]) -> int:
    """The autoscaling target: ``targetInFlight``, else the deprecated ``targetConcurrency``, else
    ``maxInFlight``."""
    for key in ("targetInFlight", "targetConcurrency", "maxInFlight"):
        if block.get(key) is not None:
            return int(block[key])
    raise KeyError("maxInFlight")  # defaulted by the schema


def block(spec: dict[str, Any], component: Component) -> dict[str, Any]:
    """The spec block holding replicas/pool/resources for ``component``."""
    section: dict[str, Any] = spec[component.section]
    return section[component.profile] if component.profile else section


def enabled(spec: dict[str, Any], component: Component) -> bool:
    return component.section == "transcriber" or bool(spec[component.section].get("enabled", True))


def predictor(spec: dict[str, Any], component: Component) -> str:
    """Which predictor image serves ``component`` (the transcriber's depends on its engine)."""
    return str(spec["transcriber"]["engine"]) if component.section == "transcriber" else component.section


def isvc_name(owner: str, component: Component) -> str:
    return names.isvc_name(owner, component.name)


def predictor_service(owner: str, component: Component) -> str:
    """KServe's Service in front of the predictor pods (``PredictorServiceName``: <isvc>-predictor)."""
    return f"{isvc_name(owner, component)}-predictor"


def secret_name(owner: str) -> str:
    return names.subdomain(f"{owner}-apikey")


def routing_name(owner: str) -> str:
    return owner


def networkpolicy_name(owner: str, component: Component) -> str:
    """One NetworkPolicy per component (its peers differ): named like its InferenceService."""
    return isvc_name(owner, component)


def legacy_networkpolicy_name(owner: str) -> str:
    """The single policy operator 0.1 made for every predictor; removed on upgrade."""
    return names.subdomain(f"{owner}-predictors")


def modelcache_name(namespace: str, owner: str, component: Component, uri: str) -> str:
    """Cluster-scoped name; the URI hash makes a new cache when the (immutable) URI changes."""
    return names.subdomain(f"{namespace}-{owner}-{component.name}-{names.digest(uri)}")


def owner_label(namespace: str, name: str) -> str:
    """Label value naming a namespaced owner (label values: <= 63 chars, no '/')."""
    return names.label_value(f"{namespace}.{name}")


def labels(owner: str, component: str | None = None) -> dict[str, str]:
    out = {
        LABEL_NAME: PART_OF,
        LABEL_INSTANCE: names.label_value(owner),
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: FIELD_MANAGER,
    }
    if component:
        out[LABEL_COMPONENT] = component
    return out


def selector(owner: str, component: str | None = None) -> dict[str, str]:
    """The subset of :func:`labels` that identifies pods (stable across upgrades)."""
    out = {LABEL_PART_OF: PART_OF, LABEL_INSTANCE: names.label_value(owner)}
    if component:
        out[LABEL_COMPONENT] = component
    return out


def owner_reference(owner: dict[str, Any]) -> dict[str, Any]:
    """Owner reference to the ReflectorGPU ``owner`` (its body); GC deletes children with it."""
    meta = owner["metadata"]
    if not meta.get("uid"):
        raise ValueError("the owner has no metadata.uid; it must be read from the API server")
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    owner: dict[str, Any], name: str, component: str | None = None, *, namespaced: bool = True
) -> dict[str, Any]:
    """Metadata shared by every child: name, namespace, labels and the owner reference."""
    meta = owner["metadata"]
    out: dict[str, Any] = {"name": name, "labels": labels(meta["name"], component)}
    if namespaced:
        out["namespace"] = meta["namespace"]
        out["ownerReferences"] = [owner_reference(owner)]
    else:
        out["labels"][LABEL_OWNER] = owner_label(meta["namespace"], meta["name"])
    return out


def owned_by(obj: dict[str, Any], owner_uid: str) -> bool:
    """``obj`` has a controller reference to the object with ``owner_uid``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(ref.get("uid") == owner_uid and ref.get("controller") for ref in refs)


def non_root_pod(uid: int) -> dict[str, Any]:
    """A pod securityContext running as ``uid`` (user, group and volume group), never root, with
    the runtime's default seccomp profile (Pod Security Standards, restricted)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
