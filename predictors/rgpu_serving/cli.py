"""Process entry helpers shared by every predictor image and the local mode."""

from __future__ import annotations

import logging
import sys
from typing import Sequence

from .auth import AuthConfigError
from .logs import configure_logging
from .predictor import ReflectorPredictor
from .server import serve

log = logging.getLogger("rgpu")


def run_predictors(predictors: Sequence[ReflectorPredictor], host: str, port: int, banner: str | None = None) -> int:
    """Serve ``predictors``; exit code 2 with a clear message when the configuration is unsafe."""
    settings = predictors[0].settings
    configure_logging(settings.log_level, settings.log_format)
    try:
        serve(predictors, settings, host, port, banner=banner)
    except AuthConfigError as exc:
        print(f"reflector-gpu: refusing to start: {exc}", file=sys.stderr)
        return 2
    return 0
