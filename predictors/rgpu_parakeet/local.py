"""How the local mode builds the Parakeet predictor.

No Parakeet weights ship on PyPI: set ``REFLECTOR_GPU_PARAKEET_MODEL`` to a ``.nemo`` file (or a
directory holding one); without it the hub name ``nvidia/parakeet-tdt-0.6b-v2`` is tried, which
needs network access (offline, the predictor answers 503 with the reason). CPU unless told otherwise.
"""

from __future__ import annotations

from rgpu_local.devices import cpu_unless_configured
from rgpu_serving.predictor import Predictor
from rgpu_serving.settings import ServingSettings

from .engine import DEFAULT_HUB_MODEL
from .predictor import build_predictor
from .settings import ParakeetSettings


def build(settings: ServingSettings) -> Predictor:
    parakeet = cpu_unless_configured(ParakeetSettings())
    return build_predictor("parakeet", settings=settings, parakeet=parakeet, hub_default=DEFAULT_HUB_MODEL)
