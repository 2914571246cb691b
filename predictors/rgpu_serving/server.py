"""Serving a set of predictors: load them, then run our app under uvicorn until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

import uvicorn

from .app import create_app
from .auth import keystore_from_settings
from .metrics import serve_metrics
from .predictor import Predictor
from .settings import ServingSettings
from .shutdown import DrainingServer


def serve(
    predictors: Sequence[Predictor], settings: ServingSettings, host: str, port: int, banner: str | None = None
) -> None:
    """Load every predictor, then serve until SIGTERM/SIGINT (drain first: see shutdown.py)."""
    keys = keystore_from_settings(settings.apikey, settings.apikey_file, settings.auth_disabled)
    app = create_app(predictors, settings, keys)
    for p in predictors:
        p.load()
    if settings.metrics_port:
        serve_metrics(settings.metrics_port, host)
    if banner:
        print(banner, file=sys.stderr, flush=True)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # our logging (logs.py) is configured already
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        timeout_keep_alive=65,
    )
    server = DrainingServer(config, predictors, settings.shutdown_drain_s)
    # uvicorn takes SIGTERM/SIGINT while it serves and restores these handlers when it stops: a
    # late signal during the final cleanup is then ignored rather than killing the exit path.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    asyncio.run(server.serve())
