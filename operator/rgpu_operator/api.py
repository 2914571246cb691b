"""The operator's Kubernetes access: lightkube's ``AsyncClient`` plus what the reconciler needs
around it, nothing more.

Why lightkube (see docs/operator.md): it is async, typed (``py.typed``, so the operator passes
``mypy --strict``), speaks server-side apply (``PatchType.APPLY`` with ``force``), reads the
kubeconfig or the in-cluster service account itself (re-reading a rotated token), and models
custom kinds without code generation. kr8s has no server-side apply; kubernetes_asyncio is
generated, untyped and needs plural names for every custom kind.

Added here: every call is retried with exponential backoff on 429/5xx/timeouts; what still fails
raises :class:`ApiError` carrying the server's status, reason and message (admission webhooks
explain a refusal in the message; it never holds a body the operator sent), and plain dicts in
and out so the pure builders never see client types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx2
import lightkube
from lightkube.types import CascadeType, PatchType

from . import FIELD_MANAGER
from .kinds import namespaced, resource
from .settings import Settings

log = logging.getLogger(__name__)

#: Statuses worth another attempt: throttled, or the server (or a webhook) failed.
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MESSAGE_MAX = 1024
T = TypeVar("T")


class ApiError(Exception):
    """A failed API call: HTTP status (0: no answer), reason and the server's message."""

    def __init__(self, status: int, reason: str, message: str, what: str):
        self.status = status
        self.reason = reason
        self.message = message[:MESSAGE_MAX]
        super().__init__(f"{what}: {status} {reason}: {self.message}" if message else f"{what}: {status} {reason}")

    @property
    def transient(self) -> bool:
        return self.status == 0 or self.status in RETRY_STATUS

    @property
    def not_found(self) -> bool:
        return self.status == 404


def _error(exc: Exception, what: str) -> ApiError:
    if isinstance(exc, lightkube.ApiError):
        st = exc.status
        return ApiError(int(st.code or exc.response.status_code), str(st.reason or ""), str(st.message or ""), what)
    if isinstance(exc, httpx2.HTTPStatusError):
        response = exc.response
        reason, message = response.reason_phrase, ""
        with contextlib.suppress(Exception):  # a body that is not a Status object
            body = response.json()
            if isinstance(body, dict):
                reason = str(body.get("reason") or reason)
                message = str(body.get("message") or "")
        return ApiError(response.status_code, reason, message, what)
    return ApiError(0, type(exc).__name__, str(exc), what)


def plain(obj: Any) -> dict[str, Any]:
    """A lightkube object (generated model or generic dict) as a plain dict."""
    if obj is None:
        return {}
    out = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return dict(out)


def _ref(obj: Mapping[str, Any]) -> tuple[str, str, str | None, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]


class Kube:
    """Generic verbs on dict manifests. Create it inside the running event loop."""

    def __init__(self, settings: Settings, client: lightkube.AsyncClient | None = None):
        self.settings = settings
        self._client = client
        self._closed = False

    def _new_client(self) -> lightkube.AsyncClient:
        return lightkube.AsyncClient(
            timeout=httpx2.Timeout(self.settings.request_timeout_seconds), field_manager=FIELD_MANAGER
        )

    async def close(self) -> None:
        """Close the shared client. A call made later (a timer finishing during shutdown) uses a
        short-lived client of its own instead of a closed one."""
        self._closed = True
        if self._client is not None:
            await self._client.close()

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[lightkube.AsyncClient]:
        if self._closed:
            client = self._new_client()
            try:
                yield client
            finally:
                await client.close()
            return
        if self._client is None:
            self._client = self._new_client()
        yield self._client

    async def _call(self, what: str, call: Callable[[lightkube.AsyncClient], Awaitable[T]]) -> T:
        attempts = max(1, self.settings.api_attempts)
        for attempt in range(attempts):
            try:
                async with self._session() as client:
                    return await call(client)
            except (lightkube.ApiError, httpx2.HTTPError) as exc:
                error = _error(exc, what)
            except KeyError as exc:
                # lightkube 1.0 reads the Content-Type header of an error response unguarded; an
                # error without one surfaces as this KeyError, the HTTP error as its context.
                if not isinstance(exc.__context__, httpx2.HTTPStatusError):
                    raise
                error = _error(exc.__context__, what)
            if not error.transient or attempt + 1 == attempts:
                raise error
            delay = self.settings.api_backoff_seconds * 2**attempt
            log.warning("%s; retrying in %.2fs", error, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        res = resource(api_version, kind)
        try:
            obj = await self._call(f"GET {kind} {name}", lambda c: c.get(res, name, namespace=namespace))
        except ApiError as exc:
            if exc.not_found:
                return None
            raise
        return plain(obj)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
        fields: Mapping[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Objects of a kind in ``namespace`` (None: every namespace). Selectors are sent and
        applied again here: a selector is a request, and some servers ignore it."""
        res = resource(api_version, kind)
        where = namespace if namespace is not None or not namespaced(api_version, kind) else "*"

        async def collect(client: lightkube.AsyncClient) -> list[dict[str, Any]]:
            items = client.list(
                res, namespace=where, labels=dict(labels or {}) or None, fields=dict(fields or {}) or None
            )
            return [plain(item) async for item in items]

        try:
            found = await self._call(f"LIST {kind}", collect)
        except ApiError as exc:
            if exc.not_found:  # the kind is not served (e.g. no Gateway API installed)
                return []
            raise
        return [obj for obj in found if _matches(obj, labels or {}, fields or {})]

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        api_version, kind, _, name = _ref(obj)
        res = resource(api_version, kind)
        body = res.from_dict(dict(obj))
        out = await self._call(f"POST {kind} {name}", lambda c: c.create(body))
        return plain(out)

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply of ``obj`` as our field manager (``force``: our fields are ours).
        Creates the object when it does not exist; fields we stop setting are removed."""
        api_version, kind, namespace, name = _ref(obj)
        res = resource(api_version, kind)
        body = dict(obj)
        out = await self._call(
            f"APPLY {kind} {name}",
            lambda c: c.patch(
                res,
                name,
                body,
                namespace=namespace,
                patch_type=PatchType.APPLY,
                field_manager=FIELD_MANAGER,
                force=True,
            ),
        )
        return plain(out)

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete (background propagation); False when it was already gone."""
        res = resource(api_version, kind)
        try:
            await self._call(
                f"DELETE {kind} {name}",
                lambda c: c.delete(res, name, namespace=namespace, cascade=CascadeType.BACKGROUND),
            )
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def serves(self, api_version: str, kind: str) -> bool:
        """API discovery: does the server serve ``kind`` in ``api_version`` (``group/version``)?
        ``GET /apis/<group>/<version>`` is open to every authenticated client (``system:discovery``),
        so a namespaced operator can ask too. 404: the group/version is not served."""

        async def fetch(client: lightkube.AsyncClient) -> dict[str, Any]:
            # lightkube has no discovery call; its httpx client carries the cluster's base URL and auth.
            http = client._client._client
            response = await http.get(f"/apis/{api_version}")
            response.raise_for_status()
            return dict(response.json())

        try:
            found = await self._call(f"GET /apis/{api_version}", fetch)
        except ApiError as exc:
            if exc.not_found:
                return False
            raise
        return any(r.get("kind") == kind and "/" not in r.get("name", "") for r in found.get("resources") or [])

    async def patch_status(self, obj: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """JSON merge patch of the status subresource (``None`` values remove keys)."""
        api_version, kind, namespace, name = _ref(obj)
        res = resource(api_version, kind)
        body = {"status": dict(status)}
        await self._call(
            f"PATCH {kind} {name}/status",
            lambda c: c.patch(res.Status, name, body, namespace=namespace, patch_type=PatchType.MERGE),
        )


def _matches(obj: Mapping[str, Any], labels: Mapping[str, str], fields: Mapping[str, str]) -> bool:
    have = (obj.get("metadata") or {}).get("labels") or {}
    if any(have.get(k) != v for k, v in labels.items()):
        return False
    for path, want in fields.items():
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node != want:
            return False
    return True
