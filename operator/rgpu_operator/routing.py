"""Pure builders: how Reflector reaches the predictors.

One host, one path prefix per component (``/transcriber``, ``/diarizer`` ...). Each contract route
under a prefix goes to the component's predictor Service with the prefix rewritten away:
``/transcriber/v1/audio/transcriptions`` -> live, ``/transcriber/v1/audio/transcriptions-from-url``
-> file. The file transcriber also has a prefix of its own for both its routes
(``/transcriber-file/v1/audio/transcriptions``: an ingress cannot route on form fields, so long
diarized uploads reach the file pool by path, never the live one). A Gateway API HTTPRoute (URLRewrite; the primary
path) or an Ingress (ingress-nginx rewrite semantics). Only contract routes are routed: ``/docs``,
``/openapi.json``, ``/metrics`` and KServe's own protocol routes are not reachable from outside. A
keyless translator (``translator.auth: networkPolicy``) is not routed at all.

WebSockets (``/transcriber/v1/realtime``, live transcription): ingress-nginx passes upgrades on
any path; its read/send timeouts are the idle timeouts of a session, so they are at least
``WEBSOCKET_IDLE_TIMEOUT_S`` on an Ingress that routes the realtime path. On an HTTPRoute the
realtime rule has no request timeout (``0s`` disables it; Gateway API, HTTPRouteTimeouts): a
request timeout would end a session that runs longer.
"""

from __future__ import annotations

from typing import Any

import rgpu_contract as contract

from . import components as c
from . import llmruntime

Obj = dict[str, Any]

SERVICE_PORT = 80
NGINX = "nginx.ingress.kubernetes.io/"
#: The least idle timeout a realtime WebSocket session gets from the ingress (10 minutes).
WEBSOCKET_IDLE_TIMEOUT_S = 600
#: Contract paths that are WebSocket upgrades.
WEBSOCKET_ROUTES = frozenset({contract.REALTIME_PATH})


def routed(spec: Obj, comp: c.Component) -> bool:
    """Enabled and reachable through the ingress (a keyless translator is not; the LLM on
    KServe's runtime only through its own route, which needs the padding predictor's /auth:
    :mod:`llmroute`)."""
    keyless = comp.name == "translator" and spec["translator"]["auth"] == "networkPolicy"
    if comp.name == "llm" and llmruntime.on_huggingface(spec):
        return c.enabled(spec, comp) and c.enabled(spec, c.BY_NAME["padding"])
    return c.enabled(spec, comp) and not keyless


def own_route(spec: Obj, comp: c.Component) -> bool:
    """Routed by an object of its own (:mod:`llmroute`), not by the shared route's rules."""
    return comp.name == "llm" and llmruntime.on_huggingface(spec)


def rules(spec: Obj) -> list[tuple[c.Component, str, str]]:
    """(component, public path, upstream path) for every routed component, longest path first."""
    out = [
        (comp, comp.prefix + route, route)
        for comp in c.COMPONENTS
        if routed(spec, comp) and not own_route(spec, comp)
        for route in c.routes(comp)
    ]
    for comp in c.COMPONENTS:
        prefix, paths = c.dedicated_routes(comp)
        if routed(spec, comp):
            out += [(comp, prefix + route, route) for route in paths]
    return sorted(out, key=lambda r: (-len(r[1]), r[1]))


def scheme(spec: Obj) -> str:
    ing = spec["ingress"]
    return ing.get("scheme") or ("https" if ing.get("tlsSecretName") or ing.get("gateway") else "http")


def base_url(spec: Obj) -> str | None:
    """Public base URL, or None when the service is only reachable in-cluster."""
    ing = spec["ingress"]
    if not ing["enabled"]:
        return None
    return f"{scheme(spec)}://{ing['host']}"


def in_cluster_url(namespace: str, owner: str, component: c.Component, domain: str = "cluster.local") -> str:
    return f"http://{c.predictor_service(owner, component)}.{namespace}.svc.{domain}"


def endpoints(spec: Obj, namespace: str, owner: str, domain: str = "cluster.local") -> dict[str, str]:
    """Reflector's URL settings (TRANSCRIPT_URL ...) for the enabled components: through the
    ingress when it is on and routes the component, else the in-cluster Service."""
    base = base_url(spec)
    out = {}
    for comp in c.COMPONENTS:
        if comp.env_var and c.enabled(spec, comp):
            suffix = c.ENDPOINT_SUFFIX.get(comp.env_var, "")
            if base and routed(spec, comp):
                root = base + comp.prefix
            else:
                root = in_cluster_url(namespace, owner, comp, domain)
                if own_route(spec, comp):
                    suffix = llmruntime.OPENAI_PREFIX  # KServe's own path, no rewrite in-cluster
            out[comp.env_var] = root + suffix
    return out


def ingress_path(path: str, owner: str, comp: c.Component) -> Obj:
    """An Ingress path (a regular expression, ingress-nginx's use-regex) to a predictor's Service."""
    return {
        "path": path,
        "pathType": "ImplementationSpecific",
        "backend": {"service": {"name": c.predictor_service(owner, comp), "port": {"number": SERVICE_PORT}}},
    }


def ingress_spec(ing: Obj, paths: list[Obj]) -> Obj:
    """An Ingress spec for ``spec.ingress``'s host, class and TLS secret with these paths."""
    body: Obj = {"rules": [{"host": ing["host"], "http": {"paths": paths}}]}
    if ing.get("className"):
        body = {"ingressClassName": ing["className"], **body}
    if ing.get("tlsSecretName"):
        body["tls"] = [{"hosts": [ing["host"]], "secretName": ing["tlsSecretName"]}]
    return body


def route_rule(owner: str, comp: c.Component, public: str, upstream: str, timeout_s: int) -> Obj:
    """An HTTPRoute rule: ``public`` prefix rewritten to ``upstream`` on a predictor's Service
    (no request timeout on WebSocket routes: a session outlives any)."""
    return {
        "matches": [{"path": {"type": "PathPrefix", "value": public}}],
        "filters": [
            {
                "type": "URLRewrite",
                "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": upstream}},
            }
        ],
        "backendRefs": [
            {
                "group": "",
                "kind": "Service",
                "name": c.predictor_service(owner, comp),
                "port": SERVICE_PORT,
                "weight": 1,
            }
        ],
        "timeouts": {"request": "0s" if upstream in WEBSOCKET_ROUTES else f"{timeout_s}s"},
    }


def ingress(owner: Obj, spec: Obj) -> Obj:
    name = owner["metadata"]["name"]
    ing = spec["ingress"]
    found = rules(spec)
    timeout = int(ing["timeoutSeconds"])
    if any(route in WEBSOCKET_ROUTES for _, _, route in found):
        timeout = max(timeout, WEBSOCKET_IDLE_TIMEOUT_S)  # one annotation set serves every path
    annotations = {
        NGINX + "use-regex": "true",
        NGINX + "rewrite-target": "$1$2",
        NGINX + "proxy-body-size": ing["maxBodySize"],
        NGINX + "proxy-read-timeout": str(timeout),
        NGINX + "proxy-send-timeout": str(timeout),
        NGINX + "proxy-request-buffering": "off",
        **ing.get("annotations", {}),
    }
    # ^<prefix>(<route>)(/...|end): $1$2 is the contract path, prefix removed.
    paths = [ingress_path(f"{public.removesuffix(route)}({route})(/.*|$)", name, comp) for comp, public, route in found]
    body = ingress_spec(ing, paths)
    meta = c.metadata(owner, c.routing_name(name), "ingress")
    meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": body}


def httproute(owner: Obj, spec: Obj) -> Obj:
    name = owner["metadata"]["name"]
    ing = spec["ingress"]
    parents = []
    for ref in ing["gateway"]["parentRefs"]:
        parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref["name"]}
        parent.update({k: ref[k] for k in ("namespace", "sectionName", "port") if ref.get(k)})
        parents.append(parent)
    route_rules = [
        route_rule(name, comp, public, upstream, ing["timeoutSeconds"]) for comp, public, upstream in rules(spec)
    ]
    meta = c.metadata(owner, c.routing_name(name), "httproute")
    if ing.get("annotations"):
        meta["annotations"] = dict(ing["annotations"])
    body = {"parentRefs": parents, "rules": route_rules}
    if ing.get("host"):
        body = {"parentRefs": parents, "hostnames": [ing["host"]], "rules": route_rules}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta, "spec": body}


def kind(spec: Obj) -> str | None:
    """Which routing object the spec wants: Ingress, HTTPRoute or none."""
    ing = spec["ingress"]
    if not ing["enabled"]:
        return None
    return "HTTPRoute" if ing.get("gateway") else "Ingress"
