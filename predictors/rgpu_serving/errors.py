"""HTTP errors in the contract's shape: JSON ``{"detail": "..."}``, never a 500 for bad input.

The core and the engines raise :mod:`rgpu_asr.errors` kinds; this module is the one place that
maps them (and KServe's own errors) to status codes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

import rgpu_contract as contract
from rgpu_asr.diarization import DiarizationFailed, DiarizationTimedOut
from rgpu_asr.errors import CoreError, InvalidInput, ModelUnavailable, TooLarge, UndecodableAudio

log = logging.getLogger("rgpu.errors")

#: Core error kind -> HTTP status (most specific first).
CORE_STATUS: tuple[tuple[type[CoreError], int], ...] = (
    (InvalidInput, 400),
    (TooLarge, 413),
    (UndecodableAudio, 422),
    (ModelUnavailable, 503),
    (DiarizationTimedOut, 504),
    (DiarizationFailed, 502),
)


class ApiError(HTTPException):
    """An error the client caused or should know about, with a human-readable ``detail``."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=detail, headers=headers)


def unavailable(detail: str, retry_after_s: int) -> ApiError:
    """503 with ``Retry-After``: saturated, or the model is not loaded (yet)."""
    return ApiError(503, detail, headers={"Retry-After": str(retry_after_s)})


def status_of(exc: CoreError) -> int:
    for kind, status in CORE_STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def as_api_error(exc: CoreError, retry_after_s: int) -> ApiError:
    """The HTTP form of a core error (503s carry ``Retry-After``)."""
    status = status_of(exc)
    headers = {"Retry-After": str(retry_after_s)} if status == 503 else None
    return ApiError(status, exc.detail, headers=headers)


def _core_error(retry_after_s: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, CoreError)
        err = as_api_error(exc, retry_after_s)
        if err.status_code >= 500:
            log.error("%s: %s", type(exc).__name__, exc.detail)
        return JSONResponse({"detail": err.detail}, status_code=err.status_code, headers=err.headers)

    return handler


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _validation_detail(exc)}, status_code=400)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)


async def _on_not_implemented(_: Request, exc: Exception) -> Response:
    # KServe raises this for protocol features a single-model predictor does not offer (model
    # versions); the request asked for something unsupported, it is not a server fault.
    return JSONResponse({"detail": f"not supported: {exc}"}, status_code=400)


def _kserve_error(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    """KServe's own errors (a V1/V2 body that is not JSON, an unknown model...) in the contract's
    shape: ``detail`` added; KServe's ``error`` kept for its protocol clients."""

    async def handler(_: Request, exc: Exception) -> Response:
        return JSONResponse({"detail": str(exc), "error": str(exc)}, status_code=status)

    return handler


def _model_not_ready(load_error: Callable[[str], str | None]) -> Callable[[Request, Exception], Awaitable[Response]]:
    """KServe's readiness 503, with ``MODEL_LOAD_FAILED: <reason>`` when the load failed (rather
    than still running), so the operator can report why a component is not Ready."""

    async def handler(_: Request, exc: Exception) -> Response:
        detail = str(exc)
        reason = load_error(str(getattr(exc, "model_name", "")))
        if reason:
            detail = f"{detail} {contract.MODEL_LOAD_FAILED}: {reason}"
        return JSONResponse({"detail": detail, "error": detail}, status_code=503)

    return handler


def install_error_handlers(
    app: FastAPI, retry_after_s: int, load_error: Callable[[str], str | None] = lambda _: None
) -> None:
    """``load_error(model_name)``: why that model failed to load (None while loading or loaded)."""
    from kserve import errors as kserve_errors

    for name, status in (
        ("InvalidInput", 400),
        ("ModelNotFound", 404),
        ("ServerNotReady", 503),
        ("ServerNotLive", 503),
    ):
        if (exc_class := getattr(kserve_errors, name, None)) is not None:
            app.add_exception_handler(exc_class, _kserve_error(status))
    app.add_exception_handler(kserve_errors.ModelNotReady, _model_not_ready(load_error))
    app.add_exception_handler(CoreError, _core_error(retry_after_s))
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(NotImplementedError, _on_not_implemented)
    app.add_exception_handler(Exception, _on_unexpected)
