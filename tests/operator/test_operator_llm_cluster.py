"""llm.runtime huggingface against the emulated API server and KServe (``cluster.KServe``): the
InferenceService is admitted (webhook defaults on ``predictor.model``), the resolved runtime is
recorded in status, and a runtime KServe does not know degrades the component with the reason."""

from __future__ import annotations

import pytest

km = pytest.importorskip("kmock", reason="kmock is a test dependency of the operator (dev extra)")
from cluster import ClusterEmulator
from emulated import ISVC, NAME, RGPU, apply, eventually, obj, operator_running, patch

pytestmark = [pytest.mark.asyncio, pytest.mark.kmock(cls=ClusterEmulator)]

LLM = {"enabled": True, "model": {"name": "microsoft/phi-4"}}


def llm_state(emu) -> dict:
    return ((obj(emu, RGPU, NAME).get("status") or {}).get("components") or {}).get("llm") or {}


async def test_a_new_cr_gets_huggingface_and_an_unknown_runtime_degrades_it(emu):
    async with operator_running(emu):
        await apply(emu, {"llm": LLM})
        await eventually(lambda: obj(emu, ISVC, f"{NAME}-llm"), what="llm isvc")
        await eventually(lambda: obj(emu, RGPU, NAME).get("status", {}).get("llmRuntime"), what="recorded")
        isvc = obj(emu, ISVC, f"{NAME}-llm")
        model = isvc["spec"]["predictor"]["model"]
        assert model["runtime"] == "kserve-huggingfaceserver" and "--backend=vllm" in model["args"]
        assert "containers" not in isvc["spec"]["predictor"]
        assert obj(emu, RGPU, NAME)["status"]["llmRuntime"] == "huggingface"
        assert llm_state(emu).get("state") != "Degraded"

        await patch(emu, RGPU, NAME, {"spec": {"llm": {"huggingface": {"servingRuntime": "vllm-nope"}}}})
        await eventually(lambda: llm_state(emu).get("reason") == "RuntimeNotRecognized", what="degraded")
    state = llm_state(emu)
    assert state["state"] == "Degraded" and "vllm-nope" in state["message"]
    status = obj(emu, RGPU, NAME)["status"]
    assert status["components"]["padding"]["state"] != "Degraded"  # only the LLM is affected
    assert "llm: RuntimeNotRecognized" in next(c for c in status["conditions"] if c["type"] == "Degraded")["message"]


GATEWAY = {"enabled": True, "host": "gpu.example.com", "gateway": {"parentRefs": [{"name": "eg"}]}}
HTTPROUTE = "gateway.networking.k8s.io/v1/httproutes"
POLICY = "gateway.envoyproxy.io/v1alpha1/securitypolicies"


async def test_the_llm_route_is_never_written_without_its_security_policy(emu):
    """A cluster refusing the SecurityPolicy (here an admission check; a cluster without Envoy
    Gateway's CRD answers 404): the LLM's HTTPRoute is not written (a route already there is
    deleted), the shared route is, and the status says why. Once the policy is accepted, both."""
    emu.admission.append(lambda plural, new, old: "denied by policy" if plural == "securitypolicies" else None)
    async with operator_running(emu):
        await apply(emu, {"ingress": GATEWAY, "llm": LLM})
        await eventually(lambda: obj(emu, HTTPROUTE, NAME), what="shared route")
        await eventually(
            lambda: "SecurityPolicy" in str(obj(emu, RGPU, NAME).get("status", {}).get("conditions")),
            what="problem reported",
        )
        assert obj(emu, HTTPROUTE, f"{NAME}-llm") is None
        assert obj(emu, POLICY, f"{NAME}-llm") is None
        degraded = next(c for c in obj(emu, RGPU, NAME)["status"]["conditions"] if c["type"] == "Degraded")
        assert f"HTTPRoute {NAME}-llm: not applied" in degraded["message"]

        emu.admission.clear()
        await patch(emu, RGPU, NAME, {"spec": {"llm": {"minReplicas": 1, "maxReplicas": 2}}})
        await eventually(lambda: obj(emu, HTTPROUTE, f"{NAME}-llm"), what="llm route once the policy is in")
    policy = obj(emu, POLICY, f"{NAME}-llm")
    assert policy["spec"]["targetRefs"][0]["name"] == f"{NAME}-llm"


async def test_an_existing_cr_keeps_custom_across_the_operator_upgrade(emu):
    """A ReflectorGPU an earlier operator reconciled (it has our status, without llmRuntime)
    keeps the custom predictor; the choice is recorded, so it stays even on later reconciles."""
    await apply(emu, {"llm": LLM})
    earlier = {"observedGeneration": 1, "ready": "True", "conditions": [{"type": "Ready", "status": "True"}]}
    await patch(emu, RGPU, NAME, {"status": earlier}, sub="status")
    async with operator_running(emu):
        await eventually(lambda: obj(emu, ISVC, f"{NAME}-llm"), what="llm isvc")
        await eventually(lambda: obj(emu, RGPU, NAME).get("status", {}).get("llmRuntime"), what="recorded")
    predictor = obj(emu, ISVC, f"{NAME}-llm")["spec"]["predictor"]
    assert predictor["containers"][0]["command"] == ["rgpu-llm"] and "model" not in predictor
    assert obj(emu, RGPU, NAME)["status"]["llmRuntime"] == "custom"
