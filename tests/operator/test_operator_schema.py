"""The CRD: structure, defaults, CEL rules' intent, samples, printer columns, and no drift."""

from __future__ import annotations

import copy

import pytest

for _mod in ("jsonschema", "kubernetes_validate", "celpy"):
    pytest.importorskip(_mod, reason=f"{_mod} is a test dependency of the operator (dev extra)")
import yaml
from operator_support import REPO, cel_errors, validate_builtin, validate_schema

from rgpu_operator import gen, install
from rgpu_operator.schema import (
    apply_defaults,
    crd,
    defaulted_spec,
    openapi_schema,
    spec_schema,
)


def resource(spec: dict) -> dict:
    """A ReflectorGPU after API-server defaulting."""
    return apply_defaults(
        openapi_schema(),
        {
            "apiVersion": "reflector.monadical.com/v1alpha1",
            "kind": "ReflectorGPU",
            "metadata": {"name": "x"},
            "spec": spec,
        },
    )


def errors(spec: dict) -> list[str]:
    return cel_errors(openapi_schema(), resource(spec))


def test_crd_is_a_valid_customresourcedefinition():
    validate_builtin(crd())


def walk(schema: dict, path: str = ""):
    yield path, schema
    for key, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, f"{path}.{key}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from walk(schema[key], f"{path}[{key}]")


def test_every_field_is_described_and_typed():
    for path, node in walk(spec_schema(), ".spec"):
        named = not path.endswith("]")  # map values and list items are described by their parent
        assert not named or node.get("description"), f"{path} has no description (kubectl explain)"
        assert "type" in node or "anyOf" in node, f"{path} has no type (not a structural schema)"


def test_defaults_are_schema_valid_and_what_the_issue_asks_for():
    spec = defaulted_spec({})
    validate_schema(openapi_schema(), resource({}))
    assert "deploymentMode" not in spec, "the mode is the operator's setting now"
    assert spec["images"]["policy"] == "Pinned" and spec["files"] == {"maxUpload": "1Gi", "maxDownload": "4Gi"}
    assert spec["translator"]["engine"] == "nllb" and spec["translator"]["auth"] == "apiKey"
    assert spec["diarizer"]["deploymentStrategy"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert spec["padding"]["deploymentStrategy"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert spec["pools"]["a10g"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A10G"}
    assert spec["pools"]["l40s"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert spec["transcriber"]["engine"] == "parakeet"
    assert (spec["transcriber"]["live"]["pool"], spec["transcriber"]["file"]["pool"]) == ("a10g", "l40s")
    live, diarizer = spec["transcriber"]["live"], spec["diarizer"]
    assert (live["maxInFlight"], live["maxQueued"]) == (10, 20)
    assert (diarizer["maxInFlight"], diarizer["maxQueued"]) == (1, 4), "three meetings at once queue, not fail"
    assert "targetConcurrency" not in diarizer and "targetInFlight" not in diarizer  # maxInFlight, in code
    assert diarizer["autoscaling"] == {"class": "none"} and spec["padding"]["autoscaling"] == {"class": "hpa"}
    assert spec["keda"] == {"serverAddress": "", "authenticationRef": "", "authModes": ""}
    assert errors({}) == []


def test_user_pools_replace_the_defaults_and_get_gpu_defaults():
    spec = defaulted_spec({"pools": {"t4": {}}, "transcriber": {"live": {"pool": "t4"}}})
    assert list(spec["pools"]) == ["t4"]
    assert spec["pools"]["t4"]["gpu"] == {"resourceName": "nvidia.com/gpu", "count": 1}


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"transcriber": {"live": {"pool": "h100"}}}, "transcriber.live.pool must name an entry"),
        ({"transcriber": {"file": {"pool": "h100"}}}, "transcriber.file.pool must name an entry"),
        ({"diarizer": {"pool": "h100"}}, "diarizer.pool must name an entry"),
        ({"llm": {"enabled": True, "pool": "h100"}}, "llm.pool must name an entry"),
        ({"padding": {"pool": "h100"}}, "padding.pool must be empty or name an entry"),
        ({"translator": {"minReplicas": 3, "maxReplicas": 2}}, "minReplicas must be less than or equal"),
        ({"transcriber": {"live": {"minReplicas": 0}}}, "scale to zero) is not supported"),
        ({"padding": {"minReplicas": 0}}, "scale to zero) is not supported"),
        ({"diarizer": {"autoscaling": {"class": "hpa"}}}, "CPU utilisation, which says nothing about a busy GPU"),
        ({"transcriber": {"live": {"autoscaling": {"class": "hpa"}}}}, "use autoscaling.class keda"),
        ({"transcriber": {"file": {"autoscaling": {"class": "keda"}}}}, "needs spec.keda.serverAddress"),
        ({"padding": {"autoscaling": {"class": "keda"}}}, "needs spec.keda.serverAddress"),
        ({"diarizer": {"minReplicas": 0}}, "KEDA's HTTP add-on collides with KServe's own ScaledObject"),
        ({"deploymentMode": "Serverless"}, "use KEDA autoscaling"),
        ({"deploymentMode": "Knative"}, "use KEDA autoscaling"),
        ({"env": [{"name": "HF_TOKEN", "value": "hf_x"}]}, "must come from valueFrom.secretKeyRef"),
        ({"diarizer": {"env": [{"name": "DB_PASSWORD", "value": "x"}]}}, "must come from valueFrom.secretKeyRef"),
        ({"env": [{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}, "not both"),
        ({"env": [{"name": "A", "valueFrom": {}}]}, "exactly one of secretKeyRef"),
        ({"diarizer": {"resources": {"limits": {"nvidia.com/gpu": 2}}}}, "GPUs come from the pool"),
        ({"networkPolicy": {"edge": {"preset": "custom"}}}, "edge.namespaceSelector is required"),
        ({"ingress": {"enabled": True}}, "ingress.host is required"),
        ({"modelCache": {"type": "PVC"}}, "modelCache.pvc is required"),
        ({"modelCache": {"type": "LocalModelCache"}}, "modelCache.localModelCache is required"),
        (
            {
                "pools": {"Big_GPU": {}},
                "transcriber": {"live": {"pool": "Big_GPU"}, "file": {"pool": "Big_GPU"}},
                "diarizer": {"enabled": False},
                "translator": {"enabled": False},
            },
            "pool names must be DNS labels",
        ),
    ],
)
def test_cel_rules_reject(spec, message):
    found = errors(spec)
    assert any(message in e for e in found), found


@pytest.mark.parametrize(
    "spec",
    [
        {"deploymentMode": "RawDeployment"},
        {"deploymentMode": "Standard"},
        {"env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]},
        {"env": [{"name": "TOKEN_FILE", "value": "/var/run/token"}]},
        {"networkPolicy": {"edge": {"preset": "custom", "namespaceSelector": {"matchLabels": {"a": "b"}}}}},
        {"diarizer": {"enabled": False, "pool": "gone"}},  # a disabled component's pool is not checked
        {"llm": {"pool": "nowhere"}},  # llm is disabled by default
        {"padding": {"pool": "a10g"}},
        {"translator": {"minReplicas": 2, "maxReplicas": 2}},
        {"padding": {"autoscaling": {"class": "hpa"}, "maxReplicas": 3}},
        {"diarizer": {"autoscaling": {"class": "none"}, "maxReplicas": 3}},
        {"diarizer": {"autoscaling": {"class": "keda"}, "maxReplicas": 3}, "keda": {"serverAddress": "http://p:9090"}},
        {"llm": {"autoscaling": {"class": "keda"}}},  # disabled: not checked
        {"diarizer": {"targetConcurrency": 2}},  # deprecated, still accepted
        {"ingress": {"enabled": True, "host": "gpu.example.com"}},
        {"ingress": {"host": "gpu.example.com"}},
    ],
)
def test_cel_rules_accept(spec):
    assert errors(spec) == []


@pytest.mark.parametrize(
    "spec, path",
    [
        ({"transcriber": {"engine": "wav2vec"}}, "engine"),
        ({"deploymentMode": "Kubeflow"}, "deploymentMode"),
        ({"translator": {"engine": "google"}}, "engine"),
        ({"translator": {"auth": "none"}}, "auth"),
        ({"networkPolicy": {"edge": {"preset": "traefik"}}}, "preset"),
        ({"files": {"maxDownload": "lots"}}, "maxDownload"),
        ({"transcriber": {"live": {"maxReplicas": 0}}}, "maxReplicas"),
        ({"diarizer": {"targetConcurrency": 0}}, "targetConcurrency"),
        ({"diarizer": {"maxInFlight": 0}}, "maxInFlight"),
        ({"diarizer": {"maxQueued": -1}}, "maxQueued"),
        ({"diarizer": {"autoscaling": {"class": "kpa"}}}, "class"),
        ({"pools": {"a": {"gpu": {"count": 99}}}}, "count"),
        ({"ingress": {"host": "Not A Host"}}, "host"),
    ],
)
def test_schema_rejects_bad_values(spec, path):
    import jsonschema

    problems = list(jsonschema.Draft7Validator(openapi_schema()).iter_errors(resource(spec)))
    assert any(path in ".".join(map(str, e.path)) for e in problems), problems


@pytest.mark.parametrize("name", sorted(install.samples()))
def test_samples_validate_against_our_crd(name):
    sample = yaml.safe_load((REPO / "manifests" / "samples" / name).read_text())
    validate_schema(openapi_schema(), resource(copy.deepcopy(sample["spec"])))
    assert errors(sample["spec"]) == []


def test_printer_columns_point_at_declared_fields():
    version = crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    assert names == ["Ready", "Components", "URL", "Engine", "Age"]
    for column in version["additionalPrinterColumns"][:-1]:
        node = schema
        for part in column["jsonPath"].strip(".").split("."):
            node = node["properties"][part]
    assert version["subresources"] == {"status": {}}


def test_generated_manifests_do_not_drift():
    stale = gen.drift(REPO / "manifests")
    assert stale == [], f"manifests/ is stale, run `python -m rgpu_operator.gen`: {stale}"


def test_installs_validate_as_builtin_kinds():
    for obj in [*install.cluster_install(), *install.namespaced_install()]:
        validate_builtin(obj)


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"deploymentMode": "Serverless"},
        {"transcriber": {"live": {"pool": "h100"}}, "diarizer": {"minReplicas": 0}},
        {"pools": {"Big_GPU": {}}, "transcriber": {"live": {"pool": "Big_GPU"}, "file": {"pool": "Big_GPU"}}},
        {"ingress": {"enabled": True}, "modelCache": {"type": "PVC"}},
        {"modelCache": {"type": "LocalModelCache"}, "padding": {"pool": "nowhere"}},
        {"llm": {"enabled": True, "pool": "x", "minReplicas": 3, "maxReplicas": 1}},
        {
            "env": [
                {"name": "API_KEY", "value": "k"},
                {"name": "X", "value": "1", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
            ]
        },
        {
            "translator": {
                "env": [
                    {
                        "name": "A",
                        "valueFrom": {
                            "secretKeyRef": {"name": "s", "key": "k"},
                            "configMapKeyRef": {"name": "c", "key": "k"},
                        },
                    }
                ]
            }
        },
        {"networkPolicy": {"edge": {"preset": "custom"}}},
        {"padding": {"resources": {"requests": {"nvidia.com/gpu": 1}}}},
        {"diarizer": {"autoscaling": {"class": "hpa"}}, "translator": {"autoscaling": {"class": "keda"}}},
        {"padding": {"autoscaling": {"class": "keda"}, "minReplicas": 0}},
        {"transcriber": {"live": {"autoscaling": {"class": "keda"}}}, "keda": {"serverAddress": "http://p"}},
    ],
)
def test_the_operators_rules_are_the_crds_cel_rules(spec):
    """rules.spec_problems (what the operator and render check) and the CRD's CEL (what the API
    server checks) refuse the same specs for the same reasons."""
    from rgpu_operator.rules import spec_problems

    cel = sorted(e.split(": ", 1)[1] for e in errors(spec))
    python = sorted(p.message for p in spec_problems(defaulted_spec(spec)))
    assert cel == python
