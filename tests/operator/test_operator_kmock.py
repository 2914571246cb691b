"""The real operator (kopf + our handlers) against kmock's KubernetesEmulator over HTTP.

Emulator gaps (kmock 0.8) handled here, not in the operator: no uid / resourceVersion /
generation / generateName (the ``Emulator`` subclass below adds them, as any API server does),
no owner-reference GC (the operator's finalizer deletes children explicitly anyway), no
defaulting or schema validation (the builders default specs from the CRD schema themselves),
label selectors ignored (the client filters again), no PUT (the operator never uses it), and
server-side apply treated as a merge patch (so a field we stop setting is not removed here,
while a real API server removes it).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable

import pytest

km = pytest.importorskip("kmock", reason="kmock is a test dependency of the operator (dev extra)")
import pytest_asyncio
from operator_support import operator_thread, owner

from rgpu_operator import API_VERSION, GROUP, PLURAL, VERSION
from rgpu_operator.settings import Settings


class Emulator(km.KubernetesEmulator):
    """The emulator plus what every API server does and kmock 0.8 does not: uid, resourceVersion,
    generation (bumped on spec changes) and generateName. Test plumbing only."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._serial = itertools.count(1)

    async def _handle(self, request):
        data = request.data
        if request.resource is not None and request.action in (km.action.CREATE, km.action.UPDATE):
            n = next(self._serial)
            if isinstance(data, list):  # a JSON patch (kopf's, guarded by a test on resourceVersion)
                # kmock compares resourceVersion as written, not as "the object's current one";
                # drop the guard (no concurrent writers here) and bump the version like a server.
                data[:] = [
                    op for op in data if not (op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion")
                ]
                data.append({"op": "add", "path": "/metadata/resourceVersion", "value": str(n)})
            elif isinstance(data, dict):
                meta = data.setdefault("metadata", {})
                meta["resourceVersion"] = str(n)
                if request.action == km.action.CREATE:
                    if not meta.get("name") and meta.get("generateName"):
                        meta["name"] = f"{meta['generateName']}{n:05d}"
                    meta.setdefault("uid", f"uid-{n}")
                    meta.setdefault("generation", 1)
                elif not request.subresource and "spec" in data:
                    key = (request.resource, request.namespace, request.name)
                    if key in self.objects and not self.objects[key].deleted:
                        meta["generation"] = (self.objects[key].get("metadata", {}).get("generation") or 0) + 1
        return await super()._handle(request)


pytestmark = [pytest.mark.asyncio, pytest.mark.kmock(cls=Emulator)]

NS = "reflector"
NAME = "rgpu"
RGPU = f"{GROUP}/{VERSION}/{PLURAL}"
ISVC = "serving.kserve.io/v1beta1/inferenceservices"
SECRET = "v1/secrets"
INGRESS = "networking.k8s.io/v1/ingresses"
NETPOL = "networking.k8s.io/v1/networkpolicies"
HTTPROUTE = "gateway.networking.k8s.io/v1/httproutes"
EVENTS = "v1/events"
KINDS = {
    RGPU: "ReflectorGPU",
    ISVC: "InferenceService",
    SECRET: "Secret",
    INGRESS: "Ingress",
    NETPOL: "NetworkPolicy",
    HTTPROUTE: "HTTPRoute",
    EVENTS: "Event",
}
WRITES = {"POST", "PATCH", "PUT", "DELETE"}
DEFAULT_COMPONENTS = ["transcriber-live", "transcriber-file", "diarizer", "translator", "padding"]


def url(resource: str, name: str | None = None, sub: str | None = None) -> str:
    group_version, plural = resource.rsplit("/", 1)
    prefix = "/api/" if group_version == "v1" else "/apis/"
    out = f"{prefix}{group_version}/namespaces/{NS}/{plural}"
    return out + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def obj(emu, resource: str, name: str) -> dict | None:
    key = (km.resource(resource), NS, name)
    if key not in emu.objects or emu.objects[key].deleted:
        return None
    return emu.objects[key].raw


async def eventually(check: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (KeyError, TypeError, IndexError, AssertionError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def operator_writes(emu, since: int = 0) -> list[str]:
    """Write requests the operator made (the test's own client identifies as kmock)."""
    return [
        f"{r.method} {r.url.path}"
        for r in list(emu)[since:]
        if r.method in WRITES and not r.headers.get("User-Agent", "").startswith("kmock/")
    ]


@pytest_asyncio.fixture
async def emu(kmock, tmp_path, monkeypatch):
    for resource, kind in KINDS.items():
        kmock.resources[resource] = km.ResourceInfo(
            kind=kind,
            namespaced=True,
            verbs={"get", "list", "watch", "create", "patch", "delete"},
            subresources={"status"} if resource in (RGPU, ISVC) else set(),
        )
    # Every real cluster serves these; kopf waits for them in discovery (it lists neither).
    kmock.resources["v1/namespaces"] = km.ResourceInfo(
        kind="Namespace", namespaced=False, verbs={"get", "list", "watch"}
    )
    kmock.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = km.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False, verbs={"get", "list", "watch"}
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters: [{{name: kmock, cluster: {{server: '{str(kmock.url).rstrip('/')}'}}}}]\n"
        "users: [{name: kmock, user: {token: test-token}}]\n"
        "contexts: [{name: kmock, context: {cluster: kmock, user: kmock}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kopf logs in through the kubernetes client, which read KUBECONFIG when first imported.
    import kubernetes.config.kube_config

    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    return kmock


def operator_running(emu):
    settings = Settings(
        namespaces=(NS,),
        image_registry="registry.test/rgpu",
        image_tag="t1",
        resync_seconds=1,
        request_timeout_seconds=2.0,
        api_attempts=3,
        api_backoff_seconds=0.05,
    )
    return operator_thread(settings)


@pytest_asyncio.fixture
async def running(emu, caplog):
    caplog.set_level(logging.DEBUG)
    async with operator_running(emu):
        yield emu


async def apply(emu, spec: dict, generation: int = 1) -> None:
    body = owner(spec, NAME, NS, generation)
    resp = await emu.post(url(RGPU), json=body)
    assert resp.status < 300, await resp.text()


async def patch(emu, resource: str, name: str, body: dict, sub: str | None = None) -> None:
    resp = await emu.patch(
        url(resource, name, sub), json=body, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert resp.status < 300, await resp.text()


async def set_ready(emu, component: str, ready: bool = True) -> None:
    await patch(
        emu,
        ISVC,
        f"{NAME}-{component}",
        {"status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}},
        sub="status",
    )


SPEC = {"ingress": {"enabled": True, "host": "gpu.example.com", "tlsSecretName": "gpu-tls"}}


async def converge(emu) -> dict:
    await apply(emu, SPEC)
    await eventually(lambda: all(obj(emu, ISVC, f"{NAME}-{c}") for c in DEFAULT_COMPONENTS), what="isvcs")
    return await eventually(lambda: (obj(emu, RGPU, NAME) or {}).get("status", {}).get("endpoints"), what="status")


async def test_create_builds_children_with_the_right_content(running):
    emu = running
    await converge(emu)
    live = obj(emu, ISVC, f"{NAME}-transcriber-live")
    pred = live["spec"]["predictor"]
    assert pred["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A10G"}
    assert pred["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pred["containers"][0]["image"] == "registry.test/rgpu/reflector-gpu-parakeet:t1"
    assert live["metadata"]["ownerReferences"][0]["uid"] == f"uid-{NS}-{NAME}"
    env = {e["name"]: e.get("value") for e in pred["containers"][0]["env"]}
    assert env["REFLECTOR_GPU_PROFILE"] == "live"
    assert obj(emu, ISVC, f"{NAME}-transcriber-file")["spec"]["predictor"]["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-L40S"
    }
    assert "nodeSelector" not in obj(emu, ISVC, f"{NAME}-padding")["spec"]["predictor"]
    assert obj(emu, ISVC, f"{NAME}-llm") is None  # disabled by default
    secret = obj(emu, SECRET, f"{NAME}-apikey")
    assert len(base64.b64decode(secret["data"]["apikey"])) >= 32
    ingress = obj(emu, INGRESS, NAME)
    assert ingress["spec"]["tls"] == [{"hosts": ["gpu.example.com"], "secretName": "gpu-tls"}]
    assert obj(emu, NETPOL, f"{NAME}-predictors")
    status = obj(emu, RGPU, NAME)["status"]
    assert status["ready"] == "False"
    assert status["endpoints"]["TRANSCRIPT_URL"] == "https://gpu.example.com/transcriber"
    assert status["apiKeySecret"] == {"name": f"{NAME}-apikey", "key": "apikey"}
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
    # A failing component degrades the resource.
    await patch(
        emu,
        ISVC,
        f"{NAME}-diarizer",
        {
            "status": {
                "conditions": [{"type": "Ready", "status": "False", "reason": "ModelLoadFailed"}],
                "modelStatus": {
                    "transitionStatus": "BlockedByFailedLoad",
                    "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "OOM"},
                },
            }
        },
        sub="status",
    )
    status = await eventually(
        lambda: obj(emu, RGPU, NAME)["status"]["ready"] == "False" and obj(emu, RGPU, NAME)["status"], what="degraded"
    )
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "diarizer" in degraded["message"]

    def reasons() -> list[str]:
        return [r.data.get("reason") for r in emu if r.method == "POST" and "/events" in r.url.path]

    await eventually(lambda: "Ready" in reasons() and "Degraded" in reasons(), what="events")


async def test_spec_update_patches_and_removes_children(running):
    emu = running
    await converge(emu)
    body = {
        "spec": {
            "transcriber": {"engine": "whisper", "live": {"pool": "l40s"}},
            "diarizer": {"enabled": False},
            "llm": {"enabled": True, "model": {"name": "HuggingFaceTB/SmolLM2-135M-Instruct"}},
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
    await eventually(lambda: obj(emu, ISVC, f"{NAME}-llm"), what="llm added")
    await eventually(lambda: obj(emu, HTTPROUTE, NAME) and obj(emu, INGRESS, NAME) is None, what="route swap")
    status = await eventually(
        lambda: obj(emu, RGPU, NAME)["status"].get("observedGeneration") == 2 and obj(emu, RGPU, NAME)["status"],
        what="observedGeneration",
    )
    assert "DIARIZATION_URL" not in status["endpoints"]
    assert status["endpoints"]["LLM_URL"] == "https://gpu.example.com/llm/v1"
    assert "diarizer" not in status["components"]


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
    await patch(emu, NETPOL, f"{NAME}-predictors", {"spec": {"policyTypes": ["Egress"]}})
    await eventually(
        lambda: obj(emu, NETPOL, f"{NAME}-predictors")["spec"]["policyTypes"] == ["Ingress"], what="netpol reverted"
    )
    assert obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"] == key  # never rotated by a resync


async def test_nothing_changed_means_no_writes(running):
    emu = running
    await converge(emu)
    for comp in DEFAULT_COMPONENTS:
        await set_ready(emu, comp)
    await eventually(lambda: obj(emu, RGPU, NAME)["status"]["ready"] == "True", what="ready")
    # Let the reconciles the readiness events triggered (and their Events) settle: wait until
    # the operator has written nothing for a while.
    seen = -1
    while seen != len(operator_writes(emu)):
        seen = len(operator_writes(emu))
        await asyncio.sleep(1.0)
    mark = len(list(emu))
    await asyncio.sleep(2.5)  # > 2 resync periods: every ReflectorGPU is reconciled again
    reads = [
        r for r in list(emu)[mark:] if r.method == "GET" and "/namespaces/" in r.url.path and "watch" not in r.params
    ]
    assert reads, "the resync should have run (it reads the children)"
    assert operator_writes(emu, mark) == []


async def test_delete_removes_children(running):
    emu = running
    await converge(emu)
    resp = await emu.delete(url(RGPU, NAME))
    assert resp.status == 200
    await eventually(lambda: obj(emu, RGPU, NAME) is None, what="finalizer released")
    for comp in DEFAULT_COMPONENTS:
        assert obj(emu, ISVC, f"{NAME}-{comp}") is None
    assert obj(emu, SECRET, f"{NAME}-apikey") is None
    assert obj(emu, INGRESS, NAME) is None
    assert obj(emu, NETPOL, f"{NAME}-predictors") is None


async def test_converges_through_api_failures(running):
    emu = running
    isvc = km.resource(ISVC)
    # First creates fail with 500 after the server stored them (the retry then meets 409),
    # applies hit 409 and 503, and a read hangs past the client timeout.
    emu[km.action.CREATE, isvc][:3] << 500
    emu[km.action.UPDATE, isvc][:2] << 409
    emu[km.action.UPDATE, km.resource(SECRET)][:1] << 503

    async def hang():
        await asyncio.sleep(5)  # > the client's 2 s request timeout
        return {}

    emu[km.action.FETCH, km.resource(INGRESS)][:1] << hang
    await converge(emu)
    for comp in DEFAULT_COMPONENTS:
        await set_ready(emu, comp)
    await eventually(lambda: obj(emu, RGPU, NAME)["status"]["ready"] == "True", what="ready")
    assert obj(emu, INGRESS, NAME)


async def test_delete_converges_through_api_failures(running):
    emu = running
    await converge(emu)
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


def live_objects(emu, resource: str) -> list[str]:
    return sorted(
        name for (res, _, name), item in emu.objects.items() if res == km.resource(resource) and not item.deleted
    )


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
    # InferenceService (after other children exist, before padding is created).
    hit = asyncio.Event()

    async def stall():
        hit.set()
        await asyncio.sleep(5)  # > the client's 2 s request timeout
        return {}

    emu[km.action.FETCH, km.resource(ISVC), km.name(f"{NAME}-padding")][:3] << stall  # every retry
    async with operator_running(emu):
        await apply(emu, SPEC)
        await asyncio.wait_for(hit.wait(), 10)
    assert obj(emu, ISVC, f"{NAME}-transcriber-live") and obj(emu, ISVC, f"{NAME}-padding") is None
    key = obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"]
    async with operator_running(emu):  # a fresh process picks the object up again
        await eventually(
            lambda: all(obj(emu, ISVC, f"{NAME}-{c}") for c in DEFAULT_COMPONENTS), what="resumed children"
        )
        await eventually(lambda: obj(emu, RGPU, NAME).get("status", {}).get("endpoints"), what="status")
    assert obj(emu, SECRET, f"{NAME}-apikey")["data"]["apikey"] == key  # not regenerated
    # No duplicate children: exactly one of each.
    assert live_objects(emu, ISVC) == sorted(f"{NAME}-{c}" for c in DEFAULT_COMPONENTS)
    assert live_objects(emu, SECRET) == [f"{NAME}-apikey"]
    assert live_objects(emu, INGRESS) == [NAME]


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


# --- more than one replica: kopf peering ----------------------------------------------------

PEERINGS = "kopf.dev/v1/kopfpeerings"
PEERING = "rgpu-peering"


def peering_settings(priority: int) -> Settings:
    return Settings(
        namespaces=(NS,),
        image_registry="registry.test/rgpu",
        image_tag="t1",
        resync_seconds=1,
        request_timeout_seconds=2.0,
        api_attempts=3,
        api_backoff_seconds=0.05,
        peering=PEERING,
        priority=priority,
    )


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
    async with operator_thread(peering_settings(100), name="standby"):
        peers = await eventually(lambda: obj(emu, PEERINGS, PEERING)["status"], what="standby registered")
        async with operator_thread(peering_settings(200), name="worker"):
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
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rgpu_operator", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    assert "kopf.dev peering CRDs" in out.decode() and "RGPU_OPERATOR_PEERING=''" in out.decode(), out.decode()[-2000:]
