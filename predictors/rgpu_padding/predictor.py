"""The padding predictor: ``POST /pad`` delays a track and uploads it as 48 kHz Opus WebM.

Download (presigned GET) and upload (presigned PUT) both go through the shared SSRF guard, so
object-store hosts must be allowlisted (``REFLECTOR_GPU_URL_ALLOWLIST``) when they resolve to
private addresses. The track streams to a temporary file, is re-encoded frame by frame, and the
result streams back from disk; both files are always removed. While the job runs, the caller's
connection is checked every ``cancel_check_interval_s``; if it went away, the job stops where it
is (download, encoding or upload), nothing is uploaded, and the answer is ``cancelled: true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import Counter
from pydantic import BaseModel, Field

import rgpu_contract as contract
from rgpu_asr.errors import CoreError
from rgpu_asr.threads import Cancelled, run_cancellable
from rgpu_serving.errors import ApiError
from rgpu_serving.fetch import check_url, download, upload
from rgpu_serving.metrics import record_audio
from rgpu_serving.predictor import Predictor
from rgpu_serving.settings import ServingSettings

from .audio import PadResult, check_codecs, pad_file, valid_delay
from .settings import PaddingSettings

log = logging.getLogger("rgpu.padding")
#: A proxy's auth request keeps the client's method (Envoy ext_authz, ingress-nginx auth_request).
AUTH_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

JOBS = Counter("reflector_gpu_padding_jobs_total", "Padding jobs by outcome", ["predictor", "outcome"])


class PadRequest(BaseModel):
    track_url: str = Field(..., description="presigned GET URL of the track")
    output_url: str = Field(..., description="presigned PUT URL for the padded track")
    start_time_seconds: float = Field(..., description="seconds of silence to prepend (0 < s <= 18000)")
    track_index: int | None = Field(None, description="the track's index in the recording (for logs)")


class PaddingPredictor(Predictor):
    #: Downloads and uploads dominate; encoding is bounded apart (max_concurrent_jobs).
    default_limits = (4, 16)

    def __init__(self, name: str, settings: ServingSettings, padding: PaddingSettings):
        super().__init__(name, settings)
        self.padding = padding
        self._slots: asyncio.Semaphore | None = None

    def load_model(self) -> None:
        check_codecs()  # no weights: readiness means PyAV can encode Opus/WebM with adelay

    def router(self) -> APIRouter:
        r = APIRouter(tags=[self.name])
        r.add_api_route(
            contract.PAD_PATH,
            self.pad,
            methods=["POST"],
            summary="Delay a track by prepending silence (48 kHz Opus WebM)",
        )
        # The key check alone (rgpu_contract.AUTH_PATH): BearerAuthMiddleware, the one copy of the
        # key check, has already answered 401 when the key is missing or wrong; reaching the
        # handler means it is valid. No model and no admission slot: a busy padding job never
        # makes a key check fail.
        for path in (contract.AUTH_PATH, contract.AUTH_PATH + "/{rest:path}"):
            r.add_api_route(
                path,
                self.authorized,
                methods=list(AUTH_METHODS),
                status_code=204,
                summary="Check the API key (2xx or 401) for a proxy's external authorization",
                include_in_schema=path == contract.AUTH_PATH,
            )
        return r

    async def authorized(self) -> Response:
        return Response(status_code=204)

    # ---- validation --------------------------------------------------------------------
    def _validate(self, body: PadRequest) -> None:
        if not body.track_url.strip():
            raise ApiError(400, "track_url cannot be empty")
        if not body.output_url.strip():
            raise ApiError(400, "output_url cannot be empty")
        limit = self.padding.max_delay_s
        if not valid_delay(body.start_time_seconds, limit):
            raise ApiError(
                400, f"start_time_seconds must be greater than 0 and at most {limit:g}; got {body.start_time_seconds}"
            )

    # ---- the job -------------------------------------------------------------------------
    async def _job(self, body: PadRequest, cancel: threading.Event) -> tuple[PadResult, int]:
        s = self.settings
        async with download(body.track_url, s.upload_dir, self.url_policy, field="track_url") as track:
            fd, name = tempfile.mkstemp(prefix="pad-", suffix=".webm", dir=s.upload_dir)
            os.close(fd)
            out = Path(name)
            try:
                result = await self._encode(track.path, out, body.start_time_seconds, cancel)
                size = await upload(
                    out,
                    body.output_url,
                    self.url_policy,
                    field="output_url",
                    content_type=self.padding.upload_content_type or None,
                )
                return result, size
            finally:
                with contextlib.suppress(FileNotFoundError):
                    out.unlink()

    async def _encode(self, src: Path, dst: Path, delay_s: float, cancel: threading.Event) -> PadResult:
        """PyAV work on a thread that stops with the job: the job's ``cancel`` (the caller went
        away) or this task's cancellation (shutdown); it checks the flag on every frame."""

        def work(stop: threading.Event) -> PadResult:
            return pad_file(src, dst, delay_s, stop, self.padding.bit_rate)

        return await run_cancellable(work, cancel)

    async def _watch(self, request: Request, job: asyncio.Task, cancel: threading.Event) -> None:
        while not job.done():
            await asyncio.sleep(self.padding.cancel_check_interval_s)
            if await request.is_disconnected():
                cancel.set()
                job.cancel()
                return

    async def pad(self, body: PadRequest, request: Request) -> dict[str, Any]:
        self.require_ready()
        self._validate(body)
        started = time.perf_counter()
        async with self.admission.admit(contract.PAD_PATH):
            # Refuse blocked URLs before any work (the download and upload re-check every hop).
            await check_url(body.track_url, self.url_policy, "track_url")
            await check_url(body.output_url, self.url_policy, "output_url")
            if self._slots is None:
                self._slots = asyncio.Semaphore(max(1, self.padding.max_concurrent_jobs))
            cancel = threading.Event()
            job = asyncio.ensure_future(self._run_when_free(body, cancel))
            watcher = asyncio.ensure_future(self._watch(request, job, cancel))
            try:
                result = await job
            except asyncio.CancelledError:
                if not cancel.is_set():
                    raise  # the server is shutting down, not the caller
                result = None
            except Cancelled:
                result = None
            except (ApiError, CoreError):
                JOBS.labels(self.name, "failed").inc()
                raise
            finally:
                watcher.cancel()
                if not job.done():  # this handler itself was cancelled (shutdown): stop the job too
                    cancel.set()
                    job.cancel()
        if result is None:
            JOBS.labels(self.name, "cancelled").inc()
            log.info("padding of track %s cancelled: the caller disconnected", body.track_index)
            return {"size": 0, "cancelled": True}
        padded, size = result
        JOBS.labels(self.name, "done").inc()
        record_audio(self.name, contract.PAD_PATH, padded.output_seconds)
        log.info(
            "padded track %s by %.3f s: %.1f s of audio, %d bytes in %.2f s",
            body.track_index,
            body.start_time_seconds,
            padded.output_seconds,
            size,
            time.perf_counter() - started,
        )
        return {"size": size, "cancelled": False}

    async def _run_when_free(self, body: PadRequest, cancel: threading.Event) -> tuple[PadResult, int] | None:
        assert self._slots is not None
        async with self._slots:
            if cancel.is_set():
                return None
            return await self._job(body, cancel)

    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> Any:
        raise ApiError(400, f"the padding predictor has no inference protocol; use POST {contract.PAD_PATH}")


def build_predictor(
    name: str = "padding",
    settings: ServingSettings | None = None,
    padding: PaddingSettings | None = None,
) -> PaddingPredictor:
    return PaddingPredictor(name, settings or ServingSettings(), padding or PaddingSettings())
