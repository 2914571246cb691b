"""Word timing arithmetic shared by every transcription engine (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Word:
    word: str
    start: float
    end: float

    def as_dict(self, key: str = "word") -> dict:
        return {key: self.word, "start": self.start, "end": self.end}


def place_chunk_words(words: list[Word], chunk_offset_s: float, chunk_duration_s: float) -> list[Word]:
    """Chunk-relative times -> source-relative times, clamped inside the chunk's real audio.

    Words the model placed in appended padding are pulled back to the chunk's end.
    """
    out = []
    for w in words:
        start = min(max(w.start, 0.0), chunk_duration_s)
        end = min(max(w.end, start), chunk_duration_s)
        out.append(Word(w.word, chunk_offset_s + start, chunk_offset_s + end))
    return out


def finalize_words(words: list[Word], offset_s: float = 0.0, ndigits: int = 2) -> list[Word]:
    """Shift by ``offset_s``, round, and make times monotonic: start <= end <= next start."""
    ordered = sorted(words, key=lambda w: w.start)
    out: list[Word] = []
    for i, w in enumerate(ordered):
        start = round(w.start + offset_s, ndigits)
        end = round(w.end + offset_s, ndigits)
        if out and start < out[-1].start:
            start = out[-1].start
        if i + 1 < len(ordered):
            end = min(end, round(ordered[i + 1].start + offset_s, ndigits))
        out.append(replace(w, start=start, end=max(start, end)))
    return out


def join_text(words: list[Word]) -> str:
    """Text from Whisper-style words (which carry their own leading spaces)."""
    return "".join(w.word for w in words).strip()
