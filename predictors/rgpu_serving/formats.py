"""The transcription response shapes clients read (pure functions).

``json`` is the Reflector contract (``{text, words, filename}``); ``verbose_json`` is the OpenAI
shape the OpenAI SDK parses; ``text``, ``srt`` and ``vtt`` are the other OpenAI formats.
"""

from __future__ import annotations

from typing import Any, Literal

from rgpu_asr.types import Transcript, Word

ResponseFormat = Literal["json", "verbose_json", "text", "srt", "vtt", "diarized_json"]
Granularity = Literal["word", "segment"]
#: ``diarized_json`` is rendered by :mod:`.diarized` (speakers need the diarizer).
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json", "verbose_json", "text", "srt", "vtt", "diarized_json")
GRANULARITIES: tuple[Granularity, ...] = ("word", "segment")


def words_json(words: list[Word], key: str = "word") -> list[dict[str, str | float]]:
    return [w.as_dict(key) for w in words]


def contract_json(t: Transcript, filename: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"text": t.text, "words": words_json(t.words)}
    if filename is not None:
        out["filename"] = filename
    return out


def verbose_json(t: Transcript, filename: str | None, granularities: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {
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


def legacy_json(t: Transcript) -> dict[str, Any]:
    """The seed's ``/transcribe`` shape: words keyed ``text``."""
    return {"text": t.text, "words": words_json(t.words, key="text")}
