"""The Whisper predictor: the shared transcription routes with the faster-whisper engine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rgpu_serving.settings import ServingSettings
from rgpu_serving.transcription import TranscriptionPredictor

from .engine import WhisperEngine
from .settings import WhisperSettings


def build_predictor(
    name: str = "whisper",
    model_dir: str | None = None,
    settings: ServingSettings | None = None,
    whisper: WhisperSettings | None = None,
    packaged: Callable[[], Path] | None = None,
) -> TranscriptionPredictor:
    engine = WhisperEngine(whisper or WhisperSettings(), model_dir=model_dir, packaged=packaged)
    return TranscriptionPredictor(name, engine, settings or ServingSettings())
