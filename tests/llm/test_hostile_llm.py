"""Hostile inputs to the LLM routes: each gets a clear answer with a ``detail``, never a crash.

Already covered in ``test_llm_http.py`` (not repeated here): a 9,000-word prompt and
``max_tokens`` 9000 beyond the 8,192-token context (400 naming the limit, on chat and ``/llm``),
missing or empty ``messages``, ``temperature`` 5, an unknown ``response_format``, an empty
completions ``prompt``, a non-numeric ``gen_cfg.max_new_tokens``, a ``gen_schema`` that is not
JSON (400), and a chat body that is not JSON (400).
"""

from __future__ import annotations

import concurrent.futures

import pytest

pytestmark = pytest.mark.slow

CHAT = "/v1/chat/completions"


def _raw(llm_api, path: str, body: str):
    return llm_api.post(path, content=body.encode(), headers={"Content-Type": "application/json"})


def test_empty_prompt_and_empty_message_get_a_bounded_answer(llm_api):
    """An empty ``/llm`` prompt still has the chat template around it: a short answer, not an error."""
    r = llm_api.post("/llm", json={"prompt": "", "gen_cfg": {"max_new_tokens": 4}})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["text"], str)
    r = llm_api.post(CHAT, json={"messages": [{"role": "user", "content": ""}], "max_tokens": 4})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["completion_tokens"] <= 4


def test_one_megabyte_prompt_is_400_naming_the_context(llm_api):
    huge = "budget " * (1024 * 1024 // 7 + 1)
    for path, body in (
        (CHAT, {"messages": [{"role": "user", "content": huge}], "max_tokens": 4}),
        ("/v1/completions", {"prompt": huge, "max_tokens": 4}),
        ("/llm", {"prompt": huge}),
    ):
        r = llm_api.post(path, json=body)
        assert r.status_code == 400, r.text
        assert "maximum context length is 8192 tokens" in r.json()["detail"]


@pytest.mark.parametrize("path", ["/llm", "/v1/completions", "/openai/v1/chat/completions", "/v1/models/llm:predict"])
@pytest.mark.parametrize("body", ["{nope", "", "[1, 2", '{"prompt": "x"', "\xff\xfe"])
def test_malformed_json_is_400(llm_api, path, body):
    r = _raw(llm_api, path, body)
    assert r.status_code == 400, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_tokens", "0"),
        ("max_tokens", "-1"),
        ("max_tokens", "1.5"),
        ("max_tokens", "NaN"),
        ("temperature", "-0.1"),
        ("temperature", "2.01"),
        ("temperature", "NaN"),
        ("temperature", "Infinity"),
        ("top_p", "0"),
        ("top_p", "NaN"),
        ("n", "0"),
        ("n", "1000000000"),
        ("seed", "1.5"),
        ("seed", '"x"'),
        ("max_completion_tokens", "-5"),
        ("stop", '["a", "b", "c", "d", "e"]'),
    ],
)
def test_absurd_sampling_values_on_chat_are_400(llm_api, field, value):
    body = '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "%s": %s}' % (field, value)
    if field == "max_tokens":
        body = '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": %s}' % value
    r = _raw(llm_api, CHAT, body)
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"], r.text


@pytest.mark.parametrize("max_tokens", [10**12, 10**30])
def test_huge_max_tokens_is_400_naming_the_context(llm_api, max_tokens):
    r = llm_api.post(CHAT, json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens})
    assert r.status_code == 400 and "maximum context length is 8192 tokens" in r.json()["detail"], r.text


@pytest.mark.parametrize("seed", [10**29, -(10**29), 2**64 - 1])
def test_any_integer_seed_is_accepted_and_deterministic(llm_api, seed):
    """Seeds are taken modulo 2**64 (torch's generator is 64-bit); they used to fail the batch with a 500."""
    body = {
        "messages": [{"role": "user", "content": "Name a fruit."}],
        "max_tokens": 4,
        "temperature": 1.0,
        "seed": seed,
        "n": 2,
    }
    a, b = llm_api.post(CHAT, json=body), llm_api.post(CHAT, json=body)
    assert a.status_code == 200 and b.status_code == 200, (a.text, b.text)
    assert [c["message"]["content"] for c in a.json()["choices"]] == [
        c["message"]["content"] for c in b.json()["choices"]
    ]
    r = llm_api.post(
        "/llm", json={"prompt": "Name a fruit.", "gen_cfg": {"seed": seed, "do_sample": True, "max_new_tokens": 4}}
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "cfg,field",
    [
        ('{"max_new_tokens": 0}', "max_new_tokens"),
        ('{"max_new_tokens": NaN}', "max_new_tokens"),
        ('{"max_new_tokens": Infinity}', "max_new_tokens"),
        ('{"max_new_tokens": 1e30}', "max_new_tokens"),
        ('{"temperature": NaN}', "temperature"),
        ('{"temperature": -1}', "temperature"),
        ('{"top_p": NaN}', "top_p"),
        ('{"top_p": 1.5}', "top_p"),
        ('{"seed": 1.5}', "seed"),
        ('{"seed": NaN}', "seed"),
        ('{"stop": 5}', "stop"),
        ('{"stop": {"a": 1}}', "stop"),
        ("[1]", "gen_cfg"),
    ],
)
def test_absurd_gen_cfg_on_llm_route_is_400(llm_api, cfg, field):
    r = _raw(llm_api, "/llm", '{"prompt": "hi", "gen_cfg": %s}' % cfg)
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"] or "context length" in r.json()["detail"], r.text


def test_a_bad_request_does_not_fail_its_batch_neighbours(llm_api):
    """Concurrent requests are decoded together: one with absurd values must not take the others down."""
    good = {"messages": [{"role": "user", "content": "Say yes."}], "max_tokens": 3, "temperature": 0}
    bodies = [('{"prompt": "hi", "gen_cfg": {"temperature": NaN, "do_sample": true, "max_new_tokens": 3}}', "/llm")]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        goods = [pool.submit(llm_api.post, CHAT, json=good) for _ in range(3)]
        bad = pool.submit(_raw, llm_api, bodies[0][1], bodies[0][0])
        assert all(f.result().status_code == 200 for f in goods), [f.result().text for f in goods]
        assert bad.result().status_code == 400, bad.result().text


@pytest.mark.parametrize("prompt", [[-1], [39, -11585], [10**9], [2**63]])
def test_out_of_range_token_ids_are_400(llm_api, prompt):
    """``prompt`` as token ids (OpenAI completions) outside the vocabulary; was a 500 OverflowError."""
    r = llm_api.post("/v1/completions", json={"prompt": prompt, "max_tokens": 2})
    assert r.status_code == 400, r.text
    assert "token ids must be between 0 and" in r.json()["detail"]


@pytest.mark.parametrize(
    "path,body",
    [
        ("/llm", '{"prompt": "hi \\ud800 there", "gen_cfg": {"max_new_tokens": 2}}'),
        (CHAT, '{"messages": [{"role": "user", "content": "x \\udfff"}], "max_tokens": 2}'),
        ("/v1/completions", '{"prompt": "\\ud800", "max_tokens": 2}'),
        (CHAT, '{"messages": [{"role": "user\\ud800", "content": "x"}], "max_tokens": 2}'),
    ],
)
def test_lone_surrogates_are_400(llm_api, path, body):
    """Valid JSON, not encodable text: the tokenizer used to fail with a 500 TypeError."""
    r = _raw(llm_api, path, body)
    assert r.status_code == 400, r.text
    assert "is not valid Unicode text: surrogates not allowed" in r.json()["detail"]


def test_control_characters_get_an_answer(llm_api):
    text = "".join(chr(c) for c in range(32)) + "\x7f\x85\u200b\ufeff"
    r = llm_api.post(CHAT, json={"messages": [{"role": "user", "content": text}], "max_tokens": 2})
    assert r.status_code == 200, r.text
