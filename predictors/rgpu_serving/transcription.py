"""The transcription routes every engine (Whisper, Parakeet) serves, written once.

An engine only turns batches of audio chunks into chunk transcripts; this module owns the
HTTP contract (``/v1/audio/transcriptions``, ``/v1/audio/transcriptions-from-url``,
``/transcribe``, KServe V1/V2), audio intake, VAD planning, dynamic batching, word timing and
the response formats, so a client switches engines by URL only.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from pydantic import BaseModel, Field

import rgpu_contract as contract

from . import audio as audio_io
from .batching import DynamicBatcher
from .errors import ApiError
from .fetch import download
from .formats import (
    GRANULARITIES,
    RESPONSE_FORMATS,
    ChunkTranscript,
    Transcript,
    contract_json,
    legacy_json,
    srt,
    verbose_json,
    vtt,
)
from .metrics import BATCH_SIZE, record_audio
from .predictor import ReflectorPredictor, v1_instances
from .settings import ServingSettings
from .timing import Word, finalize_words, place_chunk_words
from .uploads import MultipartForm, base64_file, receive_multipart
from .vad import SAMPLE_RATE, Chunk, default_vad, plan_chunks, whole_file_chunks


class TranscriptionEngine(abc.ABC):
    """A speech model behind the shared transcription routes."""

    #: Longest chunk the model takes in one piece, and the shortest it accepts.
    max_chunk_s: float = 30.0
    min_chunk_s: float = 0.5
    #: Chunks per model call.
    max_batch: int = 8
    #: Seconds to wait for more work before running a partial batch.
    max_wait_s: float = 0.01

    @abc.abstractmethod
    def load(self) -> None: ...

    @abc.abstractmethod
    def resolve_language(self, language: str | None) -> str | None:
        """The language to decode with, or ``ApiError(400)`` when the model cannot do it."""

    @abc.abstractmethod
    def transcribe_batch(self, language: str | None, chunks: list[np.ndarray]) -> list[ChunkTranscript]:
        """Blocking: one model call for several chunks; times relative to each chunk."""


class FromUrlRequest(BaseModel):
    audio_file_url: str | None = Field(None, description="http(s) URL of the recording")
    model: str | None = None
    language: str | None = "en"
    timestamp_offset: float = Field(0.0, description="seconds added to every word time")
    batch: bool = False


_MULTIPART_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "files[]": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "model": {"type": "string"},
                        "language": {"type": "string"},
                        "batch": {"type": "boolean"},
                        "response_format": {"type": "string", "enum": list(RESPONSE_FORMATS)},
                        "timestamp_granularities[]": {
                            "type": "array",
                            "items": {"type": "string", "enum": list(GRANULARITIES)},
                        },
                    },
                }
            }
        },
    }
}


def _as_bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class _Job:
    """One request's audio with the chunks planned for it."""

    audio: np.ndarray
    chunks: list[Chunk]


class TranscriptionPredictor(ReflectorPredictor):
    def __init__(self, name: str, engine: TranscriptionEngine, settings: ServingSettings):
        super().__init__(name, settings)
        self.engine = engine
        self.batcher: DynamicBatcher[np.ndarray, ChunkTranscript] = DynamicBatcher(
            self._run_batch, max_batch=engine.max_batch, max_wait_s=engine.max_wait_s, name=name
        )

    # ---- model -------------------------------------------------------------------------
    def load_model(self) -> None:
        self.engine.load()
        default_vad()  # load the VAD once at start, not on the first long file

    def _run_batch(self, language: Hashable, chunks: list[np.ndarray]) -> list[ChunkTranscript]:
        BATCH_SIZE.labels(self.name).observe(len(chunks))
        return self.engine.transcribe_batch(language, chunks)  # type: ignore[arg-type]

    # ---- pipeline ----------------------------------------------------------------------
    def _plan(self, audio: np.ndarray) -> list[Chunk]:
        e = self.engine
        if len(audio) <= e.max_chunk_s * SAMPLE_RATE:
            return whole_file_chunks(len(audio), e.max_chunk_s, e.min_chunk_s)
        segments = default_vad().segments(audio)
        return plan_chunks(segments, e.max_chunk_s, e.min_chunk_s)

    async def _prepare(self, path: Path, filename: str | None, content_type: str | None) -> _Job:
        def work() -> _Job:
            audio = audio_io.load_audio(path, filename, content_type, spool_dir=self.settings.upload_dir)
            return _Job(audio, self._plan(audio))

        return await asyncio.to_thread(work)

    async def _transcribe(self, job: _Job, language: str | None, route: str) -> Transcript:
        results = await self.batcher.submit([c.audio(job.audio) for c in job.chunks], key=language)
        words: list[Word] = []
        segments = []
        for chunk, result in zip(job.chunks, results):
            offset, length = chunk.offset_s(), chunk.duration_s()
            words += place_chunk_words(result.words, offset, length)
            segments += [s.shifted(offset, length) for s in result.segments]
        duration = audio_io.duration_s(job.audio)
        record_audio(self.name, route, duration)
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        return Transcript(text, finalize_words(words), segments, language or "", duration)

    def _language(self, value: str | None) -> str | None:
        return self.engine.resolve_language((value or "").strip() or None)

    # ---- routes ------------------------------------------------------------------------
    def router(self) -> APIRouter:
        r = APIRouter(tags=[self.name])
        r.add_api_route(
            contract.TRANSCRIPTIONS_PATH,
            self.transcriptions,
            methods=["POST"],
            openapi_extra=_MULTIPART_SCHEMA,
            summary="Transcribe uploaded files (Reflector / OpenAI compatible)",
        )
        r.add_api_route(
            contract.TRANSCRIPTIONS_FROM_URL_PATH,
            self.transcriptions_from_url,
            methods=["POST"],
            summary="Transcribe a recording fetched from a URL (VAD-chunked, batched)",
        )
        r.add_api_route(
            contract.LEGACY_TRANSCRIBE_PATH,
            self.legacy_transcribe,
            methods=["POST"],
            openapi_extra=_MULTIPART_SCHEMA,
            summary="Legacy seed route: words as {text, start, end}",
        )
        return r

    @contextlib.asynccontextmanager
    async def _form(self, request: Request):
        s = self.settings
        async with receive_multipart(request, s.upload_dir, s.max_upload_bytes, s.max_multipart_parts) as form:
            yield form

    def _options(self, form: MultipartForm) -> tuple[str | None, str, tuple[str, ...]]:
        language = self._language(form.value("language", default="en"))
        fmt = (form.value("response_format", default="json") or "json").strip()
        if fmt not in RESPONSE_FORMATS:
            raise ApiError(400, f"unsupported response_format '{fmt}'; use one of {', '.join(RESPONSE_FORMATS)}")
        granularities = tuple(v.strip() for v in form.values("timestamp_granularities[]", "timestamp_granularities"))
        bad = [g for g in granularities if g not in GRANULARITIES]
        if bad:
            raise ApiError(400, f"unsupported timestamp_granularities {bad}; use 'word' and/or 'segment'")
        return language, fmt, granularities

    async def transcriptions(self, request: Request) -> Response:
        self.require_ready()
        with self.admission.admit():
            async with self._form(request) as form:
                single = form.files_named("file")
                many = form.files_named("files", "files[]")
                batch = _as_bool(form.value("batch"))
                if batch and not many:
                    raise ApiError(400, "batch=true requires files in 'files' (or 'files[]')")
                if not single and not many:
                    raise ApiError(400, "no audio: send the recording in 'file' (or several in 'files')")
                language, fmt, granularities = self._options(form)
                uploads = single + many
                if len(uploads) > 1 and fmt not in ("json", "verbose_json"):
                    raise ApiError(400, f"response_format '{fmt}' takes one file; use json for several")
                jobs = await asyncio.gather(*(self._prepare(f.path, f.filename, f.content_type) for f in uploads))
                route = contract.TRANSCRIPTIONS_PATH
                transcripts = await asyncio.gather(*(self._transcribe(j, language, route) for j in jobs))
            render = (lambda t, n: verbose_json(t, n, granularities)) if fmt == "verbose_json" else contract_json
            if len(uploads) > 1 or many:
                return JSONResponse({"results": [render(t, f.filename) for t, f in zip(transcripts, uploads)]})
            t, name = transcripts[0], uploads[0].filename
            if fmt == "text":
                return PlainTextResponse(t.text)
            if fmt == "srt":
                return PlainTextResponse(srt(t), media_type="application/x-subrip")
            if fmt == "vtt":
                return PlainTextResponse(vtt(t), media_type="text/vtt")
            return JSONResponse(render(t, name))

    async def transcriptions_from_url(self, body: FromUrlRequest) -> dict:
        self.require_ready()
        if not body.audio_file_url:
            raise ApiError(400, "audio_file_url is required")
        language = self._language(body.language)
        with self.admission.admit():
            async with download(body.audio_file_url, self.settings.upload_dir, self.url_policy) as file:
                job = await self._prepare(file.path, file.filename, file.content_type)
            t = await self._transcribe(job, language, contract.TRANSCRIPTIONS_FROM_URL_PATH)
        words = finalize_words(t.words, offset_s=body.timestamp_offset)
        return {"text": t.text, "words": [w.as_dict() for w in words]}

    async def legacy_transcribe(self, request: Request) -> dict:
        self.require_ready()
        with self.admission.admit():
            async with self._form(request) as form:
                files = form.files_named("file") or form.files_named("files", "files[]")
                if not files:
                    raise ApiError(400, "no audio: send the recording in 'file'")
                language = self._language(form.value("language", default="en"))
                job = await self._prepare(files[0].path, files[0].filename, files[0].content_type)
            t = await self._transcribe(job, language, contract.LEGACY_TRANSCRIBE_PATH)
        return legacy_json(t)

    # ---- KServe V1 / V2 protocol -------------------------------------------------------
    async def _transcribe_b64(self, data: Any, language: str | None, filename: str | None = None) -> Transcript:
        async with base64_file(data, self.settings.upload_dir, self.settings.max_upload_bytes) as path:
            job = await self._prepare(path, filename, None)
        return await self._transcribe(job, language, "kserve")

    async def predict(self, payload: Any, headers: dict[str, str] | None = None, response_headers=None) -> Any:
        """V1: ``{"instances": [{"audio_b64", "language"?, "filename"?}]}``;
        V2: BYTES input ``audio_b64`` (one element per file), optional BYTES ``language``."""
        self.require_ready()
        with self.admission.admit():
            if isinstance(payload, InferRequest):
                return await self._predict_v2(payload)
            instances = v1_instances(payload, "{'instances': [{'audio_b64': '<base64 audio>', 'language': 'en'}]}")
            predictions = []
            for inst in instances:
                if not isinstance(inst, dict) or "audio_b64" not in inst:
                    raise ApiError(400, "each instance needs 'audio_b64'")
                t = await self._transcribe_b64(
                    inst["audio_b64"], self._language(inst.get("language", "en")), inst.get("filename")
                )
                predictions.append(contract_json(t, None))
            return {"predictions": predictions}

    async def _predict_v2(self, request: InferRequest) -> InferResponse:
        inputs = {i.name: i for i in request.inputs}
        if "audio_b64" not in inputs:
            raise ApiError(400, "V2 request needs a BYTES input named 'audio_b64'")
        language = "en"
        if "language" in inputs and inputs["language"].data:
            value = inputs["language"].data[0]
            language = value.decode() if isinstance(value, bytes) else str(value)
        language = self._language(language)
        texts, words = [], []
        for item in inputs["audio_b64"].data:
            t = await self._transcribe_b64(item, language)
            texts.append(t.text)
            words.append(json.dumps([w.as_dict() for w in t.words]))
        outputs = [
            InferOutput(name="text", shape=[len(texts)], datatype="BYTES", data=texts),
            InferOutput(name="words_json", shape=[len(words)], datatype="BYTES", data=words),
        ]
        return InferResponse(response_id=request.id or "", model_name=self.name, infer_outputs=outputs)
