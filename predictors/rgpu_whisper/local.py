"""How the local mode builds the Whisper predictor: packaged base weights, CPU."""

from __future__ import annotations

import logging

from rgpu_serving.predictor import ReflectorPredictor
from rgpu_serving.settings import ServingSettings

from .predictor import build_predictor
from .settings import WhisperSettings

log = logging.getLogger("rgpu.local")


def build(settings: ServingSettings) -> ReflectorPredictor:
    from rgpu_local.models import whisper_base_dir

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
