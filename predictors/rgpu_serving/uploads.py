"""Multipart uploads streamed straight to temporary files, with a size cap, always removed.

Starlette's form parser spools to memory and to the system temp dir without a total cap; we
parse with python-multipart ourselves so that a body over the limit is refused (413) as soon
as it crosses the limit, files land in ``upload_dir`` (so leaks are observable), and every file
is deleted when the request ends, whatever happened.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import ApiError
from .settings import ServingSettings

if TYPE_CHECKING:  # a typing-only name in python-multipart
    from python_multipart.multipart import MultipartCallbacks


@dataclass
class UploadedFile:
    field: str
    filename: str
    content_type: str
    path: Path
    size: int = 0


@dataclass
class MultipartForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)

    def value(self, *names: str, default: str | None = None) -> str | None:
        for name in names:
            if self.fields.get(name):
                return self.fields[name][-1]
        return default

    def values(self, *names: str) -> list[str]:
        return [v for name in names for v in self.fields.get(name, [])]

    def files_named(self, *names: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field in names]

    def remove_files(self) -> None:
        """Delete every uploaded file now (idempotent): a route calls it before it answers, so no
        upload outlives its request even when the framework runs cleanup after the response."""
        for f in self.files:
            with contextlib.suppress(FileNotFoundError):
                f.path.unlink()


def declared_length_guard(request: Request, max_bytes: int) -> None:
    """Refuse early, before reading anything, when Content-Length already exceeds the cap."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise ApiError(413, f"request body of {int(length)} bytes exceeds the {max_bytes}-byte limit")


class _Collector:
    """python-multipart callbacks that write file parts to disk and keep small fields in memory."""

    MAX_FIELD_BYTES = 64 * 1024

    def __init__(self, upload_dir: Path, max_parts: int, large_fields: Mapping[str, int] | None = None):
        self.upload_dir = upload_dir
        self.max_parts = max_parts
        #: Field name -> its own size cap (data-URL audio clips); the body cap still applies.
        self.large_fields = dict(large_fields or {})
        self.form = MultipartForm()
        self.parts = 0
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._field_data = bytearray()
        self._file: BinaryIO | None = None
        self._current: UploadedFile | None = None
        self._name = ""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": lambda d, s, e: self._add_name(d[s:e]),
            "on_header_value": lambda d, s, e: self._add_value(d[s:e]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def _add_name(self, b: bytes) -> None:
        self._header_name += b

    def _add_value(self, b: bytes) -> None:
        self._header_value += b

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.max_parts:
            raise ApiError(400, f"too many multipart parts (limit {self.max_parts})")
        self._headers = {}
        self._field_data = bytearray()
        self._file = None
        self._current = None

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if b"name" not in options:
            raise ApiError(400, "multipart part without a Content-Disposition name")
        self._name = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            filename = os.path.basename(options[b"filename"].decode("utf-8", "replace"))
            fd, name = tempfile.mkstemp(prefix="upload-", dir=self.upload_dir)
            self._file = os.fdopen(fd, "wb")
            self._current = UploadedFile(
                field=self._name,
                filename=filename,
                content_type=self._headers.get(b"content-type", b"").decode("latin-1").strip(),
                path=Path(name),
            )
            self.form.files.append(self._current)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None and self._current is not None:
            self._file.write(data[start:end])
            self._current.size += end - start
        else:
            self._field_data += data[start:end]
            if len(self._field_data) > self.large_fields.get(self._name, self.MAX_FIELD_BYTES):
                raise ApiError(400, f"form field '{self._name}' is too large")

    def on_part_end(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        else:
            value = self._field_data.decode("utf-8", "replace")
            self.form.fields.setdefault(self._name, []).append(value)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@contextlib.asynccontextmanager
async def receive_multipart(
    request: Request, upload_dir: Path, max_bytes: int, max_parts: int, large_fields: Mapping[str, int] | None = None
) -> AsyncIterator[MultipartForm]:
    """Parse a multipart body into fields and temp files; the files are removed on exit."""
    declared_length_guard(request, max_bytes)
    content_type = request.headers.get("content-type", "")
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(400, "expected a multipart/form-data body with a 'file' or 'files' part")
    upload_dir.mkdir(parents=True, exist_ok=True)
    collector = _Collector(upload_dir, max_parts, large_fields)
    try:
        parser = MultipartParser(params[b"boundary"], collector.callbacks())
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise ApiError(413, f"upload exceeds the {max_bytes}-byte limit")
            parser.write(chunk)
        parser.finalize()
        collector.close()
        yield collector.form
    except ApiError:
        raise
    except Exception as exc:  # malformed multipart from python-multipart
        if type(exc).__module__.startswith("python_multipart"):
            raise ApiError(400, f"malformed multipart body: {exc}") from exc
        raise
    finally:
        collector.close()
        collector.form.remove_files()


def multipart_openapi(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """``openapi_extra`` documenting a route's streamed multipart body (FastAPI cannot see fields
    read from :func:`multipart_form`)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def multipart_form(
    settings: ServingSettings, large_fields: Mapping[str, int] | None = None
) -> Callable[[Request], AsyncIterator[MultipartForm]]:
    """A FastAPI dependency that yields the request's streamed multipart form (files removed
    when the request ends); routes then build their typed request from it. ``large_fields``:
    text fields allowed past the 64 KiB field cap, with their own cap."""

    async def dependency(request: Request) -> AsyncIterator[MultipartForm]:
        async with receive_multipart(
            request, settings.upload_dir, settings.max_upload_bytes, settings.max_multipart_parts, large_fields
        ) as form:
            yield form

    return dependency


@contextlib.asynccontextmanager
async def base64_file(data: Any, upload_dir: Path, max_bytes: int) -> AsyncIterator[Path]:
    """Base64 audio from a KServe V1/V2 request as a temp file in ``upload_dir`` (removed on exit)."""
    if isinstance(data, str):
        data = data.encode()
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ApiError(400, f"audio must be base64: {exc}") from exc
    if len(raw) > max_bytes:
        raise ApiError(413, f"audio exceeds the {max_bytes}-byte limit")
    upload_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="infer-", dir=upload_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
