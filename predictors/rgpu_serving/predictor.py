"""The KServe adapter every predictor extends: a ``kserve.Model`` plus Reflector routes.

A predictor loads its engine in ``load_model`` (a failure is kept as the not-ready reason instead
of crashing the process, so the local mode keeps serving the others), exposes the Reflector HTTP
routes through ``router()``, and answers KServe's V1/V2 protocol through ``predict``, which
parses the body once (:mod:`.protocol`) and hands typed instances to ``predict_v1`` /
``predict_v2``.
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import kserve
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

import rgpu_contract as contract

from .admission import Admission
from .errors import ApiError, unavailable
from .fetch import UrlPolicy
from .metrics import MODEL_LOAD
from .protocol import InferRequest, InferResponse, parse_v1
from .settings import ServingSettings
from .uploads import multipart_form

log = logging.getLogger("rgpu.predictor")
#: The ``route`` label of KServe's own V1/V2 inference routes in the admission metrics.
KSERVE_ROUTE = "kserve"


class Predictor(kserve.Model, abc.ABC):  # type: ignore[misc]
    #: The V1 instance model, and the shape shown when a body does not fit it.
    v1_instance: ClassVar[type[BaseModel] | None] = None
    v1_example: ClassVar[str] = "{'instances': [...]}"

    #: (max in flight, max queued) when the settings name neither (docs/scaling.md).
    default_limits: ClassVar[tuple[int, int]] = (4, 16)
    #: What the requests are called in the 503 message.
    admission_what: ClassVar[str] = "requests"

    def __init__(self, name: str, settings: ServingSettings):
        super().__init__(name)
        self.settings = settings
        self.load_error: str | None = None
        #: Shutting down: readiness reads answer 503, requests are still served (shutdown.py).
        self.draining = False
        self.admission = self.make_admission(*self.admission_defaults())
        #: What user-supplied URLs may reach (SSRF guard), for predictors that fetch or upload.
        self.url_policy = UrlPolicy.from_settings(settings)

    def admission_defaults(self) -> tuple[int, int]:
        """(max in flight, max queued) when the settings name neither."""
        return self.default_limits

    def make_admission(self, default_in_flight: int, default_queued: int) -> Admission:
        """The admission bounds from the settings, else these defaults."""
        if self.settings.max_pending_requests is not None:
            log.warning(
                "%s is deprecated: set %s and %s (docs/scaling.md)",
                contract.ENV_MAX_PENDING_REQUESTS,
                contract.ENV_MAX_IN_FLIGHT,
                contract.ENV_MAX_QUEUED,
            )
        in_flight, queued = self.settings.admission_limits(default_in_flight, default_queued)
        log.info("%s: %d in flight, %d queued at most", self.name, in_flight, queued)
        return Admission(in_flight, queued, self.settings.retry_after_s, what=self.admission_what)

    @abc.abstractmethod
    def load_model(self) -> None:
        """Load weights; raise with a message a user can act on when that is impossible."""

    @abc.abstractmethod
    def router(self) -> APIRouter:
        """The Reflector contract routes this predictor serves."""

    def upload_router(self, large_fields: Mapping[str, int]) -> tuple[APIRouter, Any, Any]:
        """A router for routes taking uploads: the router, the admission gate and the streamed
        multipart form (``large_fields``: fields allowed above the usual field cap), as FastAPI
        dependencies."""
        form = multipart_form(self.settings, large_fields)
        return APIRouter(tags=[self.name]), Depends(self.gate()), Depends(form)

    def load(self) -> bool:
        started = time.perf_counter()
        try:
            self.load_model()
        except Exception as exc:  # reported through readiness, not a crash
            self.load_error = f"{type(exc).__name__}: {exc}"
            self.ready = False
            log.error("model %s failed to load: %s", self.name, self.load_error)
            return False
        finally:
            MODEL_LOAD.labels(self.name).set(time.perf_counter() - started)
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
            reason = f"{contract.MODEL_LOAD_FAILED}: {self.load_error}" if self.load_error else "it is still loading"
            raise unavailable(f"model '{self.name}' is not ready: {reason}", self.settings.retry_after_s)

    def gate(self) -> Callable[[Request], AsyncIterator[None]]:
        """A route dependency, listed first so it runs before the body is read: 503 unless the
        model is ready, then an admission slot held until the request ends (queued while all
        are taken, 503 when the queue is full too), counted under the route's template."""

        async def dependency(request: Request) -> AsyncIterator[None]:
            self.require_ready()
            route = getattr(request.scope.get("route"), "path", None) or request.url.path
            async with self.admission.admit(route):
                yield

        return dependency

    # ---- KServe V1 / V2 ------------------------------------------------------------------
    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> Any:
        self.require_ready()
        async with self.admission.admit(KSERVE_ROUTE):
            if isinstance(payload, InferRequest):
                return await self.predict_v2(payload)
            if self.v1_instance is None:
                raise ApiError(400, f"{self.name} does not serve the V1 protocol")
            return {"predictions": await self.predict_v1(parse_v1(payload, self.v1_instance, self.v1_example))}

    async def predict_v1(self, instances: list[Any]) -> list[Any]:
        raise ApiError(400, f"{self.name} does not serve the V1 protocol")

    async def predict_v2(self, request: InferRequest) -> InferResponse:
        raise ApiError(400, f"{self.name} does not serve the V2 protocol")


class Loadable(Protocol):
    def load(self) -> None: ...


E = TypeVar("E", bound=Loadable)


class EnginePredictor(Predictor, Generic[E]):
    """A predictor in front of one engine object (``rgpu_asr.Transcriber``, the diarizer, the
    translator, the LLM): loading the predictor loads the engine."""

    def __init__(self, name: str, engine: E, settings: ServingSettings):
        super().__init__(name, settings)
        self.engine = engine

    def load_model(self) -> None:
        self.engine.load()
