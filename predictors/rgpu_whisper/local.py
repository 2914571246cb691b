"""How the local mode builds the Whisper predictor: packaged base weights (unless a model is
configured), on CPU unless told otherwise."""

from __future__ import annotations

from rgpu_local.devices import cpu_unless_configured
from rgpu_local.models import whisper_base_dir
from rgpu_serving.predictor import Predictor
from rgpu_serving.settings import ServingSettings

from .predictor import build_predictor
from .settings import WhisperSettings


def build(settings: ServingSettings) -> Predictor:
    whisper = cpu_unless_configured(WhisperSettings())
    return build_predictor("whisper", settings=settings, whisper=whisper, packaged=whisper_base_dir)
