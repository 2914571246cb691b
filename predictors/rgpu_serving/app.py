"""Our HTTP app: the predictors' Reflector routes and KServe's V1/V2 protocol on one FastAPI app.

We own the app instead of extending KServe's module-level one: KServe (checked at 0.21.0) has no
documented app-factory hook, its ``RESTServer`` binds 0.0.0.0 and builds its app from an import
string, and ``ModelServer.start()`` installs SIGTERM/SIGINT handlers that stop at once, which
would defeat our drain-first shutdown (see ``kserve/model_server.py``, ``register_signal_handler``
and ``stop``). What we reuse is public: ``ModelRepository``, ``DataPlane`` and the router
builders ``register_v1_endpoints`` / ``register_v2_endpoints`` (``kserve.protocol.rest``), so
KServe's protocol, health and readiness routes behave exactly as in its own server.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request, Response
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.v1_endpoints import register_v1_endpoints
from kserve.protocol.rest.v2_endpoints import register_v2_endpoints

import rgpu_contract as contract

from .auth import BearerAuthMiddleware, KeyStore
from .errors import install_error_handlers
from .metrics import MetricsMiddleware, exposition
from .predictor import Predictor
from .settings import ServingSettings
from .shutdown import DrainingMiddleware

log = logging.getLogger("rgpu.app")


async def _metrics(request: Request) -> Response:
    body, content_type = exposition(request.headers.get("accept"))
    return Response(content=body, headers={"content-type": content_type})


def open_paths(settings: ServingSettings) -> frozenset[str]:
    """Paths served without a key: probes, and ``/metrics`` only where it is on the API port;
    ``/docs`` and ``/openapi.json`` too when the docs are explicitly ``open`` (the local mode)."""
    paths = set(contract.OPEN_PATHS)
    if settings.metrics_port:
        paths.discard(contract.METRICS_PATH)
    if settings.api_docs == "open":
        paths |= {"/docs", "/openapi.json"}
    return frozenset(paths)


def create_app(predictors: Sequence[Predictor], settings: ServingSettings, keys: KeyStore | None) -> FastAPI:
    """One app for ``predictors``: their routes first (they win a path KServe also claims, e.g.
    the LLM's OpenAI ``GET /v1/models``), then KServe's; auth, draining and metrics around all."""
    docs = settings.api_docs != "off"
    app = FastAPI(
        title="reflector-gpu",
        summary="Reflector's GPU service: transcription, diarization, translation, LLM, padding",
        docs_url="/docs" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        redoc_url=None,
    )
    repository = ModelRepository()
    for p in predictors:
        repository.update(p)
        app.include_router(p.router())
    dataplane = DataPlane(model_registry=repository)
    extension = ModelRepositoryExtension(model_registry=repository)
    app.add_api_route("/", dataplane.live, methods=["GET"], include_in_schema=False)
    if not settings.metrics_port:
        app.add_api_route(contract.METRICS_PATH, _metrics, methods=["GET"], include_in_schema=False)
    register_v1_endpoints(app, dataplane, extension)
    register_v2_endpoints(app, dataplane, extension)
    by_name = {p.name: p for p in predictors}
    install_error_handlers(
        app, settings.retry_after_s, lambda name: by_name[name].load_error if name in by_name else None
    )
    app.add_middleware(BearerAuthMiddleware, keys=keys, open_paths=open_paths(settings))
    app.add_middleware(DrainingMiddleware, predictors=predictors)
    app.add_middleware(MetricsMiddleware)
    if keys is None:
        log.warning("authentication is DISABLED (REFLECTOR_GPU_AUTH_DISABLED=true): every route is open")
    else:
        log.info("authentication enabled with %d key(s)", keys.count)
    return app
