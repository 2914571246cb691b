"""Fixtures and helpers for running the real operator (kopf + our handlers) against the emulated
cluster (:mod:`cluster`) over HTTP, with a stand-in for the predictors' readiness routes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable

import aiohttp.web
import pytest
import pytest_asyncio
from cluster import ClusterEmulator, KServe, serve_kinds
from operator_support import operator_thread, owner

from rgpu_operator import GROUP, PLURAL, VERSION
from rgpu_operator.settings import Settings

NS = "reflector"
NAME = "rgpu"
RGPU = f"{GROUP}/{VERSION}/{PLURAL}"
ISVC = "serving.kserve.io/v1beta1/inferenceservices"
SECRET = "v1/secrets"
INGRESS = "networking.k8s.io/v1/ingresses"
NETPOL = "networking.k8s.io/v1/networkpolicies"
HTTPROUTE = "gateway.networking.k8s.io/v1/httproutes"
EVENTS = "v1/events"
DEPLOYMENTS = "apps/v1/deployments"
WRITES = {"POST", "PATCH", "PUT", "DELETE"}
DEFAULT_COMPONENTS = ["transcriber-live", "transcriber-file", "diarizer", "translator", "padding"]
OPERATOR_NS = "reflector-gpu-system"
OPERATOR_LABELS = (("app.kubernetes.io/name", "reflector-gpu-operator"),)

pytestmark = pytest.mark.kmock(cls=ClusterEmulator)


def url(resource: str, name: str | None = None, sub: str | None = None, ns: str = NS) -> str:
    group_version, plural = resource.rsplit("/", 1)
    prefix = "/api/" if group_version == "v1" else "/apis/"
    out = f"{prefix}{group_version}/namespaces/{ns}/{plural}"
    return out + (f"/{name}" if name else "") + (f"/{sub}" if sub else "")


def obj(emu: ClusterEmulator, resource: str, name: str, ns: str = NS) -> dict | None:
    return emu.live(resource, ns, name)


async def eventually(check: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except (KeyError, TypeError, IndexError, AssertionError, AttributeError):
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


def live_names(emu, resource: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in emu.all_live(resource))


@pytest_asyncio.fixture
async def emu(kmock, tmp_path, monkeypatch, request):
    """The emulated cluster; ``@pytest.mark.kserve("0.15")`` picks KServe's version (0.16 by
    default), ``@pytest.mark.kserve(None)`` installs none."""
    marker = request.node.get_closest_marker("kserve")
    version = marker.args[0] if marker else "0.16"
    kmock.kserve = KServe(version, **(marker.kwargs if marker else {})) if version else None
    serve_kinds(kmock)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters: [{{name: kmock, cluster: {{server: '{str(kmock.url).rstrip('/')}'}}}}]\n"
        "users: [{name: kmock, user: {token: test-token}}]\n"
        "contexts: [{name: kmock, context: {cluster: kmock, user: kmock, namespace: default}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    # kopf logs in through the kubernetes client when it is installed (the serving extra brings it),
    # which read KUBECONFIG on import; without it kopf reads KUBECONFIG itself.
    try:
        import kubernetes.config.kube_config
    except ImportError:
        pass
    else:
        monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    yield kmock
    await kmock.settle()


class Predictors:
    """Stand-in for the predictors' per-model readiness routes, reached through their Services:
    ``answers[(namespace, service)] = (status, detail)``; default: 503 "still loading"."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], tuple[int, str]] = {}
        self.asked: list[tuple[str, str, str]] = []
        self.base = ""

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        ns, service, model = request.match_info["ns"], request.match_info["svc"], request.match_info["model"]
        self.asked.append((ns, service, model))
        status, detail = self.answers.get((ns, service), (503, f"Model with name {model} is not ready."))
        return aiohttp.web.json_response({"detail": detail, "error": detail}, status=status)


@pytest_asyncio.fixture
async def predictors():
    stand_in = Predictors()
    app = aiohttp.web.Application()
    app.router.add_get("/{ns}/{svc}/v2/models/{model}/ready", stand_in.handle)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    stand_in.base = f"http://127.0.0.1:{port}"
    yield stand_in
    await runner.cleanup()


def settings(emu, predictors: Predictors | None = None, **overrides) -> Settings:
    version = emu.kserve and ".".join(map(str, emu.kserve.version))
    base = Settings(
        namespaces=(NS,),
        image_registry="registry.test/rgpu",
        image_tag="t1",
        kserve_version=version or "0.16",
        resync_seconds=1,
        request_timeout_seconds=2.0,
        api_attempts=3,
        api_backoff_seconds=0.05,
        probe_readiness=predictors is not None,
        probe_url=(predictors.base + "/{namespace}/{service}") if predictors else Settings.probe_url,
        pod_namespace=OPERATOR_NS,
        pod_labels=OPERATOR_LABELS,
    )
    return dataclasses.replace(base, **overrides)


def operator_running(emu, predictors: Predictors | None = None, name: str = "operator", **overrides):
    return operator_thread(settings(emu, predictors, **overrides), name=name)


@pytest_asyncio.fixture
async def running(emu, caplog):
    caplog.set_level(logging.DEBUG)
    async with operator_running(emu):
        yield emu


async def apply(emu, spec: dict, generation: int = 1, name: str = NAME, ns: str = NS) -> None:
    body = owner(spec, name, ns, generation)
    for field in ("uid", "generation"):  # the API server assigns them
        body["metadata"].pop(field)
    resp = await emu.post(url(RGPU, ns=ns), json=body)
    assert resp.status < 300, await resp.text()


async def patch(emu, resource: str, name: str, body: dict, sub: str | None = None, ns: str = NS) -> None:
    resp = await emu.patch(
        url(resource, name, sub, ns=ns), json=body, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert resp.status < 300, await resp.text()


async def set_ready(emu, component: str, ready: bool = True, name: str = NAME, **extra) -> None:
    """KServe's report on an InferenceService (conditions Ready and PredictorReady)."""
    state = "True" if ready else "False"
    conditions = [{"type": t, "status": state, **extra} for t in ("PredictorReady", "Ready")]
    isvc = obj(emu, ISVC, f"{name}-{component}")
    status = {**(isvc.get("status") or {}), "conditions": conditions}
    await patch(emu, ISVC, f"{name}-{component}", {"status": status}, sub="status")


async def quiet(emu, period: float = 1.0, name: str = NAME) -> None:
    """Wait until kopf has recorded the creation as handled (its own last write, which a 422 on
    a concurrent status write may delay) and the operator has written nothing for ``period``."""
    handled = f"{GROUP}/last-handled-configuration"
    await eventually(lambda: handled in (obj(emu, RGPU, name)["metadata"].get("annotations") or {}), what="handled")
    seen = -1
    while seen != len(operator_writes(emu)):
        seen = len(operator_writes(emu))
        await emu.settle()
        await asyncio.sleep(period)


def versions(emu) -> dict[tuple[str, str], str]:
    """(resource plural, name) -> resourceVersion of every stored object."""
    return {
        (res.plural, name): (o.raw.get("metadata") or {}).get("resourceVersion")
        for (res, _, name), o in emu.objects.items()
        if not o.deleted and res.plural != "events"
    }
