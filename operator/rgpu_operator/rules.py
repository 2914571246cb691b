"""Which specs the operator refuses, and why: the CRD's CEL rules in Python, plus the checks CEL
cannot make here (quantities) or that concern one component only.

The API server evaluates the CEL rules in :mod:`schema`; the operator and ``render`` run these
twins, because a CR stored before a CRD upgrade never met them, and ``render`` has no API
server. A test evaluates both on the same specs and requires the same verdicts.

A problem names the field path and the rule. Spec-wide problems stop the whole plan (the
children stay as they are); component problems stop only that component.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import sizing
from .components import COMPONENTS, Component, block, enabled
from .kserve import KEDA_AUTH_SINCE, Version
from .schema import (
    DNS_LABEL,
    KEDA_NEEDS_PROMETHEUS,
    LLM_NEEDS_GPU,
    NO_CPU_SCALING,
    NO_SCALE_TO_ZERO,
    PATH_ENV,
    SECRET_ENV,
    cel_rules,
)

SECRET_NAME = re.compile(SECRET_ENV)
NO_KNATIVE = cel_rules()[0]["message"]
PATH_NAME = re.compile(PATH_ENV)
SIZED = set(sizing.SIZED)


@dataclass(frozen=True)
class Problem:
    path: str  #: field path, e.g. spec.diarizer.resources.requests.memory
    rule: str  #: short name of the rule broken
    message: str
    component: str | None = None  #: the one component it stops; None: the whole spec

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (rule {self.rule})"


def _env_problems(env: list[dict[str, Any]], path: str, component: str | None) -> Iterator[Problem]:
    for i, item in enumerate(env or []):
        where = f"{path}[{i}]"
        if "value" in item and "valueFrom" in item:
            yield Problem(where, "env-one-source", "set value or valueFrom, not both", component)
        source = item.get("valueFrom")
        if source is not None and ("secretKeyRef" in source) == ("configMapKeyRef" in source):
            yield Problem(
                f"{where}.valueFrom",
                "env-one-ref",
                "valueFrom needs exactly one of secretKeyRef and configMapKeyRef",
                component,
            )
        if "value" in item and SECRET_NAME.search(item["name"]) and not PATH_NAME.search(item["name"]):
            yield Problem(
                f"{where}.value",
                "no-plain-secret",
                "a token, key or password must come from valueFrom.secretKeyRef, never a plain value",
                component,
            )


def _block_problems(spec: dict[str, Any], comp: Component) -> Iterator[Problem]:
    b = block(spec, comp)
    path = comp.path
    if b["minReplicas"] > b["maxReplicas"]:
        yield Problem(
            f"{path}.minReplicas", "replicas-order", "minReplicas must be less than or equal to maxReplicas", comp.name
        )
    if b["minReplicas"] < 1:
        yield Problem(f"{path}.minReplicas", "no-scale-to-zero", NO_SCALE_TO_ZERO, comp.name)
    klass = b["autoscaling"]["class"]
    if comp.gpu and klass == "hpa":
        yield Problem(f"{path}.autoscaling.class", "no-cpu-scaling", NO_CPU_SCALING, comp.name)
    for kind in ("requests", "limits"):
        extra = set((b.get("resources") or {}).get(kind) or {}) - SIZED
        if extra:
            yield Problem(
                f"{path}.resources.{kind}",
                "sized-resources-only",
                "only cpu, memory and ephemeral-storage may be set here (GPUs come from the pool)",
                comp.name,
            )
    yield from _env_problems(b.get("env") or [], f"{path}.env", comp.name)


def keda_components(spec: dict[str, Any]) -> list[Component]:
    """Enabled components whose autoscaling.class is keda."""
    return [c for c in COMPONENTS if enabled(spec, c) and block(spec, c)["autoscaling"]["class"] == "keda"]


def install_problems(spec: dict[str, Any], kserve: Version) -> list[Problem]:
    """What the installed KServe cannot do (its version is the operator's setting, not the CR's):
    ``authenticationRef`` on an External metric needs 0.16 (``ExtMetricAuthentication``,
    component.go; absent from v0.15's API, whose CRD prunes it)."""
    if spec["keda"]["authenticationRef"] and keda_components(spec) and kserve.tuple < KEDA_AUTH_SINCE:
        return [
            Problem(
                "spec.keda.authenticationRef",
                "keda-auth-version",
                f"keda.authenticationRef needs KServe {KEDA_AUTH_SINCE[0]}.{KEDA_AUTH_SINCE[1]} or later; "
                f"this cluster's is {kserve}",
            )
        ]
    return []


def spec_problems(spec: dict[str, Any]) -> list[Problem]:
    """The CEL rules' twins, on a defaulted spec."""
    out: list[Problem] = []
    mode = spec.get("deploymentMode")
    if mode is not None and mode not in ("RawDeployment", "Standard"):
        out.append(Problem("spec.deploymentMode", "no-knative", NO_KNATIVE))
    pools = spec["pools"]
    bad = sorted(name for name in pools if not re.match(DNS_LABEL, name))
    if bad:
        out.append(
            Problem(
                f"spec.pools[{bad[0]}]", "pool-names", "pool names must be DNS labels (lowercase letters, digits, '-')"
            )
        )
    for comp in COMPONENTS:
        b = block(spec, comp)
        if comp.name == "padding":
            if spec["padding"]["enabled"] and b["pool"] and b["pool"] not in pools:
                out.append(
                    Problem(
                        "spec.padding.pool",
                        "pool-exists",
                        "spec.padding.pool must be empty or name an entry of spec.pools",
                    )
                )
        elif enabled(spec, comp) and b["pool"] not in pools:
            out.append(
                Problem(f"{comp.path}.pool", "pool-exists", f"{comp.path}.pool must name an entry of spec.pools")
            )
    if keda_components(spec) and not spec["keda"]["serverAddress"]:
        out.append(Problem("spec.keda.serverAddress", "keda-server", KEDA_NEEDS_PROMETHEUS))
    ing = spec["ingress"]
    if ing["enabled"] and not ing.get("host"):
        out.append(Problem("spec.ingress.host", "host-required", "ingress.host is required when ingress is enabled"))
    cache = spec["modelCache"]
    if cache["type"] == "PVC" and "pvc" not in cache:
        out.append(Problem("spec.modelCache.pvc", "cache-pvc", "modelCache.pvc is required when type is PVC"))
    if cache["type"] == "LocalModelCache" and "localModelCache" not in cache:
        out.append(
            Problem(
                "spec.modelCache.localModelCache",
                "cache-lmc",
                "modelCache.localModelCache is required when type is LocalModelCache",
            )
        )
    edge = spec["networkPolicy"]["edge"]
    if edge["preset"] == "custom" and "namespaceSelector" not in edge:
        out.append(
            Problem(
                "spec.networkPolicy.edge.namespaceSelector",
                "edge-custom",
                "edge.namespaceSelector is required with preset custom",
            )
        )
    llm = spec["llm"]
    if llm["enabled"] and llm.get("runtime") == "huggingface" and llm["pool"] in pools:
        if pools[llm["pool"]]["gpu"]["count"] <= 0:
            out.append(Problem("spec.llm.runtime", "llm-needs-gpu", LLM_NEEDS_GPU.format(pool=llm["pool"]), "llm"))
    out += _env_problems(spec.get("env") or [], "spec.env", None)
    # Block rules are CEL on every block, enabled or not; a broken block stops its component.
    for comp in COMPONENTS:
        out += _block_problems(spec, comp)
    return out


def component_problems(spec: dict[str, Any]) -> list[Problem]:
    """What only the operator checks: quantities (CEL cannot compare them here) and
    combinations that would leave a component open."""
    out: list[Problem] = []
    for comp in COMPONENTS:
        if not enabled(spec, comp):
            continue
        for path, message in sizing.problems(comp, block(spec, comp)):
            out.append(Problem(path, "requests-within-limits", message, comp.name))
    translator = spec["translator"]
    if translator["enabled"] and translator["auth"] == "networkPolicy" and not spec["networkPolicy"]["enabled"]:
        out.append(
            Problem(
                "spec.translator.auth",
                "keyless-needs-policy",
                "translator.auth networkPolicy serves without a key and needs networkPolicy.enabled",
                "translator",
            )
        )
    return out


def problems(spec: dict[str, Any]) -> list[Problem]:
    return spec_problems(spec) + component_problems(spec)
