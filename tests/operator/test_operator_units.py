"""Small pure pieces: diffing, status derivation, RBAC, settings, and the architecture rules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

for _mod in ("jsonschema", "kubernetes_validate", "celpy"):
    pytest.importorskip(_mod, reason=f"{_mod} is a test dependency of the operator (dev extra)")
from operator_support import owner, validate_builtin

from rgpu_operator import install, peering, rbac, status
from rgpu_operator.desired import plan
from rgpu_operator.diffing import contains, merge_patch, up_to_date
from rgpu_operator.inferenceservice import ImageDefaults
from rgpu_operator.settings import Settings

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "rgpu_operator"
PURE = [
    "components",
    "schema",
    "inferenceservice",
    "secret",
    "routing",
    "networkpolicy",
    "modelcache",
    "desired",
    "status",
    "diffing",
    "rbac",
    "install",
    "peering",
]


def test_contains_ignores_server_added_fields_but_not_changed_ones():
    desired = {"spec": {"a": 1, "l": [{"x": "1"}]}, "metadata": {"labels": {"k": "v"}}}
    live = {"spec": {"a": 1, "b": 2, "l": [{"x": 1, "y": 0}]}, "metadata": {"labels": {"k": "v", "o": "t"}}}
    assert contains(desired, live)
    assert not contains({"spec": {"a": 2}}, live)
    assert not contains({"spec": {"l": []}}, live)
    assert not contains({"x": True}, {"x": 1})
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


@pytest.mark.parametrize(
    "isvc, state",
    [
        (None, "Progressing"),
        (_isvc(), "Progressing"),
        (_isvc([{"type": "Ready", "status": "True"}]), "Ready"),
        (_isvc([{"type": "Ready", "status": "False", "reason": "Pending"}]), "Progressing"),
        (_isvc([{"type": "Ready", "status": "False", "severity": "Error", "reason": "Crash"}]), "Degraded"),
        (_isvc([{"type": "Ready", "status": "False"}], {"transitionStatus": "BlockedByFailedLoad"}), "Degraded"),
        (_isvc([], {"transitionStatus": "InProgress", "lastFailureInfo": {"reason": "ModelLoadFailed"}}), "Degraded"),
    ],
)
def test_component_state_from_inferenceservice_conditions(isvc, state):
    assert status.component_state(isvc)[0] == state


def test_status_is_stable_and_keeps_transition_times():
    body = owner({"ingress": {"enabled": True, "host": "h.example.com"}})
    p = plan(body, ImageDefaults("r", "t"))
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    isvcs = {name: ready for name in ["transcriber-live", "transcriber-file", "diarizer", "translator", "padding"]}
    first = status.build(body, p, isvcs, None, "2026-01-01T00:00:00Z")
    again = status.build(body, p, isvcs, first, "2026-01-02T00:00:00Z")
    assert again == first  # same world, same status: the reconciler writes nothing
    assert first["ready"] == "True" and first["observedGeneration"] == 1
    assert first["url"] == "http://h.example.com"
    isvcs["diarizer"] = None
    later = status.build(body, p, isvcs, first, "2026-01-03T00:00:00Z")
    cond = {c["type"]: c for c in later["conditions"]}
    assert cond["Ready"]["status"] == "False" and cond["Ready"]["lastTransitionTime"] == "2026-01-03T00:00:00Z"
    assert cond["Degraded"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_status_without_ingress_points_at_in_cluster_services():
    body = owner({})
    out = status.build(body, plan(body, ImageDefaults("r", "t")), {}, None, "t")
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
    assert not {"pods", "customresourcedefinitions", "namespaces"} & resources
    assert "localmodelcaches" not in {r for rule in rbac.rules(cluster=False) for r in rule["resources"]}


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
    forbidden = {"kopf", "kubernetes", "aiohttp", "asyncio", "random", "secrets", "datetime", "time", "uuid", "os"}
    assert not _imports(module) & forbidden


def test_operator_never_imports_predictor_code():
    allowed_project = {"rgpu_contract"}
    for path in PACKAGE.glob("*.py"):
        found = {m for m in _imports(path.stem) if m.startswith("rgpu_")}
        assert found <= allowed_project, f"{path.name} imports {found - allowed_project}"


def test_configuration_problems_degrade_and_block_ready():
    body = owner({"auth": {"existingSecret": {"name": "gone"}}})
    p = plan(body, ImageDefaults("r", "t"))
    ready = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    isvcs = {n: ready for n in ["transcriber-live", "transcriber-file", "diarizer", "translator", "padding"]}
    out = status.build(body, p, isvcs, None, "t", ["Secret gone (spec.auth) not found"])
    cond = {c["type"]: c for c in out["conditions"]}
    assert out["ready"] == "False" and cond["Degraded"]["reason"] == "ConfigurationError"
    assert "gone" in cond["Degraded"]["message"] and out["apiKeySecret"] == {"name": "gone", "key": "apikey"}
