"""A small async Kubernetes REST client (aiohttp): get, create, server-side apply, delete, status.

Why not the ``kubernetes`` client: its generated API changed shape between 36 and 37, it is
synchronous, and the operator only needs a handful of generic verbs on a few kinds. The
``kubernetes`` package is used only to read a kubeconfig when running outside a cluster.

Every call is retried with exponential backoff on 429/5xx/timeouts; what still fails raises
:class:`ApiError` and the kopf handler retries later.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from . import FIELD_MANAGER, __version__
from .settings import Settings

log = logging.getLogger(__name__)

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
RETRY_STATUS = {429, 500, 502, 503, 504}

PLURALS = {
    "Secret": "secrets",
    "Event": "events",
    "InferenceService": "inferenceservices",
    "LocalModelCache": "localmodelcaches",
    "Ingress": "ingresses",
    "NetworkPolicy": "networkpolicies",
    "HTTPRoute": "httproutes",
    "ReflectorGPU": "reflectorgpus",
    "Namespace": "namespaces",
    "CustomResourceDefinition": "customresourcedefinitions",
    "ClusterKopfPeering": "clusterkopfpeerings",
    "KopfPeering": "kopfpeerings",
}


class ApiError(Exception):
    """A failed API call; the message carries status and reason only (never bodies we sent)."""

    def __init__(self, status: int, reason: str, method: str, path: str):
        super().__init__(f"{method} {path}: {status} {reason}")
        self.status = status


@dataclass(frozen=True)
class Connection:
    server: str
    ssl: ssl.SSLContext | bool
    token: str | None = None
    token_file: Path | None = None  #: re-read on every call: projected tokens rotate

    def headers(self) -> dict[str, str]:
        token = self.token_file.read_text().strip() if self.token_file else self.token
        return {"Authorization": f"Bearer {token}"} if token else {}


def connection_from_environment() -> Connection:
    """In-cluster service account if present, else the current kubeconfig context."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if host and port and (SA_DIR / "token").exists():
        ctx = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))
        return Connection(f"https://{host}:{port}", ctx, token_file=SA_DIR / "token")
    import kubernetes.client
    import kubernetes.config

    cfg = kubernetes.client.Configuration()
    # KUBECONFIG is read here, not when the kubernetes package was imported.
    kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None, client_configuration=cfg)
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix("authorization")
    token = header.split(" ", 1)[-1] if header else None
    context: ssl.SSLContext | bool = False
    if cfg.host.startswith("https"):
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert) if cfg.verify_ssl else False
        if context and cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file)
    return Connection(cfg.host.rstrip("/"), context, token=token)


def path(
    api_version: str, kind: str, namespace: str | None, name: str | None = None, subresource: str | None = None
) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    out = base + (f"/namespaces/{namespace}" if namespace else "") + "/" + PLURALS[kind]
    if name:
        out += f"/{name}"
    if subresource:
        out += f"/{subresource}"
    return out


def obj_path(obj: dict, subresource: str | None = None) -> str:
    meta = obj["metadata"]
    return path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"], subresource)


class Kube:
    """Async API client. Create inside a running event loop; close with :meth:`close`."""

    def __init__(self, connection: Connection, settings: Settings):
        self.connection = connection
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _new_session(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_seconds)
        return aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": f"{FIELD_MANAGER}/{__version__}"})

    async def close(self) -> None:
        """Close the shared session. Calls made later (a timer finishing during shutdown) use a
        short-lived session of their own instead of leaking a new shared one."""
        self._closed = True
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        url_path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        params: dict | None = None,
        ok_missing: bool = False,
    ) -> dict | None:
        """One API call with retries. Returns the decoded body; None for 404 if ``ok_missing``."""
        headers = {"Accept": "application/json", **self.connection.headers()}
        data = None
        if body is not None:
            headers["Content-Type"] = content_type
            data = json.dumps(body)
        return await self._with_retries(method, url_path, data, headers, params, ok_missing)

    @contextlib.asynccontextmanager
    async def _session_for_attempt(self):
        """The shared session; after :meth:`close` (a retry still running at shutdown), a
        short-lived one, so no attempt ever uses a closed session."""
        if self._closed:
            async with self._new_session() as session:
                yield session
            return
        if self._session is None or self._session.closed:
            self._session = self._new_session()
        yield self._session

    async def _with_retries(
        self, method: str, url_path: str, data: str | None, headers: dict, params: dict | None, ok_missing: bool
    ) -> dict | None:
        attempts = max(1, self.settings.api_attempts)
        for attempt in range(attempts):
            try:
                async with (
                    self._session_for_attempt() as session,
                    session.request(
                        method,
                        self.connection.server + url_path,
                        data=data,
                        headers=headers,
                        params=params,
                        ssl=self.connection.ssl,
                    ) as resp,
                ):
                    if resp.status == 404 and ok_missing:
                        return None
                    if resp.status < 300:
                        text = await resp.text()
                        return json.loads(text) if text else {}
                    reason = await _reason(resp)
                    error = ApiError(resp.status, reason, method, url_path)
                    if resp.status not in RETRY_STATUS:
                        raise error
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:  # noqa: UP041 - 3.10
                error = ApiError(0, type(exc).__name__, method, url_path)
            if attempt + 1 < attempts:
                delay = self.settings.api_backoff_seconds * 2**attempt
                log.warning("%s; retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
        raise error

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        return await self.request("GET", path(api_version, kind, namespace, name), ok_missing=True)

    async def list(
        self, api_version: str, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> list[dict]:
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items())
        body = await self.request(
            "GET",
            path(api_version, kind, namespace),
            params={"labelSelector": selector} if selector else None,
            ok_missing=True,
        )
        items = (body or {}).get("items") or []
        # Filter here too: a label selector is a request, not a guarantee, for every server.
        return [
            i
            for i in items
            if all((i.get("metadata", {}).get("labels") or {}).get(k) == v for k, v in (labels or {}).items())
        ]

    async def create(self, obj: dict) -> dict:
        meta = obj["metadata"]
        url = path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return await self.request("POST", url, obj, params={"fieldManager": FIELD_MANAGER}) or {}

    async def apply(self, obj: dict) -> dict:
        """Server-side apply of the fields in ``obj`` (ours); other managers' fields survive.

        A real API server creates the object on apply; a server that answers 404 instead gets a
        plain create, so the call means "make it so" against both.
        """
        params = {"fieldManager": FIELD_MANAGER, "force": "true"}
        try:
            out = await self.request(
                "PATCH", obj_path(obj), obj, params=params, content_type="application/apply-patch+yaml"
            )
            return out or {}
        except ApiError as exc:
            if exc.status != 404:
                raise
        try:
            return await self.create(obj)
        except ApiError as exc:
            if exc.status != 409:  # created meanwhile (or by our own earlier attempt): apply again
                raise
        return (
            await self.request("PATCH", obj_path(obj), obj, params=params, content_type="application/apply-patch+yaml")
            or {}
        )

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
        out = await self.request("DELETE", path(api_version, kind, namespace, name), body, ok_missing=True)
        return out is not None

    async def patch_status(self, obj: dict, status: dict) -> None:
        await self.request(
            "PATCH", obj_path(obj, "status"), {"status": status}, content_type="application/merge-patch+json"
        )


async def _reason(resp: aiohttp.ClientResponse) -> str:
    try:
        body = await resp.json(content_type=None)
        return str(body.get("reason") or body.get("message") or resp.reason)[:200]
    except Exception:  # noqa: BLE001 - any undecodable error body
        return str(resp.reason)
