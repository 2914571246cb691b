"""HTTP errors in the contract's shape: JSON ``{"detail": "..."}``, never a 500 for bad input."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("rgpu.errors")


class ApiError(HTTPException):
    """An error the client caused or should know about, with a human-readable ``detail``."""

    def __init__(self, status_code: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(status_code=status_code, detail=detail, headers=headers)


def unavailable(detail: str, retry_after_s: int) -> ApiError:
    """503 with ``Retry-After``: saturated, or the model is not loaded (yet)."""
    return ApiError(503, detail, headers={"Retry-After": str(retry_after_s)})


def check_text(value: str, field: str) -> str:
    """``value`` unchanged, or 400 when it cannot be encoded as UTF-8: JSON may carry lone
    surrogates (``"\\ud800"``) that tokenizers then fail on with a 500."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(400, f"{field} is not valid Unicode text: {exc.reason} at position {exc.start}") from exc
    return value


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


async def _on_validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _validation_detail(exc)}, status_code=400)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)


async def _on_not_implemented(_: Request, exc: NotImplementedError) -> JSONResponse:
    # KServe raises this for protocol features a single-model predictor does not offer (model
    # versions); the request asked for something unsupported, it is not a server fault.
    return JSONResponse({"detail": f"not supported: {exc}"}, status_code=400)


def _kserve_error(status: int):
    """KServe's own errors (a V1/V2 body that is not JSON, an unknown model...) in the contract's
    shape: ``detail`` added; KServe's ``error`` kept for its protocol clients."""

    async def handler(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "error": str(exc)}, status_code=status)

    return handler


def install_error_handlers(app: FastAPI) -> None:
    from kserve import errors as kserve_errors

    for name, status in (
        ("InvalidInput", 400),
        ("ModelNotFound", 404),
        ("ModelNotReady", 503),
        ("ServerNotReady", 503),
        ("ServerNotLive", 503),
    ):
        if (exc_class := getattr(kserve_errors, name, None)) is not None:
            app.add_exception_handler(exc_class, _kserve_error(status))
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(NotImplementedError, _on_not_implemented)
    app.add_exception_handler(Exception, _on_unexpected)
