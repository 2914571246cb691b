"""Shared fixtures for the operator tests: import paths, sample owners, schema validators."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CRDS = SHARED / "k8s-crds"

# The operator and the contract are installed by `pip install -e .[operator]`; fall back to the
# source tree so the suite also runs from a bare checkout.
for sub in ("operator", "predictors"):
    if str(REPO / sub) not in sys.path:
        sys.path.insert(0, str(REPO / sub))

# The resync timer's interval is fixed when the handlers module is imported: make it short
# for the emulator tests (production default: 300 s).
os.environ.setdefault("RGPU_OPERATOR_RESYNC_SECONDS", "1")

requires_crds = pytest.mark.skipif(
    not CRDS.is_dir(), reason=f"real KServe/Gateway CRDs not found at {CRDS} (../shared is absent)")


def owner(spec: dict | None = None, name: str = "rgpu", namespace: str = "reflector",
          generation: int = 1) -> dict:
    """A ReflectorGPU body as the API server would hand it over (uid and generation set)."""
    from rgpu_operator import API_VERSION, KIND
    return {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}",
                         "generation": generation},
            "spec": spec or {}}


@functools.cache
def _crd_validators() -> dict:
    import jsonschema
    import yaml
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schema = version["schema"]["openAPIV3Schema"]
            out[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return out


def validate_crd_object(obj: dict) -> None:
    """Validate a KServe/Gateway object against the real CRD's openAPIV3Schema."""
    if not CRDS.is_dir():
        pytest.skip(f"real CRDs not found at {CRDS}")
    validator = _crd_validators()[(obj["apiVersion"], obj["kind"])]
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def validate_builtin(obj: dict, version: str = "1.33") -> None:
    import kubernetes_validate
    kubernetes_validate.validate(obj, version, strict=True)


def validate_any(obj: dict) -> None:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    if group.endswith("kserve.io") or group.endswith("gateway.networking.k8s.io"):
        validate_crd_object(obj)
    else:
        validate_builtin(obj)
