"""llm.runtime: which runtime a CR gets, what the huggingface InferenceService looks like (checked
against the real KServe CRD, the runtime's YAML and its ``__main__.py``), the refusal on a pool
without GPUs, and the status when KServe does not know the runtime."""

from __future__ import annotations

import re

import pytest
import yaml
from operator_support import SHARED, cel_errors, owner, requires_crds, validate_any

import rgpu_contract as contract
from rgpu_operator import llmruntime
from rgpu_operator import status as status_builder
from rgpu_operator.context import Install
from rgpu_operator.desired import plan
from rgpu_operator.rules import problems
from rgpu_operator.schema import apply_defaults, defaulted_spec, openapi_schema

DEFAULTS = Install(image_registry="ghcr.io/monadical-sas", image_tag="0.1.0")
KSERVE = SHARED / "kserve"
requires_kserve = pytest.mark.skipif(
    not KSERVE.is_dir(), reason=f"KServe's runtime files not found at {KSERVE} (../shared is absent)"
)
CPU_POOLS = {"cpu": {"gpu": {"count": 0}}, "a10g": {}, "l40s": {}}


def full(spec: dict, status: dict | None = None) -> dict:
    body = apply_defaults(openapi_schema(), owner(spec))
    if status is not None:
        body["status"] = status
    return body


def llm_isvc(body: dict) -> dict:
    return next(o for o in plan(body, DEFAULTS).present if o["metadata"]["name"] == "rgpu-llm")


HF = {"llm": {"enabled": True, "model": {"name": "microsoft/phi-4"}}}


# --- which runtime ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        (HF, None, "huggingface"),  # a new CR on a GPU pool
        ({"pools": CPU_POOLS, "llm": {"enabled": True, "pool": "cpu"}}, None, "custom"),  # new, CPU pool
        (HF, {"observedGeneration": 3, "ready": "True"}, "custom"),  # reconciled before the field
        (HF, {"conditions": [{"type": "Ready", "status": "False"}]}, "custom"),  # ... without a generation
        (HF, {"kopf": {"progress": {}}}, "huggingface"),  # someone else's status is not ours
        (HF, {"observedGeneration": 3, "llmRuntime": "huggingface"}, "huggingface"),  # recorded
        ({"llm": {"enabled": True, "runtime": "custom"}}, None, "custom"),  # explicit
        ({"llm": {"enabled": True, "runtime": "huggingface"}}, {"llmRuntime": "custom"}, "huggingface"),
    ],
)
def test_the_runtime_a_cr_gets(spec, status, expected):
    body = full(spec, status)
    p = plan(body, DEFAULTS)
    assert p.spec["llm"]["runtime"] == expected
    # ... and status records it, so an unset field never switches it later.
    st = status_builder.build(body, p, {}, None, "2026-01-01T00:00:00Z")
    assert st[llmruntime.STATUS_FIELD] == expected
    again = full(spec, {**(status or {}), **st})
    assert plan(again, DEFAULTS).spec["llm"]["runtime"] == expected


def test_huggingface_on_a_pool_without_gpus_is_refused_naming_the_pool():
    spec = {"pools": CPU_POOLS, "llm": {"enabled": True, "pool": "cpu", "runtime": "huggingface"}}
    found = [p for p in problems(defaulted_spec(spec)) if p.rule == "llm-needs-gpu"]
    assert len(found) == 1 and found[0].component == "llm" and found[0].path == "spec.llm.runtime"
    assert "pool cpu has none" in found[0].message
    # The API server refuses it too, with the same message (the CRD's CEL messageExpression).
    body = full(spec)
    assert [e.split(": ", 1)[1] for e in cel_errors(openapi_schema(), body) if "llm.runtime" in e] == [found[0].message]
    p = plan(body, DEFAULTS)
    assert "rgpu-llm" not in {o["metadata"]["name"] for o in p.present}
    assert p.blocked("llm") and not p.stopped  # the other components are still written


# --- the InferenceService -----------------------------------------------------------------------


def _runtime() -> dict:
    return yaml.safe_load((KSERVE / "kserve-huggingfaceserver.yaml").read_text())


def _main_py_options() -> set[str]:
    text = (KSERVE / "src" / "huggingfaceserver__main__.py").read_text()
    return set(re.findall(r'"(--[a-z_-]+)"', text))


@requires_crds
@requires_kserve
@pytest.mark.parametrize("version", ["0.15", "0.17"])
def test_the_huggingface_inferenceservice_is_valid_and_targets_the_runtime(version):
    from dataclasses import replace

    from rgpu_operator.kserve import Version

    body = full({**HF, "llm": {**HF["llm"], "huggingface": {"dtype": "bfloat16", "gpuMemoryUtilization": 0.85}}})
    p = plan(body, replace(DEFAULTS, kserve=Version(0, int(version.split(".")[1]))))
    isvc = next(o for o in p.present if o["metadata"]["name"] == "rgpu-llm")
    validate_any(isvc)  # the real InferenceService CRD (schema, pruning, CEL)
    predictor = isvc["spec"]["predictor"]
    assert "containers" not in predictor
    model = predictor["model"]
    runtime = _runtime()
    assert model["runtime"] == runtime["metadata"]["name"] == "kserve-huggingfaceserver"
    assert model["modelFormat"]["name"] in {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
    args = dict(a.split("=", 1) for a in model["args"])
    assert args == {
        "--backend": "vllm",
        "--model_name": "phi-4",
        "--model_id": "microsoft/phi-4",
        "--max_model_len": "16000",
        "--dtype": "bfloat16",
        "--gpu-memory-utilization": "0.85",
    }
    # Every argument but vLLM's own engine argument is one the runtime's parser declares, or
    # (--model_name, from kserve.model_server's parent parser) one the runtime YAML passes.
    runtime_args = {a.split("=", 1)[0] for a in runtime["spec"]["containers"][0]["args"]}
    assert "--model_name" in runtime_args
    assert set(args) - {"--gpu-memory-utilization"} <= _main_py_options() | runtime_args
    assert "/" not in args["--model_name"]
    # Same placement and exposure as every other component.
    assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
    assert predictor["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-L40S"}
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert model["readinessProbe"]["httpGet"]["path"] == contract.model_readiness_path("phi-4")
    # The runtime's HTTP server answers only once the model is loaded: an hour before liveness.
    startup = model["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 3600
    # No key material (the runtime checks none: the edge does) and none of our settings.
    assert not [e for e in model["env"] if e["name"].startswith("REFLECTOR_GPU_")]
    assert "apikeys" not in {v["name"] for v in predictor["volumes"]}
    assert p.present[0]["kind"] == "Secret"  # the key still exists: the edge checks it
    assert "llm" not in p.images  # no image of ours


@requires_crds
def test_storage_uri_and_the_pvc_cache_replace_the_hub_id():
    uri = "s3://models/phi-4"
    isvc = llm_isvc(full({"llm": {"enabled": True, "model": {"name": "microsoft/phi-4", "storageUri": uri}}}))
    validate_any(isvc)
    model = isvc["spec"]["predictor"]["model"]
    assert model["storageUri"] == uri and not [a for a in model["args"] if a.startswith("--model_id")]
    cached = llm_isvc(
        full(
            {
                "modelCache": {"type": "PVC", "pvc": {"claimName": "models"}},
                "llm": {"enabled": True, "model": {"name": "microsoft/phi-4"}},
            }
        )
    )
    assert cached["spec"]["predictor"]["model"]["storageUri"] == "pvc://models/microsoft/phi-4"
    only_uri = llm_isvc(full({"llm": {"enabled": True, "model": {"storageUri": uri}}}))
    assert "--model_name=llm" in only_uri["spec"]["predictor"]["model"]["args"]


def test_served_model_names_are_slash_free():
    def served(name: str, chosen: str = "") -> str:
        spec = defaulted_spec({"llm": {"model": {"name": name}, "huggingface": {"servedModelName": chosen}}})
        return llmruntime.served_model_name(spec)

    assert served("microsoft/phi-4") == "phi-4"
    assert served("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2-135m-instruct"
    assert served("/models/My Model/") == "my-model"
    assert served("microsoft/phi-4", "phi") == "phi"


def test_the_custom_runtime_is_unchanged():
    isvc = llm_isvc(full({"llm": {"enabled": True, "runtime": "custom"}}))
    (container,) = isvc["spec"]["predictor"]["containers"]
    assert container["command"] == ["rgpu-llm"] and "model" not in isvc["spec"]["predictor"]


# --- an unknown runtime -----------------------------------------------------------------------


def test_an_unknown_runtime_degrades_the_component_with_the_reason():
    """KServe's predictor reconciler (``reconcileModel``) marks an InferenceService naming a
    runtime it cannot find ``InvalidSpec`` / ``RuntimeNotRecognized`` and makes no Deployment;
    the component says so instead of waiting."""
    isvc = llm_isvc(full({**HF, "llm": {**HF["llm"], "huggingface": {"servingRuntime": "vllm-nope"}}}))
    assert isvc["spec"]["predictor"]["model"]["runtime"] == "vllm-nope"
    isvc["status"] = {
        "modelStatus": {
            "transitionStatus": "InvalidSpec",
            "lastFailureInfo": {"reason": "RuntimeNotRecognized", "message": "Waiting for runtime to become available"},
        }
    }
    state, reason, message = status_builder.component_state(status_builder.Facts(isvc=isvc))
    assert (state, reason) == ("Degraded", "RuntimeNotRecognized")
    assert "vllm-nope" in message and "servingRuntime" in message


def test_the_job_model_cache_serves_the_runtime_its_pvc_path():
    uri = "s3://models/phi-4"
    body = full(
        {
            "modelCache": {"type": "Job", "pvc": {"claimName": "models"}},
            "llm": {"enabled": True, "model": {"name": "microsoft/phi-4", "storageUri": uri}},
        }
    )
    from rgpu_operator.context import Observed
    from rgpu_operator.modelcache import CACHED, JobState, models

    digest = next(d for d, m in models(defaulted_spec(body["spec"])).items() if m.source == uri)
    waiting = plan(body, DEFAULTS, Observed(model_jobs={}))
    assert "llm" in waiting.waiting_for_cache
    assert not any(o["kind"] == "InferenceService" and o["metadata"]["name"] == "rgpu-llm" for o in waiting.present)
    assert any(j["spec"]["template"]["spec"]["containers"][0]["args"][0] == uri for j in waiting.cache_jobs)
    done = {d: JobState(CACHED) for d in models(defaulted_spec(body["spec"]))}
    present = plan(body, DEFAULTS, Observed(model_jobs=done)).present
    isvc = next(o for o in present if o["kind"] == "InferenceService" and o["metadata"]["name"] == "rgpu-llm")
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == f"pvc://models/models/{digest}"
