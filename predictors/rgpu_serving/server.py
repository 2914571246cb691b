"""Serving predictors with KServe's model server, plus the Reflector routes on the same app.

KServe's ``ModelServer`` binds 0.0.0.0 and registers only ready models; we build its REST server
ourselves so the local mode can bind ``HOST`` and a predictor whose model failed to load stays
registered as not-ready (503 with the reason) instead of taking the process down.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from fastapi import FastAPI
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer

from .auth import BearerAuthMiddleware, keystore_from_settings
from .errors import install_error_handlers
from .metrics import MetricsMiddleware
from .predictor import ReflectorPredictor
from .settings import ServingSettings
from .shutdown import DrainingMiddleware, GracefulShutdown

log = logging.getLogger("rgpu.server")


def kserve_app() -> FastAPI:
    """KServe's module-level FastAPI app that its REST server serves."""
    from kserve import model_server

    return model_server.app


def build_app(predictors: Sequence[ReflectorPredictor], settings: ServingSettings) -> tuple[FastAPI, RESTServer]:
    """Register the predictors, KServe's endpoints and ours on one app; auth wraps everything."""
    keys = keystore_from_settings(settings.apikey, settings.apikey_file, settings.auth_disabled)
    repository = ModelRepository()
    for p in predictors:
        repository.update(p)
    dataplane = DataPlane(model_registry=repository)
    rest = RESTServer(
        "kserve.model_server:app",
        dataplane,
        ModelRepositoryExtension(model_registry=repository),
        http_port=8080,
        grace_period=settings.shutdown_grace_s,
    )
    app = kserve_app()
    for p in predictors:  # routes that must match before KServe's (FastAPI matches in registration order)
        early = p.priority_router()
        if early is not None:
            app.include_router(early)
    rest.create_application()
    for p in predictors:
        app.include_router(p.router())
    install_error_handlers(app)
    app.add_middleware(BearerAuthMiddleware, keys=keys)
    app.add_middleware(DrainingMiddleware, predictors=predictors)
    app.add_middleware(MetricsMiddleware)
    if keys is None:
        log.warning("authentication is DISABLED (REFLECTOR_GPU_AUTH_DISABLED=true): every route is open")
    else:
        log.info("authentication enabled with %d key(s)", keys.count)
    return app, rest


def serve(
    predictors: Sequence[ReflectorPredictor], settings: ServingSettings, host: str, port: int, banner: str | None = None
) -> None:
    """Load every predictor, then serve until SIGTERM/SIGINT (graceful: see shutdown.py)."""
    app, rest = build_app(predictors, settings)
    for p in predictors:
        p.load()
    if banner:
        print(banner, file=sys.stderr, flush=True)
    rest.config.host = host
    rest.config.port = port
    # uvicorn routes SIGTERM/SIGINT to Server.handle_exit while it serves: ours drains first.
    # Between loading and serving, a no-op handler; uvicorn restores it when it stops.
    rest._server.handle_exit = GracefulShutdown(rest._server, predictors, settings.shutdown_drain_s)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    asyncio.run(rest._server.serve())
