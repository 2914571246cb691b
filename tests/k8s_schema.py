"""Checks the API server makes that a plain JSON-schema validator does not: undeclared fields
(pruned by a structural schema) and the schema's CEL rules (cel-python stands in for the
server's CEL). Shared by the operator and chart tests."""

from __future__ import annotations

import functools


def unknown_fields(schema: dict, value, path: str = "") -> list[str]:
    """Fields a structural schema does not declare: the API server would silently prune them."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out: list[str] = []
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                out += unknown_fields(props[key], item, f"{path}.{key}")
            elif isinstance(extra, dict):
                out += unknown_fields(extra, item, f"{path}.{key}")
            elif props is not None and path != ".metadata":
                out.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += unknown_fields(schema["items"], item, f"{path}[{i}]")
    return out


def cel_errors(schema: dict, value, path: str = "") -> list[str]:
    """Evaluate every x-kubernetes-validations rule on the values present, as the API server
    does after defaulting (cel-python stands in for the server's CEL)."""
    import celpy

    out: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        if "oldSelf" in rule["rule"]:
            continue  # transition rules do not apply on create
        program = _cel_program(rule["rule"])
        try:
            result = program.evaluate({"self": celpy.json_to_cel(value)})
        except celpy.CELEvalError as exc:
            result = exc
        if isinstance(result, Exception) or not bool(result):
            message = rule.get("message", "")
            if "messageExpression" in rule:
                # The API server prefers messageExpression (falling back to message on error).
                try:
                    message = str(_cel_program(rule["messageExpression"]).evaluate({"self": celpy.json_to_cel(value)}))
                except celpy.CELEvalError:
                    pass
            out.append(f"{path or '<root>'}: {message}")
    if isinstance(value, dict):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                out += cel_errors(sub, value[key], f"{path}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, item in value.items():
                out += cel_errors(extra, item, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out += cel_errors(schema["items"], item, f"{path}[{i}]")
    return out


@functools.cache
def _cel_environment():
    import celpy

    return celpy.Environment()  # builds the CEL parser: seconds, so once


@functools.cache
def _cel_program(rule: str):
    env = _cel_environment()
    return env.program(env.compile(rule))


@functools.cache
def load_crd(path) -> dict:
    """A CRD file, parsed once (libyaml when available: the InferenceService CRD is 2 MB)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path) as f:
        return yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
