"""The key check alone (``/auth``, rgpu_contract.AUTH_PATH) over HTTP against the local mode:
what Envoy Gateway's extAuth and ingress-nginx's auth-url ask before they let a request through to
the LLM on KServe's runtime (which checks no key). Same keys, same check as every route."""

from __future__ import annotations

import httpx
import pytest

import rgpu_contract as contract
from support import KEYS

# Envoy's HTTP ext_authz appends the original path to the configured one and keeps the method.
PATHS = [contract.AUTH_PATH, contract.AUTH_PATH + "/llm/v1/chat/completions", contract.AUTH_PATH + "/llm/v1/models"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_valid_key_is_2xx_every_key_of_the_rotation(padding, path, method):
    for key in KEYS:
        r = httpx.request(method, padding.base + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 204, r.text
        assert r.content == b""


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-key"}, {"Authorization": f"Basic {KEYS[0]}"}, {"Authorization": "Bearer"}],
)
def test_a_missing_or_wrong_key_is_401_with_the_challenge(padding, headers):
    r = httpx.post(padding.base + PATHS[1], headers=headers, timeout=10)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "key" in r.json()["detail"]
    assert KEYS[0] not in r.text


def test_the_check_takes_no_padding_slot_and_is_not_routed_publicly(padding):
    """A key check never waits for (or is refused by) padding jobs, and the operator routes only
    the contract routes: /auth is reached by the proxies in-cluster, never through the ingress."""
    assert contract.AUTH_PATH not in contract.COMPONENT_ROUTES["padding"]
    with httpx.Client(base_url=padding.base, headers={"Authorization": f"Bearer {KEYS[1]}"}, timeout=10) as c:
        statuses = {c.head(PATHS[1]).status_code for _ in range(20)}
    assert statuses == {204}
