"""The LLM on KServe's runtime, reached as Reflector reaches it: through the rendered route
configuration, with the key checked at the edge.

``Gateway`` below applies what the rendered objects say, as Envoy Gateway does: the HTTPRoute's
longest PathPrefix match (Gateway API), the SecurityPolicy's ``extAuth.http`` (Envoy's HTTP
ext_authz: the client's method and ``Authorization`` header sent to ``path`` + the original
path; a non-2xx answer returned to the client; ``failOpen: false``), then the route's
``URLRewrite`` ``ReplacePrefixMatch``. The key check is the real padding predictor (local mode,
over HTTP). The runtime is a stand-in serving KServe's OpenAI routes (``/openai/v1``,
kserve_openai_endpoints.py) with KServe's own model-name check: ``DataPlane.model_ready`` from
the kserve package (a name it does not serve raises ``ModelNotFound``, which KServe's REST
server answers 404; a model not loaded yet, ``ModelNotReady``: 503). The request is sent by the
``openai`` SDK with Reflector's exact arguments.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from operator_support import owner, requires_crds, validate_any, validate_builtin

from rgpu_operator import llmroute
from rgpu_operator import status as status_builder
from rgpu_operator.context import Install
from rgpu_operator.desired import plan, ref
from rgpu_operator.schema import apply_defaults, openapi_schema
from support import KEYS, Service

DEFAULTS = Install(image_registry="ghcr.io/monadical-sas", image_tag="0.1.0")
HOST = "gpu.example.com"
GATEWAY = {"enabled": True, "host": HOST, "gateway": {"parentRefs": [{"name": "eg", "namespace": "envoy"}]}}
NGINX = {"enabled": True, "host": HOST}
LLM = {"enabled": True, "model": {"name": "microsoft/phi-4"}}
PADDING_SVC = "rgpu-padding-predictor"
LLM_SVC = "rgpu-llm-predictor"


def full(spec: dict) -> dict:
    return apply_defaults(openapi_schema(), owner(spec))


def kinds(objects: list[dict]) -> list[tuple[str, str]]:
    return [(o["kind"], o["metadata"]["name"]) for o in objects]


# --- the rendered objects -------------------------------------------------------------------------


@requires_crds
def test_the_llm_gets_its_own_route_only_with_its_policy_and_everything_validates():
    p = plan(full({"ingress": GATEWAY, "llm": LLM}), DEFAULTS)
    for obj in p.present:
        validate_any(obj)  # SecurityPolicy: Envoy Gateway's CRD; HTTPRoutes: Gateway API's
    present = kinds(p.present)
    policy, route = ("SecurityPolicy", "rgpu-llm"), ("HTTPRoute", "rgpu-llm")
    assert present.index(policy) < present.index(route), "the policy is written before the route"
    assert p.requires == {ref(p.present[present.index(route)]): ref(p.present[present.index(policy)])}
    objects = {k: o for k, o in zip(present, p.present, strict=True)}
    target = objects[policy]["spec"]["targetRefs"]
    assert target == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "rgpu-llm"}]
    ext = objects[policy]["spec"]["extAuth"]
    assert ext["failOpen"] is False and ext["http"]["path"] == "/auth"
    assert ext["http"]["backendRefs"][0]["name"] == PADDING_SVC
    # The shared route never reaches the runtime (no /llm rule, no rule to its Service).
    shared = objects[("HTTPRoute", "rgpu")]
    assert LLM_SVC not in {r["backendRefs"][0]["name"] for r in shared["spec"]["rules"]}
    assert not [r for r in shared["spec"]["rules"] if r["matches"][0]["path"]["value"].startswith("/llm")]
    (rule,) = objects[route]["spec"]["rules"]
    assert rule["matches"][0]["path"] == {"type": "PathPrefix", "value": "/llm/v1"}
    assert objects[route]["spec"]["hostnames"] == [HOST]


def test_without_the_padding_predictor_the_llm_is_not_routed():
    spec = {"ingress": GATEWAY, "llm": LLM, "padding": {"enabled": False}}
    p = plan(full(spec), DEFAULTS)
    assert not [k for k in kinds(p.present) if k[1] == "rgpu-llm" and k[0] in ("HTTPRoute", "SecurityPolicy")]
    for obj in p.present:
        for rule in obj["spec"].get("rules", []) if obj["kind"] == "HTTPRoute" else []:
            assert rule["backendRefs"][0]["name"] != LLM_SVC
    netpol = next(o for o in p.present if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "rgpu-llm")
    edge = [src for rule in netpol["spec"]["ingress"] for src in rule["from"] if "envoy" in json.dumps(src)]
    assert edge == [], "the proxies are not admitted to an LLM they do not route"
    settings = status_builder.build(full(spec), p, {}, None, "2026-01-01T00:00:00Z")["reflector"]
    assert settings["env"]["LLM_URL"] == "http://rgpu-llm-predictor.reflector.svc.cluster.local/openai/v1"
    assert any("not routed" in n for n in settings["notes"])


def test_the_ingress_variant_asks_the_padding_auth_url():
    p = plan(full({"ingress": NGINX, "llm": LLM}), DEFAULTS)
    ing = next(o for o in p.present if o["kind"] == "Ingress" and o["metadata"]["name"] == "rgpu-llm")
    validate_builtin(ing)
    ann = ing["metadata"]["annotations"]
    assert ann["nginx.ingress.kubernetes.io/auth-url"] == (f"http://{PADDING_SVC}.reflector.svc.cluster.local/auth")
    (path,) = ing["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"]["name"] == LLM_SVC
    # ingress-nginx: location ~* "^<path>" ... rewrite "(?i)<path>" <rewrite-target> break;
    rewrite = ann["nginx.ingress.kubernetes.io/rewrite-target"]
    for public, upstream in [
        ("/llm/v1/chat/completions", "/openai/v1/chat/completions"),
        ("/llm/v1/models", "/openai/v1/models"),
        ("/llm/v1", "/openai/v1"),
    ]:
        m = re.match("(?i)" + path["path"], public)
        assert m and m.expand(rewrite.replace("$1", r"\1")) == upstream
    assert re.match("(?i)" + path["path"], "/llm") is None, "the legacy /llm route is not the runtime's"
    shared = next(o for o in p.present if o["kind"] == "Ingress" and o["metadata"]["name"] == "rgpu")
    assert LLM_SVC not in {x["backend"]["service"]["name"] for x in shared["spec"]["rules"][0]["http"]["paths"]}


# --- the gateway, the key check and the runtime ----------------------------------------------------


@dataclass
class Gateway:
    """Envoy Gateway applying rendered HTTPRoutes and SecurityPolicies (see the module docstring)."""

    objects: list[dict]
    backends: dict[str, httpx.Client]
    auth_calls: list[str] = field(default_factory=list)

    def _route(self, host: str, path: str) -> tuple[dict, dict, str] | None:
        best = None
        for route in (o for o in self.objects if o["kind"] == "HTTPRoute"):
            if host not in route["spec"].get("hostnames", [host]):
                continue
            for rule in route["spec"]["rules"]:
                prefix = rule["matches"][0]["path"]["value"]
                # PathPrefix matches whole path elements (Gateway API HTTPPathMatch).
                if (path == prefix or path.startswith(prefix.rstrip("/") + "/")) and (
                    best is None or len(prefix) > len(best[2])
                ):
                    best = (route, rule, prefix)
        return best

    def _policy(self, route: dict) -> dict | None:
        for obj in self.objects:
            if obj["kind"] != "SecurityPolicy":
                continue
            for target in obj["spec"].get("targetRefs", []):
                if target["kind"] == "HTTPRoute" and target["name"] == route["metadata"]["name"]:
                    return obj
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        found = self._route(url.hostname or "", url.path)
        if found is None:
            return httpx.Response(404, text="no route")
        route, rule, prefix = found
        policy = self._policy(route)
        if policy is not None:
            ext = policy["spec"]["extAuth"]["http"]
            headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-length")}
            auth_path = ext["path"].rstrip("/") + url.path
            self.auth_calls.append(auth_path)
            try:
                answer = self.backends[ext["backendRefs"][0]["name"]].request(
                    request.method, auth_path, headers={**headers, "content-length": "0"}
                )
            except httpx.HTTPError:
                return httpx.Response(403)  # failOpen false: statusOnError (403)
            if not 200 <= answer.status_code < 300:
                return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        path = url.path
        for f in rule.get("filters", []):
            if f["type"] == "URLRewrite":
                path = f["urlRewrite"]["path"]["replacePrefixMatch"] + path[len(prefix) :]
        backend = self.backends[rule["backendRefs"][0]["name"]]
        target = path + (f"?{url.query}" if url.query else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        answer = backend.request(request.method, target, headers=headers, content=request.content)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


def runtime_stand_in(served: str, seen: list[dict], ready: bool = True):
    """KServe's OpenAI chat route on the Hugging Face runtime, with KServe's own model check."""
    from kserve.errors import ModelNotFound, ModelNotReady, model_not_found_handler, model_not_ready_handler
    from kserve.model import BaseKServeModel
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane

    class Served(BaseKServeModel):  # what the runtime registers under --model_name
        def __init__(self, name: str):
            super().__init__(name)
            self.ready = ready

    model = Served(served)
    repo = ModelRepository()
    repo.update(model)
    dataplane = DataPlane(model_registry=repo)
    app = FastAPI()
    # RESTServer.create_application's handlers (kserve/protocol/rest/server.py).
    app.add_exception_handler(ModelNotFound, model_not_found_handler)
    app.add_exception_handler(ModelNotReady, model_not_ready_handler)

    @app.post("/openai/v1/chat/completions")
    async def chat(request: Request) -> dict:
        body = await request.json()
        # OpenAIEndpoints.create_chat_completion: model_ready(params.model) before anything.
        if not await dataplane.model_ready(body["model"]):
            raise ModelNotReady(body["model"])
        seen.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": served,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": json.dumps({"title": "Weekly sync"})},
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    return app


@pytest.fixture(scope="module")
def padding(tmp_path_factory):
    svc = Service(
        {"REFLECTOR_GPU_LOCAL_PREDICTORS": "padding", "REFLECTOR_GPU_APIKEY": ",".join(KEYS)},
        tmp_path_factory.mktemp("padding-auth"),
        "padding",
    )
    with svc.running("padding"):
        yield svc


def reflector_settings(spec: dict) -> tuple[list[dict], dict]:
    body = full(spec)
    p = plan(body, DEFAULTS)
    return p.present, status_builder.build(body, p, {}, None, "2026-01-01T00:00:00Z")["reflector"]


def reflector_call(gateway: Gateway, settings: dict, key: str | None, model: str | None = None):
    """What Reflector's LLM client sends: the OpenAI SDK at LLM_URL with LLM_API_KEY, model
    LLM_MODEL, a json_schema response_format, litellm_session_id in extra_body, no max_tokens."""
    import openai

    env = settings["env"]
    client = openai.OpenAI(
        base_url=env["LLM_URL"],
        api_key=key or "",
        http_client=httpx.Client(transport=httpx.MockTransport(gateway.handle)),
        max_retries=0,
    )
    return client.chat.completions.create(
        model=model or env["LLM_MODEL"],
        messages=[
            {"role": "system", "content": "You write titles for meeting transcripts."},
            {"role": "user", "content": "Transcript: we planned the release and assigned owners."},
        ],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "TitleResponse",
                "schema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
                "strict": True,
            },
        },
        temperature=0.5,
        extra_body={"litellm_session_id": "transcript-123"},
    )


@pytest.fixture
def wired(padding):
    present, settings = reflector_settings({"ingress": GATEWAY, "llm": LLM})
    seen: list[dict] = []
    from fastapi.testclient import TestClient

    runtime = TestClient(runtime_stand_in("phi-4", seen))
    backends = {PADDING_SVC: httpx.Client(base_url=padding.base, timeout=10), LLM_SVC: runtime}
    gateway = Gateway(present, backends)
    yield gateway, settings, seen, present
    backends[PADDING_SVC].close()
    runtime.close()


@requires_crds
def test_reflectors_exact_request_reaches_the_runtime_through_the_rendered_route(wired):
    gateway, settings, seen, _ = wired
    assert settings["env"]["LLM_URL"] == f"https://{HOST}/llm/v1"
    assert settings["env"]["LLM_MODEL"] == "phi-4"
    assert settings["secretEnv"]["LLM_API_KEY"] == {"name": "rgpu-apikey", "key": "apikey"}
    completion = reflector_call(gateway, settings, KEYS[0])
    assert json.loads(completion.choices[0].message.content) == {"title": "Weekly sync"}
    (call,) = seen
    assert call["path"] == "/openai/v1/chat/completions"  # /llm/v1 rewritten to KServe's prefix
    body = call["body"]
    assert body["model"] == "phi-4"
    assert body["response_format"]["type"] == "json_schema"
    assert body["litellm_session_id"] == "transcript-123"  # extra_body: top-level, vLLM ignores it
    assert "max_tokens" not in body and "max_completion_tokens" not in body
    assert gateway.auth_calls == ["/auth/llm/v1/chat/completions"]
    # The second key of a rotation works the same.
    reflector_call(gateway, settings, KEYS[1])
    assert len(seen) == 2


@requires_crds
def test_reflectors_default_model_name_is_refused_by_kserves_check(wired):
    """LLM_MODEL must be the served name: Reflector's default microsoft/phi-4 is not served."""
    import openai

    gateway, settings, seen, _ = wired
    with pytest.raises(openai.NotFoundError) as caught:
        reflector_call(gateway, settings, KEYS[0], model="microsoft/phi-4")
    assert caught.value.response.json() == {"error": "Model with name microsoft/phi-4 does not exist."}
    assert seen == []


def keyless_call(gateway: Gateway, settings: dict) -> httpx.Response:
    """Reflector's body without any Authorization header (the SDK always sends one)."""
    body = {"model": settings["env"]["LLM_MODEL"], "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(transport=httpx.MockTransport(gateway.handle)) as client:
        return client.post(settings["env"]["LLM_URL"] + "/chat/completions", json=body)


@requires_crds
def test_without_a_valid_key_the_edge_answers_401_and_the_runtime_sees_nothing(wired):
    import openai

    gateway, settings, seen, _ = wired
    with pytest.raises(openai.AuthenticationError) as caught:
        reflector_call(gateway, settings, "wrong-key")
    assert caught.value.response.headers["www-authenticate"].startswith("Bearer")
    answer = keyless_call(gateway, settings)
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
    assert seen == []


@requires_crds
def test_the_route_alone_would_be_open_so_it_never_goes_out_alone(wired):
    """Why the policy is a precondition of the route: the same route without its SecurityPolicy
    lets a keyless request through to the runtime (which checks no key)."""
    gateway, settings, seen, present = wired
    open_gateway = Gateway([o for o in present if o["kind"] != "SecurityPolicy"], gateway.backends)
    assert keyless_call(open_gateway, settings).status_code == 200
    assert len(seen) == 1
    # ... hence: every plan that routes the LLM has its policy, written first.
    for ingress in (GATEWAY, {**GATEWAY, "tlsSecretName": "tls"}):
        p = plan(full({"ingress": ingress, "llm": LLM}), DEFAULTS)
        names = kinds(p.present)
        assert names.index(("SecurityPolicy", "rgpu-llm")) < names.index(("HTTPRoute", "rgpu-llm"))


def test_in_cluster_settings_point_at_kserves_prefix():
    _, settings = reflector_settings({"llm": LLM})
    assert settings["env"]["LLM_URL"] == "http://rgpu-llm-predictor.reflector.svc.cluster.local/openai/v1"
    assert settings["env"]["LLM_MODEL"] == "phi-4"
    assert llmroute.UPSTREAM_PREFIX == "/openai/v1"


def test_why_a_path_rewrite_and_not_an_empty_openai_prefix():
    """The alternative to the rewrite is ``KSERVE_OPENAI_ROUTE_PREFIX=""`` (routes at ``/v1/...``).
    KServe's REST server registers its V1 protocol routes before the OpenAI ones
    (``RESTServer._register_endpoints``), so with an empty prefix an OpenAI client's
    ``GET /v1/models`` gets KServe's V1 list instead of OpenAI's. With the default prefix and the
    rewrite, ``/llm/v1/models`` reaches ``/openai/v1/models``."""
    from fastapi import APIRouter
    from fastapi.testclient import TestClient
    from kserve.model import BaseKServeModel
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.v1_endpoints import register_v1_endpoints

    class Served(BaseKServeModel):
        def __init__(self, name: str):
            super().__init__(name)
            self.ready = True

    repo = ModelRepository()
    repo.update(Served("phi-4"))

    def openai_models() -> dict:  # what OpenAIEndpoints.models answers
        return {"object": "list", "data": [{"id": "phi-4", "object": "model", "owned_by": "kserve"}]}

    def app_with(prefix: str) -> TestClient:
        app = FastAPI()
        register_v1_endpoints(app, DataPlane(model_registry=repo), ModelRepositoryExtension(repo))
        router = APIRouter(prefix=prefix)  # register_openai_endpoints: APIRouter(prefix=OPENAI_ROUTE_PREFIX)
        router.add_api_route("/v1/models", openai_models, methods=["GET"])
        app.include_router(router)
        return TestClient(app)

    empty = app_with("").get("/v1/models").json()
    assert "data" not in empty and empty == {"models": ["phi-4"]}, "V1 shadows OpenAI's list"
    rewritten = "/llm/v1/models".replace(llmroute.PUBLIC_PREFIX, llmroute.UPSTREAM_PREFIX, 1)
    assert app_with("/openai").get(rewritten).json()["data"][0]["id"] == "phi-4"
