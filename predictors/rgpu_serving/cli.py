"""Process entry helpers shared by every predictor image and the local mode."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

import rgpu_contract as contract

from .auth import AuthConfigError
from .logs import configure_logging
from .predictor import Predictor
from .server import serve

log = logging.getLogger("rgpu")


def run_predictors(predictors: Sequence[Predictor], host: str, port: int, banner: str | None = None) -> int:
    """Serve ``predictors``; exit code 2 with a clear message when the configuration is unsafe."""
    settings = predictors[0].settings
    configure_logging(settings.log_level, settings.log_format)
    try:
        serve(predictors, settings, host, port, banner=banner)
    except AuthConfigError as exc:
        print(f"reflector-gpu: refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0


def kserve_main(
    default_name: str,
    build: Callable[[str, str], Predictor],
    argv: list[str] | None = None,
    description: str | None = None,
) -> int:
    """The KServe container entry point every predictor image runs.

    Takes KServe's own arguments (``--model_name``, ``--http_port``, ...: its documented
    ``model_server.parser``, as KServe's custom-predictor examples extend it) plus ``--model_dir``
    (where KServe mounted ``storageUri``) and ``--host``; ``build(name, model_dir)`` makes the
    predictor. In a container ``/metrics`` defaults to its own port (``METRICS_PORT``).
    """
    from kserve import model_server

    os.environ.setdefault(contract.ENV_METRICS_PORT, str(contract.METRICS_PORT))
    parser = argparse.ArgumentParser(parents=[model_server.parser], description=description)
    parser.add_argument("--model_dir", default=contract.MODEL_DIR, help="directory KServe mounted the model in")
    parser.add_argument("--host", default="0.0.0.0")
    args, _ = parser.parse_known_args(argv)
    name = args.model_name if args.model_name != "model" else default_name
    return run_predictors([build(name, args.model_dir)], args.host, args.http_port or contract.HTTP_PORT)
