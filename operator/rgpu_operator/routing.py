"""Pure builders: how Reflector reaches the predictors.

One host, one path prefix per component (``/transcriber``, ``/diarizer`` ...). Each contract
route under a prefix goes to the component's predictor Service with the prefix rewritten away:
``/transcriber/v1/audio/transcriptions`` -> live, ``/transcriber/v1/audio/transcriptions-from-url``
-> file. An Ingress (ingress-nginx rewrite semantics) or a Gateway API HTTPRoute (URLRewrite).
"""

from __future__ import annotations

from . import components as c

SERVICE_PORT = 80
NGINX = "nginx.ingress.kubernetes.io/"


def rules(spec: dict) -> list[tuple[c.Component, str, str]]:
    """(component, public path, upstream path) for every enabled component, longest path first."""
    out = [
        (comp, comp.prefix + route, route) for comp in c.COMPONENTS if c.enabled(spec, comp) for route in c.routes(comp)
    ]
    return sorted(out, key=lambda r: (-len(r[1]), r[1]))


def scheme(spec: dict) -> str:
    ing = spec["ingress"]
    return ing.get("scheme") or ("https" if ing.get("tlsSecretName") or ing.get("gateway") else "http")


def base_url(spec: dict, namespace: str, owner: str) -> str | None:
    """Public base URL, or None when the service is only reachable in-cluster."""
    ing = spec["ingress"]
    if not ing["enabled"]:
        return None
    return f"{scheme(spec)}://{ing['host']}"


def in_cluster_url(namespace: str, owner: str, component: c.Component) -> str:
    return f"http://{c.predictor_service(owner, component)}.{namespace}.svc.cluster.local"


def endpoints(spec: dict, namespace: str, owner: str) -> dict[str, str]:
    """Reflector settings (TRANSCRIPT_URL ...) for the enabled components."""
    base = base_url(spec, namespace, owner)
    out = {}
    for comp in c.COMPONENTS:
        if comp.env_var and c.enabled(spec, comp):
            root = base + comp.prefix if base else in_cluster_url(namespace, owner, comp)
            out[comp.env_var] = root + c.ENDPOINT_SUFFIX.get(comp.env_var, "")
    return out


def ingress(owner: dict, spec: dict) -> dict:
    name = owner["metadata"]["name"]
    ing = spec["ingress"]
    annotations = {
        NGINX + "use-regex": "true",
        NGINX + "rewrite-target": "$1$2",
        NGINX + "proxy-body-size": ing["maxBodySize"],
        NGINX + "proxy-read-timeout": str(ing["timeoutSeconds"]),
        NGINX + "proxy-send-timeout": str(ing["timeoutSeconds"]),
        NGINX + "proxy-request-buffering": "off",
        **ing.get("annotations", {}),
    }
    paths = [
        {
            # ^<prefix>(<route>)(/...|end): $1$2 is the contract path, prefix removed.
            "path": f"{comp.prefix}({route})(/.*|$)",
            "pathType": "ImplementationSpecific",
            "backend": {"service": {"name": c.predictor_service(name, comp), "port": {"number": SERVICE_PORT}}},
        }
        for comp, _, route in rules(spec)
    ]
    body: dict = {"rules": [{"host": ing["host"], "http": {"paths": paths}}]}
    if ing.get("className"):
        body = {"ingressClassName": ing["className"], **body}
    if ing.get("tlsSecretName"):
        body["tls"] = [{"hosts": [ing["host"]], "secretName": ing["tlsSecretName"]}]
    meta = c.metadata(owner, c.routing_name(name), "ingress")
    meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": body}


def httproute(owner: dict, spec: dict) -> dict:
    name = owner["metadata"]["name"]
    ing = spec["ingress"]
    parents = []
    for ref in ing["gateway"]["parentRefs"]:
        parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": ref["name"]}
        parent.update({k: ref[k] for k in ("namespace", "sectionName", "port") if ref.get(k)})
        parents.append(parent)
    route_rules = [
        {
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
                    "name": c.predictor_service(name, comp),
                    "port": SERVICE_PORT,
                    "weight": 1,
                }
            ],
            "timeouts": {"request": f"{ing['timeoutSeconds']}s"},
        }
        for comp, public, upstream in rules(spec)
    ]
    meta = c.metadata(owner, c.routing_name(name), "httproute")
    if ing.get("annotations"):
        meta["annotations"] = dict(ing["annotations"])
    body = {"parentRefs": parents, "rules": route_rules}
    if ing.get("host"):
        body = {"parentRefs": parents, "hostnames": [ing["host"]], "rules": route_rules}
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta, "spec": body}


def kind(spec: dict) -> str | None:
    """Which routing object the spec wants: Ingress, HTTPRoute or none."""
    ing = spec["ingress"]
    if not ing["enabled"]:
        return None
    return "HTTPRoute" if ing.get("gateway") else "Ingress"
