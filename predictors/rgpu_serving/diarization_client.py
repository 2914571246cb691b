"""The transcriber's side of the diarizer service: settings and the HTTP ``Diarizer``.

In the cluster the transcriber does not diarize; it calls the diarizer InferenceService (the
operator sets ``REFLECTOR_GPU_DIARIZATION_URL`` and the key file on the file transcriber):

- an upload goes as a **streamed multipart body** to ``/diarize/upload``, read from the spooled
  file 64 KiB at a time with its length declared up front: never base64 JSON, never whole in
  memory (a 1 GiB upload would take about 1.4 GB as base64);
- a URL passes as it is to ``/diarize`` (the diarizer fetches it behind its own SSRF guard);
- the key is read from a file (the mounted Secret, so a rotated key is picked up) or the
  environment, and is never logged.

Failures are never a transcript without speakers: a refused or broken call is a 502 naming the
reason, a call over ``REFLECTOR_GPU_DIARIZATION_TIMEOUT_S`` a 504; the caller's own mistakes the
diarizer reports (400, 413, 422) keep their status, and a saturated or loading diarizer (503)
stays a 503 so clients retry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import rgpu_contract as contract
from rgpu_asr.diarization import AudioSource, Diarization, DiarizationFailed, DiarizationTimedOut, ReferenceClip
from rgpu_asr.errors import CoreError, InvalidInput, ModelUnavailable, TooLarge, UndecodableAudio
from rgpu_asr.speakers import DEFAULT_MAX_PAUSE_S, SPEAKER_LIMIT, SpeakerHints, SpeakerTurn

log = logging.getLogger("rgpu.diarization")

_CHUNK = 1 << 16


class DiarizationSettings(BaseSettings):
    """Speaker-attributed transcription on a transcriber (environment prefix
    ``REFLECTOR_GPU_DIARIZATION_``)."""

    model_config = SettingsConfigDict(env_prefix="REFLECTOR_GPU_DIARIZATION_", extra="ignore")

    #: Base URL of the diarizer service (``http://<isvc>-predictor.<ns>.svc.cluster.local``); empty:
    #: none (the local mode uses its in-process diarizer instead).
    url: str = ""
    #: The key the diarizer takes: a file (re-read on every call, so a rotated Secret is picked
    #: up) or the value itself.
    apikey_file: Path | None = None
    apikey: str = Field("", repr=False)
    connect_timeout_s: float = Field(10.0, gt=0)
    #: Longest a diarization may take, upload included (504 beyond).
    timeout_s: float = Field(3600.0, gt=0)
    #: Largest speaker-count hint accepted before anything is fetched (the diarizer's
    #: ``REFLECTOR_GPU_DIARIZER_SPEAKER_LIMIT`` still applies).
    speaker_limit: int = Field(SPEAKER_LIMIT, ge=1, le=127)
    #: A pause longer than this between two words starts a new segment.
    max_pause_s: float = Field(DEFAULT_MAX_PAUSE_S, gt=0)


def _part_head(boundary: str, name: str, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return (head + "\r\n").encode()


def _safe(name: str) -> str:
    """A file name fit for a Content-Disposition header (no quotes, no line breaks)."""
    cleaned = "".join(ch for ch in name if ch.isprintable() and ch not in '"\\')
    return cleaned or "audio"


class StreamedForm:
    """A multipart body whose file parts are read from disk while it is sent (Content-Length
    known up front)."""

    def __init__(self) -> None:
        self.boundary = "rgpu-" + secrets.token_hex(16)
        self.parts: list[tuple[bytes, bytes | Path]] = []

    def field(self, name: str, value: str) -> None:
        self.parts.append((_part_head(self.boundary, name), value.encode()))

    def file(self, name: str, path: Path, filename: str, content_type: str) -> None:
        self.parts.append((_part_head(self.boundary, name, _safe(filename), content_type), path))

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def length(self) -> int:
        total = 0
        for head, payload in self.parts:
            size = payload.stat().st_size if isinstance(payload, Path) else len(payload)
            total += len(head) + size + 2
        return total + len(f"--{self.boundary}--\r\n")

    async def chunks(self) -> AsyncIterator[bytes]:
        for head, payload in self.parts:
            yield head
            if isinstance(payload, Path):
                with open(payload, "rb") as f:
                    while chunk := await asyncio.to_thread(f.read, _CHUNK):
                        yield chunk
            else:
                yield payload
            yield b"\r\n"
        yield f"--{self.boundary}--\r\n".encode()


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except (json.JSONDecodeError, ValueError):
        return resp.text[:300]
    return str(body.get("detail") if isinstance(body, dict) else body)[:1000]


def error_for(resp: httpx.Response) -> CoreError:
    """The diarizer's error answer as ours: the caller's mistakes keep their status, the rest is
    the diarizer failing (502)."""
    detail = f"diarizer: {_detail(resp)}"
    status = resp.status_code
    if status == 400:
        return InvalidInput(detail)
    if status == 413:
        return TooLarge(detail)
    if status == 422:
        return UndecodableAudio(detail)
    if status == 503:
        return ModelUnavailable(detail)
    if status in (401, 403):
        return DiarizationFailed(
            f"the diarizer refused this transcriber's key ({status}); check REFLECTOR_GPU_DIARIZATION_APIKEY_FILE"
        )
    return DiarizationFailed(f"the diarizer answered {status}: {detail}")


def parse_answer(body: Any) -> Diarization:
    """``{diarization: [{start, end, speaker}], known_speakers?: [{speaker, name}]}``."""
    try:
        turns = [SpeakerTurn(float(t["start"]), float(t["end"]), int(t["speaker"])) for t in body["diarization"]]
        names = {int(k["speaker"]): str(k["name"]) for k in body.get("known_speakers") or []}
    except (KeyError, TypeError, ValueError) as exc:
        raise DiarizationFailed(f"the diarizer's answer is not a diarization: {type(exc).__name__}: {exc}") from exc
    return Diarization(turns, names)


class RemoteDiarizer:
    """The diarizer service over HTTP (a ``rgpu_asr.diarization.Diarizer``)."""

    def __init__(self, settings: DiarizationSettings):
        self.settings = settings
        self.base = settings.url.rstrip("/")

    def _key(self) -> str:
        s = self.settings
        if s.apikey_file is not None:
            try:
                for line in s.apikey_file.read_text().replace(",", "\n").splitlines():
                    if line.strip():
                        return line.strip()
            except OSError as exc:
                raise DiarizationFailed(f"cannot read the diarizer key file {s.apikey_file}: {exc.strerror}") from exc
        return s.apikey.split(",")[0].strip()

    def _client(self) -> httpx.AsyncClient:
        s = self.settings
        # The diarizer is an in-cluster service the operator named, not a user URL: no SSRF guard,
        # but no proxy from the environment either.
        return httpx.AsyncClient(
            timeout=httpx.Timeout(s.timeout_s, connect=s.connect_timeout_s), follow_redirects=False, trust_env=False
        )

    def _request(
        self, client: httpx.AsyncClient, source: AudioSource, hints: SpeakerHints, references: Sequence[ReferenceClip]
    ) -> httpx.Request:
        key = self._key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        if source.url and not references:
            body = {"audio_file_url": source.url, "exclusive": True, **hints.as_params()}
            return client.build_request("POST", self.base + contract.DIARIZE_PATH, json=body, headers=headers)
        if source.path is None:
            raise DiarizationFailed("nothing to send to the diarizer: no file and no URL")
        form = StreamedForm()
        form.file(
            "file",
            source.path,
            source.filename or "audio",
            source.content_type or "application/octet-stream",
        )
        form.field("exclusive", "true")
        for name, value in hints.as_params().items():
            form.field(name, str(value))
        for clip in references:
            form.field("known_speaker_names[]", clip.name)
            form.file("known_speaker_references[]", clip.path, "reference", clip.content_type)
        headers |= {"Content-Type": form.content_type, "Content-Length": str(form.length())}
        return client.build_request(
            "POST", self.base + contract.DIARIZE_UPLOAD_PATH, content=form.chunks(), headers=headers
        )

    async def diarize(
        self, source: AudioSource, hints: SpeakerHints, references: Sequence[ReferenceClip]
    ) -> Diarization:
        where = self.base
        try:
            async with asyncio.timeout(self.settings.timeout_s), self._client() as client:
                resp = await client.send(self._request(client, source, hints, references))
        except TimeoutError as exc:
            raise DiarizationTimedOut(
                f"the diarizer at {where} took longer than {self.settings.timeout_s:g} s "
                "(REFLECTOR_GPU_DIARIZATION_TIMEOUT_S)"
            ) from exc
        except httpx.TimeoutException as exc:
            raise DiarizationTimedOut(f"timed out talking to the diarizer at {where} ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise DiarizationFailed(f"could not reach the diarizer at {where}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code != 200:
            log.warning("diarizer at %s answered %d", where, resp.status_code)
            raise error_for(resp)
        try:
            body = resp.json()
        except (json.JSONDecodeError, ValueError) as exc:
            raise DiarizationFailed("the diarizer's answer is not JSON") from exc
        return parse_answer(body)


def remote_diarizer(settings: DiarizationSettings | None = None) -> RemoteDiarizer | None:
    """The diarizer service the environment names, or None."""
    settings = settings or DiarizationSettings()
    return RemoteDiarizer(settings) if settings.url.strip() else None
