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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(NotImplementedError, _on_not_implemented)
    app.add_exception_handler(Exception, _on_unexpected)
