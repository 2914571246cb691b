"""The transcription requests, typed once: the OpenAI multipart form, Reflector's from-URL JSON,
the legacy ``/transcribe`` form and the KServe V1 instance.

Multipart bodies are streamed to disk by :mod:`.uploads`; the models here validate what arrived
and carry the uploaded files, so routes take a typed request instead of reading the raw one.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ApiError
from .formats import GRANULARITIES, RESPONSE_FORMATS, Granularity, ResponseFormat
from .uploads import MultipartForm, UploadedFile

_TRUE = ("1", "true", "yes", "on")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


class TranscriptionForm(BaseModel):
    """``POST /v1/audio/transcriptions``: OpenAI's form plus Reflector's ``files`` / ``batch``."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    uploads: list[UploadedFile]
    #: Sent as ``files`` / ``files[]`` (answered with ``{results: [...]}`` even for one file).
    several: bool = False
    model: str | None = None
    language: str | None = "en"
    batch: bool = False
    response_format: ResponseFormat = "json"
    timestamp_granularities: tuple[Granularity, ...] = ()

    @field_validator("response_format", mode="before")
    @classmethod
    def _format(cls, value: Any) -> Any:
        value = (value or "json").strip() if isinstance(value, str) else value
        if value not in RESPONSE_FORMATS:
            raise ValueError(f"unsupported response_format '{value}'; use one of {', '.join(RESPONSE_FORMATS)}")
        return value

    @field_validator("timestamp_granularities", mode="before")
    @classmethod
    def _granularities(cls, value: Any) -> Any:
        values = tuple(v.strip() for v in value) if isinstance(value, (list, tuple)) else value
        bad = [g for g in values if g not in GRANULARITIES]
        if bad:
            raise ValueError(f"unsupported timestamp_granularities {bad}; use 'word' and/or 'segment'")
        return values

    @classmethod
    def from_form(cls, form: MultipartForm) -> TranscriptionForm:
        single = form.files_named("file")
        many = form.files_named("files", "files[]")
        batch = (form.value("batch") or "").strip().lower() in _TRUE
        if batch and not many:
            raise ApiError(400, "batch=true requires files in 'files' (or 'files[]')")
        if not single and not many:
            raise ApiError(400, "no audio: send the recording in 'file' (or several in 'files')")
        try:
            parsed = cls.model_validate(
                {
                    "uploads": single + many,
                    "several": bool(many),
                    "model": form.value("model"),
                    "language": form.value("language", default="en"),
                    "batch": batch,
                    "response_format": form.value("response_format", default="json"),
                    "timestamp_granularities": form.values("timestamp_granularities[]", "timestamp_granularities"),
                }
            )
        except ValidationError as exc:
            raise ApiError(400, _first_error(exc)) from exc
        if len(parsed.uploads) > 1 and parsed.response_format not in ("json", "verbose_json"):
            raise ApiError(400, f"response_format '{parsed.response_format}' takes one file; use json for several")
        return parsed


class LegacyForm(BaseModel):
    """``POST /transcribe``: the seed's form (``file`` and ``language``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    upload: UploadedFile
    language: str | None = "en"

    @classmethod
    def from_form(cls, form: MultipartForm) -> LegacyForm:
        files = form.files_named("file") or form.files_named("files", "files[]")
        if not files:
            raise ApiError(400, "no audio: send the recording in 'file'")
        return cls(upload=files[0], language=form.value("language", default="en"))


class FromUrlRequest(BaseModel):
    """``POST /v1/audio/transcriptions-from-url``: Reflector's file-pipeline request."""

    audio_file_url: str | None = Field(None, description="http(s) URL of the recording")
    model: str | None = None
    language: str | None = "en"
    timestamp_offset: float = Field(0.0, description="seconds added to every word time", allow_inf_nan=False)
    batch: bool = False


class AudioInstance(BaseModel):
    """A KServe V1 transcription instance."""

    audio_b64: str
    language: str | None = "en"
    filename: str | None = None
