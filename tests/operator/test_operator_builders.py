"""Pure builders over many spec variations: every emitted object validates (real KServe/Gateway
CRDs, kubernetes-validate for built-in kinds) and keeps the invariants the reconciler relies on."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace

import pytest
from cluster import KServe
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from operator_support import cel_errors, owner, requires_crds, validate_any

import rgpu_contract as contract
from rgpu_operator import components as c
from rgpu_operator import quantity, routing
from rgpu_operator.context import Install, Observed
from rgpu_operator.desired import plan
from rgpu_operator.kserve import Version
from rgpu_operator.rules import keda_components
from rgpu_operator.schema import apply_defaults, openapi_schema

pytestmark = pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")

DEFAULTS = Install(image_registry="ghcr.io/monadical-sas", image_tag="0.1.0")
KEY = "s3cr3t-key-value-that-must-not-leak"

pool_names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
replicas = st.integers(min_value=1, max_value=5)
cpus = st.sampled_from(["1", "500m", "2", "16", 4])
memories = st.sampled_from(["2Gi", "16Gi", "1500Mi", "40Gi"])
resources = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "requests": st.fixed_dictionaries({}, optional={"cpu": cpus, "memory": memories}),
            "limits": st.fixed_dictionaries({}, optional={"cpu": cpus, "memory": memories}),
        },
    ),
)
models = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["large-v3", "nvidia/parakeet-tdt-0.6b-v2", "base"]),
        "storageUri": st.sampled_from(["s3://models/whisper", "hf://org/model", "gs://b/m"]),
    },
)


@st.composite
def pools(draw):
    names = draw(st.lists(pool_names, min_size=1, max_size=4, unique=True))
    out = {}
    for name in names:
        pool = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "nodeSelector": st.dictionaries(
                        st.sampled_from(["nvidia.com/gpu.product", "node.kubernetes.io/instance-type"]),
                        st.sampled_from(["NVIDIA-A10G", "g5.xlarge"]),
                        max_size=2,
                    ),
                    "tolerations": st.lists(
                        st.fixed_dictionaries(
                            {
                                "key": st.sampled_from(["nvidia.com/gpu", "dedicated"]),
                                "operator": st.just("Exists"),
                                "effect": st.sampled_from(["NoSchedule", "NoExecute"]),
                            }
                        ),
                        max_size=2,
                    ),
                    "runtimeClassName": st.just("nvidia"),
                    "priorityClassName": st.just("gpu-high"),
                    "affinity": st.just(
                        {
                            "nodeAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": {
                                    "nodeSelectorTerms": [
                                        {
                                            "matchExpressions": [
                                                {
                                                    "key": "topology.kubernetes.io/zone",
                                                    "operator": "In",
                                                    "values": ["a"],
                                                }
                                            ]
                                        }
                                    ]
                                }
                            }
                        }
                    ),
                    "gpu": st.fixed_dictionaries(
                        {},
                        optional={
                            "resourceName": st.sampled_from(["nvidia.com/gpu", "amd.com/gpu"]),
                            "count": st.integers(min_value=0, max_value=4),
                        },
                    ),
                },
            )
        )
        out[name] = pool
    return out


@st.composite
def specs(draw):
    pool = draw(pools())
    names = sorted(pool)

    def scaling(gpu: bool = True, **extra):
        lo = draw(st.integers(min_value=1, max_value=3))
        block = {
            "pool": draw(st.sampled_from(names)),
            "minReplicas": lo,
            "maxReplicas": draw(st.integers(min_value=max(lo, 1), max_value=6)),
            "maxInFlight": draw(st.integers(min_value=1, max_value=20)),
            "maxQueued": draw(st.integers(min_value=0, max_value=50)),
            "autoscaling": {"class": draw(st.sampled_from(["keda", "none"] if gpu else ["keda", "none", "hpa"]))},
            **extra,
        }
        target = draw(st.sampled_from(["targetInFlight", "targetConcurrency", None]))
        if target:
            block[target] = draw(st.integers(min_value=1, max_value=20))
        res = draw(resources)
        if res:
            block["resources"] = res
        return block

    spec = {
        "pools": pool,
        "transcriber": {
            "engine": draw(st.sampled_from(contract.ENGINES)),
            "model": draw(models),
            "live": scaling(),
            "file": scaling(),
        },
        "diarizer": scaling(enabled=draw(st.booleans()), model=draw(models)),
        "translator": scaling(
            enabled=draw(st.booleans()),
            model=draw(models),
            auth=draw(st.sampled_from(["apiKey", "networkPolicy"])),
            engine=draw(st.sampled_from(["nllb", "m2m100", "marian"])),
        ),
        # The custom runtime's invariants; huggingface has its own tests (test_operator_llm.py).
        "llm": scaling(enabled=draw(st.booleans()), model=draw(models), runtime="custom"),
        "padding": {**scaling(False, enabled=draw(st.booleans())), "pool": draw(st.sampled_from(["", *names]))},
        "keda": draw(
            st.fixed_dictionaries(
                {"serverAddress": st.just("http://prometheus.monitoring.svc:9090")},
                optional={"authenticationRef": st.just("prometheus-auth"), "authModes": st.just("bearer")},
            )
        ),
        "images": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "registry": st.just("registry.example.com/r"),
                    "tag": st.just("9.9.9"),
                    "pullSecrets": st.lists(st.just("regcred"), max_size=1),
                    "overrides": st.just({"whisper": "example.com/custom-whisper:1"}),
                },
            )
        ),
        "auth": draw(
            st.one_of(
                st.just({}),
                st.just({"existingSecret": {"name": "mine", "key": "token"}}),
                st.just({"additionalKeys": [{"name": "next", "key": "apikey"}]}),
            )
        ),
        "networkPolicy": draw(
            st.fixed_dictionaries(
                {"enabled": st.booleans()},
                optional={
                    "edge": st.sampled_from(
                        [
                            {"preset": "istio"},
                            {"preset": "none"},
                            {"preset": "envoy-gateway"},
                            {"preset": "ingress-nginx"},
                        ]
                    ),
                    "clientNamespaces": st.just(["reflector", "apps"]),
                    "monitoringNamespaces": st.lists(st.just("prometheus"), max_size=1),
                },
            )
        ),
        "urlAllowlist": draw(st.lists(st.sampled_from(["10.0.0.0/8", "minio.internal"]), max_size=2, unique=True)),
        "env": draw(
            st.lists(
                st.one_of(
                    st.fixed_dictionaries(
                        {"name": st.sampled_from(["LOG_LEVEL", "HF_HUB_OFFLINE"]), "value": st.just("1")}
                    ),
                    st.just({"name": "S3_SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "secret"}}}),
                ),
                max_size=2,
                unique_by=lambda e: e["name"],
            )
        ),
    }
    ingress = draw(st.sampled_from(["none", "ingress", "ingress-tls", "gateway"]))
    if ingress != "none":
        spec["ingress"] = {"enabled": True, "host": "gpu.example.com", "annotations": {"example.com/team": "ml"}}
        if ingress == "ingress-tls":
            spec["ingress"]["tlsSecretName"] = "tls"
        if ingress == "gateway":
            spec["ingress"]["gateway"] = {
                "parentRefs": [{"name": "gw", "namespace": "gateways", "sectionName": "https"}]
            }
    if draw(st.booleans()):
        spec["diarizer"]["hubTokenSecret"] = {"name": "hf", "key": "token"}
    cache = draw(st.sampled_from(["None", "PVC", "Job", "LocalModelCache"]))
    spec["modelCache"] = {"type": cache}
    if cache in ("PVC", "Job"):
        spec["modelCache"]["pvc"] = {"claimName": "models"}
    if cache == "LocalModelCache":
        spec["modelCache"]["localModelCache"] = {"nodeGroups": ["gpus"], "modelSize": "30Gi"}
    return spec


def full(spec: dict) -> dict:
    return apply_defaults(openapi_schema(), owner(spec))


SECRET_LIKE = re.compile(r"(?i)(TOKEN|SECRET|PASSWORD|API_?KEY)(?!.*_(FILE|PATH|DIR)$)")


@requires_crds
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.generate],  # no shrinking: minutes on these specs; the example is printed
)
@given(specs(), st.sampled_from(["0.15", "0.16", "0.17"]))
def test_every_object_validates_and_invariants_hold(spec, version):
    body = full(spec)
    assert cel_errors(openapi_schema(), body) == []  # the strategy only makes CRD-valid specs
    install = replace(DEFAULTS, kserve=Version(0, int(version.split(".")[1])))
    p = plan(body, install, key=KEY)
    assert p == plan(body, install, key=KEY)  # deterministic
    if version == "0.15" and spec["keda"].get("authenticationRef") and keda_components(p.spec):
        assert p.stopped and "keda-auth-version" in [pr.rule for pr in p.problems if pr.component is None]
        return
    assert not p.stopped
    by_kind: dict[str, list[dict]] = {}
    for obj in p.present:
        validate_any(obj)
        by_kind.setdefault(obj["kind"], []).append(obj)
        meta = obj["metadata"]
        assert meta["labels"][c.LABEL_MANAGED_BY] == c.FIELD_MANAGER
        assert all(len(v) <= 63 for v in meta["labels"].values())
        if obj["kind"] != "LocalModelCache":
            assert meta["namespace"] == "reflector"
            assert meta["ownerReferences"][0]["uid"] == "uid-reflector-rgpu"
        if obj["kind"] != "Secret":
            text = json.dumps(obj)
            assert KEY not in text and base64.b64encode(KEY.encode()).decode() not in text

    # modelCache.type Job: the cache Jobs (made when none exists yet) are valid batch/v1 Jobs.
    for job in plan(body, install, Observed(model_jobs={}), key=KEY).cache_jobs:
        validate_any(job)
        assert job["metadata"]["namespace"] == "reflector" and "ownerReferences" not in job["metadata"]
    spec = p.spec
    blocked = {pr.component for pr in p.problems}
    written = [comp for comp in c.COMPONENTS if c.enabled(spec, comp) and comp.name not in blocked]
    isvcs = {o["metadata"]["name"]: o for o in by_kind.get("InferenceService", [])}
    assert set(isvcs) == {c.isvc_name("rgpu", comp) for comp in written}
    for comp in written:
        isvc = isvcs[c.isvc_name("rgpu", comp)]
        assert len(isvc["metadata"]["name"]) <= 53
        assert isvc["metadata"]["labels"]["networking.kserve.io/visibility"] == "cluster-local"
        mode = isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
        assert mode == ("RawDeployment" if version == "0.15" else "Standard")
        predictor = isvc["spec"]["predictor"]
        container = predictor["containers"][0]
        res = container["resources"]
        for name in ("cpu", "memory"):
            assert quantity.parse(res["requests"][name]) <= quantity.parse(res["limits"][name]), (comp.name, res)
        assert quantity.parse(res["requests"]["ephemeral-storage"]) >= quantity.parse(
            next(v["emptyDir"]["sizeLimit"] for v in predictor["volumes"] if v["name"] == "tmp")
        )
        block = c.block(spec, comp)
        pool = spec["pools"].get(block.get("pool") or "")
        gpus = {k: v for k, v in res["limits"].items() if k.endswith("/gpu")}
        if comp.gpu and pool and pool["gpu"]["count"]:
            assert gpus == {pool["gpu"]["resourceName"]: str(pool["gpu"]["count"])}
        else:
            assert not gpus, "padding and GPU-less pools request no GPU"
        assert predictor.get("nodeSelector", {}) == (pool or {}).get("nodeSelector", {})
        klass = block["autoscaling"]["class"]
        assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == klass
        fixed = klass == "none"
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == (
            block["minReplicas"],
            block["minReplicas"] if fixed else block["maxReplicas"],
        )
        assert (predictor.get("scaleMetric") == "cpu") == (klass == "hpa") and not (comp.gpu and klass == "hpa")
        if klass == "keda":
            (metric,) = predictor["autoScaling"]["metrics"]
            assert "scaleMetric" not in predictor and "scaleTarget" not in predictor
            assert metric["external"]["target"]["value"] == c.target_in_flight(block)
            assert metric["external"]["metric"]["query"].startswith("sum(")
            assert ("authenticationRef" in metric["external"]) == (
                bool(spec["keda"]["authenticationRef"]) and version != "0.15"
            )
            validate_any(KServe(version).scaled_object(isvc))
        else:
            assert "autoScaling" not in predictor
        assert KServe(version).validate(KServe(version).mutate(isvc), None) is None
        strategy = predictor["deploymentStrategy"]["rollingUpdate"]
        assert (strategy["maxSurge"], strategy["maxUnavailable"]) == ((0, 1) if comp.gpu else (1, 0))
        env = {e["name"]: e for e in container["env"]}
        plain = {k: e.get("value") for k, e in env.items()}
        assert (
            plain[contract.ENV_METRICS_PORT] == str(contract.METRICS_PORT) and plain[contract.ENV_API_DOCS] == "false"
        )
        assert [p_["containerPort"] for p_ in container["ports"]] == [contract.HTTP_PORT, contract.METRICS_PORT]
        assert contract.ENV_API_KEY not in env, "keys are mounted as files, never as plain env values"
        assert not [k for k, e in env.items() if "value" in e and SECRET_LIKE.search(k)], "no plain-env secrets"
        assert plain.get(contract.ENV_PROFILE) == comp.profile
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert predictor["securityContext"]["runAsNonRoot"] is True
        keyless = comp.name == "translator" and spec["translator"]["auth"] == "networkPolicy"
        volumes = {v["name"]: v for v in predictor["volumes"]}
        if keyless:
            assert plain[contract.ENV_AUTH_DISABLED] == "true" and "apikeys" not in volumes
        else:
            assert plain[contract.ENV_API_KEY_FILE] == contract.API_KEY_MOUNT_DIR
            sources = volumes["apikeys"]["projected"]["sources"]
            assert len(sources) == 1 + len(spec["auth"].get("additionalKeys", []))

    secrets = by_kind.get("Secret", [])
    assert len(secrets) == (0 if spec["auth"].get("existingSecret") else 1)

    kind = routing.kind(spec)
    assert [o["kind"] for o in p.present if o["kind"] in ("Ingress", "HTTPRoute")] == ([kind] if kind else [])
    services = {c.predictor_service("rgpu", comp) for comp in c.COMPONENTS if routing.routed(spec, comp)}
    if kind == "Ingress":
        paths = by_kind["Ingress"][0]["spec"]["rules"][0]["http"]["paths"]
        assert {p_["backend"]["service"]["name"] for p_ in paths} == services
        assert not [p_ for p_ in paths if re.search(r"docs|openapi|metrics", p_["path"])]
    if kind == "HTTPRoute":
        rules = by_kind["HTTPRoute"][0]["spec"]["rules"]
        assert {r["backendRefs"][0]["name"] for r in rules} == services
    policies = by_kind.get("NetworkPolicy", [])
    assert bool(policies) == (spec["networkPolicy"]["enabled"] and bool(written))
    for policy in policies:
        for rule in policy["spec"]["ingress"]:
            assert rule["from"], "an empty from admits everyone"
            (port,) = rule["ports"]
            if port["port"] == contract.METRICS_PORT:
                assert all(set(src) == {"namespaceSelector"} for src in rule["from"]), "monitoring only"


def test_routes_send_each_contract_path_to_its_component():
    spec = full({"ingress": {"enabled": True, "host": "h.example.com"}, "llm": {"enabled": True, "runtime": "custom"}})[
        "spec"
    ]
    from rgpu_operator.schema import defaulted_spec

    table = {public: (comp.name, upstream) for comp, public, upstream in routing.rules(defaulted_spec(spec))}
    assert table["/transcriber/v1/audio/transcriptions"] == ("transcriber-live", "/v1/audio/transcriptions")
    assert table["/transcriber/v1/audio/transcriptions-from-url"] == (
        "transcriber-file",
        "/v1/audio/transcriptions-from-url",
    )
    assert table["/transcriber/transcribe"] == ("transcriber-live", "/transcribe")
    assert table["/diarizer/diarize"] == ("diarizer", "/diarize")
    assert table["/llm/v1/chat/completions"] == ("llm", "/v1/chat/completions")
    # Longest first, so a first-match router never sends -from-url to the live service.
    order = [public for _, public, _ in routing.rules(defaulted_spec(spec))]
    assert order.index("/transcriber/v1/audio/transcriptions-from-url") < order.index(
        "/transcriber/v1/audio/transcriptions"
    )


def test_ingress_rewrites_prefix_away_for_ingress_nginx():
    import re

    body = full({"ingress": {"enabled": True, "host": "h.example.com"}})
    ing = next(o for o in plan(body, DEFAULTS).present if o["kind"] == "Ingress")
    target = ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"]
    seen = {}
    for path in ing["spec"]["rules"][0]["http"]["paths"]:
        for url in (
            "/transcriber/v1/audio/transcriptions",
            "/transcriber/v1/audio/transcriptions-from-url",
            "/diarizer/diarize",
            "/padding/pad",
        ):
            m = re.match("^" + path["path"], url)  # ingress-nginx anchors regex paths at the start
            if m and url not in seen:
                seen[url] = (path["backend"]["service"]["name"], target.replace("$1", m[1]).replace("$2", m[2]))
    assert seen["/transcriber/v1/audio/transcriptions"] == (
        "rgpu-transcriber-live-predictor",
        "/v1/audio/transcriptions",
    )
    assert seen["/transcriber/v1/audio/transcriptions-from-url"] == (
        "rgpu-transcriber-file-predictor",
        "/v1/audio/transcriptions-from-url",
    )
    assert seen["/diarizer/diarize"] == ("rgpu-diarizer-predictor", "/diarize")


def test_the_realtime_websocket_route_reaches_the_live_pool_with_long_idle_timeouts():
    """``/transcriber/v1/realtime`` goes to the live transcriber; an Ingress keeps a session idle
    for at least 10 minutes (its read/send timeouts) even when timeoutSeconds is lower; on an
    HTTPRoute the realtime rule has no request timeout (``0s`` disables it) while the others keep
    theirs. Both objects validate against their schemas."""
    from rgpu_operator.schema import defaulted_spec

    table = {public: (comp.name, up) for comp, public, up in routing.rules(defaulted_spec(full({})["spec"]))}
    assert table["/transcriber/v1/realtime"] == ("transcriber-live", contract.REALTIME_PATH)

    short = {"enabled": True, "host": "h.example.com", "timeoutSeconds": 120}
    ing = next(o for o in plan(full({"ingress": short}), DEFAULTS).present if o["kind"] == "Ingress")
    notes = ing["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "600"
    assert notes["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "600"
    assert any(re.match("^" + p["path"], "/transcriber/v1/realtime") for p in ing["spec"]["rules"][0]["http"]["paths"])
    validate_any(ing)
    long = {**short, "timeoutSeconds": 3600}
    ing = next(o for o in plan(full({"ingress": long}), DEFAULTS).present if o["kind"] == "Ingress")
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"

    gateway = {**short, "gateway": {"parentRefs": [{"name": "gw"}]}}
    route = next(o for o in plan(full({"ingress": gateway}), DEFAULTS).present if o["kind"] == "HTTPRoute")
    timeouts = {r["matches"][0]["path"]["value"]: r["timeouts"]["request"] for r in route["spec"]["rules"]}
    assert timeouts["/transcriber/v1/realtime"] == "0s"
    assert timeouts["/transcriber/v1/audio/transcriptions"] == "120s"
    validate_any(route)


def _isvc(spec: dict, component: str, install: Install = DEFAULTS) -> dict:
    return next(o for o in plan(full(spec), install).present if o["metadata"]["name"] == f"rgpu-{component}")


def _env(isvc: dict) -> dict[str, dict]:
    return {e["name"]: e for e in isvc["spec"]["predictor"]["containers"][0]["env"]}


@pytest.mark.parametrize("version, mode", [((0, 15), "RawDeployment"), ((0, 16), "Standard"), ((0, 20), "Standard")])
def test_the_mode_name_is_the_one_the_kserve_version_knows(version, mode):
    isvc = _isvc({}, "padding", replace(DEFAULTS, kserve=Version(*version)))
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == mode
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "hpa"
    assert isvc["spec"]["predictor"]["scaleMetric"] == "cpu"


def test_every_container_gets_sized_requests_and_limits():
    res = _isvc({}, "transcriber-file")["spec"]["predictor"]["containers"][0]["resources"]
    assert res["requests"] == {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "13Gi"}  # 2 x 4Gi + 4 + 1
    assert res["limits"] == {"cpu": "8", "memory": "24Gi", "nvidia.com/gpu": "1"}
    # A request alone raises the default limit (the chart's old sample: requests only).
    res = _isvc(
        {"transcriber": {"file": {"resources": {"requests": {"cpu": "12", "memory": "32Gi"}}}}}, "transcriber-file"
    )["spec"]["predictor"]["containers"][0]["resources"]
    assert (res["requests"]["cpu"], res["limits"]["cpu"]) == ("12", "12")
    assert (res["requests"]["memory"], res["limits"]["memory"]) == ("32Gi", "32Gi")
    # A limit alone lowers the default request; quantities come out canonical.
    res = _isvc({"padding": {"resources": {"limits": {"cpu": "500m", "memory": "1024Mi"}}}}, "padding")["spec"][
        "predictor"
    ]["containers"][0]["resources"]
    assert (res["requests"]["cpu"], res["limits"]["cpu"], res["limits"]["memory"]) == ("500m", "500m", "1Gi")
    # Both, the request above the limit: that component is refused with the field path.
    p = plan(
        full({"diarizer": {"resources": {"requests": {"memory": "40Gi"}, "limits": {"memory": "24Gi"}}}}), DEFAULTS
    )
    (problem,) = p.problems
    assert (problem.component, problem.path, problem.rule) == (
        "diarizer",
        "spec.diarizer.resources.requests.memory",
        "requests-within-limits",
    )
    assert "rgpu-diarizer" not in {o["metadata"]["name"] for o in p.present if o["kind"] == "InferenceService"}
    assert ("InferenceService", "rgpu-diarizer") not in {(r.kind, r.name) for r in p.absent}, "kept as it is"


def test_tmp_and_ephemeral_storage_follow_the_file_caps():
    def tmp(spec: dict, comp: str) -> tuple[str, str]:
        pred = _isvc(spec, comp)["spec"]["predictor"]
        size = next(v for v in pred["volumes"] if v["name"] == "tmp")["emptyDir"]["sizeLimit"]
        return size, pred["containers"][0]["resources"]["requests"]["ephemeral-storage"]

    # diarizer: 1 request x 4Gi download + 1Gi hub cache + 1Gi headroom
    assert tmp({}, "diarizer") == ("6Gi", "6Gi")
    assert tmp({"files": {"maxDownload": "10Gi"}}, "diarizer") == ("12Gi", "12Gi")
    # The model from a storageUri lands in KServe's volume, not /tmp; both are on the node disk.
    assert tmp({"diarizer": {"model": {"storageUri": "s3://m/d"}}}, "diarizer") == ("5Gi", "6Gi")
    env = _env(_isvc({"files": {"maxUpload": "512Mi"}}, "transcriber-live"))
    assert env[contract.ENV_MAX_UPLOAD_MB]["value"] == "512" and env[contract.ENV_MAX_DOWNLOAD_MB]["value"] == "4096"


def test_a_keyless_translator_is_not_routed_and_admits_only_clients():
    spec = {
        "ingress": {"enabled": True, "host": "h.example.com"},
        "translator": {"auth": "networkPolicy", "engine": "m2m100", "model": {"name": "facebook/m2m100_418M"}},
    }
    p = plan(full(spec), replace(DEFAULTS, operator_peer=("ops", (("app", "op"),))))
    isvc = next(o for o in p.present if o["metadata"]["name"] == "rgpu-translator")
    env = _env(isvc)
    assert env[contract.ENV_AUTH_DISABLED]["value"] == "true" and contract.ENV_API_KEY_FILE not in env
    assert env[contract.ENV_TRANSLATOR_ENGINE]["value"] == "m2m100"
    ingress = next(o for o in p.present if o["kind"] == "Ingress")
    assert not [x for x in ingress["spec"]["rules"][0]["http"]["paths"] if "translat" in x["path"]]
    policy = next(o for o in p.present if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "rgpu-translator")
    sources = policy["spec"]["ingress"][0]["from"]
    assert [src.get("podSelector", {}).get("matchLabels") for src in sources] == [
        {c.LABEL_CLIENT: "true"},
        {"app": "op"},
    ], "clients and the operator's probe, no ingress controller"
    from rgpu_operator import status

    out = status.build(full(spec), p, {}, None, "t")
    assert out["endpoints"]["TRANSLATE_URL"] == "http://rgpu-translator-predictor.reflector.svc.cluster.local"
    assert "TRANSLATE_MODAL_API_KEY" not in out["reflector"]["secretEnv"]
    assert any("translator.auth=networkPolicy" in n for n in out["reflector"]["notes"])
    # Without NetworkPolicies a keyless translator would be open: refused.
    refused = plan(full({**spec, "networkPolicy": {"enabled": False}}), DEFAULTS)
    assert [(x.component, x.rule) for x in refused.problems] == [("translator", "keyless-needs-policy")]


@pytest.mark.parametrize(
    "edge, gateway, want",
    [
        (
            {},
            False,
            [
                (
                    "ingress-nginx",
                    {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
                )
            ],
        ),
        (
            {},
            True,
            [
                (
                    "envoy-gateway-system",
                    {"app.kubernetes.io/component": "proxy", "app.kubernetes.io/managed-by": "envoy-gateway"},
                )
            ],
        ),
        (
            {"preset": "istio"},
            True,
            [("gw", {"gateway.networking.k8s.io/gateway-name": "public"}), ("gw", {"istio.io/gateway-name": "public"})],
        ),
        ({"preset": "istio"}, False, [("istio-system", {"istio": "ingressgateway"})]),
        ({"preset": "custom", "namespaceSelector": {"matchLabels": {"team": "edge"}}}, False, [(None, None)]),
        ({"preset": "none"}, False, []),
    ],
)
def test_the_edge_peer_follows_the_preset(edge, gateway, want):
    from rgpu_operator import networkpolicy

    spec = {"ingress": {"enabled": True, "host": "h.example.com"}, "networkPolicy": {"edge": edge}}
    if gateway:
        spec["ingress"]["gateway"] = {"parentRefs": [{"name": "public", "namespace": "gw"}]}
    sources = networkpolicy.edge_sources(full(spec)["spec"], DEFAULTS, "reflector")
    got = [
        (
            (src["namespaceSelector"].get("matchLabels") or {}).get("kubernetes.io/metadata.name"),
            (src.get("podSelector") or {}).get("matchLabels"),
        )
        for src in sources
    ]
    assert got == want


def test_peers_are_computed_per_feature():
    from rgpu_operator import networkpolicy
    from rgpu_operator.schema import defaulted_spec

    spec = defaulted_spec({"networkPolicy": {"clientNamespaces": ["reflector", "apps"]}})
    install = replace(DEFAULTS, operator_peer=("reflector-gpu-system", (("app.kubernetes.io/name", "op"),)))
    found = networkpolicy.peers(spec, install, "reflector", c.BY_NAME["diarizer"])
    assert [(p_.feature, p_.port) for p_ in found] == [
        ("clients", contract.HTTP_PORT),
        ("monitoring", contract.METRICS_PORT),
        ("operator", contract.HTTP_PORT),
        ("transcriber", contract.HTTP_PORT),  # the file transcriber calls the diarizer
    ], "no ingress: no edge peer"
    assert found[0].source["namespaceSelector"]["matchExpressions"][0]["values"] == ["apps", "reflector"]
    assert found[1].source == {
        "namespaceSelector": {
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["monitoring"]}]
        }
    }
    quiet = networkpolicy.peers(
        defaulted_spec({"networkPolicy": {"monitoringNamespaces": []}}), DEFAULTS, "reflector", c.BY_NAME["padding"]
    )
    assert [p_.feature for p_ in quiet] == ["clients"]


def test_secrets_reach_predictors_only_through_secret_refs():
    spec = {
        "diarizer": {
            "hubTokenSecret": {"name": "hf", "key": "token"},
            "serviceAccountName": "diarizer-sa",
            "imagePullSecrets": ["diarizer-reg"],
            "env": [{"name": "S3_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "id"}}}],
        },
        "images": {"pullSecrets": ["regcred"]},
        "env": [{"name": "LOG_LEVEL", "value": "DEBUG"}],
    }
    isvc = _isvc(spec, "diarizer")
    env = _env(isvc)
    assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    assert env["S3_ACCESS_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "s3", "key": "id"}}
    assert env["LOG_LEVEL"]["value"] == "DEBUG"
    pred = isvc["spec"]["predictor"]
    assert pred["serviceAccountName"] == "diarizer-sa"
    assert pred["imagePullSecrets"] == [{"name": "regcred"}, {"name": "diarizer-reg"}]
    from rgpu_operator.rules import problems
    from rgpu_operator.schema import defaulted_spec

    bad = problems(defaulted_spec({"env": [{"name": "HF_TOKEN", "value": "hf_abc"}]}))
    assert [(x.path, x.rule) for x in bad] == [("spec.env[0].value", "no-plain-secret")]


def test_images_are_pinned_until_the_user_opts_in():
    from rgpu_operator import images
    from rgpu_operator.schema import defaulted_spec

    old, new = replace(DEFAULTS, image_tag="0.1.0"), replace(DEFAULTS, image_tag="0.2.0")
    spec = defaulted_spec({})
    first = images.resolve(spec, "diarizer", old, {})
    assert first == "ghcr.io/monadical-sas/reflector-gpu-diarizer:0.1.0"
    assert images.resolve(spec, "diarizer", new, {"diarizer": first}) == first, "an operator upgrade moves nothing"
    assert images.resolve(spec, "diarizer", new, {}) == "ghcr.io/monadical-sas/reflector-gpu-diarizer:0.2.0"
    follow = defaulted_spec({"images": {"policy": "FollowOperator"}})
    assert images.resolve(follow, "diarizer", new, {"diarizer": first}).endswith(":0.2.0")
    tagged = defaulted_spec({"images": {"tag": "0.1.5"}})
    assert images.resolve(tagged, "diarizer", new, {"diarizer": first}).endswith(":0.1.5")
    moved = defaulted_spec({"images": {"registry": "registry.example.com/x"}})
    assert (
        images.resolve(moved, "diarizer", new, {"diarizer": first})
        == "registry.example.com/x/reflector-gpu-diarizer:0.2.0"
    )
    assert (
        images.resolve(defaulted_spec({"images": {"overrides": {"diarizer": "me/d:1"}}}), "diarizer", new, {})
        == "me/d:1"
    )


def test_status_prints_the_exact_reflector_settings():
    from rgpu_operator import status

    body = full(
        {"ingress": {"enabled": True, "host": "gpu.example.com"}, "llm": {"enabled": True, "runtime": "custom"}}
    )
    out = status.build(body, plan(body, DEFAULTS), {}, None, "t")
    assert out["reflector"]["env"] == {
        "TRANSCRIPT_BACKEND": "modal",
        "TRANSCRIPT_URL": "http://gpu.example.com/transcriber",
        "DIARIZATION_BACKEND": "modal",
        "DIARIZATION_URL": "http://gpu.example.com/diarizer",
        "TRANSLATION_BACKEND": "modal",
        "TRANSLATE_URL": "http://gpu.example.com/translator",
        "LLM_URL": "http://gpu.example.com/llm/v1",
        "LLM_MODEL": "llm",
        "PADDING_URL": "http://gpu.example.com/padding",
    }
    key = {"name": "rgpu-apikey", "key": "apikey"}
    assert out["reflector"]["secretEnv"] == {
        "TRANSCRIPT_MODAL_API_KEY": key,
        "DIARIZATION_MODAL_API_KEY": key,
        "LLM_API_KEY": key,
        "MODAL_API_KEY": key,
    }
    assert any("TRANSLATION_MODAL_API_KEY" in n for n in out["reflector"]["notes"])


def test_the_oldest_claim_keeps_a_host():
    from rgpu_operator.hosts import host_taken_by

    def cr(name: str, ns: str, created: str, host: str = "gpu.example.com", enabled: bool = True) -> dict:
        meta = {"name": name, "namespace": ns, "uid": f"u-{ns}-{name}", "creationTimestamp": created}
        return {"metadata": meta, "spec": {"ingress": {"enabled": enabled, "host": host}}}

    a, b = cr("a", "x", "2026-01-01T00:00:00Z"), cr("b", "y", "2026-01-02T00:00:00Z")
    assert host_taken_by(a, [a, b]) is None and host_taken_by(b, [a, b]) == "x/a"
    assert host_taken_by(b, [b, cr("a", "x", "2026-01-01T00:00:00Z", host="other.example.com")]) is None
    assert host_taken_by(b, [cr("a", "x", "2026-01-01T00:00:00Z", enabled=False), b]) is None
    twin = cr("a", "y", "2026-01-02T00:00:00Z")
    assert host_taken_by(b, [b, twin]) == "y/a", "same second: namespace/name decides"
    deleting = cr("a", "x", "2026-01-01T00:00:00Z")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-03T00:00:00Z"
    assert host_taken_by(b, [deleting, b]) is None


def test_model_location_storage_uri_pvc_and_name():
    def env_of(spec):
        return {k: e.get("value") for k, e in _env(_isvc(spec, "diarizer")).items()}

    assert (
        env_of({"diarizer": {"model": {"name": "pyannote/speaker-diarization-3.1"}}})[c.ENV_MODEL]
        == "pyannote/speaker-diarization-3.1"
    )
    env = env_of({"diarizer": {"model": {"storageUri": "s3://m/diar"}}})
    assert (env[c.ENV_MODEL], env["STORAGE_URI"]) == (contract.MODEL_DIR, "s3://m/diar")
    env = env_of(
        {"diarizer": {"model": {"name": "diar"}}, "modelCache": {"type": "PVC", "pvc": {"claimName": "models"}}}
    )
    assert env["STORAGE_URI"] == "pvc://models/diar"


def test_secret_holds_the_given_key_and_status_names_only_where_it_is():
    p = plan(full({}), DEFAULTS, key=KEY)
    secret = next(o for o in p.present if o["kind"] == "Secret")
    assert base64.b64decode(secret["data"]["apikey"]).decode() == KEY
    assert "data" not in next(o for o in plan(full({}), DEFAULTS).present if o["kind"] == "Secret")


def test_disabled_components_and_other_routing_kind_are_planned_absent():
    p = plan(full({"diarizer": {"enabled": False}, "ingress": {"enabled": True, "host": "h.example.com"}}), DEFAULTS)
    absent = {(r.kind, r.name) for r in p.absent}
    assert ("InferenceService", "rgpu-diarizer") in absent
    assert ("HTTPRoute", "rgpu") in absent and ("Ingress", "rgpu") not in absent
    assert ("InferenceService", "rgpu-llm") in absent
    assert ("NetworkPolicy", "rgpu-diarizer") in absent
    assert ("NetworkPolicy", "rgpu-predictors") in absent, "operator 0.1's single policy goes on upgrade"


def test_builders_need_the_owner_uid():
    body = full({})
    del body["metadata"]["uid"]
    with pytest.raises(ValueError, match="uid"):
        plan(body, DEFAULTS)


def test_pods_drain_before_they_stop_and_get_time_to_finish():
    """The predictor's shutdown settings and the pod's termination grace agree: drain + the
    in-flight grace fit inside terminationGracePeriodSeconds (else the kubelet SIGKILLs)."""
    isvcs = [
        o
        for o in plan(full({"llm": {"enabled": True, "runtime": "custom"}}), DEFAULTS).present
        if o["kind"] == "InferenceService"
    ]
    assert len(isvcs) == 6
    for isvc in isvcs:
        pod = isvc["spec"]["predictor"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        drain, grace = int(env[contract.ENV_SHUTDOWN_DRAIN_S]), int(env[contract.ENV_SHUTDOWN_GRACE_S])
        assert drain > 0 and pod["terminationGracePeriodSeconds"] > drain + grace
        long_files = isvc["metadata"]["name"] in ("rgpu-transcriber-file", "rgpu-diarizer")
        assert grace >= (300 if long_files else 60)


KEDA = {"keda": {"serverAddress": "http://prometheus-operated.monitoring.svc:9090"}}


def test_admission_and_the_scaling_target_are_separate_settings():
    env = _env(_isvc({}, "diarizer"))
    assert env[contract.ENV_MAX_IN_FLIGHT]["value"] == "1" and env[contract.ENV_MAX_QUEUED]["value"] == "4"
    assert contract.ENV_MAX_PENDING_REQUESTS not in env
    spec = {**KEDA, "diarizer": {"autoscaling": {"class": "keda"}, "maxInFlight": 2, "maxQueued": 6}}
    target = _isvc(spec, "diarizer")["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["target"]
    assert target == {"type": "Value", "value": 2}, "targetInFlight defaults to maxInFlight"
    # The deprecated targetConcurrency is read as targetInFlight only; admission keeps its own.
    spec["diarizer"]["targetConcurrency"] = 3
    isvc = _isvc(spec, "diarizer")
    assert isvc["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["target"]["value"] == 3
    assert _env(isvc)[contract.ENV_MAX_IN_FLIGHT]["value"] == "2"
    spec["diarizer"]["targetInFlight"] = 5
    assert _isvc(spec, "diarizer")["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["target"] == {
        "type": "Value",
        "value": 5,
    }


@requires_crds
@pytest.mark.parametrize("version", [(0, 15), (0, 16), (0, 20)])
def test_keda_scales_on_one_series_of_in_flight_plus_queued_work(version):
    spec = {
        "keda": {**KEDA["keda"], "authenticationRef": "prom-auth", "authModes": "bearer"},
        "diarizer": {"autoscaling": {"class": "keda"}, "maxReplicas": 4, "targetInFlight": 2},
    }
    install = replace(DEFAULTS, kserve=Version(*version))
    p = plan(full(spec), install)
    if version < (0, 16):
        (problem,) = p.problems
        assert problem.rule == "keda-auth-version" and "needs KServe 0.16" in problem.message
        # Without the reference, 0.15 gets the same trigger, minus authentication.
        del spec["keda"]["authenticationRef"]
        p = plan(full(spec), install)
    isvc = next(o for o in p.present if o["metadata"]["name"] == "rgpu-diarizer")
    validate_any(isvc)
    predictor = isvc["spec"]["predictor"]
    assert isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"] == "keda"
    assert "scaleMetric" not in predictor and (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 4)
    (metric,) = predictor["autoScaling"]["metrics"]
    external = metric["external"]
    query = external["metric"]["query"]
    assert metric["type"] == "External" and external["metric"]["backend"] == "prometheus"
    assert external["metric"]["serverAddress"] == KEDA["keda"]["serverAddress"]
    assert query == (
        'sum({__name__=~"reflector_gpu_inflight_requests|reflector_gpu_queued_requests",'
        'namespace="reflector",pod=~"rgpu-diarizer-predictor-.*"})'
    )
    if version >= (0, 16):
        assert external["authenticationRef"] == {"authenticationRef": {"name": "prom-auth"}, "authModes": "bearer"}
    else:
        assert "authenticationRef" not in external
    # What KServe makes of it: a ScaledObject that passes KEDA's CRD, threshold = targetInFlight.
    kserve = KServe(".".join(map(str, version)))
    assert kserve.validate(kserve.mutate(isvc), None) is None
    scaled = kserve.scaled_object(isvc)
    validate_any(scaled)
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["threshold"] == "2"
    assert trigger["metadata"]["query"] == query
    # The query is shown in status.
    from rgpu_operator import status

    body = status.build(owner(full(spec)["spec"]), p, {}, None, "2026-01-01T00:00:00Z")
    assert body["components"]["diarizer"]["autoscaling"] == {"class": "keda", "query": query, "targetInFlight": 2}
    assert body["components"]["translator"]["autoscaling"] == {"class": "none"}


def test_kserve_refuses_what_the_operator_never_writes_under_keda():
    """The emulator enforces the validating webhook's KEDA rules (validateScalingKedaCompExtension)."""
    isvc = _isvc({**KEDA, "diarizer": {"autoscaling": {"class": "keda"}}}, "diarizer")
    kserve = KServe("0.20")
    bad = json.loads(json.dumps(isvc))
    bad["spec"]["predictor"]["scaleMetric"] = "cpu"
    assert kserve.validate(bad, None) == "ScaleMetric is not supported for KEDA"
    bad = json.loads(json.dumps(isvc))
    bad["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["metric"]["query"] = ""
    assert kserve.validate(bad, None) == "the query should not be empty"
    bad = json.loads(json.dumps(isvc))
    del bad["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["target"]["value"]
    assert kserve.validate(bad, None) == "the target threshold value should not be empty"
    bad = json.loads(json.dumps(isvc))
    bad["spec"]["predictor"]["autoScaling"]["metrics"][0]["external"]["authenticationRef"] = {
        "authenticationRef": {"name": "a"}
    }
    assert "unknown field" in (KServe("0.15").validate(bad, None) or "")


def test_gpu_components_never_scale_on_cpu_and_none_is_fixed():
    for comp in c.COMPONENTS:
        isvc = _isvc({"llm": {"enabled": True}, "diarizer": {"maxReplicas": 3}}, comp.name)
        predictor = isvc["spec"]["predictor"]
        klass = isvc["metadata"]["annotations"]["serving.kserve.io/autoscalerClass"]
        if comp.gpu:
            assert klass == "none" and "scaleMetric" not in predictor
            assert predictor["minReplicas"] == predictor["maxReplicas"] == 1
        else:
            assert (klass, predictor["scaleMetric"]) == ("hpa", "cpu")
    p = plan(full({"diarizer": {"autoscaling": {"class": "hpa"}}}), DEFAULTS)
    (problem,) = p.problems
    assert (problem.component, problem.rule) == ("diarizer", "no-cpu-scaling") and "keda" in problem.message


@requires_crds
def test_the_podmonitor_scrapes_every_predictor_on_its_metrics_port():
    from rgpu_operator import monitoring
    from rgpu_operator.context import Observed

    spec = {"monitoring": {"podMonitor": {"labels": {"release": "kube-prometheus-stack"}, "interval": "30s"}}}
    p = plan(full(spec), DEFAULTS, Observed(podmonitor_served=True))
    (pm,) = [o for o in p.present if o["kind"] == "PodMonitor"]
    validate_any(pm)
    assert (
        pm["metadata"]["name"] == "rgpu-predictors" and pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    )
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    assert endpoint == {"port": "metrics", "path": "/metrics", "interval": "30s"}
    for isvc in (o for o in p.present if o["kind"] == "InferenceService"):
        pod_labels = isvc["spec"]["predictor"]["labels"]
        assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        ports = {port["name"]: port["containerPort"] for port in isvc["spec"]["predictor"]["containers"][0]["ports"]}
        assert ports[monitoring.PORT_NAME] == contract.METRICS_PORT
    # Not served: nothing made, nothing deleted, status says why.
    p = plan(full(spec), DEFAULTS)
    assert not [o for o in p.present if o["kind"] == "PodMonitor"]
    assert "PodMonitor" not in {r.kind for r in p.absent}
    from rgpu_operator import status

    body = status.build(owner(full(spec)["spec"]), p, {}, None, "2026-01-01T00:00:00Z")
    assert "does not serve monitoring.coreos.com/v1 PodMonitor" in body["monitoring"]["message"]
    # Disabled while served: deleted if it is there.
    off = {"monitoring": {"podMonitor": {"enabled": False}}}
    p = plan(full(off), DEFAULTS, Observed(podmonitor_served=True))
    assert "PodMonitor" in {r.kind for r in p.absent}
    assert status.build(owner(full(off)["spec"]), p, {}, None, "now")["monitoring"] == {}


def test_a_readwriteonce_model_pvc_is_warned_about_when_a_user_can_scale_past_one_node():
    from rgpu_operator import status
    from rgpu_operator.context import Observed

    def warnings(spec: dict, modes: tuple[str, ...] | None) -> list[str]:
        p = plan(full(spec), DEFAULTS, Observed(model_pvc_modes=modes))
        return status.build(owner(full(spec)["spec"]), p, {}, None, "now")["warnings"]

    cache = {"modelCache": {"type": "PVC", "pvc": {"claimName": "models"}}}
    diarizer = {"autoscaling": {"class": "keda"}, "maxReplicas": 3, "model": {"name": "pyannote/community-1"}}
    scaling = {**cache, **KEDA, "diarizer": diarizer}
    (warning,) = warnings(scaling, ("ReadWriteOnce",))
    assert "models is ReadWriteOnce" in warning and "diarizer can run more than one pod" in warning
    assert "ReadOnlyMany or ReadWriteMany" in warning
    assert warnings(scaling, ("ReadWriteMany",)) == [] and warnings(scaling, ("ReadOnlyMany",)) == []
    fixed = {**cache, "diarizer": {**diarizer, "autoscaling": {"class": "none"}}}
    assert warnings(fixed, ("ReadWriteOnce",)) == [], "fixed at minReplicas (1): one node"
    fixed["diarizer"]["minReplicas"] = fixed["diarizer"]["maxReplicas"] = 2
    assert len(warnings(fixed, ("ReadWriteOnce",))) == 1, "two fixed pods may land on two nodes"
    assert "not found" in warnings(cache, ())[0]
    assert warnings(scaling, None) == [] and warnings({}, None) == []
    # A storageUri of its own: the component does not use the cache claim.
    own = {**scaling, "diarizer": {**scaling["diarizer"], "model": {"storageUri": "s3://b/m"}}}
    assert warnings(own, ("ReadWriteOnce",)) == []
