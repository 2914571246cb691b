"""The API server's handling of custom resources, for the emulator: defaults from the CRD's
structural schema, then the schema and the CEL rules (apiextensions-apiserver validates after
defaulting). Our ReflectorGPU CRD comes from the operator's source; KServe's and Gateway API's
are the real CRDs in ../shared/k8s-crds (skipped when that folder is absent)."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
from operator_support import CRDS

from k8s_schema import cel_errors, load_crd


@functools.cache
def _schemas() -> dict[str, tuple[str, dict]]:
    """plural -> (kind.group, openAPIV3Schema) of the served version the operator writes."""
    from rgpu_operator.schema import crd

    docs = [crd()]
    if CRDS.is_dir():
        docs += [
            load_crd(CRDS / f)
            for f in ("serving.kserve.io_inferenceservices.yaml", "gateway.networking.k8s.io_httproutes.yaml")
        ]
    out = {}
    for doc in docs:
        spec = doc["spec"]
        wanted = {"inferenceservices": "v1beta1", "httproutes": "v1"}.get(spec["names"]["plural"])
        for version in spec["versions"]:
            if wanted is None and version.get("storage") or version["name"] == wanted:
                out[spec["names"]["plural"]] = (
                    f"{spec['names']['kind']}.{spec['group']}",
                    version["schema"]["openAPIV3Schema"],
                )
    return out


@functools.cache
def _full_validator(plural: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_schemas()[plural][1])


def _validator(plural: str, full: bool, schema: dict | None = None) -> jsonschema.Draft7Validator:
    return _full_validator(plural) if full else jsonschema.Draft7Validator(schema)


def default_and_validate(plural: str, obj: dict, old: dict | None = None) -> tuple[dict, str | None]:
    """(the object as stored, None) or (it, the API server's 422 message).

    Validation ratcheting (CRDValidationRatcheting, on by default since Kubernetes 1.30): on an
    update, a spec that did not change is not validated again, so an object stored before the
    CRD gained a rule can still get its status and finalizers written."""
    from rgpu_operator.schema import apply_defaults

    if plural not in _schemas():
        return obj, None
    what, schema = _schemas()[plural]
    obj = apply_defaults(schema, obj)
    name = obj.get("metadata", {}).get("name")
    if old is not None and apply_defaults(schema, old).get("spec") == obj.get("spec"):
        props = {k: v for k, v in schema.get("properties", {}).items() if k != "spec"}
        schema = {**schema, "properties": props}
    validator = _validator(plural, schema is _schemas()[plural][1], schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        path = ".".join(str(p) for p in e.path)
        return obj, f'{what} "{name}" is invalid: {path}: Invalid value: {e.message}'
    if plural == "reflectorgpus":
        problems = cel_errors(schema, obj)
        if problems:
            return obj, f'{what} "{name}" is invalid: ' + "; ".join(problems)
    return obj, None


def valid(plural: str, obj: dict[str, Any]) -> bool:
    return default_and_validate(plural, obj)[1] is None
