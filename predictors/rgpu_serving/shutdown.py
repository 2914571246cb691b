"""Graceful shutdown for Kubernetes: readiness first, then stop accepting, then finish.

On SIGTERM the pod's endpoint is being removed while clients and proxies may still send to it.
So: readiness reads answer 503 at once (:class:`DrainingMiddleware`), requests that still
arrive are served for ``drain_s``; then uvicorn stops accepting and lets in-flight requests finish
within its graceful-shutdown timeout, and the process exits 0. SIGINT (Ctrl-C) and a second
SIGTERM skip the drain; a signal after that forces the exit.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Protocol

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

import rgpu_contract as contract

log = logging.getLogger("rgpu.shutdown")
_BODY = json.dumps({"detail": "shutting down"}).encode()


class Drainable(Protocol):
    draining: bool

    def start_draining(self) -> None: ...


class DrainingMiddleware:
    """503 for KServe's readiness reads once any predictor drains; every other route unchanged
    (liveness stays 200, or the kubelet would kill the pod mid-request)."""

    def __init__(self, app: ASGIApp, predictors: Sequence[Drainable]):
        self.app = app
        self.predictors = predictors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not contract.is_readiness_path(scope["path"])
            or not any(p.draining for p in self.predictors)
        ):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": _BODY})


class DrainingServer(uvicorn.Server):
    """uvicorn with a drain-first exit. uvicorn routes SIGTERM/SIGINT to ``handle_exit`` while it
    serves; ``should_exit`` / ``force_exit`` are its public switches."""

    def __init__(self, config: uvicorn.Config, predictors: Sequence[Drainable], drain_s: float):
        super().__init__(config)
        self.predictors = predictors
        self.drain_s = drain_s
        self._timer: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:  # a signal after we began closing: stop now
            self.force_exit = True
            return
        for predictor in self.predictors:
            predictor.start_draining()
        if sig == signal.SIGTERM and self.drain_s > 0 and self._timer is None:
            log.info("SIGTERM: readiness is false; serving for %.1f s more, then closing", self.drain_s)
            self._timer = threading.Timer(self.drain_s, self._close)
            self._timer.daemon = True
            self._timer.start()
        else:
            self._close()

    def _close(self) -> None:
        log.info("closing: no new connections; waiting for in-flight requests")
        self.should_exit = True
