"""Transcript data and the response shapes clients read (pure functions).

``json`` is the Reflector contract (``{text, words, filename}``); ``verbose_json`` is the OpenAI
shape the OpenAI SDK parses; ``text``, ``srt`` and ``vtt`` are the other OpenAI formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .timing import Word

RESPONSE_FORMATS = ("json", "verbose_json", "text", "srt", "vtt")
GRANULARITIES = ("word", "segment")


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
    text: str
    words: list[Word]
    segments: list[TextSegment]
    language: str
    duration: float


def words_json(words: list[Word], key: str = "word") -> list[dict]:
    return [w.as_dict(key) for w in words]


def contract_json(t: Transcript, filename: str | None) -> dict:
    out = {"text": t.text, "words": words_json(t.words)}
    if filename is not None:
        out["filename"] = filename
    return out


def verbose_json(t: Transcript, filename: str | None, granularities: tuple[str, ...] = ()) -> dict:
    out: dict = {
        "task": "transcribe",
        "language": t.language,
        "duration": round(t.duration, 3),
        "text": t.text,
        "words": words_json(t.words),
        "segments": [
            {
                "id": i,
                "seek": int(s.start * 100),
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": list(s.tokens),
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
            }
            for i, s in enumerate(t.segments)
        ],
    }
    if granularities and "word" not in granularities:
        out["words"] = None
    if filename is not None:
        out["filename"] = filename
    return out


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def srt(t: Transcript) -> str:
    blocks = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(t.segments, start=1)
    ]
    return "\n".join(blocks)


def vtt(t: Transcript) -> str:
    cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n" for s in t.segments]
    return "WEBVTT\n\n" + "\n".join(cues)


def legacy_json(t: Transcript) -> dict:
    """The seed's ``/transcribe`` shape: words keyed ``text``."""
    return {"text": t.text, "words": words_json(t.words, key="text")}
