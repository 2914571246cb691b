"""``rgpu-operator render``: the real command, on every sample, at every emulated KServe version.

The checks here are the issue's acceptance rules, made by a script over the rendered objects:
requests within limits, the cluster-local label, the right mode name, short InferenceService
names, no secret in a plain environment value, no Secret value printed; and refusals exit 2
with the field path and the rule.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from operator_support import REPO, SHARED, requires_crds, validate_any

from rgpu_operator import quantity

SAMPLES = sorted((REPO / "manifests" / "samples").glob("*.yaml"))
VERSIONS = ("0.15", "0.16", "0.17")
SECRET_LIKE = re.compile(r"(?i)(TOKEN|SECRET|PASSWORD|API_?KEY|CREDENTIAL)")


def render(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{REPO / 'operator'}:{REPO / 'predictors'}"}
    return subprocess.run(
        [sys.executable, "-m", "rgpu_operator", "render", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=120,
    )


def rendered(path: Path, version: str) -> list[dict]:
    result = render("-f", str(path), "--kserve-version", version)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def huggingface_runtime() -> dict:
    path = SHARED / "kserve" / "kserve-huggingfaceserver.yaml"
    if not path.is_file():
        pytest.skip(f"KServe's runtime YAML not found at {path} (../shared is absent)")
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_sample_renders_to_what_kserve_admits(sample, version):
    objects = rendered(sample, version)
    assert objects[0]["kind"] == "ReflectorGPU" and "pools" in objects[0]["spec"], "defaulted as stored"
    isvcs = [o for o in objects if o["kind"] == "InferenceService"]
    assert isvcs
    for isvc in isvcs:
        meta = isvc["metadata"]
        assert len(meta["name"]) <= 53
        assert meta["labels"]["networking.kserve.io/visibility"] == "cluster-local"
        assert meta["annotations"]["serving.kserve.io/deploymentMode"] == (
            "RawDeployment" if version == "0.15" else "Standard"
        )
        predictor = isvc["spec"]["predictor"]
        if "model" in predictor:  # llm.runtime huggingface: KServe's runtime, the format it supports
            runtime = huggingface_runtime()
            assert predictor["model"]["runtime"] == runtime["metadata"]["name"]
            formats = {f["name"] for f in runtime["spec"]["supportedModelFormats"]}
            assert predictor["model"]["modelFormat"]["name"] in formats
            assert "--backend=vllm" in predictor["model"]["args"]
        for container in predictor.get("containers") or [predictor["model"]]:
            res = container["resources"]
            for name in ("cpu", "memory"):
                assert quantity.parse(res["requests"][name]) <= quantity.parse(res["limits"][name]), (meta["name"], res)
            for env in container.get("env", []):
                if SECRET_LIKE.search(env["name"]) and not env["name"].endswith(("_FILE", "_PATH", "_DIR")):
                    assert "value" not in env, f"{meta['name']}: {env['name']} is a plain value"
    for secret in (o for o in objects if o["kind"] == "Secret"):
        assert secret["data"] and set(secret["data"].values()) == {""}, "keys only, never values"


@requires_crds
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_rendered_objects_validate_and_are_deterministic(sample):
    first = render("-f", str(sample))
    assert first.returncode == 0 and first.stdout == render("-f", str(sample)).stdout
    assert "do not commit" in first.stdout
    for obj in yaml.safe_load_all(first.stdout):
        if obj and obj["kind"] != "ReflectorGPU":
            validate_any(obj)


CR = "apiVersion: reflector.monadical.com/v1alpha1\nkind: ReflectorGPU\nmetadata: {{name: r}}\nspec: {spec}\n"


@pytest.mark.parametrize(
    "spec, path, rule",
    [
        ("{deploymentMode: Serverless}", "spec.deploymentMode", "no-knative"),
        ("{transcriber: {engine: wav2vec}}", "spec.transcriber.engine", "schema enum"),
        (
            "{diarizer: {resources: {requests: {memory: 40Gi}, limits: {memory: 24Gi}}}}",
            "spec.diarizer.resources.requests.memory",
            "requests-within-limits",
        ),
        ("{env: [{name: HF_TOKEN, value: hf_x}]}", "spec.env[0].value", "no-plain-secret"),
        ("{padding: {minReplicas: 0}}", "spec.padding.minReplicas", "no-scale-to-zero"),
        ("{ingress: {enabled: true}}", "spec.ingress.host", "host-required"),
    ],
)
def test_a_refused_resource_exits_2_naming_the_field_and_the_rule(spec, path, rule):
    result = render("-f", "-", stdin=CR.format(spec=spec))
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    assert f"error: {path}:" in result.stderr and f"(rule {rule})" in result.stderr, result.stderr


def test_namespace_flag_and_several_resources():
    docs = (
        CR.format(spec="{}")
        + "---\n"
        + CR.format(spec="{llm: {enabled: true, runtime: custom}}").replace("name: r", "name: s")
    )
    result = render("-f", "-", "--namespace", "team", stdin=docs)
    assert result.returncode == 0, result.stderr
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    assert {o["metadata"].get("namespace") for o in objects} == {"team"}
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "ReflectorGPU"] == ["r", "s"]
    assert "s-llm" in {o["metadata"]["name"] for o in objects if o["kind"] == "InferenceService"}


def test_unreadable_input_exits_1():
    result = render("-f", "/nonexistent.yaml")
    assert result.returncode == 1 and "error:" in result.stderr
    assert render("-f", "-", "--kserve-version", "0.9", stdin=CR.format(spec="{}")).returncode == 1
