"""Word timing arithmetic shared by every transcription engine (pure functions)."""

from __future__ import annotations

from dataclasses import replace

from .types import Word


def place_chunk_words(words: list[Word], chunk_offset_s: float, chunk_duration_s: float) -> list[Word]:
    """Chunk-relative times -> file times, clamped inside the chunk's real audio.

    Words the model placed in appended padding are pulled back to the chunk's end.
    """
    out = []
    for w in words:
        start = min(max(w.start, 0.0), chunk_duration_s)
        end = min(max(w.end, start), chunk_duration_s)
        out.append(Word(w.word, chunk_offset_s + start, chunk_offset_s + end))
    return out


def finalize_words(words: list[Word], ndigits: int = 2) -> list[Word]:
    """Round, and make times monotonic: start <= end <= next start (the reference's clamping)."""
    ordered = sorted(words, key=lambda w: w.start)
    out: list[Word] = []
    for i, w in enumerate(ordered):
        start = round(w.start, ndigits)
        end = round(w.end, ndigits)
        if out and start < out[-1].start:
            start = out[-1].start
        if i + 1 < len(ordered):
            end = min(end, round(ordered[i + 1].start, ndigits))
        out.append(replace(w, start=start, end=max(start, end)))
    return out
