"""How the local mode builds the translator: the configured model (no weights ship), on CPU.

No translation weights are packaged: set ``REFLECTOR_GPU_TRANSLATOR_MODEL`` to a model
directory (or a hub name, with network access). Without one the predictor reports not-ready
with the reason while the other predictors keep serving.
"""

from __future__ import annotations

from rgpu_local.devices import cpu_unless_configured
from rgpu_serving.predictor import Predictor
from rgpu_serving.settings import ServingSettings

from .predictor import build_predictor
from .settings import TranslatorSettings


def build(settings: ServingSettings) -> Predictor:
    translator = cpu_unless_configured(TranslatorSettings())
    return build_predictor("translator", settings=settings, translator=translator)
