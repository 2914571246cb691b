"""End to end on a real cluster (e.g. kind + KServe in RawDeployment mode).

Skipped unless ``RGPU_E2E_KUBECONFIG`` names such a cluster: none can be reached from the machines
this suite normally runs on. It installs the CRD, runs the operator in-process, applies a
CPU-only ReflectorGPU (whisper, padding) and checks the real API server's answers: children
created, status endpoints written, and (with ``RGPU_E2E_EXPECT_READY=1`` and pullable predictor
images under ``RGPU_E2E_IMAGE_REGISTRY``/``RGPU_E2E_IMAGE_TAG``) that the resource becomes Ready.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

KUBECONFIG = os.environ.get("RGPU_E2E_KUBECONFIG", "")

pytestmark = [
    pytest.mark.skipif(
        not KUBECONFIG,
        reason="needs a real cluster with KServe: set RGPU_E2E_KUBECONFIG "
        "(e.g. kind + KServe RawDeployment); no cluster is reachable here",
    ),
    pytest.mark.asyncio,
]


async def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(2)
    raise AssertionError(f"timed out waiting for {what}")


async def test_reflectorgpu_on_a_real_cluster(monkeypatch):
    import kubernetes.config.kube_config
    from operator_support import operator_thread

    from rgpu_operator import API_VERSION, KIND
    from rgpu_operator.api import Kube
    from rgpu_operator.schema import crd
    from rgpu_operator.settings import Settings

    monkeypatch.setenv("KUBECONFIG", KUBECONFIG)
    monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", KUBECONFIG)
    ns = os.environ.get("RGPU_E2E_NAMESPACE", "rgpu-e2e")
    settings = Settings(
        namespaces=(ns,),
        resync_seconds=10,
        image_registry=os.environ.get("RGPU_E2E_IMAGE_REGISTRY", Settings.image_registry),
        image_tag=os.environ.get("RGPU_E2E_IMAGE_TAG", Settings.image_tag),
        kserve_version=os.environ.get("RGPU_E2E_KSERVE_VERSION", ""),  # empty: read from KServe
        probe_readiness=False,  # the operator runs outside the cluster: no Service DNS
    )
    kube = Kube(settings)
    definition = crd()
    await kube.apply(definition)

    async def established():
        live = await kube.get(
            "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, definition["metadata"]["name"]
        )
        return any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (live or {}).get("status", {}).get("conditions", [])
        )

    await _until(established, 60, "the CRD to be established")
    await kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    body = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "e2e", "namespace": ns},
        "spec": {
            "pools": {"cpu": {"gpu": {"count": 0}}},
            "transcriber": {
                "engine": "whisper",
                "model": {"name": "tiny.en"},
                "live": {"pool": "cpu"},
                "file": {"pool": "cpu"},
            },
            "diarizer": {"enabled": False},
            "translator": {"enabled": False},
            "padding": {"pool": "cpu"},
            "networkPolicy": {"enabled": False},
        },
    }
    try:
        async with operator_thread(settings):
            await kube.apply(body)

            async def endpoints():
                live = await kube.get(API_VERSION, KIND, ns, "e2e")
                return (live or {}).get("status", {}).get("endpoints")

            found = await _until(endpoints, 120, "status.endpoints")
            assert set(found) == {"TRANSCRIPT_URL", "PADDING_URL"}
            for name in ("e2e-transcriber-live", "e2e-transcriber-file", "e2e-padding"):
                isvc = await kube.get("serving.kserve.io/v1beta1", "InferenceService", ns, name)
                assert isvc is not None
                assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
            # KServe made no Ingress of its own for them (cluster-local).
            assert [i["metadata"]["name"] for i in await kube.list("networking.k8s.io/v1", "Ingress", ns)] == [], (
                "no Ingress: spec.ingress is disabled and KServe's are suppressed"
            )
            if os.environ.get("RGPU_E2E_EXPECT_READY") == "1":

                async def ready():
                    live = await kube.get(API_VERSION, KIND, ns, "e2e")
                    return (live or {}).get("status", {}).get("ready") == "True"

                await _until(ready, 900, "the resource to become Ready")
            await kube.delete(API_VERSION, KIND, ns, "e2e")
            await _until(lambda: _gone(kube, ns), 120, "the resource and its children to be deleted")
    finally:
        await kube.close()


async def _gone(kube, ns: str) -> bool:
    from rgpu_operator import API_VERSION, KIND

    return (
        await kube.get(API_VERSION, KIND, ns, "e2e") is None
        and await kube.get("serving.kserve.io/v1beta1", "InferenceService", ns, "e2e-padding") is None
    )
