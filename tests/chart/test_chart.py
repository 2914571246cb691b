"""The Helm chart (charts/reflector-gpu) and the plain manifests, checked with the real binaries.

helm v4 lints and renders the chart offline; every rendered object is validated: built-in kinds
with kubernetes-validate (strict: unknown fields fail), the ReflectorGPU against our CRD's schema
and CEL rules, and what the operator would build from that ReflectorGPU (InferenceServices,
Ingress / HTTPRoute) against the real KServe and Gateway API CRDs in ../shared/k8s-crds.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from k8s_schema import cel_errors, load_crd, unknown_fields
from support import REPO, SHARED

CHART = REPO / "charts" / "reflector-gpu"
SAMPLES = sorted((CHART / "ci").glob("*-values.yaml"))
CRDS = SHARED / "k8s-crds"
K8S_VERSION = "1.33"
RELEASE, NAMESPACE = "rgpu", "reflector"
NO_CRDS = f"real KServe/Gateway CRDs not found at {CRDS} (../shared is absent): those objects were not validated"


@functools.cache
def gen_chart():
    spec = importlib.util.spec_from_file_location("gen_chart", REPO / "charts" / "gen_chart.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def helm(tools, env, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([str(tools["helm"]), *args], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def render(tools, env, *args: str) -> list[dict]:
    out = helm(tools, env, "template", RELEASE, str(CHART), "-n", NAMESPACE, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def crd_objects() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*.yaml"))]


# --- validators -----------------------------------------------------------------------------


def validate_with_schema(schema: dict, obj: dict, *, defaults: bool = False) -> None:
    import jsonschema

    from rgpu_operator.schema import apply_defaults

    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, where + ":\n" + "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert not (bad := unknown_fields(schema, obj)), f"{where}: undeclared (pruned) fields {bad}"
    # The API server defaults before it runs CEL; do the same.
    assert not (bad := cel_errors(schema, apply_defaults(schema, obj) if defaults else obj)), (
        f"{where}: CEL rules reject it: {bad}"
    )


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema, for our CRD and the real KServe / Gateway CRDs."""
    paths = [*(CHART / "crds").glob("*.yaml"), *(sorted(CRDS.glob("*.yaml")) if CRDS.is_dir() else [])]
    out = {}
    for path in paths:
        crd = load_crd(path)
        for version in crd["spec"]["versions"]:
            out[(f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])] = version["schema"][
                "openAPIV3Schema"
            ]
    return out


def validate(obj: dict) -> bool:
    """Any object the chart renders or the operator would create from it. False: not validated,
    because its CRD is one of ../shared/k8s-crds and that folder is absent (the caller skips)."""
    key = (obj["apiVersion"], obj["kind"])
    group = obj["apiVersion"].rpartition("/")[0]
    if "." in group and not group.endswith("k8s.io") or group.startswith("gateway."):
        if key not in crd_schemas():
            assert not CRDS.is_dir(), f"no CRD for {key} in {CRDS}"
            return False
        validate_with_schema(crd_schemas()[key], obj, defaults=obj["kind"] == "ReflectorGPU")
    else:
        import kubernetes_validate

        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    return True


def operator_children(rgpu: dict) -> list[dict]:
    """What the operator builds from a ReflectorGPU (its own pure planner; no cluster)."""
    from rgpu_operator.context import Install
    from rgpu_operator.desired import plan

    owner = {**rgpu, "metadata": {**rgpu["metadata"], "uid": "0000-uid", "generation": 1}}
    found = plan(owner, Install(image_registry="ghcr.io/monadical-sas", image_tag="0.1.0"), key="k")
    assert not found.problems, found.problems
    return found.present


# --- generated files: one source ------------------------------------------------------------


def test_generated_chart_files_match_the_operator_sources():
    stale = gen_chart().drift()
    assert not stale, f"stale generated chart files {stale}: run `python charts/gen_chart.py`"


def test_chart_crd_is_the_manifests_crd():
    chart = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert chart, "no CRD in charts/reflector-gpu/crds"
    for name in chart:
        assert (CHART / "crds" / name).read_text() == (REPO / "manifests" / "crd" / name).read_text()


def test_chart_rbac_is_the_operator_rbac(tools, helm_env):
    from rgpu_operator import rbac

    objs = render(tools, helm_env)
    (role,) = [o for o in objs if o["kind"] == "ClusterRole"]
    (binding,) = [o for o in objs if o["kind"] == "ClusterRoleBinding"]
    (sa,) = [o for o in objs if o["kind"] == "ServiceAccount"]
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    assert role["rules"] == rbac.rules(cluster=True)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": NAMESPACE}]
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    # The only namespaced rights: get on KServe's controller Deployment, to read its version.
    (version_role,) = [o for o in objs if o["kind"] == "Role"]
    (version_binding,) = [o for o in objs if o["kind"] == "RoleBinding"]
    assert version_role["metadata"]["namespace"] == version_binding["metadata"]["namespace"] == "kserve"
    assert version_role["rules"] == rbac.kserve_version_rules()
    assert version_binding["subjects"] == binding["subjects"]
    pinned = render(tools, helm_env, "--set", "operator.kserve.version=0.16")
    assert not [o for o in pinned if o["kind"] in ("Role", "RoleBinding")], "a set version needs no read"

    watched = ["team-a", "team-b"]
    objs = render(tools, helm_env, "--set", "operator.watchNamespaces={team-a,team-b}")
    assert not [o for o in objs if o["kind"].startswith("Cluster")], "namespaced mode needs no cluster rights"
    roles = {
        o["metadata"]["namespace"]: o
        for o in objs
        if o["kind"] == "Role" and "kserve-version" not in o["metadata"]["name"]
    }
    bindings = {
        o["metadata"]["namespace"]: o
        for o in objs
        if o["kind"] == "RoleBinding" and "kserve-version" not in o["metadata"]["name"]
    }
    assert sorted(roles) == sorted(bindings) == watched
    for ns in watched:
        assert roles[ns]["rules"] == rbac.rules(cluster=False)
        assert bindings[ns]["subjects"][0]["namespace"] == NAMESPACE
    env = _env([o for o in objs if o["kind"] == "Deployment"][0])
    assert env["RGPU_OPERATOR_NAMESPACES"] == "team-a,team-b"


def _env(deploy: dict) -> dict[str, str]:
    """The operator container's plain-value environment."""
    return {e["name"]: e["value"] for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"] if "value" in e}


def test_operator_environment_is_what_the_operator_reads(tools, helm_env):
    """Every RGPU_OPERATOR_* variable the chart sets is a Settings field (no silent typos)."""
    import dataclasses

    from rgpu_operator.settings import PREFIX, Settings

    known = {PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    (deploy,) = [o for o in render(tools, helm_env) if o["kind"] == "Deployment"]
    names = {e["name"] for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {n for n in names if n.startswith(PREFIX)} <= known, f"the operator does not read {sorted(names - known)}"
    env = Settings.from_env(_env(deploy))
    # Deliberate differences: the chart turns peering on (named after the release) and tells the
    # operator its own pod labels (its namespace comes from the downward API).
    labels = deploy["spec"]["selector"]["matchLabels"]
    assert env == dataclasses.replace(
        Settings(), peering=deploy["metadata"]["name"], pod_labels=tuple(labels.items())
    ), "the chart's defaults differ from the operator's own defaults"
    pod_ns = next(
        e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == f"{PREFIX}POD_NAMESPACE"
    )
    assert pod_ns["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


# --- lint and render ------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, *SAMPLES], ids=lambda p: p.name if p else "defaults")
def test_helm_lint_strict(tools, helm_env, values):
    args = ["lint", "--strict", str(CHART), "-n", NAMESPACE] + (["-f", str(values)] if values else [])
    result = helm(tools, helm_env, *args)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", [None, *SAMPLES], ids=lambda p: p.name if p else "defaults")
def test_rendered_objects_validate(tools, helm_env, values):
    objs = render(tools, helm_env, *(["-f", str(values)] if values else []))
    kinds = sorted(o["kind"] for o in objs)
    assert {"Deployment", "ServiceAccount"} <= set(kinds), kinds
    for crd in crd_objects():
        validate(crd)
    for obj in objs:
        validate(obj)
        labels = obj["metadata"]["labels"]
        for label in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/version",
            "app.kubernetes.io/managed-by",
            "app.kubernetes.io/part-of",
            "helm.sh/chart",
        ):
            assert label in labels, f"{obj['kind']} lacks {label}"
    rgpus = [o for o in objs if o["kind"] == "ReflectorGPU"]
    assert len(rgpus) == (1 if values and "reflectorGPU" in yaml.safe_load(values.read_text()) else 0)
    unchecked = []
    for rgpu in rgpus:
        children = operator_children(rgpu)
        assert any(c["kind"] == "InferenceService" for c in children)
        unchecked += [child["kind"] for child in children if not validate(child)]
    if unchecked:
        pytest.skip(f"{NO_CRDS}: {sorted(set(unchecked))}")


def test_operator_pod_meets_the_restricted_pod_security_standard(tools, helm_env):
    (deploy,) = [o for o in render(tools, helm_env) if o["kind"] == "Deployment"]
    spec = deploy["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "RollingUpdate"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["runAsNonRoot"] is True and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    probe = container["livenessProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = _env(deploy)
    assert ports["health"] == int(env["RGPU_OPERATOR_HEALTH_PORT"])
    assert container["image"] == "ghcr.io/monadical-sas/reflector-gpu-operator:0.1.0"
    assert env["RGPU_OPERATOR_IMAGE_REGISTRY"] == "ghcr.io/monadical-sas" and env["RGPU_OPERATOR_IMAGE_TAG"] == "0.1.0"


def test_replicas_coordinate_through_peering(tools, helm_env):
    """More than one operator pod: peering named after the release, kopf's identity from the pod
    name, a rolling update, a PodDisruptionBudget; without peering: one pod, Recreate."""
    from rgpu_operator import peering, rbac

    objs = render(tools, helm_env, "--set", "replicaCount=3")
    for obj in objs:
        validate(obj)
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    (pdb,) = [o for o in objs if o["kind"] == "PodDisruptionBudget"]
    name = deploy["metadata"]["name"]
    assert deploy["spec"]["replicas"] == 3
    assert deploy["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": deploy["spec"]["selector"]}
    env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "RGPU_OPERATOR_PEERING", "value": name} in env
    assert {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in env
    (role,) = [o for o in objs if o["kind"] == "ClusterRole"]
    assert (
        {
            "apiGroups": [peering.GROUP],
            "resources": [peering.CLUSTER_PLURAL],
            "verbs": ["get", "list", "watch", "create", "patch"],
        }
        in role["rules"]
        == rbac.rules(cluster=True)
    )
    crds = {c["spec"]["names"]["kind"] for c in crd_objects()}
    assert {peering.CLUSTER_KIND, peering.NAMESPACED_KIND} <= crds

    objs = render(tools, helm_env, "--set", "operator.peering.enabled=false")
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    assert deploy["spec"]["strategy"] == {"type": "Recreate"} and _env(deploy)["RGPU_OPERATOR_PEERING"] == ""
    assert not [o for o in objs if o["kind"] == "PodDisruptionBudget"]


def _notes(tools, env, values: Path) -> str:
    out = helm(
        tools, env, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client", "-f", str(values)
    ).stdout
    return out.split("NOTES:", 1)[1]


@pytest.mark.parametrize("values", [p for p in SAMPLES if "reflectorGPU" in p.read_text()], ids=lambda p: p.name)
def test_notes_print_the_reflector_settings_the_operator_writes(tools, helm_env, values):
    from rgpu_operator import llmruntime, reflector_env
    from rgpu_operator.inferenceservice import apikey_sources
    from rgpu_operator.schema import defaulted_spec

    (rgpu,) = [o for o in render(tools, helm_env, "-f", str(values)) if o["kind"] == "ReflectorGPU"]
    name, ns = rgpu["metadata"]["name"], rgpu["metadata"]["namespace"]
    spec = defaulted_spec(rgpu["spec"])
    spec["llm"]["runtime"] = llmruntime.resolve({"spec": rgpu["spec"]}, spec)  # a new ReflectorGPU
    want = reflector_env.settings(spec, ns, name, "cluster.local", apikey_sources(spec, name)[0])
    notes = _notes(tools, helm_env, values)
    printed = dict(re.findall(r"^  ([A-Z_]+)=(\S+)$", notes, re.M))
    assert printed == want["env"], "NOTES print what the operator writes into status.reflector.env"
    assert f"{', '.join(want['secretEnv'])}: the API key" in notes
    secret = (rgpu["spec"].get("auth", {}).get("existingSecret") or {}).get("name") or f"{name}-apikey"
    assert f"kubectl -n {ns} get secret {secret} -o jsonpath=" in notes and "base64 -d" in notes
    if "TRANSLATE_URL" in want["env"]:
        assert "TRANSLATION_MODAL_API_KEY" in notes, "the translator workaround is named"


@pytest.mark.parametrize(
    "spec",
    [
        {"llm": {"enabled": True, "model": {"name": "microsoft/phi-4"}}, "ingress": {"enabled": True, "host": "h.io"}},
        {
            "llm": {"enabled": True, "model": {"name": "microsoft/phi-4"}},
            "padding": {"enabled": False},
            "ingress": {"enabled": True, "host": "h.io", "gateway": {"parentRefs": [{"name": "eg"}]}},
        },
        {"llm": {"enabled": True, "model": {"name": "Org/Some_Model"}, "huggingface": {"servedModelName": "m1"}}},
        {"llm": {"enabled": True, "runtime": "custom"}, "ingress": {"enabled": True, "host": "h.io"}},
        {
            "pools": {"cpu": {"gpu": {"count": 0}}, "a10g": {}, "l40s": {}},
            "llm": {"enabled": True, "pool": "cpu", "model": {"name": "a/b"}},
        },
    ],
    ids=["huggingface", "huggingface-unrouted", "served-name", "custom", "cpu-pool"],
)
def test_notes_print_the_llm_settings_the_operator_writes(tools, helm_env, tmp_path, spec):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"reflectorGPU": {"create": True, "spec": spec}}))
    test_notes_print_the_reflector_settings_the_operator_writes(tools, helm_env, values)


def test_notes_without_a_reflectorgpu_say_how_to_make_one(tools, helm_env):
    notes = helm(tools, helm_env, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--dry-run=client").stdout
    assert "kind: ReflectorGPU" in notes and "get secret reflector-gpu-apikey" in notes


# --- values.schema.json ---------------------------------------------------------------------


BAD_VALUES = {
    "two replicas without peering": {"replicaCount": 2, "operator": {"peering": {"enabled": False}}},
    "six operator replicas": {"replicaCount": 6},
    "writable root filesystem": {"securityContext": {"readOnlyRootFilesystem": False}},
    "privilege escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "running as root allowed": {"podSecurityContext": {"runAsNonRoot": False}},
    "unknown top-level key": {"replicas": 1},
    "bad pull policy": {"image": {"pullPolicy": "Sometimes"}},
    "bad namespace name": {"operator": {"watchNamespaces": ["Team_A"]}},
    "unknown engine": {"reflectorGPU": {"spec": {"transcriber": {"engine": "wav2vec"}}}},
    "typo in the spec": {"reflectorGPU": {"spec": {"transcriber": {"engin": "whisper"}}}},
    "too many replicas": {"reflectorGPU": {"spec": {"diarizer": {"maxReplicas": 1000}}}},
    "Knative mode": {"reflectorGPU": {"spec": {"deploymentMode": "Knative"}}},
    "scale to zero": {"reflectorGPU": {"spec": {"padding": {"minReplicas": 0}}}},
    "a name too long for KServe": {"reflectorGPU": {"name": "a" * 37}},
    "unknown edge preset": {"operator": {"edge": "traefik"}},
    "bad KServe version": {"operator": {"kserve": {"version": "latest"}}},
}


@pytest.mark.parametrize("bad", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_values_schema_rejects_bad_values(tools, helm_env, tmp_path, bad):
    values = tmp_path / "bad-values.yaml"
    values.write_text(yaml.safe_dump(bad))
    result = helm(tools, helm_env, "template", RELEASE, str(CHART), "-f", str(values), check=False)
    assert result.returncode != 0, f"helm accepted {bad}"
    assert "schema" in result.stderr.lower(), result.stderr


def test_values_schema_accepts_defaults_and_samples():
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(defaults, schema)
    for sample in SAMPLES:
        merged = _merge(defaults, yaml.safe_load(sample.read_text()))
        jsonschema.validate(merged, schema)


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def test_values_yaml_documents_every_field():
    """Every top-level key and every key of a top-level block has a comment right above it, unless
    its block is documented as a whole (a `# --` comment above the block, e.g. podSecurityContext)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented, block_documented = [], False
    for i, line in enumerate(lines):
        m = re.match(r"^( *)([A-Za-z]\w*):", line)
        if not m or len(m.group(1)) > 2:
            continue
        commented = i > 0 and lines[i - 1].lstrip().startswith("#")
        if not m.group(1):
            j = i - 1
            while j >= 0 and lines[j].lstrip().startswith("#") and not lines[j].startswith("# --"):
                j -= 1
            block_documented = commented and j >= 0 and lines[j].startswith("# --")
        if not commented and not (m.group(1) and block_documented):
            undocumented.append(m.group(2))
    assert not undocumented, f"values.yaml fields without a comment: {undocumented}"


def test_a_reflectorgpu_outside_the_watched_namespaces_is_refused(tools, helm_env):
    result = helm(
        tools,
        helm_env,
        "template",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--set",
        "operator.watchNamespaces={other}",
        "--set",
        "reflectorGPU.create=true",
        check=False,
    )
    assert result.returncode != 0 and "operator would never see it" in result.stderr


def test_a_local_model_cache_needs_the_cluster_wide_operator(tools, helm_env):
    result = helm(
        tools,
        helm_env,
        "template",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "--set",
        f"operator.watchNamespaces={{{NAMESPACE}}}",
        "--set",
        "reflectorGPU.create=true",
        "--set",
        "reflectorGPU.spec.modelCache.type=LocalModelCache",
        "--set",
        "reflectorGPU.spec.modelCache.localModelCache.nodeGroups={gpu}",
        check=False,
    )
    assert result.returncode != 0 and "cluster-wide operator" in result.stderr


# --- plain manifests (kustomize) --------------------------------------------------------------


@pytest.mark.parametrize("base", ["manifests", "manifests/crd", "manifests/operator", "manifests/operator-namespaced"])
def test_kustomize_renders_valid_manifests(tools, base):
    result = subprocess.run(
        [str(tools["kubectl"]), "kustomize", str(REPO / base)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    objs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert objs
    for obj in objs:
        validate(obj)
    kinds = {o["kind"] for o in objs}
    if base == "manifests":
        assert {
            "CustomResourceDefinition",
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
        } <= kinds


def test_manifest_samples_validate_against_the_crd():
    samples = sorted((REPO / "manifests" / "samples").glob("*.yaml"))
    assert samples
    unchecked = []
    for path in samples:
        for obj in yaml.safe_load_all(path.read_text()):
            if obj:
                assert validate(obj)
                unchecked += [child["kind"] for child in operator_children(obj) if not validate(child)]
    if unchecked:
        pytest.skip(f"{NO_CRDS}: {sorted(set(unchecked))}")


# --- docs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", ["docs/chart.md", "README.md"])
def test_documented_install_commands_match_the_chart(tools, helm_env, doc):
    """Every `helm install|upgrade --install|template` of charts/reflector-gpu in the doc renders
    with this chart: its values files exist and every --set is accepted by values.schema.json."""
    text = (REPO / doc).read_text()
    commands = [
        c.replace("\\\n", " ")
        for c in re.findall(r"^helm (?:install|upgrade --install|template) (?:[^\n]*\\\n)*[^\n]*", text, re.M)
    ]
    commands = [c for c in commands if "charts/reflector-gpu" in c]
    if doc == "README.md" and not commands:
        pytest.skip("README.md has no `helm install ... charts/reflector-gpu` section yet")
    assert len(commands) >= (3 if doc == "docs/chart.md" else 1), commands
    for command in commands:
        words = command.split()
        i = 3 if words[1] == "upgrade" else 2
        release, chart = words[i], words[i + 1]
        assert chart == "charts/reflector-gpu", command
        rest, args, j = words[i + 2 :], [], 0
        while j < len(rest):
            if rest[j] in ("-f", "--values", "--set", "--set-string", "-n", "--namespace"):
                value = rest[j + 1]
                if rest[j] in ("-f", "--values"):
                    assert (REPO / value).is_file(), f"{command}: no file {value}"
                    value = str(REPO / value)
                args += [rest[j], value]
                j += 2
            else:
                j += 1  # --create-namespace, --wait, --timeout ...
        helm(tools, helm_env, "template", release, str(CHART), *args)


# --- uninstall: the pre-delete hook -----------------------------------------------------------


def test_uninstall_hook_deletes_the_reflectorgpu_before_the_operator_goes(tools, helm_env):
    hooks = [
        o
        for o in render(tools, helm_env, "-f", str(CHART / "ci" / "cpu-dev-values.yaml"))
        if "helm.sh/hook" in o["metadata"].get("annotations", {})
    ]
    assert sorted(o["kind"] for o in hooks) == ["Job", "Role", "RoleBinding", "ServiceAccount"]
    assert all(o["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete" for o in hooks)
    by_kind = {o["kind"]: o for o in hooks}
    assert by_kind["Role"]["rules"] == [
        {
            "apiGroups": ["reflector.monadical.com"],
            "resources": ["reflectorgpus"],
            "resourceNames": ["reflector-gpu"],
            "verbs": ["get", "delete"],
        }
    ]
    assert by_kind["RoleBinding"]["subjects"][0]["name"] == by_kind["ServiceAccount"]["metadata"]["name"]
    job = by_kind["Job"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/monadical-sas/reflector-gpu-operator:0.1.0"
    assert container["command"][:2] == ["python", "-c"]
    assert container["command"][2] == (CHART / "files" / "delete-reflectorgpu.py").read_text()
    assert container["command"][3:] == [NAMESPACE, "reflector-gpu", "240"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (deploy,) = [o for o in render(tools, helm_env) if o["kind"] == "Deployment"]
    selector = deploy["spec"]["selector"]["matchLabels"].items()
    assert not selector <= job["spec"]["template"]["metadata"]["labels"].items(), (
        "the hook's pod would match the operator Deployment's selector"
    )
    assert job["spec"]["activeDeadlineSeconds"] > 240

    for args in (
        [],
        ["-f", str(CHART / "ci" / "cpu-dev-values.yaml"), "--set", "reflectorGPU.uninstallTimeoutSeconds=0"],
    ):
        assert not [o for o in render(tools, helm_env, *args) if o["kind"] == "Job"]


class _ApiError(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = types.SimpleNamespace(code=status)


def _hook_script(monkeypatch, gets: list[int], delete_status: int = 200):
    """The hook script with a fake lightkube client: each get answers the next status."""
    calls = []

    class Client:
        def delete(self, res, name, namespace=None):
            calls.append(("delete", (res.kind, namespace, name)))
            if delete_status != 200:
                raise _ApiError(delete_status)

        def get(self, res, name, namespace=None):
            calls.append(("get", (res.kind, namespace, name)))
            status = gets.pop(0) if gets else 200
            if status != 200:
                raise _ApiError(status)

    def create_namespaced_resource(group, version, kind, plural):
        assert (group, version, plural) == ("reflector.monadical.com", "v1alpha1", "reflectorgpus")
        return types.SimpleNamespace(kind=kind)

    lightkube = types.ModuleType("lightkube")
    lightkube.Client, lightkube.ApiError = Client, _ApiError
    generic = types.ModuleType("lightkube.generic_resource")
    generic.create_namespaced_resource = create_namespaced_resource
    monkeypatch.setitem(sys.modules, "lightkube", lightkube)
    monkeypatch.setitem(sys.modules, "lightkube.generic_resource", generic)
    spec = importlib.util.spec_from_file_location("delete_reflectorgpu", CHART / "files" / "delete-reflectorgpu.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script.time, "sleep", lambda s: None)
    return script, calls


def test_uninstall_hook_script_waits_for_the_finalizer(monkeypatch):
    script, calls = _hook_script(monkeypatch, gets=[200, 200, 404])
    assert script.main("reflector", "rgpu", 30) == 0
    assert [c[0] for c in calls] == ["delete", "get", "get", "get"]
    assert calls[0][1] == ("ReflectorGPU", "reflector", "rgpu")


def test_uninstall_hook_script_is_done_when_nothing_is_there(monkeypatch):
    script, calls = _hook_script(monkeypatch, gets=[], delete_status=404)
    assert script.main("reflector", "rgpu", 30) == 0 and len(calls) == 1


def test_uninstall_hook_script_fails_when_the_operator_never_finalizes(monkeypatch):
    script, _ = _hook_script(monkeypatch, gets=[])
    assert script.main("reflector", "rgpu", 0.05) == 1
    with pytest.raises(_ApiError):
        _hook_script(monkeypatch, gets=[], delete_status=403)[0].main("reflector", "rgpu", 1)


def test_the_operator_pod_is_outside_the_networkpolicy_of_a_same_named_reflectorgpu(tools, helm_env):
    """Release and ReflectorGPU both called reflector-gpu (as in docs/chart.md and the e2e run): the
    NetworkPolicy the operator makes for the ReflectorGPU must not select the operator's own pod."""
    objs = render_named(tools, helm_env, "reflector-gpu", "-f", str(CHART / "ci" / "cpu-dev-values.yaml"))
    (rgpu,) = [o for o in objs if o["kind"] == "ReflectorGPU"]
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    policies = [o for o in operator_children(rgpu) if o["kind"] == "NetworkPolicy"]
    assert policies
    for policy in policies:
        selected = policy["spec"]["podSelector"]["matchLabels"].items()
        assert not selected <= deploy["spec"]["template"]["metadata"]["labels"].items()


def render_named(tools, env, release: str, *args: str) -> list[dict]:
    out = helm(tools, env, "template", release, str(CHART), "-n", NAMESPACE, *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


PODMONITOR_API = "monitoring.coreos.com/v1/PodMonitor"


def test_the_operator_podmonitor_only_where_the_kind_is_served(tools, helm_env):
    assert not [o for o in render(tools, helm_env) if o["kind"] == "PodMonitor"]
    objs = render(
        tools, helm_env, "--api-versions", PODMONITOR_API, "--set", "monitoring.podMonitor.labels.release=kps"
    )
    (pm,) = [o for o in objs if o["kind"] == "PodMonitor"]
    if not validate(pm):
        pytest.skip(NO_CRDS)
    (deploy,) = [o for o in objs if o["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert pm["metadata"]["labels"]["release"] == "kps"
    (container,) = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert pm["spec"]["podMetricsEndpoints"][0]["port"] == "metrics" and env["RGPU_OPERATOR_METRICS_PORT"] == str(
        ports["metrics"]
    )
    objs = render(tools, helm_env, "--api-versions", PODMONITOR_API, "--set", "operator.metricsPort=0")
    assert not [o for o in objs if o["kind"] == "PodMonitor"], "no metrics port, nothing to scrape"


def test_the_grafana_dashboard_uses_only_metrics_that_exist(tools, helm_env):
    import prometheus_client

    import rgpu_operator.metrics  # noqa: F401 - registers the operator's series
    import rgpu_serving.metrics  # noqa: F401 - registers the predictors' series

    (cm,) = [
        o for o in render(tools, helm_env) if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")
    ]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(cm["data"]["reflector-gpu.json"])
    exprs = [t["expr"] for p in board["panels"] for t in p["targets"]]
    titles = " ".join(p["title"] for p in board["panels"]).lower()
    for want in ("requests", "in flight", "queued", "queue wait", "audio seconds", "model load", "4xx and 5xx"):
        assert want in titles, want
    suffixes = ("", "_total", "_bucket", "_count", "_sum")
    known = {m.name + suffix for m in prometheus_client.REGISTRY.collect() for suffix in suffixes}
    used = {name for e in exprs for name in re.findall(r"\b((?:reflector_gpu|rgpu_operator)_\w+)", e)}
    assert used and used <= known, used - known
