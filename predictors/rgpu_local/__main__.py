"""``reflector-gpu-local``: the whole service on one port, on CPU, no Kubernetes.

Every available predictor's routes are served by one process; a predictor whose model cannot
be loaded answers 503 with the reason while the others keep working.
"""

from __future__ import annotations

import logging
import os
import sys

from rgpu_serving.cli import run_predictors
from rgpu_serving.settings import ListenSettings, ServingSettings

log = logging.getLogger("rgpu.local")


def _whisper(settings: ServingSettings):
    from rgpu_whisper.predictor import build_predictor
    from rgpu_whisper.settings import WhisperSettings

    from .models import whisper_base_dir

    whisper = WhisperSettings()
    if not whisper.model:
        try:
            whisper.model = str(whisper_base_dir())
        except FileNotFoundError as exc:
            log.error("%s", exc)
            whisper.model = "/nonexistent/whisper-base"  # reported as not-ready with the reason
    if whisper.device == "auto":
        whisper.device = "cpu"
    return build_predictor("whisper", settings=settings, whisper=whisper)


#: Predictors the local mode composes; later engines add themselves here.
PREDICTORS = {"whisper": _whisper}


def main() -> int:
    listen = ListenSettings()
    settings = ServingSettings()
    wanted = [p.strip() for p in os.environ.get("REFLECTOR_GPU_LOCAL_PREDICTORS", ",".join(PREDICTORS)).split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PREDICTORS]
    if unknown:
        print(f"reflector-gpu: unknown predictors {unknown}; available: {', '.join(PREDICTORS)}", file=sys.stderr)
        return 2
    predictors = [PREDICTORS[name](settings) for name in wanted]
    base = f"http://{listen.host}:{listen.port}"
    auth = (
        "authentication is DISABLED"
        if settings.auth_disabled
        else "send 'Authorization: Bearer <key>' with a key from REFLECTOR_GPU_APIKEY"
    )
    banner = (
        f"reflector-gpu local mode: {base}  ({auth})\n"
        f"  try: curl -H 'Authorization: Bearer <key>' -F file=@recording.wav {base}/v1/audio/transcriptions\n"
        f"  readiness: {base}/v2/health/ready   metrics: {base}/metrics"
    )
    return run_predictors(predictors, listen.host, listen.port, banner=banner)


if __name__ == "__main__":
    sys.exit(main())
