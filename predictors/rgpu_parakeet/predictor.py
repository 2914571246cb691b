"""The Parakeet predictor: the shared transcription routes with the NeMo engine."""

from __future__ import annotations

from rgpu_serving.settings import ServingSettings
from rgpu_serving.transcription import TranscriptionPredictor

from .engine import ParakeetEngine
from .settings import ParakeetSettings


def build_predictor(
    name: str = "parakeet",
    model_dir: str | None = None,
    settings: ServingSettings | None = None,
    parakeet: ParakeetSettings | None = None,
) -> TranscriptionPredictor:
    settings = settings or ServingSettings()
    parakeet = parakeet or ParakeetSettings()
    if not parakeet.model and settings.model:  # the operator's REFLECTOR_GPU_MODEL
        parakeet.model = settings.model
    engine = ParakeetEngine(parakeet, model_dir=model_dir)
    return TranscriptionPredictor(name, engine, settings)
