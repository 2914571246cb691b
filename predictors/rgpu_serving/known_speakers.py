"""Known speakers in a multipart form: ``known_speaker_names[]`` with ``known_speaker_references[]``.

As OpenAI's transcription API takes them: one name per reference clip, each clip a data URL
(``data:audio/wav;base64,...``) in a text field; the diarizer's own upload route also takes the
clips as file parts (what the transcriber streams to it). Each clip is written to the upload
directory, decoded once (a clip that does not decode is a 422 before any other work) and removed
when the request ends.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote_to_bytes

from rgpu_asr import audio as audio_io
from rgpu_asr.diarization import ReferenceClip
from rgpu_asr.engine import Samples
from rgpu_asr.errors import InvalidInput, UndecodableAudio, UnsupportedAudio
from rgpu_asr.types import SAMPLE_RATE

from .uploads import MultipartForm

NAMES = ("known_speaker_names[]", "known_speaker_names")
REFERENCES = ("known_speaker_references[]", "known_speaker_references")
#: At most this many known speakers per request (OpenAI takes 4).
MAX_KNOWN_SPEAKERS = 8
#: Longest speaker name.
MAX_NAME_CHARS = 64
#: A clip shorter than this says too little about a voice; a longer one is cut to the maximum.
REFERENCE_MIN_S = 1.0
REFERENCE_MAX_S = 30.0
#: Largest data-URL field (a 30 s 48 kHz stereo WAV is 7.7 MB as base64).
MAX_REFERENCE_FIELD_BYTES = 12 * 1024 * 1024
#: The form fields allowed past the multipart parser's 64 KiB field cap.
LARGE_FIELDS = dict.fromkeys(REFERENCES, MAX_REFERENCE_FIELD_BYTES)


def parse_data_url(value: str, where: str) -> tuple[bytes, str]:
    """``data:[<type>][;base64],<data>`` -> (bytes, content type)."""
    text = value.strip()
    if not text.lower().startswith("data:") or "," not in text:
        raise InvalidInput(f"{where} must be a data URL (data:audio/wav;base64,...)")
    head, _, data = text[5:].partition(",")
    params = [p.strip() for p in head.split(";")]
    content_type = params[0].lower() if params and "=" not in params[0] else ""
    if "base64" in (p.lower() for p in params[1:]):
        try:
            return base64.b64decode(data, validate=True), content_type
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"{where} is not valid base64: {exc}") from exc
    return unquote_to_bytes(data), content_type


def _write(upload_dir: Path, raw: bytes) -> Path:
    upload_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="reference-", dir=upload_dir)
    with os.fdopen(fd, "wb") as f:
        f.write(raw)
    return Path(name)


def _decode(path: Path, filename: str | None, content_type: str, where: str) -> Samples:
    """Blocking: the clip's samples (first ``REFERENCE_MAX_S`` seconds), or 422 / 400."""
    try:
        samples = audio_io.load_audio(path, filename, content_type)
    except (UnsupportedAudio, UndecodableAudio) as exc:
        raise UndecodableAudio(f"{where} is not audio we can decode: {exc.detail}") from exc
    if len(samples) < REFERENCE_MIN_S * SAMPLE_RATE:
        raise InvalidInput(
            f"{where} is {len(samples) / SAMPLE_RATE:.2f} s long; a reference clip needs at least "
            f"{REFERENCE_MIN_S:g} s of the speaker's voice"
        )
    return samples[: int(REFERENCE_MAX_S * SAMPLE_RATE)]


@contextlib.asynccontextmanager
async def known_speakers(form: MultipartForm, upload_dir: Path) -> AsyncIterator[list[ReferenceClip]]:
    """The form's known speakers, validated and decoded; their files removed on exit.

    400: names without clips or clips without names, counts that differ, too many, empty or
    repeated names, a clip that is not a data URL or too short; 422: a clip that does not decode.
    """
    names = [n.strip() for n in form.values(*NAMES)]
    urls = form.values(*REFERENCES)
    files = form.files_named(*REFERENCES)
    if not names and not urls and not files:
        yield []
        return
    if not urls and not files:
        raise InvalidInput(
            "known_speaker_names[] needs known_speaker_references[]: one audio clip (a data URL) per name"
        )
    if not names:
        raise InvalidInput("known_speaker_references[] needs known_speaker_names[]: one name per clip")
    if len(names) != len(urls) + len(files):
        raise InvalidInput(
            f"{len(names)} known_speaker_names[] but {len(urls) + len(files)} known_speaker_references[]; "
            "send one clip per name, in the same order"
        )
    if len(names) > MAX_KNOWN_SPEAKERS:
        raise InvalidInput(f"at most {MAX_KNOWN_SPEAKERS} known speakers per request, got {len(names)}")
    for i, name in enumerate(names):
        if not name or len(name) > MAX_NAME_CHARS:
            raise InvalidInput(f"known_speaker_names[{i}] must be 1 to {MAX_NAME_CHARS} characters")
    if len(set(names)) != len(names):
        raise InvalidInput("known_speaker_names[] must be distinct")
    written: list[Path] = []
    try:
        sources: list[tuple[Path, str | None, str]] = []
        for i, url in enumerate(urls):
            raw, ctype = parse_data_url(url, f"known_speaker_references[{i}] ({names[i]})")
            written.append(_write(upload_dir, raw))
            sources.append((written[-1], None, ctype))
        sources += [(f.path, f.filename, f.content_type) for f in files]
        clips = []
        for i, ((path, filename, ctype), name) in enumerate(zip(sources, names, strict=True)):
            where = f"known_speaker_references[{i}] ({name})"
            samples = await asyncio.to_thread(_decode, path, filename, ctype, where)
            clips.append(ReferenceClip(name, path, ctype or "application/octet-stream", samples))
        yield clips
    finally:
        for path in written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
