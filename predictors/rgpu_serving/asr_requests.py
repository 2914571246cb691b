"""The transcription requests, typed once: the OpenAI multipart form, Reflector's from-URL JSON,
the legacy ``/transcribe`` form and the KServe V1 instance.

Multipart bodies are streamed to disk by :mod:`.uploads`; the models here validate what arrived
and carry the uploaded files, so routes take a typed request instead of reading the raw one.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rgpu_asr.chunking import VadParams

from .errors import ApiError
from .formats import GRANULARITIES, RESPONSE_FORMATS, Granularity, ResponseFormat
from .uploads import MultipartForm, UploadedFile

_TRUE = ("1", "true", "yes", "on")


#: OpenAI's ``server_vad`` defaults (its transcription API reference).
SERVER_VAD_DEFAULTS = {"threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 200}
_VAD_KEYS = ("type", *SERVER_VAD_DEFAULTS)


def chunking_strategy(form: MultipartForm) -> VadParams | None:
    """``chunking_strategy``: ``auto`` (None: the default planning, VAD for audio longer than one
    chunk) or a ``server_vad`` object, sent as a JSON string or as bracketed fields
    (``chunking_strategy[type]=server_vad``, ``chunking_strategy[threshold]=0.6``: how the OpenAI
    SDK encodes it). ``server_vad`` plans every clip with Silero VAD and those parameters."""
    raw = form.value("chunking_strategy")
    bracketed = {
        name[len("chunking_strategy[") : -1]: values[-1]
        for name, values in form.fields.items()
        if name.startswith("chunking_strategy[") and name.endswith("]") and values
    }
    if raw is None and not bracketed:
        return None
    if raw is not None and bracketed:
        raise ApiError(400, "send chunking_strategy either as one field or as chunking_strategy[...] fields, not both")
    config: dict[str, Any]
    if bracketed:
        config = dict(bracketed)
    else:
        text = (raw or "").strip()
        if text.startswith("{"):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ApiError(400, f"chunking_strategy is not valid JSON: {exc.msg}") from exc
            if not isinstance(parsed, dict):
                raise ApiError(400, "chunking_strategy must be 'auto' or a server_vad object")
            config = parsed
        else:
            config = {"type": text}
    unknown = sorted(set(config) - set(_VAD_KEYS))
    if unknown:
        raise ApiError(400, f"chunking_strategy: unknown field(s) {unknown}; server_vad takes {list(_VAD_KEYS[1:])}")
    kind = str(config.get("type") or "").strip()
    if kind == "auto":
        if len(config) > 1:
            raise ApiError(400, "chunking_strategy 'auto' takes no parameters")
        return None
    if kind != "server_vad":
        raise ApiError(400, f"chunking_strategy type must be 'auto' or 'server_vad', got {kind!r}")
    values = {**SERVER_VAD_DEFAULTS, **{k: v for k, v in config.items() if k != "type"}}
    try:
        threshold = float(values["threshold"])
        pad_ms = float(values["prefix_padding_ms"])
        silence_ms = float(values["silence_duration_ms"])
    except (TypeError, ValueError) as exc:
        raise ApiError(400, f"chunking_strategy: threshold and the *_ms fields must be numbers ({exc})") from exc
    if not (math.isfinite(threshold) and 0.0 < threshold < 1.0):
        raise ApiError(400, f"chunking_strategy threshold must be between 0 and 1 (exclusive), got {threshold}")
    for name, ms in (("prefix_padding_ms", pad_ms), ("silence_duration_ms", silence_ms)):
        if not (math.isfinite(ms) and 0 <= ms <= 10_000):
            raise ApiError(400, f"chunking_strategy {name} must be 0 to 10000, got {ms:g}")
    return VadParams(threshold=threshold, min_silence_ms=int(silence_ms), speech_pad_ms=int(pad_ms))


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
    #: ``chunking_strategy``: None for ``auto`` or absent; VAD parameters for ``server_vad``.
    vad: VadParams | None = None

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
                    "vad": chunking_strategy(form),
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
    diarize: bool = Field(False, description="an integer speaker on every word, plus speaker segments")
    num_speakers: int | None = Field(None, strict=True, description="exact number of speakers (with diarize)")
    min_speakers: int | None = Field(None, strict=True, description="lower bound on the speakers (with diarize)")
    max_speakers: int | None = Field(None, strict=True, description="upper bound on the speakers (with diarize)")


class AudioInstance(BaseModel):
    """A KServe V1 transcription instance."""

    audio_b64: str
    language: str | None = "en"
    filename: str | None = None
