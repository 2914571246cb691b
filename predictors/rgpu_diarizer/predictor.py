"""The diarizer predictor: ``POST /diarize`` (Reflector's contract) and KServe V1/V2.

One diarization runs at a time per device, on a dedicated thread: pyannote already uses the
whole GPU (or every CPU core) for one recording, so running two at once only makes both slower
and doubles the memory. Requests are admitted up to ``1 + REFLECTOR_GPU_DIARIZER_MAX_QUEUED``
(downloading, waiting, or running); beyond that they get 503 + ``Retry-After``. A waiting request
holds only its downloaded file on disk: it is decoded once its turn comes, so at most one
recording is in memory at a time, and ``REFLECTOR_GPU_DIARIZER_MAX_DURATION_S`` bounds how big
that is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from fastapi import APIRouter, Body, Query
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from pydantic import BaseModel, ConfigDict, Field

import rgpu_contract as contract
from rgpu_serving import audio as audio_io
from rgpu_serving.batching import Admission
from rgpu_serving.errors import ApiError
from rgpu_serving.fetch import download
from rgpu_serving.metrics import record_audio
from rgpu_serving.predictor import ReflectorPredictor, v1_instances
from rgpu_serving.settings import ServingSettings
from rgpu_serving.uploads import base64_file

from .pipeline import Turn, load_pipeline, run_pipeline, to_contract
from .settings import DiarizerSettings

log = logging.getLogger("rgpu.diarizer")


class DiarizeBody(BaseModel):
    """The JSON form of the request (the query-parameter form is what Reflector sends)."""

    model_config = ConfigDict(extra="ignore")

    audio_file_url: str | None = Field(None, description="http(s) URL of the recording")
    timestamp: float | None = Field(None, description="seconds added to every segment time (default 0)")
    num_speakers: int | None = Field(None, description="exact number of speakers, when known")
    min_speakers: int | None = Field(None, description="lower bound on the number of speakers")
    max_speakers: int | None = Field(None, description="upper bound on the number of speakers")
    exclusive: bool | None = Field(None, description="no overlapping segments (one speaker at a time)")


#: Default ceiling on num_speakers/min_speakers/max_speakers (``DiarizerSettings.speaker_limit``).
SPEAKER_LIMIT = 100


@dataclass(frozen=True)
class DiarizeOptions:
    timestamp: float = 0.0
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    exclusive: bool = False

    @classmethod
    def build(
        cls,
        timestamp=None,
        num_speakers=None,
        min_speakers=None,
        max_speakers=None,
        exclusive=None,
        speaker_limit: int = SPEAKER_LIMIT,
    ) -> DiarizeOptions:
        ts = 0.0 if timestamp is None else timestamp
        try:
            ts = float(ts)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, f"timestamp must be a number of seconds, got {timestamp!r}") from exc
        if not math.isfinite(ts) or ts < 0:
            raise ApiError(400, f"timestamp must be a finite number of seconds >= 0, got {timestamp!r}")
        counts = {}
        for field, value in (
            ("num_speakers", num_speakers),
            ("min_speakers", min_speakers),
            ("max_speakers", max_speakers),
        ):
            if value is None:
                counts[field] = None
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (isinstance(value, float) and not value.is_integer())
                or value < 1
            ):
                raise ApiError(400, f"{field} must be a whole number >= 1, got {value!r}")
            if value > speaker_limit:  # pyannote keeps per-frame speaker counts in 8 bits
                raise ApiError(
                    400,
                    f"{field} must be at most {speaker_limit} (REFLECTOR_GPU_DIARIZER_SPEAKER_LIMIT), got {value!r}",
                )
            counts[field] = int(value)
        lo, hi = counts["min_speakers"], counts["max_speakers"]
        if lo is not None and hi is not None and lo > hi:
            raise ApiError(400, f"min_speakers ({lo}) must not exceed max_speakers ({hi})")
        return cls(ts, counts["num_speakers"], lo, hi, bool(exclusive))


def probe_duration_s(path: Path) -> float | None:
    """The recording's duration from its container header, without decoding (None if unknown)."""
    try:
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is not None and stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            if container.duration:
                return container.duration / 1_000_000
    except Exception:  # undecodable: decode_file reports it properly (422)
        return None
    return None


class DiarizerPredictor(ReflectorPredictor):
    def __init__(
        self,
        name: str,
        settings: ServingSettings,
        diarizer: DiarizerSettings,
        model_dir: str | None = None,
        default_model: Callable[[], str] | None = None,
    ):
        super().__init__(name, settings)
        self.diarizer = diarizer
        self.model_dir = model_dir
        #: Called at load time when no model is configured (the local mode's packaged pipeline).
        self.default_model = default_model
        self.pipeline = None
        limit = max(1, min(settings.max_pending_requests, 1 + max(0, diarizer.max_queued)))
        self.admission = Admission(limit, settings.retry_after_s, what="diarization requests")
        # One diarization at a time on this device; the queue in front of it is bounded by admission.
        self._device_slot = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-diarize")
        self.runs = 0

    # ---- model -------------------------------------------------------------------------
    def load_model(self) -> None:
        d = self.diarizer
        model = d.model
        if not model and not (self.model_dir and Path(self.model_dir).exists()) and self.default_model is not None:
            model = self.default_model()
        if d.cpu_threads > 0:
            import torch

            torch.set_num_threads(d.cpu_threads)
        self.pipeline = load_pipeline(
            model,
            model_dir=self.model_dir,
            token=d.hf_token,
            cache_dir=d.cache_dir,
            device=d.device,
            segmentation_batch_size=d.segmentation_batch_size,
            embedding_batch_size=d.embedding_batch_size,
        )

    # ---- work --------------------------------------------------------------------------
    def _check_duration(self, seconds: float | None) -> None:
        limit = self.diarizer.max_duration_s
        if seconds is not None and limit > 0 and seconds > limit:
            raise ApiError(413, f"the recording is {seconds:.0f} s long, over the {limit:.0f} s limit")

    def _diarize_file(self, path: Path, options: DiarizeOptions) -> tuple[list[Turn], float]:
        """Blocking, on the device thread: decode, then diarize."""
        self._check_duration(probe_duration_s(path))
        audio = audio_io.decode_file(path)
        duration = audio_io.duration_s(audio)
        self._check_duration(duration)
        assert self.pipeline is not None, "model not loaded"
        turns = run_pipeline(
            self.pipeline, audio, options.num_speakers, options.min_speakers, options.max_speakers, options.exclusive
        )
        self.runs += 1
        return turns, duration

    async def _run(
        self, path: Path, filename: str | None, content_type: str | None, options: DiarizeOptions, route: str
    ) -> list[dict]:
        # Refuse what is not audio (400) before queueing for the device.
        head = await asyncio.to_thread(audio_io.read_head, path)
        audio_io.detect_format(filename, content_type, head)
        loop = asyncio.get_running_loop()
        turns, duration = await loop.run_in_executor(self._device_slot, self._diarize_file, path, options)
        record_audio(self.name, route, duration)
        return to_contract(turns, options.timestamp)

    # ---- routes ------------------------------------------------------------------------
    def router(self) -> APIRouter:
        r = APIRouter(tags=[self.name])
        r.add_api_route(
            contract.DIARIZE_PATH,
            self.diarize,
            methods=["POST"],
            summary="Who spoke when: speaker turns of a recording fetched from a URL",
        )
        return r

    async def diarize(
        self,
        audio_file_url: str | None = Query(None, description="http(s) URL of the recording"),
        timestamp: float | None = Query(None, description="seconds added to every segment time (default 0)"),
        num_speakers: int | None = Query(None, description="exact number of speakers, when known"),
        min_speakers: int | None = Query(None, description="lower bound on the number of speakers"),
        max_speakers: int | None = Query(None, description="upper bound on the number of speakers"),
        exclusive: bool | None = Query(None, description="no overlapping segments"),
        body: DiarizeBody | None = Body(None),
    ) -> dict:
        """``{diarization: [{start, end, speaker}]}``; parameters in the query (as Reflector sends
        them) or in a JSON body; a query parameter wins over the same field in the body."""
        self.require_ready()
        b = body or DiarizeBody()
        url = audio_file_url if audio_file_url is not None else b.audio_file_url
        if not url:
            raise ApiError(400, "audio_file_url is required")
        options = DiarizeOptions.build(
            timestamp if timestamp is not None else b.timestamp,
            num_speakers if num_speakers is not None else b.num_speakers,
            min_speakers if min_speakers is not None else b.min_speakers,
            max_speakers if max_speakers is not None else b.max_speakers,
            exclusive if exclusive is not None else b.exclusive,
            speaker_limit=self.diarizer.speaker_limit,
        )
        with self.admission.admit():
            async with download(url, self.settings.upload_dir, self.url_policy) as file:
                segments = await self._run(file.path, file.filename, file.content_type, options, contract.DIARIZE_PATH)
        return {"diarization": segments}

    # ---- KServe V1 / V2 protocol -------------------------------------------------------
    def _b64_file(self, data: Any):
        return base64_file(data, self.settings.upload_dir, self.settings.max_upload_bytes)

    async def _instance(self, inst: Any) -> dict:
        if not isinstance(inst, dict) or not ("audio_b64" in inst or "audio_file_url" in inst):
            raise ApiError(400, "each instance needs 'audio_b64' or 'audio_file_url'")
        options = DiarizeOptions.build(
            inst.get("timestamp"),
            inst.get("num_speakers"),
            inst.get("min_speakers"),
            inst.get("max_speakers"),
            inst.get("exclusive"),
            speaker_limit=self.diarizer.speaker_limit,
        )
        if "audio_b64" in inst:
            async with self._b64_file(inst["audio_b64"]) as path:
                segments = await self._run(path, inst.get("filename"), None, options, "kserve")
        else:
            async with download(str(inst["audio_file_url"]), self.settings.upload_dir, self.url_policy) as file:
                segments = await self._run(file.path, file.filename, file.content_type, options, "kserve")
        return {"diarization": segments}

    async def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers=None) -> Any:
        """V1: ``{"instances": [{"audio_b64" | "audio_file_url", "timestamp"?, "num_speakers"?, ...}]}``
        -> ``{"predictions": [{"diarization": [...]}]}``; V2: BYTES input ``audio_b64`` (one element per
        file), optional FP64 ``timestamp`` -> BYTES output ``diarization_json``."""
        self.require_ready()
        with self.admission.admit():
            if isinstance(payload, InferRequest):
                return await self._predict_v2(payload)
            instances = v1_instances(
                payload, "{'instances': [{'audio_b64': '<base64 audio>'} or {'audio_file_url': '...'}]}"
            )
            return {"predictions": [await self._instance(inst) for inst in instances]}

    async def _predict_v2(self, request: InferRequest) -> InferResponse:
        inputs = {i.name: i for i in request.inputs}
        if "audio_b64" not in inputs:
            raise ApiError(400, "V2 request needs a BYTES input named 'audio_b64'")
        timestamp = None
        if "timestamp" in inputs and inputs["timestamp"].data:
            timestamp = inputs["timestamp"].data[0]
        options = DiarizeOptions.build(timestamp)
        results = []
        for item in inputs["audio_b64"].data:
            async with self._b64_file(item) as path:
                results.append(json.dumps(await self._run(path, None, None, options, "kserve")))
        outputs = [InferOutput(name="diarization_json", shape=[len(results)], datatype="BYTES", data=results)]
        return InferResponse(response_id=request.id or "", model_name=self.name, infer_outputs=outputs)


def build_predictor(
    name: str = "diarizer",
    model_dir: str | None = None,
    settings: ServingSettings | None = None,
    diarizer: DiarizerSettings | None = None,
    default_model: Callable[[], str] | None = None,
) -> DiarizerPredictor:
    settings = settings or ServingSettings()
    diarizer = diarizer or DiarizerSettings()
    if not diarizer.model and settings.model:  # the operator's REFLECTOR_GPU_MODEL
        diarizer.model = settings.model
    return DiarizerPredictor(name, settings, diarizer, model_dir, default_model)


__all__ = ["DiarizerPredictor", "DiarizeBody", "DiarizeOptions", "build_predictor"]
