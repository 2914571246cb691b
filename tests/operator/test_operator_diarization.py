"""Speaker-attributed transcription in the cluster: the operator wires the file transcriber to the
diarizer (URL + key file), admits it in the diarizer's NetworkPolicy, and routes diarized uploads to
the file pool by path. Checked on the pure plan, through the real ``rgpu-operator render`` command
(every object validated against the real CRDs), and with the operator against the emulated cluster.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import yaml
from operator_support import owner, requires_crds, validate_any
from test_operator_render import CR, render

import rgpu_contract as contract
from rgpu_operator import components as c
from rgpu_operator import diarization, routing
from rgpu_operator.context import Install
from rgpu_operator.desired import plan
from rgpu_operator.schema import apply_defaults, defaulted_spec, openapi_schema

DEFAULTS = Install(image_registry="ghcr.io/monadical-sas", image_tag="0.1.0")
DIARIZER_URL = "http://rgpu-diarizer-predictor.reflector.svc.cluster.local"


def _plan(spec: dict, install: Install = DEFAULTS):
    return plan(apply_defaults(openapi_schema(), owner(spec)), install)


def _isvc(p, component: str) -> dict:
    return next(
        o for o in p.present if o["kind"] == "InferenceService" and o["metadata"]["name"] == f"rgpu-{component}"
    )


def _env(isvc: dict) -> dict[str, dict]:
    return {e["name"]: e for e in isvc["spec"]["predictor"]["containers"][0]["env"]}


def _policy(p, component: str) -> dict | None:
    return next(
        (o for o in p.present if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == f"rgpu-{component}"), None
    )


def test_the_file_transcriber_gets_the_diarizer_url_and_the_primary_key_file():
    spec = {
        "auth": {"existingSecret": {"name": "keys", "key": "primary"}, "additionalKeys": [{"name": "old", "key": "k"}]}
    }
    p = _plan(spec)
    file_isvc = _isvc(p, "transcriber-file")
    env = _env(file_isvc)
    assert env[contract.ENV_DIARIZATION_URL] == {"name": contract.ENV_DIARIZATION_URL, "value": DIARIZER_URL}
    key_file = env[contract.ENV_DIARIZATION_APIKEY_FILE]["value"]
    # The path is the primary key's file in the mounted key volume, never the key itself.
    volume = next(v for v in file_isvc["spec"]["predictor"]["volumes"] if v["name"] == "apikeys")
    mount = next(m for m in file_isvc["spec"]["predictor"]["containers"][0]["volumeMounts"] if m["name"] == "apikeys")
    first = volume["projected"]["sources"][0]["secret"]
    assert first["name"] == "keys" and first["items"] == [{"key": "primary", "path": "key-0"}]
    assert key_file == f"{mount['mountPath']}/key-0"
    # The diarizer's Service is the one KServe makes for the diarizer InferenceService.
    assert DIARIZER_URL == routing.in_cluster_url("reflector", "rgpu", c.BY_NAME["diarizer"])
    # Only the file pool: the live transcriber has no diarizer (diarized uploads never land there).
    live = _env(_isvc(p, "transcriber-live"))
    assert contract.ENV_DIARIZATION_URL not in live and contract.ENV_DIARIZATION_APIKEY_FILE not in live


def test_the_diarizer_admits_the_file_transcriber_pods_and_nothing_is_wired_without_it():
    install = replace(DEFAULTS, cluster_domain="corp.local")
    p = _plan({}, install)
    assert _env(_isvc(p, "transcriber-file"))[contract.ENV_DIARIZATION_URL]["value"].endswith(".svc.corp.local")
    policy = _policy(p, "diarizer")
    assert policy is not None
    sources = [src for rule in policy["spec"]["ingress"] for src in rule["from"]]
    peer = next(src for src in sources if set(src) == {"podSelector"})  # same namespace, no namespaceSelector
    pod_labels = _isvc(p, "transcriber-file")["spec"]["predictor"]["labels"]
    assert peer["podSelector"]["matchLabels"].items() <= pod_labels.items(), "selects the file transcriber's pods"
    live_labels = _isvc(p, "transcriber-live")["spec"]["predictor"]["labels"]
    assert not peer["podSelector"]["matchLabels"].items() <= live_labels.items(), "not the live pool's"
    rule = next(r for r in policy["spec"]["ingress"] if peer in r["from"])
    assert rule["ports"] == [{"protocol": "TCP", "port": contract.HTTP_PORT}]
    # Only the diarizer's policy has that peer.
    for comp in ("transcriber-live", "transcriber-file", "translator", "padding"):
        pol = _policy(p, comp)
        assert pol is not None and peer not in [s for r in pol["spec"]["ingress"] for s in r["from"]]

    off = _plan({"diarizer": {"enabled": False}})
    env = _env(_isvc(off, "transcriber-file"))
    assert contract.ENV_DIARIZATION_URL not in env and contract.ENV_DIARIZATION_APIKEY_FILE not in env
    assert _policy(off, "diarizer") is None
    spec = defaulted_spec({"diarizer": {"enabled": False}})
    from rgpu_operator import networkpolicy

    assert networkpolicy.transcriber(spec, DEFAULTS, "reflector", c.BY_NAME["diarizer"]) == []


def test_the_operator_wiring_wins_over_user_env_of_the_same_name():
    spec = {"transcriber": {"file": {"env": [{"name": contract.ENV_DIARIZATION_URL, "value": "http://elsewhere"}]}}}
    env = _isvc(_plan(spec), "transcriber-file")["spec"]["predictor"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == contract.ENV_DIARIZATION_URL] == [DIARIZER_URL]


def test_diarized_uploads_have_a_path_to_the_file_pool():
    spec = defaulted_spec({"ingress": {"enabled": True, "host": "h.example.com"}})
    table = {public: (comp.name, upstream) for comp, public, upstream in routing.rules(spec)}
    assert table["/transcriber-file/v1/audio/transcriptions"] == ("transcriber-file", contract.TRANSCRIPTIONS_PATH)
    assert table["/transcriber-file/v1/audio/transcriptions-from-url"] == (
        "transcriber-file",
        contract.TRANSCRIPTIONS_FROM_URL_PATH,
    )
    assert table["/transcriber/v1/audio/transcriptions"] == ("transcriber-live", contract.TRANSCRIPTIONS_PATH)
    assert diarization.CALLER == "transcriber-file" and c.dedicated_routes(c.BY_NAME["transcriber-file"])[0] == (
        "/transcriber-file"
    )


def _render(spec: str) -> list[dict]:
    result = render("-f", "-", "--kserve-version", "0.16", stdin=CR.format(spec=spec))
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def _by(objects: list[dict], kind: str, name: str) -> dict:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


@requires_crds
def test_render_shows_the_routing_choice_for_diarized_uploads_with_an_httproute():
    objects = _render("{ingress: {enabled: true, host: gpu.example.com, gateway: {parentRefs: [{name: public}]}}}")
    for o in objects:
        if o["kind"] != "ReflectorGPU":
            validate_any(o)
    rules = _by(objects, "HTTPRoute", "r")["spec"]["rules"]
    routes = {
        r["matches"][0]["path"]["value"]: (
            r["backendRefs"][0]["name"],
            r["filters"][0]["urlRewrite"]["path"]["replacePrefixMatch"],
        )
        for r in rules
    }
    assert routes["/transcriber-file/v1/audio/transcriptions"] == (
        "r-transcriber-file-predictor",
        "/v1/audio/transcriptions",
    )
    assert routes["/transcriber/v1/audio/transcriptions"] == (
        "r-transcriber-live-predictor",
        "/v1/audio/transcriptions",
    )
    assert routes["/transcriber/v1/audio/transcriptions-from-url"][0] == "r-transcriber-file-predictor"
    file_env = _env(_by(objects, "InferenceService", "r-transcriber-file"))
    assert file_env[contract.ENV_DIARIZATION_URL]["value"] == "http://r-diarizer-predictor.default.svc.cluster.local"
    assert contract.ENV_DIARIZATION_URL not in _env(_by(objects, "InferenceService", "r-transcriber-live"))
    policy = _by(objects, "NetworkPolicy", "r-diarizer")
    assert {"podSelector": diarization.caller_selector()} in [s for r in policy["spec"]["ingress"] for s in r["from"]]


@requires_crds
def test_render_with_an_ingress_sends_each_transcription_path_to_its_pool():
    objects = _render("{ingress: {enabled: true, host: gpu.example.com}}")
    paths = _by(objects, "Ingress", "r")["spec"]["rules"][0]["http"]["paths"]
    validate_any(_by(objects, "Ingress", "r"))

    def backend(url: str) -> str:
        # ingress-nginx matches regex paths from the start, longest path first (as rules() sorts them).
        for p in paths:
            if re.match("^" + p["path"], url):
                return p["backend"]["service"]["name"]
        return ""

    assert backend("/transcriber-file/v1/audio/transcriptions") == "r-transcriber-file-predictor"
    assert backend("/transcriber/v1/audio/transcriptions") == "r-transcriber-live-predictor"
    assert backend("/transcriber/v1/audio/transcriptions-from-url") == "r-transcriber-file-predictor"
    assert backend("/diarizer/diarize/upload") == "r-diarizer-predictor"


@requires_crds
def test_render_without_the_diarizer_wires_nothing():
    objects = _render("{diarizer: {enabled: false}}")
    assert contract.ENV_DIARIZATION_URL not in _env(_by(objects, "InferenceService", "r-transcriber-file"))
    assert not [o for o in objects if o["metadata"]["name"] == "r-diarizer"]


# ---- the operator against the emulated cluster ---------------------------------------------------
km = pytest.importorskip("kmock", reason="kmock is a test dependency of the operator (dev extra)")

from cluster import ClusterEmulator  # noqa: E402
from emulated import ISVC, NAME, NETPOL, RGPU, apply, eventually, obj, patch  # noqa: E402


def _live_env(emu, component: str) -> dict[str, str]:
    isvc = obj(emu, ISVC, f"{NAME}-{component}") or {}
    containers = ((isvc.get("spec") or {}).get("predictor") or {}).get("containers") or [{}]
    return {e["name"]: e.get("value") for e in containers[0].get("env") or []}


@pytest.mark.asyncio
@pytest.mark.kmock(cls=ClusterEmulator)
async def test_the_operator_wires_and_unwires_the_diarizer_in_a_cluster(running):
    emu = running
    await apply(emu, {})
    env = await eventually(
        lambda: (
            _live_env(emu, "transcriber-file").get(contract.ENV_DIARIZATION_URL) and _live_env(emu, "transcriber-file")
        ),
        what="the file transcriber wired",
    )
    assert (
        env[contract.ENV_DIARIZATION_URL]
        == f"http://{NAME}-diarizer-predictor.{obj(emu, RGPU, NAME)['metadata']['namespace']}.svc.cluster.local"
    )
    policy = await eventually(lambda: obj(emu, NETPOL, f"{NAME}-diarizer"), what="the diarizer's policy")
    assert {"podSelector": diarization.caller_selector()} in [s for r in policy["spec"]["ingress"] for s in r["from"]]
    await patch(emu, RGPU, NAME, {"spec": {"diarizer": {"enabled": False}}})
    await eventually(
        lambda: (
            contract.ENV_DIARIZATION_URL not in _live_env(emu, "transcriber-file")
            and obj(emu, ISVC, f"{NAME}-diarizer") is None
        ),
        what="the wiring removed (server-side apply drops the fields the operator stopped setting)",
    )
    assert contract.ENV_DIARIZATION_APIKEY_FILE not in _live_env(emu, "transcriber-file")
