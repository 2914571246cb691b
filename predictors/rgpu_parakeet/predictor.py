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
    hub_default: str = "",
) -> TranscriptionPredictor:
    engine = ParakeetEngine(parakeet or ParakeetSettings(), model_dir=model_dir, hub_default=hub_default)
    return TranscriptionPredictor(name, engine, settings or ServingSettings())
