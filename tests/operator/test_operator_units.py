"""Small pure pieces: diffing, status derivation, RBAC, settings, and the architecture rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

for _mod in ("jsonschema", "kubernetes_validate", "celpy"):
    pytest.importorskip(_mod, reason=f"{_mod} is a test dependency of the operator (dev extra)")
from operator_support import owner, validate_builtin

from rgpu_operator import install, kserve, names, peering, quantity, rbac, status
from rgpu_operator.context import Install
from rgpu_operator.desired import plan
from rgpu_operator.diffing import contains, merge_patch, up_to_date
from rgpu_operator.settings import Settings
from rgpu_operator.status import Facts

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "rgpu_operator"
PURE = [
    "components",
    "context",
    "schema",
    "rules",
    "sizing",
    "quantity",
    "names",
    "kserve",
    "images",
    "inferenceservice",
    "secret",
    "routing",
    "networkpolicy",
    "modelcache",
    "hosts",
    "reflector_env",
    "desired",
    "status",
    "diffing",
    "rbac",
    "install",
    "peering",
    "render",
]


def test_the_server_rewrites_are_not_differences():
    """Quantities compare by value and old/new mode names as equal; nothing else is lenient."""
    desired = {
        "metadata": {"annotations": {"serving.kserve.io/deploymentMode": "RawDeployment"}},
        "spec": {
            "resources": {"requests": {"cpu": "1000m", "memory": "16Gi"}},
            "volumes": [{"emptyDir": {"sizeLimit": "1024Mi"}}],
        },
    }
    live = {
        "metadata": {"annotations": {"serving.kserve.io/deploymentMode": "Standard"}},
        "spec": {
            "resources": {"requests": {"cpu": "1", "memory": "17179869184"}},
            "volumes": [{"emptyDir": {"sizeLimit": "1Gi"}}],
        },
    }
    assert contains(desired, live)
    assert not contains({"spec": {"resources": {"requests": {"cpu": "2"}}}}, live)
    assert not contains({"metadata": {"annotations": {"serving.kserve.io/deploymentMode": "Knative"}}}, live)
    assert not contains({"env": [{"value": "1.0"}]}, {"env": [{"value": "1"}]}), "only quantity fields"


def test_quantities_and_their_canonical_form():
    assert quantity.equal("1000m", 1) and quantity.equal("16Gi", "17179869184") and not quantity.equal("1G", "1Gi")
    assert [quantity.canonical(q) for q in ("1000m", "0.5", "1024Mi", "1536Mi", "2000", "100m", 4)] == [
        "1",
        "500m",
        "1Gi",
        "1536Mi",
        "2k",
        "100m",
        "4",
    ]
    with pytest.raises(ValueError):
        quantity.parse("16 GiB")


def test_kserve_versions_and_mode_names():
    assert kserve.parse_version("v0.15.2") == kserve.Version(0, 15)
    assert kserve.parse_version("0.17.1-rc0").tuple == (0, 17)
    with pytest.raises(ValueError, match="0.15 or later"):
        kserve.parse_version("0.14")
    with pytest.raises(ValueError, match="X.Y"):
        kserve.parse_version("latest")
    assert kserve.version_from_image("kserve/kserve-controller:v0.16.0") == kserve.Version(0, 16)
    assert kserve.version_from_image("registry:5000/kserve/kserve-controller:v0.15.2@sha256:abc") == kserve.Version(
        0, 15
    )
    assert kserve.version_from_image("kserve/kserve-controller@sha256:abc") is None
    assert kserve.version_from_image("kserve/kserve-controller:latest") is None
    assert kserve.standard_mode(kserve.Version(0, 15)) == "RawDeployment"
    assert kserve.standard_mode(kserve.Version(0, 16)) == "Standard"
    assert kserve.mode_for_update(kserve.Version(0, 16), "RawDeployment") == "RawDeployment", "what KServe recorded"
    assert kserve.mode_for_update(kserve.Version(0, 16), None) == "Standard"


@pytest.mark.parametrize("owner", ["rgpu", "a" * 60, "reflector.gpu", "1st-gpu", "x" * 253])
def test_names_stay_within_kserve_and_label_limits(owner):
    import re

    name = names.isvc_name(owner, "transcriber-live")
    assert len(name) <= 53 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)
    assert name == names.isvc_name(owner, "transcriber-live"), "stable"
    assert names.isvc_name(owner, "transcriber-live") != names.isvc_name(owner + "x", "transcriber-live")
    label = names.label_value(owner)
    assert len(label) <= 63 and re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", label)
    assert len(names.subdomain(owner + "-apikey")) <= 253
    if owner == "rgpu":
        assert name == "rgpu-transcriber-live" and label == "rgpu"


def test_contains_ignores_server_added_fields_but_not_changed_ones():
    desired = {"spec": {"a": 1, "l": [{"x": 1}]}, "metadata": {"labels": {"k": "v"}}}
    live = {"spec": {"a": 1, "b": 2, "l": [{"x": 1, "y": 0}]}, "metadata": {"labels": {"k": "v", "o": "t"}}}
    assert contains(desired, live)
    assert not contains({"spec": {"a": 2}}, live)
    assert not contains({"spec": {"l": []}}, live)
    assert not contains({"x": True}, {"x": 1})
    assert not contains({"spec": {"l": [{"x": "1"}]}}, live), "a string is not an int outside quantity fields"
    assert not up_to_date({"metadata": {}, "spec": {}}, {"metadata": {"deletionTimestamp": "t"}, "spec": {}})


def test_merge_patch_removes_keys_and_replaces_lists():
    assert merge_patch({"a": 1, "b": {"c": 1, "d": 2}, "l": [1]}, {"b": {"c": 1}, "l": [2], "e": 3}) == {
        "a": None,
        "b": {"d": None},
        "l": [2],
        "e": 3,
    }
    assert merge_patch({"a": 1}, {"a": 1}) == {}


def _isvc(conditions=None, model_status=None):
    return {"status": {"conditions": conditions or [], **({"modelStatus": model_status} if model_status else {})}}


NOT_READY = [{"type": "Ready", "status": "False", "reason": "MinimumReplicasUnavailable"}]


@pytest.mark.parametrize(
    "facts, state, reason",
    [
        (Facts(), "Progressing", "Creating"),
        (Facts(_isvc()), "Progressing", "Pending"),
        (Facts(_isvc([{"type": "Ready", "status": "True"}])), "Ready", "Ready"),
        (Facts(_isvc(NOT_READY)), "Progressing", "MinimumReplicasUnavailable"),
        (
            Facts(_isvc([{"type": "Ready", "status": "False", "severity": "Error", "reason": "Crash"}])),
            "Degraded",
            "Crash",
        ),
        (
            Facts(_isvc([{"type": "PredictorReady", "status": "False", "reason": "ProgressDeadlineExceeded"}])),
            "Degraded",
            "ProgressDeadlineExceeded",
        ),
        (Facts(_isvc(NOT_READY, {"transitionStatus": "BlockedByFailedLoad"})), "Degraded", "BlockedByFailedLoad"),
        (
            Facts(_isvc([], {"transitionStatus": "InProgress", "lastFailureInfo": {"reason": "ModelLoadFailed"}})),
            "Degraded",
            "ModelLoadFailed",
        ),
        (Facts(None, ("AdmissionRejected", "denied")), "Degraded", "AdmissionRejected"),
        (Facts(_isvc(NOT_READY), event="Deployment.apps is invalid"), "Degraded", "DeploymentRefused"),
        (
            Facts(
                _isvc(NOT_READY), probe=(503, "Model with name x is not ready. model failed to load: OSError: gated")
            ),
            "Degraded",
            "ModelLoadFailed",
        ),
        (Facts(_isvc(NOT_READY), probe=(503, "Model with name x is not ready.")), "Progressing", "ModelNotReady"),
    ],
)
def test_component_state_from_what_was_seen(facts, state, reason):
    got = status.component_state(facts)
    assert got[:2] == (state, reason), got


def test_status_is_stable_and_keeps_transition_times():
    body = owner({"ingress": {"enabled": True, "host": "h.example.com"}})
    p = plan(body, Install())
    ready = Facts({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    isvcs = {name: ready for name in ["transcriber-live", "transcriber-file", "diarizer", "translator", "padding"]}
    first = status.build(body, p, isvcs, None, "2026-01-01T00:00:00Z")
    again = status.build(body, p, isvcs, first, "2026-01-02T00:00:00Z")
    assert again == first  # same world, same status: the reconciler writes nothing
    assert first["ready"] == "True" and first["observedGeneration"] == 1
    assert first["url"] == "http://h.example.com"
    isvcs["diarizer"] = Facts()
    later = status.build(body, p, isvcs, first, "2026-01-03T00:00:00Z")
    cond = {c["type"]: c for c in later["conditions"]}
    assert cond["Ready"]["status"] == "False" and cond["Ready"]["lastTransitionTime"] == "2026-01-03T00:00:00Z"
    assert cond["Degraded"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_status_without_ingress_points_at_in_cluster_services():
    body = owner({})
    out = status.build(body, plan(body, Install()), {}, None, "t")
    assert out["endpoints"]["TRANSCRIPT_URL"] == "http://rgpu-transcriber-live-predictor.reflector.svc.cluster.local"
    assert "LLM_URL" not in out["endpoints"]
    assert out["apiKeySecret"] == {"name": "rgpu-apikey", "key": "apikey"}


def test_rbac_is_least_privilege_and_valid():
    for obj in (rbac.cluster_role(), rbac.role("reflector"), rbac.binding(rbac.role("reflector"), "reflector")):
        validate_builtin(obj)
    for rule in rbac.rules():
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        if "secrets" in rule["resources"]:
            assert not {"list", "watch", "update"} & set(rule["verbs"]), "never read all Secrets"
    resources = {r for rule in rbac.rules() for r in rule["resources"]}
    assert not {"pods", "customresourcedefinitions", "namespaces", "deployments"} & resources
    assert "localmodelcaches" not in {r for rule in rbac.rules(cluster=False) for r in rule["resources"]}
    # Reading KServe's version: one named Deployment, get only, in KServe's namespace.
    version = rbac.kserve_version_role()
    validate_builtin(version)
    assert version["metadata"]["namespace"] == "kserve"
    assert version["rules"] == [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "resourceNames": ["kserve-controller-manager"],
            "verbs": ["get"],
        }
    ]


def test_settings_from_environment():
    s = Settings.from_env(
        {
            "RGPU_OPERATOR_NAMESPACES": "a, b",
            "RGPU_OPERATOR_IMAGE_REGISTRY": "r.io/x/",
            "RGPU_OPERATOR_RESYNC_SECONDS": "30",
        }
    )
    assert s.namespaces == ("a", "b") and s.image_registry == "r.io/x" and s.resync_seconds == 30
    assert Settings.from_env({}).namespaces == ()
    with pytest.raises(ValueError, match="RESYNC"):
        Settings.from_env({"RGPU_OPERATOR_RESYNC_SECONDS": "soon"})
    s = Settings.from_env(
        {
            "RGPU_OPERATOR_KSERVE_VERSION": "0.15",
            "RGPU_OPERATOR_EDGE": "istio",
            "RGPU_OPERATOR_MONITORING_NAMESPACES": "",
            "RGPU_OPERATOR_PROBE_READINESS": "false",
            "RGPU_OPERATOR_POD_NAMESPACE": "ops",
            "RGPU_OPERATOR_POD_LABELS": "app=op, tier=control",
        }
    )
    assert (s.kserve_version, s.edge, s.monitoring_namespaces, s.probe_readiness) == ("0.15", "istio", (), False)
    assert s.pod_labels == (("app", "op"), ("tier", "control"))
    assert Install.from_settings(s, kserve.Version(0, 15)).operator_peer is None, "no probe, no peer"
    with pytest.raises(ValueError, match="EDGE"):
        Settings.from_env({"RGPU_OPERATOR_EDGE": "traefik"})
    with pytest.raises(ValueError, match="POD_LABELS"):
        Settings.from_env({"RGPU_OPERATOR_POD_LABELS": "novalue"})


def test_peering_settings_and_kopf_options():
    s = Settings.from_env({"RGPU_OPERATOR_PEERING": "rgpu", "RGPU_OPERATOR_NAMESPACES": "a"})
    assert s.peering == "rgpu" and s.priority is None
    assert Settings.from_env({"RGPU_OPERATOR_PRIORITY": "7"}).priority == 7
    with pytest.raises(ValueError, match="PRIORITY"):
        Settings.from_env({"RGPU_OPERATOR_PRIORITY": "high"})
    assert peering.kopf_options(Settings(), now_s=1.0, jitter=0) == {
        "clusterwide": True,
        "namespaces": [],
        "standalone": True,
    }
    opts = peering.kopf_options(s, now_s=1_800_000_000.5, jitter=42)
    assert opts == {
        "clusterwide": False,
        "namespaces": ["a"],
        "standalone": False,
        "peering_name": "rgpu",
        "priority": 1_800_000_000_500_042,
    }
    pinned = Settings.from_env({"RGPU_OPERATOR_PEERING": "rgpu", "RGPU_OPERATOR_PRIORITY": "5"})
    assert peering.kopf_options(pinned, now_s=9.0, jitter=1)["priority"] == 5


def test_newer_replicas_get_higher_distinct_priorities():
    """kopf freezes every operator when two share a priority; later starts must win."""
    assert peering.start_priority(100.0, 999) < peering.start_priority(100.001, 0)
    assert peering.start_priority(100.0, 1) != peering.start_priority(100.0, 2)
    assert peering.start_priority(4_102_444_800, 999) < 2**53  # year 2100, still exact in JSON
    with pytest.raises(ValueError):
        peering.start_priority(1.0, 1000)


def test_peering_objects_and_crds():
    assert peering.peering_objects("p") == [
        {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "p"}}
    ]
    assert [o["metadata"] for o in peering.peering_objects("p", ("a", "b"))] == [
        {"name": "p", "namespace": "a"},
        {"name": "p", "namespace": "b"},
    ]
    for crd in peering.crds():
        validate_builtin(crd)
    deploy = install.deployment()
    env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "RGPU_OPERATOR_PEERING", "value": peering.DEFAULT_NAME} in env
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in env
    assert deploy["spec"]["strategy"]["type"] == "RollingUpdate"


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


@pytest.mark.parametrize("module", PURE)
def test_builders_are_pure(module):
    forbidden = {
        "kopf",
        "kubernetes",
        "lightkube",
        "httpx2",
        "aiohttp",
        "asyncio",
        "random",
        "secrets",
        "datetime",
        "time",
        "uuid",
        "os",
    }
    assert not _imports(module) & forbidden


def test_operator_never_imports_predictor_code():
    allowed_project = {"rgpu_contract"}
    for path in PACKAGE.glob("*.py"):
        found = {m for m in _imports(path.stem) if m.startswith("rgpu_")}
        assert found <= allowed_project, f"{path.name} imports {found - allowed_project}"


def test_configuration_problems_degrade_and_block_ready():
    body = owner({"auth": {"existingSecret": {"name": "gone"}}})
    p = plan(body, Install())
    ready = Facts({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    isvcs = {n: ready for n in ["transcriber-live", "transcriber-file", "diarizer", "translator", "padding"]}
    out = status.build(body, p, isvcs, None, "t", ["Secret gone (spec.auth) not found"])
    cond = {c["type"]: c for c in out["conditions"]}
    assert out["ready"] == "False" and cond["Degraded"]["reason"] == "ConfigurationError"
    assert "gone" in cond["Degraded"]["message"] and out["apiKeySecret"] == {"name": "gone", "key": "apikey"}


def test_the_emulated_quantity_canonicalisation_is_the_operators():
    from cluster import go_quantity

    """Two implementations of Go's Quantity.String() (test fixture, operator) agree."""
    for value in [
        "1000m",
        "1",
        "0.5",
        "1500m",
        "2000",
        "1024Mi",
        "1536Mi",
        "16Gi",
        "17179869184",
        "0.5Gi",
        "100Mi",
        "4",
        4,
        "1e3",
        "250m",
        "1.5",
        "12Gi",
        "64Mi",
        "3Ti",
    ]:
        assert go_quantity(value) == quantity.canonical(value), value


def test_operator_metrics_count_reconciles_by_result_and_time_them():
    import asyncio

    from prometheus_client import REGISTRY

    from rgpu_operator import metrics

    def count(result: str) -> float:
        return REGISTRY.get_sample_value("rgpu_operator_reconciles_total", {"result": result}) or 0.0

    before = {r: count(r) for r in ("ok", "retry", "error")}
    timed = REGISTRY.get_sample_value("rgpu_operator_reconcile_duration_seconds_count") or 0.0

    async def run() -> None:
        async with metrics.reconciling():
            pass
        async with metrics.reconciling() as timer:
            timer.result = "retry"
        try:
            async with metrics.reconciling():
                raise RuntimeError("API down")
        except RuntimeError:
            pass

    asyncio.run(run())
    assert {r: count(r) - before[r] for r in before} == {"ok": 1, "retry": 1, "error": 1}
    assert REGISTRY.get_sample_value("rgpu_operator_reconcile_duration_seconds_count") - timed == 3
