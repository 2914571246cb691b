"""Speaker-attributed transcription: the ``Diarizer`` protocol and running both at once.

A transcription route that asks for speakers hands the same recording to a ``Diarizer`` while it
transcribes it, then joins both with the pure :func:`rgpu_asr.speakers.attribute`. Two diarizers
implement the protocol: the local mode's (the diarizer engine in the same process, fed the
samples the transcriber already decoded: one decode) and the cluster's (the diarizer
InferenceService over HTTP: an upload streamed as multipart, a URL passed as it is). This module
knows neither; it holds what they exchange.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .engine import Samples
from .errors import CoreError
from .speakers import SpeakerHints, SpeakerTurn


class DiarizationFailed(CoreError):
    """The diarizer could not diarize a recording it was given (HTTP 502): never answered with a
    transcript without speakers."""


class DiarizationTimedOut(DiarizationFailed):
    """The diarizer did not answer within the configured time (HTTP 504)."""


@dataclass(frozen=True)
class AudioSource:
    """One recording as each kind of diarizer wants it: the file on disk (uploads and downloads,
    with the name and type the caller gave), the caller's URL (passed on as it is), and the
    samples the transcriber decoded (awaited: they exist once decoding finished)."""

    path: Path | None = None
    filename: str | None = None
    content_type: str | None = None
    url: str | None = None
    samples: Callable[[], Awaitable[Samples]] | None = None


@dataclass(frozen=True)
class ReferenceClip:
    """A known speaker's voice: the caller's name, the clip as sent (a file), and its samples
    (decoded once at the edge, so a clip that does not decode is refused before any work)."""

    name: str
    path: Path
    content_type: str
    samples: Samples


@dataclass(frozen=True)
class Diarization:
    """Who spoke when, in file time; ``names``: speaker -> the known speaker it matched."""

    turns: list[SpeakerTurn]
    names: dict[int, str] = field(default_factory=dict)


class Diarizer(Protocol):
    """Something that diarizes one recording (the local engine, or the diarizer service)."""

    async def diarize(
        self, source: AudioSource, hints: SpeakerHints, references: Sequence[ReferenceClip]
    ) -> Diarization:
        """Turns for ``source``; ``names`` for the speakers the references matched. Raises a
        ``CoreError`` (bad input, too large, unavailable, ``DiarizationFailed``)."""


T = TypeVar("T")
U = TypeVar("U")


async def both(first: Coroutine[Any, Any, T], second: Coroutine[Any, Any, U]) -> tuple[T, U]:
    """Run two coroutines at the same time; when one fails the other is cancelled (and awaited)
    before the error propagates, so no work outlives the request."""
    a = asyncio.ensure_future(first)
    b = asyncio.ensure_future(second)
    try:
        await asyncio.wait((a, b), return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        for task in (a, b):
            task.cancel()
        await asyncio.gather(a, b, return_exceptions=True)
        raise
    for task in (a, b):
        if task.done() and not task.cancelled() and task.exception() is not None:
            other = b if task is a else a
            other.cancel()
            await asyncio.gather(other, return_exceptions=True)
            raise task.exception()  # type: ignore[misc]
    return a.result(), b.result()
