"""``rgpu-operator render``: every object the operator keeps for a ReflectorGPU once converged.

For reviewers and GitOps diffs (Argo CD, Flux): the operator stays the owner of the children,
so the output is for reading and diffing, never for committing and applying. The ReflectorGPU
comes out defaulted as the API server stores it, the children as the operator writes them (their
quantities already in the API server's canonical form). The API-key Secret shows its keys with
empty values. Owner references carry a placeholder uid (the API server assigns the real one). The
PodMonitor is shown as on a cluster that serves the kind (the operator asks API discovery).

A CR the CRD or the operator would refuse is not rendered: the refusal names the field path and
the rule, and the command exits 2.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema

from . import API_VERSION, KIND
from .context import Install, Observed
from .desired import plan
from .rules import Problem
from .schema import apply_defaults, openapi_schema

Obj = dict[str, Any]
PLACEHOLDER_UID = "00000000-0000-0000-0000-000000000000"
ORDER = (
    "ReflectorGPU",
    "Secret",
    "InferenceService",
    "NetworkPolicy",
    "SecurityPolicy",
    "HTTPRoute",
    "Ingress",
    "LocalModelCache",
    "PodMonitor",
)


class Refused(Exception):
    """The CR would be refused; ``problems`` say where and by which rule."""

    def __init__(self, name: str, problems: list[Problem]):
        self.problems = problems
        super().__init__(f"{name}: " + "; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Rendered:
    name: str
    objects: list[Obj]


def _schema_problems(body: Obj) -> list[Problem]:
    validator = jsonschema.Draft7Validator(openapi_schema())
    out = []
    for error in sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.path]):
        path = ".".join(str(p) for p in error.path) or "<root>"
        out.append(Problem(path, f"schema {error.validator}", error.message))
    return out


def render_one(cr: Obj, install: Install, namespace: str | None = None) -> Rendered:
    """The objects for one ReflectorGPU manifest; raises :class:`Refused`."""
    if cr.get("apiVersion") != API_VERSION or cr.get("kind") != KIND:
        raise Refused(
            str(cr.get("metadata", {}).get("name")),
            [
                Problem(
                    "apiVersion/kind",
                    "kind",
                    f"expected {API_VERSION} {KIND}, got {cr.get('apiVersion')} {cr.get('kind')}",
                )
            ],
        )
    body = copy.deepcopy(cr)
    meta = body.setdefault("metadata", {})
    meta["namespace"] = namespace or meta.get("namespace") or "default"
    body.pop("status", None)
    body = apply_defaults(openapi_schema(), {**body, "spec": body.get("spec") or {}})
    name = f"{meta['namespace']}/{meta.get('name')}"
    problems = _schema_problems(body)
    if not problems:
        # As on a cluster running the Prometheus Operator (the reconciler asks API discovery).
        found = plan(
            {**body, "metadata": {**body["metadata"], "uid": PLACEHOLDER_UID}},
            install,
            Observed(podmonitor_served=True),
        )
        problems = found.problems
    if problems:
        raise Refused(name, problems)
    objects = [body, *(_without_values(o) for o in found.present)]
    objects.sort(key=lambda o: (ORDER.index(o["kind"]) if o["kind"] in ORDER else len(ORDER), o["metadata"]["name"]))
    return Rendered(name, objects)


def _without_values(obj: Obj) -> Obj:
    if obj["kind"] != "Secret":
        return obj
    out = copy.deepcopy(obj)
    out["data"] = {key: "" for key in (obj.get("data") or {"apikey": ""})}
    return out


def render_all(docs: Iterable[Obj | None], install: Install, namespace: str | None = None) -> list[Rendered]:
    return [render_one(doc, install, namespace) for doc in docs if doc]
