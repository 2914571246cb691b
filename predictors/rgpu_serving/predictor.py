"""The base every reflector-gpu predictor extends: a ``kserve.Model`` plus Reflector routes.

A predictor loads its model in ``load_model`` (failures are kept as the not-ready reason rather
than crashing the process, so the local mode keeps serving the other predictors), exposes the
Reflector HTTP routes through ``router()``, and answers KServe's V1/V2 protocol in ``predict``.
"""

from __future__ import annotations

import abc
import json
import logging
from typing import Any

import kserve
from fastapi import APIRouter

from .batching import Admission
from .errors import ApiError, unavailable
from .fetch import UrlPolicy
from .settings import ServingSettings

log = logging.getLogger("rgpu.predictor")


def v1_instances(payload: Any, shape: str) -> list:
    """The non-empty ``instances`` of a KServe V1 body (parsed here when KServe hands over raw
    bytes), or 400 showing the expected ``shape``."""
    if isinstance(payload, (bytes, str)):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise ApiError(400, f"request body is not JSON: {exc}") from exc
    instances = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(instances, list) or not instances:
        raise ApiError(400, f"expected {shape}")
    return instances


class ReflectorPredictor(kserve.Model, abc.ABC):
    def __init__(self, name: str, settings: ServingSettings):
        super().__init__(name)
        self.settings = settings
        self.load_error: str | None = None
        #: Shutting down: readiness reads answer 503, requests are still served (shutdown.py).
        self.draining = False
        self.admission = Admission(settings.max_pending_requests, settings.retry_after_s)
        #: What user-supplied URLs may reach (SSRF guard), for predictors that fetch or upload.
        self.url_policy = UrlPolicy.from_settings(settings)

    @abc.abstractmethod
    def load_model(self) -> None:
        """Load weights; raise with a message a user can act on when that is impossible."""

    @abc.abstractmethod
    def router(self) -> APIRouter:
        """The Reflector contract routes this predictor serves."""

    def priority_router(self) -> APIRouter | None:
        """Routes registered BEFORE KServe's own, for a path both claim (e.g. the OpenAI model list
        on ``GET /v1/models``, which KServe's V1 protocol also serves). None for most predictors."""
        return None

    def load(self) -> bool:
        try:
            self.load_model()
        except Exception as exc:  # reported through readiness, not a crash
            self.load_error = f"{type(exc).__name__}: {exc}"
            self.ready = False
            log.error("model %s failed to load: %s", self.name, self.load_error)
            return False
        self.load_error = None
        self.ready = True
        log.info("model %s ready", self.name)
        return True

    def start_draining(self) -> None:
        """Readiness probes fail from now on; requests that still arrive are served (``ready``
        stays as it is: KServe's own V1/V2 routes refuse a model that is not ready)."""
        self.draining = True

    def require_ready(self) -> None:
        if not self.ready:
            reason = self.load_error or "the model is still loading"
            raise unavailable(f"model '{self.name}' is not ready: {reason}", self.settings.retry_after_s)
