"""Who said what, in one call: the speaker-attributed forms of the transcription routes.

- ``POST /v1/audio/transcriptions`` with ``response_format=diarized_json`` (OpenAI's shape:
  ``segments[].speaker`` "A", "B", ... by first appearance, or a known speaker's name; plus
  ``words[]`` with speakers), or with ``stream=true`` as server-sent events: one
  ``transcript.text.segment`` per segment once diarization finished, then ``transcript.text.done``;
- ``POST /v1/audio/transcriptions-from-url`` with ``diarize: true``: Reflector's ``{text, words}``
  with an integer ``speaker`` on every word, plus ``segments``.

Transcription and diarization of the same recording run at the same time
(:func:`rgpu_asr.diarization.both`): the diarizer gets the file as it arrived (or the URL, or, in
one process, the samples the transcriber decoded). Speakers are assigned by the pure
:func:`rgpu_asr.speakers.attribute`; the caller's ``timestamp_offset`` is applied once, last.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, Response, StreamingResponse

import rgpu_contract as contract
from rgpu_asr.diarization import AudioSource, Diarization, Diarizer, ReferenceClip, both
from rgpu_asr.engine import Samples
from rgpu_asr.errors import InvalidInput
from rgpu_asr.speakers import DiarizedTranscript, SpeakerHints, attribute, label
from rgpu_asr.types import Transcript

from .asr_requests import FromUrlRequest, TranscriptionForm
from .diarization_client import DiarizationSettings
from .errors import ApiError
from .fetch import download
from .known_speakers import known_speakers
from .uploads import MultipartForm, UploadedFile

if TYPE_CHECKING:
    from .transcription import TranscriptionPredictor

_TRUE = ("1", "true", "yes", "on")
_HINTS = ("num_speakers", "min_speakers", "max_speakers")

NO_DIARIZER = (
    "speaker diarization is not available on this transcriber: no diarizer is configured "
    f"({contract.ENV_DIARIZATION_URL}, or the diarizer in the local mode). Behind the reflector-gpu "
    "operator, diarized requests go to the file transcriber: /transcriber-file"
    f"{contract.TRANSCRIPTIONS_PATH} (uploads) or /transcriber{contract.TRANSCRIPTIONS_FROM_URL_PATH}"
)


def _form_int(form: MultipartForm, name: str) -> int | None:
    raw = form.value(name)
    if raw is None or not raw.strip():
        return None
    try:
        return int(raw.strip())
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a whole number >= 1, got {raw!r}") from exc


def form_hints(form: MultipartForm, settings: DiarizationSettings) -> SpeakerHints:
    num, lo, hi = (_form_int(form, n) for n in _HINTS)
    return SpeakerHints.build(num, lo, hi, speaker_limit=settings.speaker_limit)


def check_diarized_form(form: MultipartForm) -> bool:
    """The OpenAI fields diarized output cannot honour (400), and whether ``stream`` is on."""
    if (form.value("prompt") or "").strip():
        raise ApiError(400, "prompt is not supported with response_format=diarized_json (as in OpenAI's API)")
    if form.values("timestamp_granularities[]", "timestamp_granularities"):
        raise ApiError(400, "timestamp_granularities is not supported with diarized_json (words always come back)")
    return (form.value("stream") or "").strip().lower() in _TRUE


# ---- response shapes (pure) ----------------------------------------------------------------
def diarized_json(d: DiarizedTranscript) -> dict[str, Any]:
    """OpenAI's ``TranscriptionDiarized`` plus ``words`` (with speakers)."""
    t = d.transcript
    return {
        "task": "transcribe",
        "duration": round(t.duration, 3),
        "text": t.text,
        "segments": [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{i}",
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "speaker": label(s.speaker, d.names),
            }
            for i, s in enumerate(d.segments)
        ],
        "words": [
            {"word": w.word, "start": w.start, "end": w.end, "speaker": label(w.speaker, d.names)} for w in d.words
        ],
        "usage": {"type": "duration", "seconds": round(t.duration, 3)},
    }


def sse_events(d: DiarizedTranscript) -> list[dict[str, Any]]:
    """``transcript.text.segment`` per segment, then ``transcript.text.done``."""
    segments = diarized_json(d)["segments"]
    return [*segments, {"type": "transcript.text.done", "text": d.transcript.text}]


def speaker_words_json(d: DiarizedTranscript) -> dict[str, Any]:
    """Reflector's shape: ``{text, words: [{word, start, end, speaker:int}], segments}``."""
    return {
        "text": d.transcript.text,
        "words": [{"word": w.word, "start": w.start, "end": w.end, "speaker": w.speaker} for w in d.words],
        "segments": [{"start": s.start, "end": s.end, "speaker": s.speaker, "text": s.text} for s in d.segments],
    }


async def _stream(events: list[dict[str, Any]]) -> AsyncIterator[bytes]:
    for event in events:
        yield f"data: {json.dumps(event)}\n\n".encode()


# ---- running transcription and diarization together ----------------------------------------
class SpeakerAttribution:
    """The diarized routes of one transcription predictor."""

    def __init__(self, predictor: TranscriptionPredictor, settings: DiarizationSettings):
        self.p = predictor
        self.settings = settings

    @property
    def diarizer(self) -> Diarizer:
        found = self.p.diarizer
        if found is None:
            raise ApiError(400, NO_DIARIZER)
        return found

    async def _run(
        self,
        source: AudioSource,
        transcribe: Any,
        decoded: asyncio.Future[Samples],
        hints: SpeakerHints,
        references: list[ReferenceClip],
    ) -> DiarizedTranscript:
        diarizer = self.diarizer

        async def diarization() -> Diarization:
            return await diarizer.diarize(source, hints, references)

        try:
            transcript, found = await both(transcribe, diarization())
        finally:
            if not decoded.done():
                decoded.cancel()
        return attribute(transcript, found.turns, found.names, self.settings.max_pause_s)

    async def transcriptions(self, req: TranscriptionForm, body: MultipartForm) -> Response:
        stream = check_diarized_form(body)
        hints = form_hints(body, self.settings)
        self.diarizer  # noqa: B018 - 400 before any decoding when there is none
        if len(req.uploads) != 1 or req.several:
            raise ApiError(400, "response_format=diarized_json takes one file in 'file'")
        language = self.p.language(req.language)
        upload: UploadedFile = req.uploads[0]
        loop = asyncio.get_running_loop()
        decoded: asyncio.Future[Samples] = loop.create_future()

        async def samples() -> Samples:
            return await asyncio.shield(decoded)

        async def transcribe() -> Transcript:
            job = await self.p.prepare(upload.path, upload.filename, upload.content_type, req.vad)
            if not decoded.done():
                decoded.set_result(job.audio)
            return await self.p.transcribe(job, language, contract.TRANSCRIPTIONS_PATH)

        source = AudioSource(upload.path, upload.filename, upload.content_type, None, samples)
        try:
            async with known_speakers(body, self.p.settings.upload_dir) as references:
                result = await self._run(source, transcribe(), decoded, hints, references)
        finally:
            body.remove_files()  # the diarizer has had the file: nothing outlives the request
        if stream:
            return StreamingResponse(
                _stream(sse_events(result)), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
            )
        return JSONResponse(diarized_json(result))

    async def from_url(self, req: FromUrlRequest) -> dict[str, Any]:
        if not req.audio_file_url:
            raise ApiError(400, "audio_file_url is required")
        hints = SpeakerHints.build(
            req.num_speakers, req.min_speakers, req.max_speakers, speaker_limit=self.settings.speaker_limit
        )
        self.diarizer  # noqa: B018 - 400 before anything is fetched when there is none
        language = self.p.language(req.language)
        url = req.audio_file_url
        loop = asyncio.get_running_loop()
        decoded: asyncio.Future[Samples] = loop.create_future()

        async def samples() -> Samples:
            return await asyncio.shield(decoded)

        async def transcribe() -> Transcript:
            async with download(url, self.p.settings.upload_dir, self.p.url_policy) as file:
                job = await self.p.prepare(file.path, file.filename, file.content_type)
            if not decoded.done():
                decoded.set_result(job.audio)
            return await self.p.transcribe(job, language, contract.TRANSCRIPTIONS_FROM_URL_PATH)

        source = AudioSource(None, None, None, url, samples)
        result = await self._run(source, transcribe(), decoded, hints, [])
        return speaker_words_json(result.shifted(req.timestamp_offset))
