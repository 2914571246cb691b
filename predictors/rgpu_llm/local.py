"""How the local mode builds the LLM predictor: packaged SmolLM2-135M-Instruct (unless a model is
configured), on CPU unless told otherwise."""

from __future__ import annotations

from rgpu_local.devices import cpu_unless_configured
from rgpu_local.llm_weights import smollm2_dir
from rgpu_serving.predictor import Predictor
from rgpu_serving.settings import ServingSettings

from .predictor import build_predictor
from .settings import LLMSettings


def build(settings: ServingSettings) -> Predictor:
    llm = cpu_unless_configured(LLMSettings())
    return build_predictor("llm", settings=settings, llm=llm, packaged=smollm2_dir)
