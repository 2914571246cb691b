"""The real operator (kopf + our handlers) against the emulated cluster over HTTP.

kmock's ``KubernetesEmulator`` plus the API server and KServe behaviour of ``cluster.py``
(admission, server-side apply, resourceVersions, status subresource, garbage collection); the
operator itself talks to it through lightkube, exactly as to a real API server.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys

import pytest

km = pytest.importorskip("kmock", reason="kmock is a test dependency of the operator (dev extra)")
from cluster import ClusterEmulator
from emulated import (
    DEFAULT_COMPONENTS,
    HTTPROUTE,
    INGRESS,
    ISVC,
    NAME,
    NETPOL,
    NS,
    RGPU,
    SECRET,
    apply,
    eventually,
    live_names,
    obj,
    operator_running,
    operator_writes,
    patch,
    quiet,
    set_ready,
    settings,
    url,
)
from operator_support import operator_thread

import rgpu_contract as contract
from rgpu_operator import API_VERSION, GROUP

pytestmark = [pytest.mark.asyncio, pytest.mark.kmock(cls=ClusterEmulator)]

SPEC = {"ingress": {"enabled": True, "host": "gpu.example.com", "tlsSecretName": "gpu-tls"}}


async def converge(emu, spec: dict | None = None) -> dict:
    await apply(emu, SPEC if spec is None else spec)
    await eventually(lambda: all(obj(emu, ISVC, f"{NAME}-{c}") for c in DEFAULT_COMPONENTS), what="isvcs")
    return await eventually(lambda: (obj(emu, RGPU, NAME) or {}).get("status", {}).get("endpoints"), what="status")


async def test_create_builds_children_with_the_right_content(running):
    emu = running
    await converge(emu)
    live = obj(emu, ISVC, f"{NAME}-transcriber-live")
    pred = live["spec"]["predictor"]
    container = pred["containers"][0]
    assert pred["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A10G"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # Every cpu/memory request and limit is ours: KServe's webhook had nothing to fill in.
    assert (
        container["resources"]["requests"]["memory"] == "8Gi" and container["resources"]["limits"]["memory"] == "12Gi"
    )
    assert container["image"] == "registry.test/rgpu/reflector-gpu-parakeet:t1"
    assert live["metadata"]["ownerReferences"][0]["uid"] == obj(emu, RGPU, NAME)["metadata"]["uid"]
    assert live["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
    assert live["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    assert live["status"]["deploymentMode"] == "Standard"  # KServe 0.16's controller recorded it
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REFLECTOR_GPU_PROFILE"] == "live"
    assert env[contract.ENV_METRICS_PORT] == str(contract.METRICS_PORT) and env[contract.ENV_API_DOCS] == "false"
    assert {"name": "metrics", "containerPort": contract.METRICS_PORT, "protocol": "TCP"} in container["ports"]
    assert obj(emu, ISVC, f"{NAME}-transcriber-file")["spec"]["predictor"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-L40S"
    }
    assert "nodeSelector" not in obj(emu, ISVC, f"{NAME}-padding")["spec"]["predictor"]
    assert obj(emu, ISVC, f"{NAME}-llm") is None  # disabled by default
    secret = obj(emu, SECRET, f"{NAME}-apikey")
    assert len(base64.b64decode(secret["data"]["apikey"])) >= 32
    ingress = obj(emu, INGRESS, NAME)
    assert ingress["spec"]["tls"] == [{"hosts": ["gpu.example.com"], "secretName": "gpu-tls"}]
    assert live_names(emu, NETPOL) == sorted(f"{NAME}-{c}" for c in DEFAULT_COMPONENTS)
    status = obj(emu, RGPU, NAME)["status"]
    assert status["ready"] == "False"
    assert status["endpoints"]["TRANSCRIPT_URL"] == "https://gpu.example.com/transcriber"
    assert status["apiKeySecret"] == {"name": f"{NAME}-apikey", "key": "apikey"}
    assert status["images"]["parakeet"] == "registry.test/rgpu/reflector-gpu-parakeet:t1"
    assert status["kserve"] == {"version": "0.16", "deploymentMode": "Standard"}
    assert obj(emu, RGPU, NAME)["metadata"]["finalizers"] == [f"{GROUP}/finalizer"]


async def test_ready_inferenceservices_make_the_resource_ready(running):
    emu = running
    await converge(emu)
    for comp in DEFAULT_COMPONENTS[:-1]:
        await set_ready(emu, comp)
    await asyncio.sleep(0.3)
    assert obj(emu, RGPU, NAME)["status"]["ready"] == "False"
    await set_ready(emu, "padding")
    status = await eventually(
        lambda: obj(emu, RGPU, NAME)["status"]["ready"] == "True" and obj(emu, RGPU, NAME)["status"], what="ready"
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["observedGeneration"] == 1
    assert status["endpoints"] == {
        "TRANSCRIPT_URL": "https://gpu.example.com/transcriber",
        "DIARIZATION_URL": "https://gpu.example.com/diarizer",
        "TRANSLATE_URL": "https://gpu.example.com/translator",
        "PADDING_URL": "https://gpu.example.com/padding",
    }
    assert status["componentStates"] == " ".join(f"{c}=Ready" for c in DEFAULT_COMPONENTS)

    def reasons() -> list[str]:
        return [r.data.get("reason") for r in emu if r.method == "POST" and "/events" in r.url.path]

    await eventually(lambda: "Ready" in reasons(), what="events")


async def test_spec_update_patches_and_removes_children(running):
    emu = running
    await converge(emu)
    body = {
        "spec": {
            "transcriber": {"engine": "whisper", "live": {"pool": "l40s"}},
            "diarizer": {"enabled": False},
            "llm": {"enabled": True, "runtime": "custom", "model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct"}},
            "ingress": {"gateway": {"parentRefs": [{"name": "public", "namespace": "gateways"}]}},
        }
    }
    await patch(emu, RGPU, NAME, body)
    live = await eventually(
        lambda: (
            "whisper" in obj(emu, ISVC, f"{NAME}-transcriber-live")["spec"]["predictor"]["containers"][0]["image"]
            and obj(emu, ISVC, f"{NAME}-transcriber-live")
        ),
        what="engine switch",
    )
    assert live["spec"]["predictor"]["containers"][0]["command"] == ["rgpu-whisper"]
    assert live["spec"]["predictor"]["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-L40S"
    await eventually(lambda: obj(emu, ISVC, f"{NAME}-diarizer") is None, what="diarizer removed")
    await eventually(lambda: obj(emu, NETPOL, f"{NAME}-diarizer") is None, what="its policy removed")
    await eventually(lambda: obj(emu, ISVC, f"{NAME}-llm"), what="llm added")
    await eventually(lambda: obj(emu, HTTPROUTE, NAME) and obj(emu, INGRESS, NAME) is None, what="route swap")
    status = await eventually(
        lambda: obj(emu, RGPU, NAME)["status"].get("observedGeneration") == 2 and obj(emu, RGPU, NAME)["status"],
        what="observedGeneration",
    )
    assert "DIARIZATION_URL" not in status["endpoints"]
    assert status["endpoints"]["LLM_URL"] == "https://gpu.example.com/llm/v1"
    assert "diarizer" not in status["components"]


async def test_server_side_apply_removes_fields_we_stop_setting(running):
    """A field the operator no longer sets disappears (server-side apply), others' fields stay."""
    emu = running
    await converge(emu, {**SPEC, "urlAllowlist": ["minio.internal"]})
    env = lambda: {e["name"] for e in obj(emu, ISVC, f"{NAME}-diarizer")["spec"]["predictor"]["containers"][0]["env"]}  # noqa: E731
    assert contract.ENV_URL_ALLOWLIST in env()
    await patch(emu, ISVC, f"{NAME}-diarizer", {"metadata": {"annotations": {"team.example.com/owner": "ml"}}})
    await patch(emu, RGPU, NAME, {"spec": {"urlAllowlist": None}})
    await eventually(lambda: contract.ENV_URL_ALLOWLIST not in env(), what="the variable removed")
    assert obj(emu, ISVC, f"{NAME}-diarizer")["metadata"]["annotations"]["team.example.com/owner"] == "ml"


async def test_children_deleted_by_hand_are_restored(running):
    emu = running
    await converge(emu)
    key = obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"]
    resp = await emu.delete(url(ISVC, f"{NAME}-translator"))
    assert resp.status == 200
    await eventually(lambda: obj(emu, ISVC, f"{NAME}-translator"), what="isvc restored")
    await emu.delete(url(INGRESS, NAME))
    await eventually(lambda: obj(emu, INGRESS, NAME), what="ingress restored (resync)")
    # Hand edits of fields we own are reverted; other fields survive.
    await patch(emu, NETPOL, f"{NAME}-padding", {"spec": {"policyTypes": ["Egress"]}})
    await eventually(
        lambda: obj(emu, NETPOL, f"{NAME}-padding")["spec"]["policyTypes"] == ["Ingress"], what="netpol reverted"
    )
    assert obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"] == key  # never rotated by a resync


async def test_delete_removes_children(running):
    emu = running
    await converge(emu)
    resp = await emu.delete(url(RGPU, NAME))
    assert resp.status == 200
    await eventually(lambda: obj(emu, RGPU, NAME) is None, what="finalizer released")
    for comp in DEFAULT_COMPONENTS:
        assert obj(emu, ISVC, f"{NAME}-{comp}") is None
        assert obj(emu, NETPOL, f"{NAME}-{comp}") is None
    assert obj(emu, SECRET, f"{NAME}-apikey") is None
    assert obj(emu, INGRESS, NAME) is None


async def test_converges_through_api_failures(running):
    emu = running
    isvc = km.resource(ISVC)
    # First applies fail with 500 after the server stored them, then 409 and 503; a read hangs
    # past the client timeout.
    emu[km.action.UPDATE, isvc][:3] << 500
    emu[km.action.UPDATE, isvc][:2] << 409
    emu[km.action.UPDATE, km.resource(SECRET)][:1] << 503

    async def hang():
        await asyncio.sleep(5)  # > the client's 2 s request timeout
        return {}

    emu[km.action.FETCH, km.resource(INGRESS)][:1] << hang
    await converge(emu)
    for comp in DEFAULT_COMPONENTS:
        await set_ready(emu, comp)
    await eventually(lambda: obj(emu, RGPU, NAME)["status"]["ready"] == "True", timeout=60, what="ready")
    assert obj(emu, INGRESS, NAME)


async def test_delete_converges_through_api_failures(running):
    emu = running
    await converge(emu)
    # Delete only once kopf has recorded the creation as handled: a delete racing that last write
    # (held up by a 422 on a concurrent status patch) left the finalizer in place in the emulator
    # on the test machine in about 3 of 4 runs, which is not what this test is about.
    await quiet(emu)
    isvc = km.resource(ISVC)
    # Deletes of children fail with 500 / 503 and hang past the client timeout before succeeding.
    emu[km.action.DELETE, isvc][:3] << 500

    async def hang():
        await asyncio.sleep(5)  # > the client's 2 s request timeout
        return {}

    emu[km.action.DELETE, km.resource(SECRET)][:1] << hang
    emu[km.action.DELETE, km.resource(INGRESS)][:2] << 503
    resp = await emu.delete(url(RGPU, NAME))
    assert resp.status == 200
    await eventually(lambda: obj(emu, RGPU, NAME) is None, timeout=60, what="finalizer released")
    assert [c for c in DEFAULT_COMPONENTS if obj(emu, ISVC, f"{NAME}-{c}")] == []
    assert obj(emu, SECRET, f"{NAME}-apikey") is None and obj(emu, INGRESS, NAME) is None
    deletes = [r.url.path.rsplit("/", 2)[-2] for r in emu if r.method == "DELETE"]
    # The failures were met and retried (more attempts than objects).
    assert deletes.count("inferenceservices") > 5 and deletes.count("ingresses") >= 2, deletes
    assert deletes.count("secrets") >= 2, deletes


async def test_no_secret_value_in_status_events_or_logs(running, caplog):
    emu = running
    await converge(emu)
    for comp in DEFAULT_COMPONENTS:
        await set_ready(emu, comp)
    await eventually(lambda: obj(emu, RGPU, NAME)["status"]["ready"] == "True", what="ready")
    key = base64.b64decode(obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"]).decode()
    encoded = obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"]
    assert key not in str(obj(emu, RGPU, NAME))
    events = [r.text for r in emu if "/events" in r.url.path and r.method == "POST"]
    assert events
    for text in [*events, caplog.text]:
        assert key not in text and encoded not in text
    assert API_VERSION in str(events[0])


async def test_operator_restarts_cleanly_mid_reconcile(emu):
    # The first operator is stopped while its reconcile waits on a read of the padding
    # NetworkPolicy (after other children exist, before padding's are applied).
    hit = asyncio.Event()

    async def stall():
        hit.set()
        await asyncio.sleep(5)  # > the client's 2 s request timeout
        return {}

    emu[km.action.FETCH, km.resource(NETPOL), km.name(f"{NAME}-padding")][:3] << stall  # every retry
    async with operator_running(emu):
        await apply(emu, SPEC)
        await asyncio.wait_for(hit.wait(), 10)
    assert obj(emu, ISVC, f"{NAME}-transcriber-live") and obj(emu, NETPOL, f"{NAME}-padding") is None
    key = obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"]
    async with operator_running(emu):  # a fresh process picks the object up again
        await eventually(lambda: obj(emu, NETPOL, f"{NAME}-padding"), what="resumed children")
        await eventually(lambda: obj(emu, RGPU, NAME).get("status", {}).get("endpoints"), what="status")
    assert obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"] == key  # not regenerated
    # No duplicate children: exactly one of each.
    assert live_names(emu, ISVC) == sorted(f"{NAME}-{c}" for c in DEFAULT_COMPONENTS)
    assert live_names(emu, SECRET) == [f"{NAME}-apikey"]
    assert live_names(emu, INGRESS) == [NAME]


async def test_missing_user_secret_is_reported_then_cleared(running):
    emu = running
    await apply(emu, {"auth": {"existingSecret": {"name": "team-key", "key": "token"}}})
    status = await eventually(lambda: obj(emu, RGPU, NAME)["status"]["conditions"], what="status")
    degraded = next(c for c in status if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "team-key" in degraded["message"]
    assert obj(emu, SECRET, f"{NAME}-apikey") is None  # nothing generated when a Secret is named
    resp = await emu.post(
        url(SECRET),
        json={
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "team-key", "namespace": NS},
            "data": {"token": base64.b64encode(b"k").decode()},
        },
    )
    assert resp.status < 300
    await eventually(
        lambda: (
            next(c for c in obj(emu, RGPU, NAME)["status"]["conditions"] if c["type"] == "Degraded")["status"]
            == "False"
        ),
        what="resync clears it",
    )


async def test_quiet_after_convergence(running):
    """Once converged and ready, resyncs read but never write."""
    emu = running
    await converge(emu)
    for comp in DEFAULT_COMPONENTS:
        await set_ready(emu, comp)
    await eventually(lambda: obj(emu, RGPU, NAME)["status"]["ready"] == "True", what="ready")
    await quiet(emu)
    mark = len(list(emu))
    await asyncio.sleep(2.5)  # > 2 resync periods: every ReflectorGPU is reconciled again
    reads = [
        r for r in list(emu)[mark:] if r.method == "GET" and "/namespaces/" in r.url.path and "watch" not in r.params
    ]
    assert reads, "the resync should have run (it reads the children)"
    assert operator_writes(emu, mark) == []


# --- more than one replica: kopf peering ----------------------------------------------------

PEERINGS = "kopf.dev/v1/kopfpeerings"
PEERING = "rgpu-peering"


def serve_peerings(emu) -> None:
    emu.resources[PEERINGS] = km.ResourceInfo(
        kind="KopfPeering", namespaced=True, verbs={"get", "list", "watch", "create", "patch"}
    )


def paused(caplog, thread: str) -> bool:
    return any(r.threadName == thread and "Pausing operations" in r.getMessage() for r in caplog.records)


async def test_replicas_share_the_work_through_peering(emu, caplog):
    """Two replicas: the one with the higher priority works, the other waits; when the worker
    stops cleanly the standby resumes and serves changes. The peering object is created once."""
    caplog.set_level(logging.DEBUG)
    serve_peerings(emu)
    async with operator_thread(settings(emu, peering=PEERING, priority=100), name="standby"):
        peers = await eventually(lambda: obj(emu, PEERINGS, PEERING)["status"], what="standby registered")
        async with operator_thread(settings(emu, peering=PEERING, priority=200), name="worker"):
            await eventually(lambda: paused(caplog, "standby"), what="the standby pauses")
            assert not paused(caplog, "worker")
            await converge(emu)
            peers = obj(emu, PEERINGS, PEERING)["status"]
            assert sorted(p["priority"] for p in peers.values() if p) == [100, 200]
            handled = {r.threadName for r in caplog.records if r.getMessage().startswith("Handler '")}
            assert handled == {"worker"}, handled
        # The worker left its entry at exit: the standby resumes and reconciles the next change.
        await eventually(
            lambda: any(r.threadName == "standby" and "Resuming operations" in r.getMessage() for r in caplog.records),
            what="the standby resumes",
        )
        await patch(emu, RGPU, NAME, {"spec": {"diarizer": {"enabled": False}}})
        await eventually(
            lambda: obj(emu, ISVC, f"{NAME}-diarizer") is None, timeout=30, what="the standby applies the change"
        )
    assert len([r for r in emu if r.method == "POST" and r.url.path.endswith("/kopfpeerings")]) == 1


async def test_peering_without_its_crd_stops_the_operator_with_the_reason(emu):
    """The real entry point (``python -m rgpu_operator``) against an API server without the
    kopf.dev CRDs (404 for the kind's paths): it exits non-zero at once, saying why and how."""
    emu[km.resource(PEERINGS)] << 404
    env = {
        **os.environ,
        "RGPU_OPERATOR_PEERING": PEERING,
        "RGPU_OPERATOR_NAMESPACES": NS,
        "RGPU_OPERATOR_HEALTH_PORT": "0",
        "RGPU_OPERATOR_API_ATTEMPTS": "1",
        "RGPU_OPERATOR_KSERVE_VERSION": "0.16",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rgpu_operator", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    assert "kopf.dev peering CRDs" in out.decode() and "RGPU_OPERATOR_PEERING=''" in out.decode(), out.decode()[-2000:]
