"""Bearer-key authentication as a pure ASGI middleware.

Keys come from ``REFLECTOR_GPU_APIKEY`` (comma-separated) and/or ``REFLECTOR_GPU_APIKEY_FILE``
(a file, or a directory of files as a mounted Secret is). The file is re-read when it changes,
so a rotated Secret is picked up without a restart. Several keys are valid at once. Comparison
is constant-time and keys are never logged.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

import rgpu_contract as contract


class AuthConfigError(RuntimeError):
    """Raised at start-up when no key is configured and auth is not explicitly disabled."""


def parse_keys(text: str) -> list[str]:
    """Split a key list written one per line and/or comma-separated."""
    return [k.strip() for line in text.splitlines() for k in line.split(",") if k.strip()]


def _key_files(path: Path) -> list[Path]:
    if path.is_dir():
        # A mounted Secret has one file per key plus hidden ..data symlinks; skip the latter.
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [path] if path.exists() else []


class KeyStore:
    """The set of accepted keys, refreshed from the key file when its content changes."""

    def __init__(self, env_keys: Iterable[str], key_file: Path | None, refresh_s: float = 2.0):
        self._env_keys = [k for k in env_keys if k]
        self._key_file = key_file
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._checked_at = 0.0
        self._signature: tuple[tuple[str, int, int], ...] = ()
        self._keys: tuple[bytes, ...] = ()
        self._reload(force=True)

    def _file_signature(self) -> tuple[tuple[str, int, int], ...]:
        if self._key_file is None:
            return ()
        sig = []
        for p in _key_files(self._key_file):
            st = p.stat()
            sig.append((str(p), st.st_mtime_ns, st.st_size))
        return tuple(sig)

    def _reload(self, force: bool = False) -> None:
        signature = self._file_signature()
        if not force and signature == self._signature:
            return
        keys = list(self._env_keys)
        if self._key_file is not None:
            for p in _key_files(self._key_file):
                keys.extend(parse_keys(p.read_text()))
        self._keys = tuple(dict.fromkeys(k.encode() for k in keys))
        self._signature = signature

    @property
    def count(self) -> int:
        self._maybe_refresh()
        return len(self._keys)

    def _maybe_refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < self._refresh_s:
            return
        with self._lock:
            if now - self._checked_at >= self._refresh_s:
                try:
                    self._reload()
                except OSError:
                    pass  # keep the last good keys while a Secret update is half-written
                self._checked_at = now

    def verify(self, presented: str) -> bool:
        """Constant-time check against every key (no early exit that leaks which one matched)."""
        self._maybe_refresh()
        candidate = presented.encode()
        ok = False
        for key in self._keys:
            ok |= hmac.compare_digest(candidate, key)
        return ok


#: A browser cannot set headers on a WebSocket: OpenAI's SDKs send the key as a subprotocol.
WS_KEY_PROTOCOL_PREFIX = "openai-insecure-api-key."


def is_open_path(path: str, open_paths: frozenset[str] = contract.OPEN_PATHS) -> bool:
    """Probes, KServe's model-readiness reads and ``open_paths`` stay open (kubelet, Prometheus)."""
    return path in open_paths or contract.is_readiness_path(path)


def presented_key(scope: Scope) -> tuple[str | None, bool]:
    """``(key, something_was_sent)`` from ``Authorization: Bearer`` or, on a WebSocket, the
    ``openai-insecure-api-key.<key>`` subprotocol."""
    header = ""
    protocols = ""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            header = value.decode("latin-1")
        elif name == b"sec-websocket-protocol":
            protocols = value.decode("latin-1")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), True
    if scope["type"] == "websocket":
        for proto in (p.strip() for p in protocols.split(",")):
            if proto.startswith(WS_KEY_PROTOCOL_PREFIX) and len(proto) > len(WS_KEY_PROTOCOL_PREFIX):
                return proto[len(WS_KEY_PROTOCOL_PREFIX) :], True
    return None, bool(header)


class BearerAuthMiddleware:
    """401 + ``WWW-Authenticate: Bearer`` for every non-open HTTP route and every WebSocket
    upgrade without a valid key. A refused upgrade is answered 401 before any message (ASGI's
    WebSocket denial response), or closed with 1008 where the server cannot send one."""

    def __init__(self, app: ASGIApp, keys: KeyStore | None, open_paths: frozenset[str] = contract.OPEN_PATHS):
        self.app = app
        self.keys = keys  # None: auth explicitly disabled
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.keys is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and is_open_path(scope["path"], self.open_paths):
            await self.app(scope, receive, send)
            return
        key, sent = presented_key(scope)
        if key is not None and self.keys.verify(key):
            await self.app(scope, receive, send)
            return
        detail = "invalid API key" if sent else "missing API key"
        body = json.dumps({"detail": f"{detail}: send 'Authorization: Bearer <key>'"}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Bearer realm="reflector-gpu"'),
        ]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": detail})


def keystore_from_settings(apikey: str, apikey_file: Path | None, auth_disabled: bool) -> KeyStore | None:
    """Build the key store, refusing to run open unless auth is explicitly disabled."""
    if auth_disabled:
        return None
    store = KeyStore(parse_keys(apikey), apikey_file)
    if store.count == 0:
        where = f"{contract.ENV_API_KEY}" + (
            f" or the file {apikey_file}" if apikey_file else f" or {contract.ENV_API_KEY_FILE}"
        )
        raise AuthConfigError(
            f"no API key configured: set {where}, "
            f"or set {contract.ENV_AUTH_DISABLED}=true to serve without authentication"
        )
    return store


__all__ = ["AuthConfigError", "BearerAuthMiddleware", "KeyStore", "keystore_from_settings", "parse_keys"]
