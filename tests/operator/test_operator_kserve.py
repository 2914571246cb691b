"""The operator against emulated KServe 0.15, 0.16 and 0.17 (``cluster.KServe``): what it writes
is admitted, stays converged, leaves no route around its own, and every failure ends in a
truthful status."""

from __future__ import annotations

import asyncio

import pytest

km = pytest.importorskip("kmock", reason="kmock is a test dependency of the operator (dev extra)")
from cluster import VERSIONS, ClusterEmulator, KServe
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
    versions,
)
from operator_support import owner

import rgpu_contract as contract
from rgpu_operator.api import Kube
from rgpu_operator.handlers import reconcile_resource

pytestmark = [pytest.mark.asyncio, pytest.mark.kmock(cls=ClusterEmulator)]

SPEC = {"ingress": {"enabled": True, "host": "gpu.example.com"}, "llm": {"enabled": True, "runtime": "custom"}}
COMPONENTS = [*DEFAULT_COMPONENTS, "llm"]


def component(emu, name: str, rgpu: str = NAME) -> dict:
    return obj(emu, RGPU, rgpu)["status"]["components"][name]


async def reconcile_directly(emu, times: int, **overrides) -> list[tuple[str, str, str]]:
    """Run the handlers' reconcile ``times`` times (no kopf: kopf's own timer is tested in
    test_operator_kmock); returns the Events it would have posted."""
    from kopf import Memo

    posted: list[tuple[str, str, str]] = []
    s = settings(emu, **overrides)
    kube = Kube(s)
    memo = Memo(settings=s, locks={})
    try:
        for _ in range(times):
            await reconcile_resource(kube, s, memo, NS, NAME, notify=lambda *e: posted.append(e))
    finally:
        await kube.close()
    return posted


async def converge_ready(emu, spec: dict, components: list[str]) -> None:
    await apply(emu, spec)
    await eventually(lambda: all(obj(emu, ISVC, f"{NAME}-{c}") for c in components), what="isvcs")
    for comp in components:
        await eventually(lambda c=comp: obj(emu, ISVC, f"{NAME}-{c}").get("status", {}).get("deploymentMode"))
        await set_ready(emu, comp)
    await eventually(lambda: obj(emu, RGPU, NAME)["status"]["ready"] == "True", what="ready")
    await quiet(emu)


@pytest.mark.parametrize("version", VERSIONS)
async def test_converges_and_then_changes_no_resource_version(emu, version):
    """Under each KServe version: everything is admitted, and once converged ten more
    reconciles change no object's resourceVersion (and make no write request at all)."""
    emu.kserve = KServe(version)
    async with operator_running(emu, kserve_version=version):
        await converge_ready(emu, SPEC, COMPONENTS)
    mode = "RawDeployment" if version == "0.15" else "Standard"
    for comp in COMPONENTS:
        isvc = obj(emu, ISVC, f"{NAME}-{comp}")
        assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
        assert isvc["status"]["deploymentMode"] == mode
        resources = isvc["spec"]["predictor"]["containers"][0]["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
    assert obj(emu, RGPU, NAME)["status"]["kserve"] == {"version": version, "deploymentMode": mode}
    before, mark = versions(emu), len(list(emu))
    events = await reconcile_directly(emu, 10, kserve_version=version)
    await emu.settle()
    assert versions(emu) == before
    assert operator_writes(emu, mark) == [] and events == []


async def test_update_writes_the_mode_kserve_recorded(emu):
    """KServe 0.16 rejects an update whose mode annotation differs from status.deploymentMode
    (validateDeploymentMode), the one removing its finalizer included. The operator writes the
    recorded mode, so its updates are admitted, where the legacy name would be refused."""
    async with operator_running(emu):
        await apply(emu, SPEC)
        await eventually(lambda: obj(emu, ISVC, f"{NAME}-padding").get("status", {}).get("deploymentMode"))
    isvc = obj(emu, ISVC, f"{NAME}-padding")
    assert isvc["status"]["deploymentMode"] == "Standard"
    legacy = {"metadata": {"annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}}}
    resp = await emu.patch(
        url(ISVC, f"{NAME}-padding"), json=legacy, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert (
        resp.status == 400
        and "deploymentMode cannot be changed from 'Standard' to 'RawDeployment'" in await resp.text()
    )
    # A spec change reaches the InferenceService: the operator's update is admitted.
    await patch(emu, RGPU, NAME, {"spec": {"padding": {"maxReplicas": 3}}})
    async with operator_running(emu):
        await eventually(lambda: obj(emu, ISVC, f"{NAME}-padding")["spec"]["predictor"]["maxReplicas"] == 3)
    assert component(emu, "padding")["state"] != "Degraded"


@pytest.mark.kserve("0.17")
async def test_a_wrong_version_setting_still_converges_without_a_write_loop(emu):
    """Operator set for 0.15 on a 0.17 cluster: it creates with RawDeployment, the webhook
    stores Standard; old and new names compare equal, so nothing is rewritten."""
    async with operator_running(emu, kserve_version="0.15"):
        await converge_ready(emu, SPEC, COMPONENTS)
    assert (
        obj(emu, ISVC, f"{NAME}-diarizer")["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    )
    before, mark = versions(emu), len(list(emu))
    await reconcile_directly(emu, 3, kserve_version="0.15")
    assert versions(emu) == before and operator_writes(emu, mark) == []


@pytest.mark.kserve("0.15")
async def test_a_mode_name_kserve_does_not_know_is_refused_and_reported(emu):
    """Operator set for 0.16 on a 0.15 cluster: KServe 0.15 applies Knative's rules to an unknown
    mode name and refuses the InferenceServices; each component says so with KServe's message."""
    async with operator_running(emu, kserve_version="0.16"):
        await apply(emu, SPEC)
        await eventually(lambda: component(emu, "diarizer")["state"] == "Degraded", what="degraded")
    comp = component(emu, "diarizer")
    assert comp["reason"] == "AdmissionRejected"
    assert "customizing deploymentStrategy is only supported for raw deployment mode" in comp["message"]
    assert obj(emu, ISVC, f"{NAME}-diarizer") is None
    assert obj(emu, INGRESS, NAME) is not None  # the other children were still written
    degraded = next(c for c in obj(emu, RGPU, NAME)["status"]["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "diarizer: AdmissionRejected" in degraded["message"]


def _old_isvc(emu, rgpu: dict, comp: str) -> dict:
    """An InferenceService as operator 0.1 made it: no cluster-local label."""
    from rgpu_operator.components import BY_NAME
    from rgpu_operator.components import COMPONENTS as ALL
    from rgpu_operator.context import Install
    from rgpu_operator.desired import plan

    assert BY_NAME[comp] in ALL
    found = next(
        o
        for o in plan(rgpu, Install()).present
        if o["kind"] == "InferenceService" and o["metadata"]["name"].endswith(comp)
    )
    del found["metadata"]["labels"]["networking.kserve.io/visibility"]
    found["status"] = {
        "deploymentMode": "Standard",
        "conditions": [{"type": "PredictorReady", "status": "True"}, {"type": "Ready", "status": "True"}],
    }
    return found


@pytest.mark.parametrize("gateway_api", [False, True], ids=["ingress", "httproute"])
async def test_kserve_routes_made_before_the_upgrade_are_deleted(emu, gateway_api):
    """Operator 0.1 left InferenceServices without the cluster-local label, and KServe made an
    Ingress (or HTTPRoutes) for each, reaching the predictors around the authenticated route.
    The upgraded operator labels them and deletes exactly those (found by owner reference);
    KServe makes no new ones. Routes of other InferenceServices stay."""
    emu.kserve = KServe("0.16", gateway_api=gateway_api)
    await apply(emu, SPEC)
    rgpu = obj(emu, RGPU, NAME)
    for comp in COMPONENTS:
        stored = await emu.put(ISVC, _old_isvc(emu, rgpu, comp))
        for route in emu.kserve.routes(stored):
            await emu.put(HTTPROUTE if gateway_api else INGRESS, route)
    foreign = await emu.put(
        ISVC,
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "someone-else", "namespace": NS},
            "spec": {"predictor": {"containers": [{"name": "kserve-container", "image": "x"}]}},
            "status": {"deploymentMode": "Standard", "conditions": [{"type": "PredictorReady", "status": "True"}]},
        },
    )
    for route in emu.kserve.routes(foreign):
        await emu.put(HTTPROUTE if gateway_api else INGRESS, route)
    kind = HTTPROUTE if gateway_api else INGRESS
    made = {o["metadata"]["name"] for o in emu.all_live(kind)}
    assert {f"{NAME}-{c}" for c in COMPONENTS} <= made

    expected = {n for n in made if n.startswith("someone-else")} | (set() if gateway_api else {NAME})
    async with operator_running(emu):
        await eventually(
            lambda: {o["metadata"]["name"] for o in emu.all_live(kind)} == expected, what="KServe's routes gone"
        )
        for comp in COMPONENTS:
            labels = obj(emu, ISVC, f"{NAME}-{comp}")["metadata"]["labels"]
            assert labels["networking.kserve.io/visibility"] == "cluster-local"
            await set_ready(emu, comp)  # KServe reconciles again: no new route for a cluster-local one
        await quiet(emu)
    await emu.settle()
    left = {o["metadata"]["name"] for o in emu.all_live(kind)}
    assert not any(n.startswith(f"{NAME}-") for n in left), left


async def test_one_rejected_component_does_not_stop_the_others(emu):
    """An admission webhook (here a policy engine) refuses the diarizer: it is Degraded with the
    webhook's message; every other component is written and becomes Ready."""
    emu.admission.append(
        lambda plural, new, old: (
            'admission webhook "validate.kyverno.svc" denied the request: diarizer images must be signed'
            if plural == "inferenceservices" and new["metadata"]["name"].endswith("-diarizer")
            else None
        )
    )
    async with operator_running(emu):
        await apply(emu, SPEC)
        others = [c for c in COMPONENTS if c != "diarizer"]
        await eventually(lambda: all(obj(emu, ISVC, f"{NAME}-{c}") for c in others), what="others")
        for comp in others:
            await set_ready(emu, comp)
        await eventually(lambda: all(component(emu, c)["state"] == "Ready" for c in others), what="others ready")
    comp = component(emu, "diarizer")
    assert (comp["state"], comp["reason"]) == ("Degraded", "AdmissionRejected")
    assert "diarizer images must be signed" in comp["message"]
    status = obj(emu, RGPU, NAME)["status"]
    assert status["ready"] == "False" and "diarizer=Degraded" in status["componentStates"]


async def test_a_refused_deployment_is_reported_with_the_servers_message(emu):
    """KServe admits the InferenceService but the API server refuses its Deployment: KServe
    posts an InternalError Event; the component shows it."""
    quota = (
        'deployments.apps "rgpu-translator-predictor" is forbidden: exceeded quota: gpus, requested: nvidia.com/gpu=1'
    )
    emu.kserve.refuse[f"{NAME}-translator"] = quota
    async with operator_running(emu):
        await apply(emu, SPEC)
        await eventually(lambda: component(emu, "translator")["state"] == "Degraded", what="degraded")
    comp = component(emu, "translator")
    assert comp["reason"] == "DeploymentRefused" and "exceeded quota: gpus" in comp["message"]
    assert component(emu, "padding")["state"] == "Progressing"


async def test_emulated_kserve_reproduces_the_missing_limits_refusal(emu):
    """The fixture itself: an InferenceService with requests only (4 CPU / 16Gi, the chart's old
    sample) gets KServe's 1 CPU / 2Gi limits from the webhook, and its Deployment is refused."""
    body = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "requests-only",
            "namespace": NS,
            "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
        },
        "spec": {
            "predictor": {"containers": [{"image": "x", "resources": {"requests": {"cpu": "4", "memory": "16Gi"}}}]}
        },
    }
    resp = await emu.post(url(ISVC), json=body)
    assert resp.status == 200
    stored = obj(emu, ISVC, "requests-only")
    assert stored["spec"]["predictor"]["containers"][0]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    await emu.settle()
    events = [e for e in emu.all_live("v1/events") if e["involvedObject"]["name"] == "requests-only"]
    assert events and "must be less than or equal to cpu limit of 1" in events[0]["message"]


async def test_a_model_that_cannot_load_degrades_its_component_with_the_reason(emu, predictors):
    """Three ways a predictor says its model will not load: its readiness answer (503 with the
    contract's marker), KServe's failure info (CrashLoopBackOff, copied from the termination
    message), and a still-loading 503 which is only Progressing."""
    predictors.answers[(NS, f"{NAME}-diarizer-predictor")] = (
        503,
        f"Model with name diarizer is not ready. {contract.MODEL_LOAD_FAILED}: "
        "OSError: pyannote/speaker-diarization-community-1 is gated",
    )
    async with operator_running(emu, predictors):
        await apply(emu, SPEC)
        await eventually(lambda: obj(emu, ISVC, f"{NAME}-translator"), what="isvcs")
        await patch(
            emu,
            ISVC,
            f"{NAME}-translator",
            {
                "status": {
                    "conditions": [{"type": "Ready", "status": "False", "reason": "MinimumReplicasUnavailable"}],
                    "modelStatus": {
                        "transitionStatus": "BlockedByFailedLoad",
                        "lastFailureInfo": {
                            "reason": "ModelLoadFailed",
                            "message": "CUDA out of memory",
                            "exitCode": 1,
                        },
                    },
                }
            },
            sub="status",
        )
        await eventually(lambda: component(emu, "diarizer")["state"] == "Degraded", what="diarizer degraded")
        await eventually(lambda: component(emu, "translator")["state"] == "Degraded", what="translator degraded")
    assert component(emu, "diarizer")["reason"] == "ModelLoadFailed"
    assert component(emu, "diarizer")["message"] == "OSError: pyannote/speaker-diarization-community-1 is gated"
    assert (component(emu, "translator")["reason"], component(emu, "translator")["message"]) == (
        "ModelLoadFailed",
        "CUDA out of memory",
    )
    padding = component(emu, "padding")
    assert (
        padding["state"] == "Progressing" and padding["message"] == "readiness: Model with name padding is not ready."
    )
    assert (NS, f"{NAME}-padding-predictor", "padding") in predictors.asked
    assert obj(emu, RGPU, NAME)["status"]["ready"] == "False"


async def test_requests_above_limits_stop_only_that_component(emu):
    async with operator_running(emu):
        await apply(emu, {**SPEC, "diarizer": {"resources": {"requests": {"cpu": "8"}, "limits": {"cpu": "2"}}}})
        await eventually(lambda: component(emu, "diarizer")["state"] == "Degraded", what="degraded")
        await eventually(lambda: obj(emu, ISVC, f"{NAME}-padding"), what="the others")
    comp = component(emu, "diarizer")
    assert comp["reason"] == "InvalidSpec"
    assert "spec.diarizer.resources.requests.cpu" in comp["message"] and "requests-within-limits" in comp["message"]
    assert obj(emu, ISVC, f"{NAME}-diarizer") is None


async def test_a_taken_secret_name_is_reported_and_left_alone(emu):
    import base64

    theirs = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{NAME}-apikey", "namespace": NS},
        "data": {"password": base64.b64encode(b"not ours").decode()},
    }
    await emu.put(SECRET, theirs)
    async with operator_running(emu):
        await apply(emu, SPEC)
        await eventually(
            lambda: (
                "NameTaken"
                in next(c for c in obj(emu, RGPU, NAME)["status"]["conditions"] if c["type"] == "Degraded")["message"]
            ),
            what="reported",
        )
        await eventually(lambda: obj(emu, ISVC, f"{NAME}-padding"), what="the rest goes on")
    assert obj(emu, SECRET, f"{NAME}-apikey")["data"] == theirs["data"]


async def test_two_resources_asking_for_one_host(emu):
    """The older claim keeps the host; the other makes no route, says why, and neither rewrites
    anything once settled. When the winner goes, the other takes the host."""
    async with operator_running(emu):
        await apply(emu, SPEC, name="first")
        await eventually(lambda: obj(emu, INGRESS, "first"), what="first route")
        await asyncio.sleep(1.1)  # creationTimestamp has second resolution
        await apply(emu, SPEC, name="second")
        await eventually(lambda: obj(emu, RGPU, "second").get("status", {}).get("conditions"), what="second status")
        degraded = next(c for c in obj(emu, RGPU, "second")["status"]["conditions"] if c["type"] == "Degraded")
        assert degraded["status"] == "True" and f"already served by ReflectorGPU {NS}/first" in degraded["message"]
        assert obj(emu, INGRESS, "second") is None
        assert obj(emu, RGPU, "second")["status"]["endpoints"]["TRANSCRIPT_URL"].startswith(
            "http://second-transcriber-live"
        )
        await quiet(emu, name="second")
        mark = len(list(emu))
        await asyncio.sleep(2.5)
        assert [w for w in operator_writes(emu, mark) if "/ingresses" in w] == []
        resp = await emu.delete(url(RGPU, "first"))
        assert resp.status == 200
        await eventually(lambda: obj(emu, INGRESS, "second"), timeout=30, what="second takes the host")


async def test_long_names_fit_kserve_and_label_limits(emu):
    long = "reflector-gpu-for-the-meeting-transcription-team-production-eu"
    async with operator_running(emu):
        await apply(emu, SPEC, name=long)
        await eventually(lambda: len(live_names(emu, ISVC)) == len(COMPONENTS), what="isvcs")
    for name in live_names(emu, ISVC):
        assert len(name) <= 53 and name.endswith(tuple(COMPONENTS))
        isvc = obj(emu, ISVC, name)
        assert all(len(v) <= 63 for v in isvc["metadata"]["labels"].values())
        assert isvc["metadata"]["ownerReferences"][0]["name"] == long
    comps = obj(emu, RGPU, long)["status"]["components"]
    assert sorted(c["inferenceService"] for c in comps.values()) == live_names(emu, ISVC)
    assert live_names(emu, NETPOL) == live_names(emu, ISVC)


async def test_serverless_is_refused_by_the_crd_and_by_the_operator(emu):
    resp = await emu.post(url(RGPU), json={**owner({"deploymentMode": "Serverless"}, NAME, NS)})
    assert resp.status == 422 and "KEDA" in await resp.text()
    # A resource stored before the CRD had the rule: the operator refuses it, naming the field.
    stale = owner({"deploymentMode": "Serverless"}, NAME, NS)
    await emu.put(RGPU, stale)
    async with operator_running(emu):
        await eventually(lambda: obj(emu, RGPU, NAME).get("status", {}).get("conditions"), what="status")
    degraded = next(c for c in obj(emu, RGPU, NAME)["status"]["conditions"] if c["type"] == "Degraded")
    assert "spec.deploymentMode" in degraded["message"] and "no-knative" in degraded["message"]
    assert live_names(emu, ISVC) == []


@pytest.mark.kserve("0.15")
async def test_the_kserve_version_is_read_from_its_controller_image(emu):
    await emu.put(
        "apps/v1/deployments",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "kserve-controller-manager", "namespace": "kserve"},
            "spec": {
                "selector": {"matchLabels": {"control-plane": "kserve-controller-manager"}},
                "template": {
                    "metadata": {"labels": {"control-plane": "kserve-controller-manager"}},
                    "spec": {"containers": [{"name": "manager", "image": "kserve/kserve-controller:v0.15.2"}]},
                },
            },
        },
    )
    async with operator_running(emu, kserve_version=""):
        await apply(emu, SPEC)
        await eventually(lambda: obj(emu, ISVC, f"{NAME}-padding"), what="isvc")
    assert (
        obj(emu, ISVC, f"{NAME}-padding")["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
        == "RawDeployment"
    )
    assert obj(emu, RGPU, NAME)["status"]["kserve"]["version"] == "0.15"


async def test_an_unknown_kserve_version_writes_nothing_and_says_what_to_set(emu):
    async with operator_running(emu, kserve_version=""):
        await apply(emu, SPEC)
        await eventually(lambda: obj(emu, RGPU, NAME).get("status", {}).get("conditions"), what="status")
    degraded = next(c for c in obj(emu, RGPU, NAME)["status"]["conditions"] if c["type"] == "Degraded")
    assert "KServe version is unknown" in degraded["message"] and "operator.kserve.version" in degraded["message"]
    assert live_names(emu, ISVC) == []


async def test_predictor_images_stay_pinned_across_an_operator_upgrade(emu):
    """New default tag: existing resources keep the image they resolved (no pod restart); new
    ones get the new default; policy FollowOperator opts in."""
    async with operator_running(emu):
        await converge_ready(emu, SPEC, COMPONENTS)
    isvc_versions = {k: v for k, v in versions(emu).items() if k[0] == "inferenceservices"}
    async with operator_running(emu, image_tag="t2"):
        await apply(emu, SPEC, name="newer")
        await eventually(lambda: obj(emu, ISVC, "newer-padding"), what="new resource")
        await asyncio.sleep(2.5)
        assert {k: v for k, v in versions(emu).items() if k in isvc_versions} == isvc_versions
        assert obj(emu, ISVC, "newer-padding")["spec"]["predictor"]["containers"][0]["image"].endswith(":t2")
        assert obj(emu, RGPU, NAME)["status"]["images"]["padding"].endswith(":t1")
        await patch(emu, RGPU, NAME, {"spec": {"images": {"policy": "FollowOperator"}}})
        await eventually(
            lambda: obj(emu, ISVC, f"{NAME}-padding")["spec"]["predictor"]["containers"][0]["image"].endswith(":t2"),
            what="opted in",
        )


KEDA_SPEC = {
    **SPEC,
    "keda": {"serverAddress": "http://prometheus-operated.monitoring.svc:9090", "authenticationRef": "prom"},
    "transcriber": {"live": {"autoscaling": {"class": "keda"}, "maxReplicas": 4, "targetInFlight": 8}},
    "diarizer": {"autoscaling": {"class": "keda"}, "maxReplicas": 3},
}


@pytest.mark.parametrize("version", ["0.16", "0.20"])
async def test_keda_components_are_admitted_and_converge_with_the_query_in_status(emu, version):
    """Under the emulated webhook's KEDA rules: admitted, Ready, stable; status shows the query."""
    emu.kserve = KServe(version)
    async with operator_running(emu, kserve_version=version):
        await converge_ready(emu, KEDA_SPEC, COMPONENTS)
    isvc = obj(emu, ISVC, f"{NAME}-diarizer")
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    external = isvc["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]
    assert external["authenticationRef"] == {"authenticationRef": {"name": "prom"}}
    scaled = emu.kserve.scaled_object(isvc)
    assert scaled["spec"]["triggers"][0]["metadata"]["threshold"] == "1"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (1, 3)
    shown = component(emu, "diarizer")["autoscaling"]
    assert shown["class"] == "keda" and shown["query"] == external["metric"]["query"] and shown["targetInFlight"] == 1
    assert component(emu, "transcriber-live")["autoscaling"]["targetInFlight"] == 8
    assert obj(emu, ISVC, f"{NAME}-translator")["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == (
        "none"
    )
    before, mark = versions(emu), len(list(emu))
    await reconcile_directly(emu, 3, kserve_version=version)
    await emu.settle()
    assert versions(emu) == before and operator_writes(emu, mark) == []


async def test_keda_authentication_on_kserve_015_is_refused_with_the_version(emu):
    emu.kserve = KServe("0.15")
    async with operator_running(emu, kserve_version="0.15"):
        await apply(emu, KEDA_SPEC)
        await eventually(lambda: (obj(emu, RGPU, NAME).get("status") or {}).get("ready") == "False", what="status")
    status = obj(emu, RGPU, NAME)["status"]
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert "keda.authenticationRef needs KServe 0.16 or later" in degraded["message"]
    assert not obj(emu, ISVC, f"{NAME}-diarizer"), "a spec-wide problem writes nothing"


PODMONITORS = "monitoring.coreos.com/v1/podmonitors"


async def test_a_podmonitor_is_made_only_when_discovery_says_the_kind_is_served(emu):
    async with operator_running(emu):
        await apply(emu, SPEC)
        await eventually(lambda: "monitoring" in (obj(emu, RGPU, NAME).get("status") or {}), what="status")
        await eventually(lambda: "message" in obj(emu, RGPU, NAME)["status"]["monitoring"], what="message")
    assert "install the Prometheus Operator" in obj(emu, RGPU, NAME)["status"]["monitoring"]["message"]
    emu.resources[PODMONITORS] = km.ResourceInfo(
        kind="PodMonitor", namespaced=True, verbs={"get", "list", "watch", "create", "patch", "delete"}
    )
    async with operator_running(emu):
        await eventually(lambda: emu.live(PODMONITORS, NS, f"{NAME}-predictors"), what="podmonitor")
        await eventually(
            lambda: obj(emu, RGPU, NAME)["status"]["monitoring"] == {"podMonitor": f"{NAME}-predictors"},
            what="status names it",
        )
        await patch(emu, RGPU, NAME, {"spec": {"monitoring": {"podMonitor": {"enabled": False}}}})
        await eventually(lambda: emu.live(PODMONITORS, NS, f"{NAME}-predictors") is None, what="deleted")
