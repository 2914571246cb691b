"""The LLM predictor through HTTP against the running local mode (real SmolLM2-135M-Instruct)."""

from __future__ import annotations

import concurrent.futures
import json
import re

import httpx
import jsonschema
import openai
import pytest

from support import KEYS

pytestmark = pytest.mark.slow

#: Bounded like a real summary schema should be: the grammar then forces the JSON to close.
SUMMARY_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 60},
        "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "keywords": {"type": "array", "items": {"type": "string", "maxLength": 24}, "minItems": 1, "maxItems": 3},
        "urgent": {"type": "boolean"},
    },
    "required": ["title", "sentiment", "keywords", "urgent"],
    "additionalProperties": False,
}

PROMPTS = [
    "We agreed to ship the new billing page next Tuesday after QA signs off.",
    "The team discussed hiring two backend engineers and a designer this quarter.",
    "Customer churn went up 4% and support tickets doubled; we need a plan.",
    "Marketing wants a launch video; budget is 10k and the deadline is May.",
    "The database migration failed twice overnight and the site was down an hour.",
    "Everyone enjoyed the offsite; next one will be in Lisbon in the autumn.",
    "Legal reviewed the contract with Acme; two clauses need renegotiation.",
    "We decided to deprecate the v1 API by December and email all users.",
    "Sales closed three enterprise deals, beating the quarterly target.",
    "The mobile app crashes on Android 14 when uploading photos.",
]


@pytest.fixture
def client(llm_service):
    return openai.OpenAI(base_url=llm_service.base + "/v1", api_key=KEYS[1], max_retries=0, timeout=300)


def _messages(text: str) -> list[dict]:
    return [
        {"role": "system", "content": "You summarise meeting notes as JSON."},
        {"role": "user", "content": f"Summarise: {text}"},
    ]


def test_sdk_chat_completion_plain_ignores_extra_fields(client):
    r = client.chat.completions.create(
        model="llm",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=12,
        temperature=0,
        extra_body={"top_k": 40, "repetition_penalty": 1.1, "vendor_flag": {"x": 1}},
    )
    text = r.choices[0].message.content
    assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
    assert "paris" in text.lower(), text
    assert r.choices[0].finish_reason in ("stop", "length")
    u = r.usage
    assert (
        u.prompt_tokens > 5
        and 0 < u.completion_tokens <= 12
        and u.total_tokens == u.prompt_tokens + u.completion_tokens
    )


def test_sdk_chat_stream_matches_non_streamed(client):
    kwargs = dict(
        model="llm", messages=[{"role": "user", "content": "Name three colours."}], max_tokens=20, temperature=0
    )
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([p for p in pieces if p]) > 2, pieces  # really incremental
    assert "".join(pieces) == whole.choices[0].message.content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [whole.choices[0].finish_reason]
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_sdk_json_schema_always_valid_over_ten_prompts(llm_service):
    """Ten different prompts, sent concurrently (batched), under both base URLs; every answer validates."""

    def ask(i: int):
        base = llm_service.base + ("/v1" if i % 2 == 0 else "/openai/v1")
        c = openai.OpenAI(base_url=base, api_key=KEYS[0], max_retries=0, timeout=300)
        return c.chat.completions.create(
            model="llm",
            messages=_messages(PROMPTS[i]),
            max_tokens=200,
            temperature=0.8,
            seed=i,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "summary", "schema": SUMMARY_SCHEMA, "strict": True},
            },
        )

    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        answers = list(pool.map(ask, range(len(PROMPTS))))
    for r in answers:
        data = json.loads(r.choices[0].message.content)
        jsonschema.validate(data, SUMMARY_SCHEMA)
        assert r.choices[0].finish_reason == "stop"
    assert len({r.choices[0].message.content for r in answers}) > 5


def test_json_object_mode_and_text_completions(llm_api):
    r = llm_api.post(
        "/v1/chat/completions",
        json={
            "messages": [{"role": "user", "content": "Give a JSON object with a name and an age."}],
            "max_tokens": 60,
            "temperature": 0,
            "response_format": {"type": "json_object"},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    if body["choices"][0]["finish_reason"] == "stop":
        assert isinstance(json.loads(body["choices"][0]["message"]["content"]), dict)
    r = llm_api.post(
        "/openai/v1/completions", json={"model": "llm", "prompt": "The sky is", "max_tokens": 5, "temperature": 0}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "text_completion" and body["choices"][0]["text"]
    assert body["usage"]["completion_tokens"] <= 5 and body["usage"]["prompt_tokens"] >= 3


def test_stop_sequences_and_seed(llm_api):
    base = {
        "messages": [{"role": "user", "content": "Describe a cat in two sentences."}],
        "max_tokens": 30,
        "temperature": 0,
    }
    full = llm_api.post("/v1/chat/completions", json=base).json()["choices"][0]["message"]["content"]
    assert len(full) > 20, full
    stop = full[len(full) // 2 : len(full) // 2 + 4]
    cut = llm_api.post("/v1/chat/completions", json={**base, "stop": [stop, "@@never@@"]}).json()["choices"][0]
    assert cut["finish_reason"] == "stop"
    assert cut["message"]["content"] == full[: full.index(stop)]
    sampled = {**base, "temperature": 1.0, "seed": 1234, "max_tokens": 16}
    a = llm_api.post("/v1/chat/completions", json=sampled).json()["choices"][0]["message"]["content"]
    b = llm_api.post("/v1/chat/completions", json=sampled).json()["choices"][0]["message"]["content"]
    assert a == b


def test_llm_route_plain_and_with_gen_schema(llm_api):
    r = llm_api.post("/llm", json={"prompt": "Say hello to the team.", "gen_cfg": {"max_new_tokens": 16}})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"text"} and r.json()["text"].strip()
    schema = {  # the shape pydantic emits, with $defs/$ref
        "$defs": {
            "Topic": {
                "type": "object",
                "properties": {"title": {"type": "string", "maxLength": 40}},
                "required": ["title"],
                "additionalProperties": False,
            }
        },
        "type": "object",
        "properties": {"topics": {"type": "array", "items": {"$ref": "#/$defs/Topic"}, "minItems": 1, "maxItems": 3}},
        "required": ["topics"],
    }
    for prompt, cfg in [
        ("List the topics: budget, hiring, roadmap.", None),
        ("Topics of a meeting about the office move.", {"temperature": 0.9, "seed": 7, "max_new_tokens": 300}),
    ]:
        r = llm_api.post("/llm", json={"prompt": prompt, "gen_schema": schema, "gen_cfg": cfg})
        assert r.status_code == 200, r.text
        jsonschema.validate(json.loads(r.json()["text"]), schema)


def test_models_listed_in_openai_shape(client, llm_service):
    assert [m.id for m in client.models.list()] == ["llm"]
    other = openai.OpenAI(base_url=llm_service.base + "/openai/v1", api_key=KEYS[0], max_retries=0)
    assert [m.id for m in other.models.list()] == ["llm"]
    assert other.models.retrieve("llm").id == "llm"


def test_concurrent_requests_are_batched(llm_service, llm_api):
    def batched() -> tuple[float, float]:
        text = llm_api.get("/metrics").text
        count = float(re.search(r'reflector_gpu_batch_items_count\{predictor="llm"\} (\S+)', text).group(1))
        total = float(re.search(r'reflector_gpu_batch_items_sum\{predictor="llm"\} (\S+)', text).group(1))
        return count, total

    c0, s0 = batched()
    body = {"messages": [{"role": "user", "content": "Say yes."}], "max_tokens": 4, "temperature": 0}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        rs = list(pool.map(lambda _: llm_api.post("/v1/chat/completions", json=body), range(4)))
    assert all(r.status_code == 200 for r in rs)
    assert len({r.json()["choices"][0]["message"]["content"] for r in rs}) == 1  # same greedy answer in a batch
    c1, s1 = batched()
    assert s1 - s0 == 4 and c1 - c0 < 4, (c1 - c0, s1 - s0)  # 4 requests in fewer model calls


def test_context_overflow_is_400_with_the_limit(llm_api, client):
    huge = "word " * 9000
    r = llm_api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": huge}]})
    assert r.status_code == 400 and "8192" in r.json()["detail"], r.text
    r = llm_api.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9000})
    assert r.status_code == 400 and "8192" in r.json()["detail"], r.text
    r = llm_api.post("/llm", json={"prompt": huge})
    assert r.status_code == 400 and "8192" in r.json()["detail"], r.text
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="llm", messages=[{"role": "user", "content": "hi"}], max_tokens=10_000)


@pytest.mark.parametrize(
    "path,body,needle",
    [
        ("/v1/chat/completions", {"model": "llm"}, "messages"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "temperature": 5}, "temperature"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}},
            "yaml",
        ),
        (
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
            },
            "schema",
        ),
        (
            "/v1/chat/completions",
            {
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 5}}},
            },
            "schema",
        ),
        ("/v1/completions", {"prompt": ""}, "prompt"),
        ("/llm", {"gen_cfg": {}}, "prompt"),
        ("/llm", {"prompt": "x", "gen_cfg": {"max_new_tokens": "many"}}, "max_new_tokens"),
        ("/llm", {"prompt": "x", "gen_schema": "{not json"}, "schema"),
    ],
)
def test_bad_requests_are_400(llm_api, path, body, needle):
    r = llm_api.post(path, json=body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["detail"].lower()


def test_bad_json_body_is_400(llm_api):
    r = llm_api.post("/v1/chat/completions", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text


@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/llm"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/openai/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/v1/models"),
        ("GET", "/openai/v1/models"),
    ],
)
def test_auth_required(llm_service, method, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.request(method, llm_service.base + path, headers=headers, json={"prompt": "x"}, timeout=30)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_sdk_wrong_key_is_authentication_error(llm_service):
    c = openai.OpenAI(base_url=llm_service.base + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="llm", messages=[{"role": "user", "content": "hi"}])


def test_kserve_v1_predict(llm_api):
    r = llm_api.post(
        "/v1/models/llm:predict", json={"instances": [{"prompt": "Say hi.", "gen_cfg": {"max_new_tokens": 6}}]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["text"].strip()
