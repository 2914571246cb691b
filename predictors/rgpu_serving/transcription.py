"""The transcription routes every ASR engine serves, written once over ``rgpu_asr.Transcriber``.

Routes take typed requests (:mod:`.asr_requests`); this module turns them into decoded audio and
a language, calls the transcriber, shifts by the caller's offset once, and renders the shape
asked for (:mod:`.formats`).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

import rgpu_contract as contract
from rgpu_asr import audio as audio_io
from rgpu_asr.chunking import VadParams
from rgpu_asr.diarization import Diarizer
from rgpu_asr.engine import Engine
from rgpu_asr.threads import run_cancellable
from rgpu_asr.transcriber import Job, Transcriber
from rgpu_asr.types import Transcript

from .asr_requests import AudioInstance, FromUrlRequest, LegacyForm, TranscriptionForm
from .diarization_client import DiarizationSettings, remote_diarizer
from .diarized import SpeakerAttribution
from .errors import ApiError
from .fetch import download
from .formats import RESPONSE_FORMATS, contract_json, legacy_json, srt, verbose_json, vtt, words_json
from .known_speakers import LARGE_FIELDS
from .metrics import BATCH_SIZE, record_audio
from .predictor import EnginePredictor
from .protocol import InferRequest, InferResponse, v2_response, v2_strings
from .realtime import RealtimeSessions
from .settings import ServingSettings
from .uploads import MultipartForm, base64_file, multipart_openapi

_MULTIPART_SCHEMA = multipart_openapi(
    {
        "file": {"type": "string", "format": "binary"},
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "files[]": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "model": {"type": "string"},
        "language": {"type": "string"},
        "batch": {"type": "boolean"},
        "response_format": {"type": "string", "enum": list(RESPONSE_FORMATS)},
        "timestamp_granularities[]": {
            "type": "array",
            "items": {"type": "string", "enum": ["word", "segment"]},
        },
        "chunking_strategy": {"type": "string", "description": "auto, or a server_vad object (JSON)"},
        "stream": {"type": "boolean", "description": "diarized_json as server-sent events"},
        "known_speaker_names[]": {"type": "array", "items": {"type": "string"}},
        "known_speaker_references[]": {
            "type": "array",
            "items": {"type": "string", "description": "data URL of a 1-30 s clip"},
        },
        "num_speakers": {"type": "integer"},
        "min_speakers": {"type": "integer"},
        "max_speakers": {"type": "integer"},
    }
)


class TranscriptionPredictor(EnginePredictor[Transcriber]):
    v1_instance = AudioInstance
    v1_example = "{'instances': [{'audio_b64': '<base64 audio>', 'language': 'en'}]}"

    #: Live clips: 10 in flight (batched into one model call), 20 waiting; the file profile
    #: (long recordings, REFLECTOR_GPU_PROFILE=file): 2 in flight, 8 waiting (docs/scaling.md).
    default_limits = (10, 20)
    file_limits = (2, 8)

    def admission_defaults(self) -> tuple[int, int]:
        return self.file_limits if os.environ.get(contract.ENV_PROFILE) == "file" else self.default_limits

    def __init__(self, name: str, engine: Engine, settings: ServingSettings):
        super().__init__(name, Transcriber(engine, name=name, on_batch=BATCH_SIZE.labels(name).observe), settings)
        #: Who diarizes for ``diarized_json`` / ``diarize: true``: the diarizer service the
        #: environment names, or (local mode) the in-process one; None answers those with 400.
        diarization = DiarizationSettings()
        self.diarizer: Diarizer | None = remote_diarizer(diarization)
        self.speakers = SpeakerAttribution(self, diarization)
        #: Live transcription over a WebSocket (``GET /v1/realtime``), on the same transcriber.
        self.realtime = RealtimeSessions(self)

    @property
    def transcriber(self) -> Transcriber:
        return self.engine

    # ---- the one path every route takes ----------------------------------------------------
    def language(self, value: str | None) -> str | None:
        """The caller's language checked by the engine; ``None`` means detect it per request."""
        return self.transcriber.resolve_language(value)

    async def prepare(
        self, path: Path, filename: str | None, content_type: str | None, vad: VadParams | None = None
    ) -> Job:
        """Decode once (400 unsupported, 422 undecodable) and plan the chunks, off the event loop."""

        def work(cancel: threading.Event) -> Job:
            audio = audio_io.load_audio(path, filename, content_type, self.settings.upload_dir, cancel)
            return self.transcriber.plan(audio, vad)

        return await run_cancellable(work)

    async def transcribe(self, job: Job, language: str | None, route: str) -> Transcript:
        transcript = await self.transcriber.transcribe(job, language)
        record_audio(self.name, route, transcript.duration)
        return transcript

    # ---- routes ------------------------------------------------------------------------------
    def router(self) -> APIRouter:
        r, gate, form = self.upload_router(LARGE_FIELDS)

        @r.post(
            contract.TRANSCRIPTIONS_PATH,
            openapi_extra=_MULTIPART_SCHEMA,
            summary="Transcribe uploaded files (Reflector / OpenAI compatible)",
        )
        async def transcriptions(_: None = gate, body: MultipartForm = form) -> Response:
            return await self.transcriptions(TranscriptionForm.from_form(body), body)

        @r.post(
            contract.TRANSCRIPTIONS_FROM_URL_PATH,
            summary="Transcribe a recording fetched from a URL (VAD-chunked, batched)",
        )
        async def transcriptions_from_url(body: FromUrlRequest, _: None = gate) -> dict[str, Any]:
            return await self.transcriptions_from_url(body)

        @r.post(
            contract.LEGACY_TRANSCRIBE_PATH,
            openapi_extra=_MULTIPART_SCHEMA,
            summary="Legacy seed route: words as {text, start, end}",
        )
        async def legacy_transcribe(_: None = gate, body: MultipartForm = form) -> dict[str, Any]:
            return await self.legacy_transcribe(LegacyForm.from_form(body), body)

        r.add_api_websocket_route(contract.REALTIME_PATH, self.realtime.endpoint, name="realtime")
        return r

    async def transcriptions(self, req: TranscriptionForm, body: MultipartForm) -> Response:
        if req.response_format == "diarized_json":
            return await self.speakers.transcriptions(req, body)
        language = self.language(req.language)
        try:
            jobs = await asyncio.gather(
                *(self.prepare(f.path, f.filename, f.content_type, req.vad) for f in req.uploads)
            )
        finally:
            body.remove_files()  # decoded: the uploads are not needed any more
        route = contract.TRANSCRIPTIONS_PATH
        transcripts = await asyncio.gather(*(self.transcribe(j, language, route) for j in jobs))
        names = [f.filename for f in req.uploads]
        if req.response_format == "verbose_json":
            rendered = [
                verbose_json(t, n, req.timestamp_granularities) for t, n in zip(transcripts, names, strict=True)
            ]
        else:
            rendered = [contract_json(t, n) for t, n in zip(transcripts, names, strict=True)]
        if len(req.uploads) > 1 or req.several:
            return JSONResponse({"results": rendered})
        t = transcripts[0]
        if req.response_format == "text":
            return PlainTextResponse(t.text)
        if req.response_format == "srt":
            return PlainTextResponse(srt(t), media_type="application/x-subrip")
        if req.response_format == "vtt":
            return PlainTextResponse(vtt(t), media_type="text/vtt")
        return JSONResponse(rendered[0])

    async def transcriptions_from_url(self, req: FromUrlRequest) -> dict[str, Any]:
        if req.diarize:
            return await self.speakers.from_url(req)
        if not req.audio_file_url:
            raise ApiError(400, "audio_file_url is required")
        language = self.language(req.language)
        async with download(req.audio_file_url, self.settings.upload_dir, self.url_policy) as file:
            job = await self.prepare(file.path, file.filename, file.content_type)
        t = await self.transcribe(job, language, contract.TRANSCRIPTIONS_FROM_URL_PATH)
        t = t.shifted(req.timestamp_offset)
        return {"text": t.text, "words": words_json(t.words)}

    async def legacy_transcribe(self, req: LegacyForm, body: MultipartForm) -> dict[str, Any]:
        language = self.language(req.language)
        try:
            job = await self.prepare(req.upload.path, req.upload.filename, req.upload.content_type)
        finally:
            body.remove_files()
        return legacy_json(await self.transcribe(job, language, contract.LEGACY_TRANSCRIBE_PATH))

    # ---- KServe V1 / V2 --------------------------------------------------------------------
    async def _transcribe_b64(self, data: str, language: str | None, filename: str | None = None) -> Transcript:
        async with base64_file(data, self.settings.upload_dir, self.settings.max_upload_bytes) as path:
            job = await self.prepare(path, filename, None)
        return await self.transcribe(job, language, "kserve")

    async def predict_v1(self, instances: list[AudioInstance]) -> list[Any]:
        """``{"instances": [{"audio_b64", "language"?, "filename"?}]}`` -> ``[{text, words}]``."""
        results = []
        for inst in instances:
            t = await self._transcribe_b64(inst.audio_b64, self.language(inst.language), inst.filename)
            results.append(contract_json(t, None))
        return results

    async def predict_v2(self, request: InferRequest) -> InferResponse:
        """BYTES input ``audio_b64`` (one element per file), optional BYTES ``language``;
        outputs ``text`` and ``words_json``."""
        audio = v2_strings(request, "audio_b64", required=True)
        language = self.language(v2_strings(request, "language", default="en")[0])
        texts, words = [], []
        for item in audio:
            t = await self._transcribe_b64(item, language)
            texts.append(t.text)
            words.append(json.dumps(words_json(t.words)))
        return v2_response(request, self.name, {"text": texts, "words_json": words})
