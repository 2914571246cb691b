"""How the local mode builds the padding predictor (CPU, nothing to download)."""

from __future__ import annotations

from rgpu_serving.predictor import Predictor
from rgpu_serving.settings import ServingSettings

from .predictor import build_predictor


def build(settings: ServingSettings) -> Predictor:
    return build_predictor("padding", settings=settings)
