"""Transcript data shared by every engine and every response shape.

One time frame everywhere: seconds from the start of the file. An engine returns chunk-relative
times (``ChunkTranscript``); the transcriber turns them into file times once, and a caller's
``timestamp_offset`` is applied once more, at the edge, with :meth:`Transcript.shifted`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: The one sample rate of decoded audio: every engine, the VAD and the diarizer take 16 kHz mono.
SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float

    def as_dict(self, key: str = "word") -> dict[str, str | float]:
        return {key: self.word, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class TextSegment:
    """A decoded span with the fields OpenAI's verbose_json segment carries."""

    start: float
    end: float
    text: str
    tokens: tuple[int, ...] = ()
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0
    temperature: float = 0.0

    def shifted(self, offset_s: float, limit_s: float | None = None) -> TextSegment:
        """Moved by ``offset_s``, its end first clamped to ``limit_s`` (the chunk's real audio)."""
        end = self.end if limit_s is None else min(self.end, limit_s)
        start = min(self.start, end)
        return replace(self, start=round(start + offset_s, 3), end=round(end + offset_s, 3))


@dataclass(frozen=True)
class ChunkTranscript:
    """What an engine returns for one chunk; times relative to the chunk's start."""

    words: list[Word] = field(default_factory=list)
    segments: list[TextSegment] = field(default_factory=list)


@dataclass(frozen=True)
class Transcript:
    """One file's transcript, times in seconds from the start of the file."""

    text: str
    words: list[Word]
    segments: list[TextSegment]
    #: The language decoded with: the one asked for, or the one detected ('' when unknown).
    language: str
    duration: float

    def shifted(self, offset_s: float) -> Transcript:
        """Every time moved by ``offset_s`` (a caller's ``timestamp_offset``); applied once."""
        if not offset_s:
            return self
        words = [replace(w, start=round(w.start + offset_s, 2), end=round(w.end + offset_s, 2)) for w in self.words]
        return replace(self, words=words, segments=[s.shifted(offset_s) for s in self.segments])
