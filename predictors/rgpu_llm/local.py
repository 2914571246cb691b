"""How the local mode builds the LLM predictor: packaged SmolLM2-135M-Instruct on CPU."""

from __future__ import annotations

import logging

from rgpu_serving.predictor import ReflectorPredictor
from rgpu_serving.settings import ServingSettings

from .predictor import build_predictor
from .settings import LLMSettings

log = logging.getLogger("rgpu.local")


def build(settings: ServingSettings) -> ReflectorPredictor:
    from .packaged import smollm2_dir

    llm = LLMSettings()
    if not llm.model:
        try:
            llm.model = str(smollm2_dir())
        except FileNotFoundError as exc:
            log.error("%s", exc)
            llm.model = "/nonexistent/smollm2-135m-instruct"  # reported as not-ready with the reason
    if llm.device == "auto":
        llm.device = "cpu"
    return build_predictor("llm", settings=settings, llm=llm)
