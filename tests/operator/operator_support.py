"""Helpers for the operator tests: sample owners and validators (real CRDs, built-in kinds, CEL)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from pathlib import Path

import pytest

from k8s_schema import cel_errors, unknown_fields  # noqa: F401 - re-exported for the operator tests

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CRDS = SHARED / "k8s-crds"

requires_crds = pytest.mark.skipif(
    not CRDS.is_dir(), reason=f"real KServe/Gateway CRDs not found at {CRDS} (../shared is absent)"
)


def owner(spec: dict | None = None, name: str = "rgpu", namespace: str = "reflector", generation: int = 1) -> dict:
    """A ReflectorGPU body as the API server would hand it over (uid and generation set)."""
    from rgpu_operator import API_VERSION, KIND

    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}", "generation": generation},
        "spec": spec or {},
    }


@functools.cache
def _crd_validators() -> dict:
    import jsonschema

    from k8s_schema import load_crd

    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = load_crd(path)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            out[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return out


def validate_schema(schema: dict, obj: dict) -> None:
    """jsonschema validation plus the pruning check (no undeclared fields)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    unknown = unknown_fields(schema, obj)
    assert not unknown, f"fields the schema does not declare (would be pruned): {unknown}"


def validate_crd_object(obj: dict) -> None:
    """Validate a KServe/Gateway object against the real CRD's openAPIV3Schema: types, enums,
    patterns, undeclared (pruned) fields, and the CRD's own CEL rules (via cel-python)."""
    if not CRDS.is_dir():
        pytest.skip(f"real CRDs not found at {CRDS}")
    validator = _crd_validators()[(obj["apiVersion"], obj["kind"])]
    validate_schema(validator.schema, obj)
    problems = cel_errors(validator.schema, obj)
    assert not problems, f"the CRD's CEL rules reject it: {problems}"


def validate_builtin(obj: dict, version: str = "1.33") -> None:
    import kubernetes_validate

    kubernetes_validate.validate(obj, version, strict=True)


def validate_any(obj: dict) -> None:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    if group.endswith(
        ("kserve.io", "gateway.networking.k8s.io", "keda.sh", "monitoring.coreos.com", "gateway.envoyproxy.io")
    ):
        validate_crd_object(obj)
    else:
        validate_builtin(obj)


@contextlib.asynccontextmanager
async def operator_thread(settings, name: str = "operator"):
    """The operator (kopf + rgpu_operator.handlers) in a thread with its own loop, as in
    production, with the kopf options production uses (``peering.kopf_options``). (kopf.operator()
    cancels, when it stops, every task created in its loop after it started, which would include
    pytest's fixture teardown if it shared the test's loop.) Its log records carry ``name`` as
    their thread name."""
    import random
    import time

    import kopf

    from rgpu_operator import handlers  # noqa: F401 - registers the handlers
    from rgpu_operator.peering import kopf_options

    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    options = kopf_options(settings, now_s=time.time(), jitter=random.randrange(1000))

    def run() -> None:
        try:
            asyncio.run(
                kopf.operator(**options, memo=kopf.Memo(settings=settings, locks={}), stop_flag=stop, ready_flag=ready)
            )
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ready.is_set() and thread.is_alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    if errors:  # it stopped at startup: the test sees why
        raise errors[0]
    assert ready.is_set(), "the operator did not start"
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 15)
    assert not thread.is_alive(), "the operator did not stop within 15 s"
    assert not errors, errors
