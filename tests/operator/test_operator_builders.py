"""Pure builders over many spec variations: every emitted object validates (real KServe/Gateway
CRDs, kubernetes-validate for built-in kinds) and keeps the invariants the reconciler relies on."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operator_support import cel_errors, owner, requires_crds, validate_any

import rgpu_contract as contract
from rgpu_operator import components as c
from rgpu_operator import routing
from rgpu_operator.desired import plan
from rgpu_operator.inferenceservice import ImageDefaults
from rgpu_operator.schema import apply_defaults, openapi_schema

pytestmark = pytest.mark.filterwarnings("ignore:The recursion limit will not be reset")

DEFAULTS = ImageDefaults("ghcr.io/monadical-sas", "0.1.0")
KEY = "s3cr3t-key-value-that-must-not-leak"

pool_names = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
replicas = st.integers(min_value=1, max_value=5)
quantities = st.sampled_from(["1", "500m", "2Gi", "16Gi", 4])
resources = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "requests": st.dictionaries(st.sampled_from(["cpu", "memory"]), quantities, max_size=2),
            "limits": st.dictionaries(st.sampled_from(["cpu", "memory"]), quantities, max_size=2),
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
    serverless = draw(st.booleans())
    low = 0 if serverless else 1

    def scaling(**extra):
        lo = draw(st.integers(min_value=low, max_value=3))
        block = {
            "pool": draw(st.sampled_from(names)),
            "minReplicas": lo,
            "maxReplicas": draw(st.integers(min_value=max(lo, 1), max_value=6)),
            "targetConcurrency": draw(st.integers(min_value=1, max_value=20)),
            **extra,
        }
        res = draw(resources)
        if res:
            block["resources"] = res
        return block

    spec = {
        "deploymentMode": "Serverless" if serverless else "RawDeployment",
        "pools": pool,
        "transcriber": {
            "engine": draw(st.sampled_from(contract.ENGINES)),
            "model": draw(models),
            "live": scaling(),
            "file": scaling(),
        },
        "diarizer": scaling(enabled=draw(st.booleans()), model=draw(models)),
        "translator": scaling(enabled=draw(st.booleans()), model=draw(models)),
        "llm": scaling(enabled=draw(st.booleans()), model=draw(models)),
        "padding": {**scaling(enabled=draw(st.booleans())), "pool": draw(st.sampled_from(["", *names]))},
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
        "networkPolicy": draw(st.fixed_dictionaries({"enabled": st.booleans()})),
        "urlAllowlist": draw(st.lists(st.sampled_from(["10.0.0.0/8", "minio.internal"]), max_size=2, unique=True)),
        "env": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": st.sampled_from(["LOG_LEVEL", "HF_HUB_OFFLINE"]), "value": st.just("1")}
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
    cache = draw(st.sampled_from(["None", "PVC", "LocalModelCache"]))
    spec["modelCache"] = {"type": cache}
    if cache == "PVC":
        spec["modelCache"]["pvc"] = {"claimName": "models"}
    if cache == "LocalModelCache":
        spec["modelCache"]["localModelCache"] = {"nodeGroups": ["gpus"], "modelSize": "30Gi"}
    return spec


def full(spec: dict) -> dict:
    return apply_defaults(openapi_schema(), owner(spec))


@requires_crds
@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_every_object_validates_and_invariants_hold(spec):
    body = full(spec)
    assert cel_errors(openapi_schema(), body) == []  # the strategy only makes valid specs
    p = plan(body, DEFAULTS, key=KEY)
    assert p == plan(body, DEFAULTS, key=KEY)  # deterministic
    by_kind: dict[str, list[dict]] = {}
    for obj in p.present:
        validate_any(obj)
        by_kind.setdefault(obj["kind"], []).append(obj)
        meta = obj["metadata"]
        assert meta["labels"][c.LABEL_MANAGED_BY] == c.FIELD_MANAGER
        if obj["kind"] != "LocalModelCache":
            assert meta["namespace"] == "reflector"
            assert meta["ownerReferences"][0]["uid"] == "uid-reflector-rgpu"
        if obj["kind"] != "Secret":
            text = json.dumps(obj)
            assert KEY not in text and base64.b64encode(KEY.encode()).decode() not in text

    spec = p.spec
    enabled = [comp for comp in c.COMPONENTS if c.enabled(spec, comp)]
    isvcs = {o["metadata"]["name"]: o for o in by_kind["InferenceService"]}
    assert set(isvcs) == {c.isvc_name("rgpu", comp) for comp in enabled}
    for comp in enabled:
        predictor = isvcs[c.isvc_name("rgpu", comp)]["spec"]["predictor"]
        container = predictor["containers"][0]
        block = c.block(spec, comp)
        pool = spec["pools"].get(block.get("pool") or "")
        gpus = {k: v for k, v in container["resources"].get("limits", {}).items() if k.endswith("/gpu")}
        if comp.gpu and pool and pool["gpu"]["count"]:
            assert gpus == {pool["gpu"]["resourceName"]: str(pool["gpu"]["count"])}
        else:
            assert not gpus, "padding and GPU-less pools request no GPU"
        assert predictor.get("nodeSelector", {}) == (pool or {}).get("nodeSelector", {})
        assert (predictor["minReplicas"], predictor["maxReplicas"]) == (block["minReplicas"], block["maxReplicas"])
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[contract.ENV_API_KEY_FILE] == contract.API_KEY_MOUNT_DIR
        assert contract.ENV_API_KEY not in env, "keys are mounted as files, never as plain env values"
        assert env.get(contract.ENV_PROFILE) == comp.profile
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert predictor["securityContext"]["runAsNonRoot"] is True
        sources = predictor["volumes"][0]["projected"]["sources"]
        expected = 1 + len(spec["auth"].get("additionalKeys", []))
        assert len(sources) == expected

    secrets = by_kind.get("Secret", [])
    assert len(secrets) == (0 if spec["auth"].get("existingSecret") else 1)

    kind = routing.kind(spec)
    assert [o["kind"] for o in p.present if o["kind"] in ("Ingress", "HTTPRoute")] == ([kind] if kind else [])
    services = {c.predictor_service("rgpu", comp) for comp in enabled}
    if kind == "Ingress":
        paths = by_kind["Ingress"][0]["spec"]["rules"][0]["http"]["paths"]
        assert {p_["backend"]["service"]["name"] for p_ in paths} == services
    if kind == "HTTPRoute":
        rules = by_kind["HTTPRoute"][0]["spec"]["rules"]
        assert {r["backendRefs"][0]["name"] for r in rules} == services
    assert ("NetworkPolicy" in by_kind) == spec["networkPolicy"]["enabled"]


def test_routes_send_each_contract_path_to_its_component():
    spec = full({"ingress": {"enabled": True, "host": "h.example.com"}, "llm": {"enabled": True}})["spec"]
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


def test_serverless_scales_on_concurrency_raw_on_cpu():
    raw = plan(full({}), DEFAULTS).present
    srv = plan(full({"deploymentMode": "Serverless"}), DEFAULTS).present
    live_raw = next(o for o in raw if o["metadata"]["name"] == "rgpu-transcriber-live")
    live_srv = next(o for o in srv if o["metadata"]["name"] == "rgpu-transcriber-live")
    assert live_raw["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert live_raw["spec"]["predictor"]["scaleMetric"] == "cpu"
    assert live_srv["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert live_srv["spec"]["predictor"]["scaleMetric"] == "concurrency"
    assert live_srv["spec"]["predictor"]["scaleTarget"] == 10


def test_model_location_storage_uri_pvc_and_name():
    def env_of(spec):
        isvc = next(o for o in plan(full(spec), DEFAULTS).present if o["metadata"]["name"] == "rgpu-diarizer")
        return {e["name"]: e.get("value") for e in isvc["spec"]["predictor"]["containers"][0]["env"]}

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


def test_builders_need_the_owner_uid():
    body = full({})
    del body["metadata"]["uid"]
    with pytest.raises(ValueError, match="uid"):
        plan(body, DEFAULTS)


def test_pods_drain_before_they_stop_and_get_time_to_finish():
    """The predictor's shutdown settings and the pod's termination grace agree: drain + the
    in-flight grace fit inside terminationGracePeriodSeconds (else the kubelet SIGKILLs)."""
    isvcs = [o for o in plan(full({"llm": {"enabled": True}}), DEFAULTS).present if o["kind"] == "InferenceService"]
    assert len(isvcs) == 6
    for isvc in isvcs:
        pod = isvc["spec"]["predictor"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        drain, grace = int(env[contract.ENV_SHUTDOWN_DRAIN_S]), int(env[contract.ENV_SHUTDOWN_GRACE_S])
        assert drain > 0 and pod["terminationGracePeriodSeconds"] > drain + grace
        long_files = isvc["metadata"]["name"] in ("rgpu-transcriber-file", "rgpu-diarizer")
        assert grace >= (300 if long_files else 60)
