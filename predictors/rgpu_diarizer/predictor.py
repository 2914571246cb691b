"""The diarizer predictor: ``POST /diarize`` (Reflector's contract) and KServe V1/V2.

One request is worked on at a time by default (``REFLECTOR_GPU_MAX_IN_FLIGHT``, 1: downloading
and diarizing; the engine runs one at a time per device anyway) and up to
``REFLECTOR_GPU_MAX_QUEUED`` (default 4; the deprecated ``REFLECTOR_GPU_DIARIZER_MAX_QUEUED``
when that is unset) wait behind it; beyond that, 503 + ``Retry-After`` (docs/scaling.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

import rgpu_contract as contract
from rgpu_serving.errors import ApiError
from rgpu_serving.fetch import download
from rgpu_serving.known_speakers import LARGE_FIELDS, known_speakers
from rgpu_serving.metrics import record_audio
from rgpu_serving.predictor import EnginePredictor
from rgpu_serving.protocol import InferRequest, InferResponse, v2_response, v2_strings
from rgpu_serving.settings import ServingSettings
from rgpu_serving.uploads import MultipartForm, base64_file, multipart_openapi

from .engine import DiarizeOptions, DiarizerEngine
from .pipeline import number_speakers, to_contract
from .settings import DiarizerSettings

_UPLOAD_SCHEMA = multipart_openapi(
    {
        "file": {"type": "string", "format": "binary"},
        "timestamp": {"type": "number"},
        "num_speakers": {"type": "integer"},
        "min_speakers": {"type": "integer"},
        "max_speakers": {"type": "integer"},
        "exclusive": {"type": "boolean"},
        "known_speaker_names[]": {"type": "array", "items": {"type": "string"}},
        "known_speaker_references[]": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
        },
    },
    required=("file",),
)


def _number(form: MultipartForm, name: str) -> float | int | str | None:
    """A numeric form field as a number (whole numbers as int) for the options' validation."""
    raw = (form.value(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return raw  # refused by the validation, naming the field
    return int(value) if value.is_integer() and "." not in raw and "e" not in raw.lower() else value


class DiarizeBody(BaseModel):
    """The JSON form of the request (the query-parameter form is what Reflector sends)."""

    model_config = ConfigDict(extra="ignore")

    audio_file_url: str | None = Field(None, description="http(s) URL of the recording")
    timestamp: float | None = Field(None, description="seconds added to every segment time (default 0)")
    num_speakers: int | None = Field(None, description="exact number of speakers, when known")
    min_speakers: int | None = Field(None, description="lower bound on the number of speakers")
    max_speakers: int | None = Field(None, description="upper bound on the number of speakers")
    exclusive: bool | None = Field(None, description="no overlapping segments (one speaker at a time)")


class DiarizeInstance(BaseModel):
    """A KServe V1 instance: base64 audio or a URL, plus the same hints as ``/diarize``."""

    model_config = ConfigDict(extra="ignore")

    audio_b64: str | None = None
    audio_file_url: str | None = None
    filename: str | None = None
    timestamp: Any = None
    num_speakers: Any = None
    min_speakers: Any = None
    max_speakers: Any = None
    exclusive: bool | None = None

    @model_validator(mode="after")
    def _has_audio(self) -> DiarizeInstance:
        if self.audio_b64 is None and self.audio_file_url is None:
            raise ValueError("each instance needs 'audio_b64' or 'audio_file_url'")
        return self

    def hints(self) -> dict[str, Any]:
        return self.model_dump(include={"timestamp", "num_speakers", "min_speakers", "max_speakers", "exclusive"})


class DiarizerPredictor(EnginePredictor[DiarizerEngine]):
    v1_instance = DiarizeInstance
    v1_example = "{'instances': [{'audio_b64': '<base64 audio>'} or {'audio_file_url': '...'}]}"

    default_limits = (1, 4)
    admission_what = "diarization requests"

    def __init__(self, name: str, engine: DiarizerEngine, settings: ServingSettings):
        super().__init__(name, engine, settings)
        legacy = engine.settings.max_queued
        if legacy is not None and settings.max_queued is None and settings.max_pending_requests is None:
            self.admission = self.make_admission(self.default_limits[0], legacy)

    async def _run(
        self, path: Path, filename: str | None, content_type: str | None, options: DiarizeOptions, route: str
    ) -> list[dict[str, Any]]:
        result = await self.engine.diarize(path, filename, content_type, options)
        record_audio(self.name, route, result.duration_s)
        return to_contract(result.turns, options.timestamp)

    async def _from_url(self, url: str, options: DiarizeOptions, route: str) -> list[dict[str, Any]]:
        async with download(url, self.settings.upload_dir, self.url_policy) as file:
            return await self._run(file.path, file.filename, file.content_type, options, route)

    async def upload(self, body: MultipartForm) -> dict[str, Any]:
        """The multipart form: the recording in ``file``, the hints and ``timestamp`` as fields,
        known speakers as ``known_speaker_names[]`` + ``known_speaker_references[]`` (file parts,
        or data URLs). Answers ``known_speakers: [{speaker, name}]`` for the speakers a reference
        matched."""
        files = body.files_named("file")
        if len(files) != 1:
            raise ApiError(400, "send the recording as one file part named 'file'")
        options = self.engine.options(
            timestamp=_number(body, "timestamp"),
            num_speakers=_number(body, "num_speakers"),
            min_speakers=_number(body, "min_speakers"),
            max_speakers=_number(body, "max_speakers"),
            exclusive=(body.value("exclusive") or "").strip().lower() in ("1", "true", "yes", "on"),
        )
        upload = files[0]
        async with known_speakers(body, self.settings.upload_dir) as references:
            result = await self.engine.diarize(upload.path, upload.filename, upload.content_type, options, references)
        body.remove_files()
        record_audio(self.name, contract.DIARIZE_UPLOAD_PATH, result.duration_s)
        rows, ids = number_speakers(result.turns, options.timestamp)
        known = sorted((ids[k], v) for k, v in result.names.items() if k in ids)
        return {"diarization": rows, "known_speakers": [{"speaker": s, "name": n} for s, n in known]}

    # ---- routes ------------------------------------------------------------------------
    def router(self) -> APIRouter:
        r, gate, form = self.upload_router(LARGE_FIELDS)

        @r.post(
            contract.DIARIZE_UPLOAD_PATH,
            summary="Who spoke when in an uploaded recording (multipart), with known speakers",
            openapi_extra=_UPLOAD_SCHEMA,
        )
        async def diarize_upload(_: None = gate, body: MultipartForm = form) -> dict[str, Any]:
            """``{diarization: [{start, end, speaker}], known_speakers: [{speaker, name}]}``."""
            return await self.upload(body)

        @r.post(contract.DIARIZE_PATH, summary="Who spoke when: speaker turns of a recording fetched from a URL")
        async def diarize(
            _: None = gate,
            audio_file_url: str | None = Query(None, description="http(s) URL of the recording"),
            timestamp: float | None = Query(None, description="seconds added to every segment time (default 0)"),
            num_speakers: int | None = Query(None, description="exact number of speakers, when known"),
            min_speakers: int | None = Query(None, description="lower bound on the number of speakers"),
            max_speakers: int | None = Query(None, description="upper bound on the number of speakers"),
            exclusive: bool | None = Query(None, description="no overlapping segments"),
            body: DiarizeBody | None = Body(None),
        ) -> dict[str, Any]:
            """``{diarization: [{start, end, speaker}]}``; parameters in the query (as Reflector sends
            them) or in a JSON body; a query parameter wins over the same field in the body."""
            b = body or DiarizeBody()
            url = audio_file_url if audio_file_url is not None else b.audio_file_url
            if not url:
                raise ApiError(400, "audio_file_url is required")
            options = self.engine.options(
                timestamp=timestamp if timestamp is not None else b.timestamp,
                num_speakers=num_speakers if num_speakers is not None else b.num_speakers,
                min_speakers=min_speakers if min_speakers is not None else b.min_speakers,
                max_speakers=max_speakers if max_speakers is not None else b.max_speakers,
                exclusive=exclusive if exclusive is not None else b.exclusive,
            )
            return {"diarization": await self._from_url(url, options, contract.DIARIZE_PATH)}

        return r

    # ---- KServe V1 / V2 protocol -------------------------------------------------------
    async def predict_v1(self, instances: list[DiarizeInstance]) -> list[Any]:
        """``[{"audio_b64" | "audio_file_url", "timestamp"?, "num_speakers"?, ...}]`` ->
        ``[{"diarization": [...]}]``."""
        results = []
        for inst in instances:
            options = self.engine.options(**inst.hints())
            if inst.audio_b64 is not None:
                async with base64_file(inst.audio_b64, self.settings.upload_dir, self.settings.max_upload_bytes) as p:
                    segments = await self._run(p, inst.filename, None, options, "kserve")
            else:
                segments = await self._from_url(str(inst.audio_file_url), options, "kserve")
            results.append({"diarization": segments})
        return results

    async def predict_v2(self, request: InferRequest) -> InferResponse:
        """BYTES input ``audio_b64`` (one element per file), optional ``timestamp`` -> BYTES output
        ``diarization_json``."""
        audio = v2_strings(request, "audio_b64", required=True)
        timestamps = v2_strings(request, "timestamp")
        timestamp = timestamps[0] if timestamps else None
        options = self.engine.options(timestamp=timestamp)
        results = []
        for item in audio:
            async with base64_file(item, self.settings.upload_dir, self.settings.max_upload_bytes) as path:
                results.append(json.dumps(await self._run(path, None, None, options, "kserve")))
        return v2_response(request, self.name, {"diarization_json": results})


def build_predictor(
    name: str = "diarizer",
    model_dir: str | None = None,
    settings: ServingSettings | None = None,
    diarizer: DiarizerSettings | None = None,
    packaged: Callable[[], Path] | None = None,
) -> DiarizerPredictor:
    engine = DiarizerEngine(diarizer or DiarizerSettings(), model_dir=model_dir, packaged=packaged, name=name)
    return DiarizerPredictor(name, engine, settings or ServingSettings())


__all__ = ["DiarizeBody", "DiarizerPredictor", "build_predictor"]
