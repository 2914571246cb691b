"""Pure builders: the public route to the LLM on KServe's Hugging Face runtime, authenticated at
the edge.

The runtime checks no API key, so the key is checked before a request reaches it: by the padding
predictor's ``/auth`` route (``rgpu_contract.AUTH_PATH``: 2xx for a valid key, 401 otherwise;
the same key files and the same check as every predictor), asked by the proxy:

- Gateway API (the primary path): an HTTPRoute of its own, ``<owner>-llm``, and an Envoy Gateway
  ``SecurityPolicy`` targeting it with ``extAuth.http`` to the padding Service. Envoy's HTTP
  ext_authz sends the client's method, ``Authorization`` header (one of the headers always sent
  to an HTTP authorization server: ``headersToExtAuth`` in the SecurityPolicy CRD) and the
  configured ``path`` with the original path appended (``/auth/llm/v1/chat/completions``);
  anything but a 2xx answer is returned to the client (the 401 and its ``WWW-Authenticate``).
  ``failOpen: false``: an unreachable ``/auth`` refuses.
- Ingress: an Ingress of its own with ingress-nginx's ``auth-url`` to the padding Service.

Only the OpenAI routes are public: ``/llm/v1/...`` -> ``/openai/v1/...`` (a path rewrite to
KServe's default prefix, ``OPENAI_ROUTE_PREFIX`` in kserve_openai_endpoints.py; setting
``KSERVE_OPENAI_ROUTE_PREFIX`` empty instead would put the OpenAI ``GET /v1/models`` where
KServe's V1 protocol already serves ``GET /v1/models``). ``LLM_URL`` stays
``<base>/llm/v1``, as with the custom runtime. The legacy ``/llm`` route exists only on the
custom predictor.

The LLM route is never built without its policy: both come from :func:`objects`, the policy
first, and the reconciler applies the route only once the policy is written
(:attr:`desired.Plan.requires`). Without the padding predictor (no ``/auth``) the LLM is not
routed at all (in-cluster only, behind its NetworkPolicy).
"""

from __future__ import annotations

from typing import Any

import rgpu_contract as contract

from . import components as c
from . import llmruntime, names, routing

Obj = dict[str, Any]

#: Public prefix (the custom runtime's LLM_URL, unchanged) and what it becomes upstream.
PUBLIC_PREFIX = c.BY_NAME["llm"].prefix + "/v1"
UPSTREAM_PREFIX = llmruntime.OPENAI_PREFIX
SECURITY_POLICY_API_VERSION = "gateway.envoyproxy.io/v1alpha1"


def route_name(owner: str) -> str:
    return names.subdomain(f"{owner}-llm")


def wanted(spec: Obj) -> bool:
    """The spec routes the huggingface LLM: ingress on, LLM on the runtime, /auth available."""
    return (
        spec["ingress"]["enabled"]
        and c.enabled(spec, c.BY_NAME["llm"])
        and llmruntime.on_huggingface(spec)
        and c.enabled(spec, c.BY_NAME["padding"])
    )


def auth_url(namespace: str, owner: str, domain: str) -> str:
    """The padding Service's key check, in-cluster."""
    return routing.in_cluster_url(namespace, owner, c.BY_NAME["padding"], domain) + contract.AUTH_PATH


def httproute(owner: Obj, spec: Obj) -> Obj:
    base = routing.httproute(owner, spec)  # parentRefs, hostnames, annotations, timeouts as the main route
    name = owner["metadata"]["name"]
    rule = routing.route_rule(name, c.BY_NAME["llm"], PUBLIC_PREFIX, UPSTREAM_PREFIX, spec["ingress"]["timeoutSeconds"])
    meta = c.metadata(owner, route_name(name), "llm")
    if base["metadata"].get("annotations"):
        meta["annotations"] = dict(base["metadata"]["annotations"])
    return {**base, "metadata": meta, "spec": {**base["spec"], "rules": [rule]}}


def security_policy(owner: Obj, spec: Obj) -> Obj:
    name = owner["metadata"]["name"]
    return {
        "apiVersion": SECURITY_POLICY_API_VERSION,
        "kind": "SecurityPolicy",
        "metadata": c.metadata(owner, route_name(name), "llm"),
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route_name(name)}],
            "extAuth": {
                "failOpen": False,
                "http": {
                    "backendRefs": [
                        {
                            "group": "",
                            "kind": "Service",
                            "name": c.predictor_service(name, c.BY_NAME["padding"]),
                            "port": routing.SERVICE_PORT,
                        }
                    ],
                    "path": contract.AUTH_PATH,
                },
            },
        },
    }


def ingress(owner: Obj, spec: Obj, domain: str) -> Obj:
    meta = owner["metadata"]
    name = meta["name"]
    ing = spec["ingress"]
    annotations = {
        routing.NGINX + "use-regex": "true",
        routing.NGINX + "rewrite-target": UPSTREAM_PREFIX + "$1",
        routing.NGINX + "proxy-body-size": ing["maxBodySize"],
        routing.NGINX + "proxy-read-timeout": str(ing["timeoutSeconds"]),
        routing.NGINX + "proxy-send-timeout": str(ing["timeoutSeconds"]),
        # ingress-nginx asks this URL first (auth_request) with the client's headers; a 2xx
        # lets the request through, a 401/403 is returned to the client.
        routing.NGINX + "auth-url": auth_url(meta["namespace"], name, domain),
        **ing.get("annotations", {}),
    }
    body = routing.ingress_spec(ing, [routing.ingress_path(f"{PUBLIC_PREFIX}(/.*|$)", name, c.BY_NAME["llm"])])
    out_meta = c.metadata(owner, route_name(name), "llm")
    out_meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": out_meta, "spec": body}


def objects(owner: Obj, spec: Obj, domain: str) -> list[Obj]:
    """The LLM's route objects, the policy before the route it protects; none when not wanted."""
    if not wanted(spec):
        return []
    kind = routing.kind(spec)
    if kind == "HTTPRoute":
        return [security_policy(owner, spec), httproute(owner, spec)]
    if kind == "Ingress":
        return [ingress(owner, spec, domain)]  # the auth-url is part of the Ingress itself
    return []
