"""Who said which word: speaker attribution of a transcript (pure functions).

A diarizer gives speaker turns (``SpeakerTurn``: who spoke when, possibly overlapping); the
transcriber gives words. :func:`assign_speakers` gives each word exactly one speaker: the one
whose turns overlap the word the longest, or, for a word no turn overlaps, the speaker of the
nearest turn. Ties go to the lowest speaker number, and turns are put in a canonical order first,
so the answer never depends on the order the diarizer listed its turns in.
:func:`attribute` then numbers speakers by first appearance in the transcript and cuts segments
on every speaker change and on every pause longer than ``max_pause_s``.

Speaker-count hints (:class:`SpeakerHints`) and the matching of known-speaker reference clips to
diarized speakers (:func:`match_references`) live here too: every route and every diarizer,
local or remote, validates and matches the same way. Nothing here runs a model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InvalidInput
from .types import Transcript, Word

#: A pause between two words longer than this starts a new segment (same speaker or not).
DEFAULT_MAX_PAUSE_S = 1.0
#: Default ceiling on num_speakers / min_speakers / max_speakers; pyannote keeps per-frame
#: speaker counts in 8 bits, so no diarizer here takes more than 127.
SPEAKER_LIMIT = 100
#: Words are compared with turns this many at a time (bounds memory on multi-hour recordings).
_BLOCK = 512


@dataclass(frozen=True)
class SpeakerTurn:
    """``speaker`` talks from ``start`` to ``end`` (seconds from the start of the file)."""

    start: float
    end: float
    speaker: int


@dataclass(frozen=True)
class SpeakerWord:
    word: str
    start: float
    end: float
    speaker: int


@dataclass(frozen=True)
class SpeakerSegment:
    start: float
    end: float
    speaker: int
    text: str


@dataclass(frozen=True)
class SpeakerHints:
    """What the caller knows about the number of speakers; validated once for every route."""

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    @classmethod
    def build(
        cls,
        num_speakers: Any = None,
        min_speakers: Any = None,
        max_speakers: Any = None,
        speaker_limit: int = SPEAKER_LIMIT,
    ) -> SpeakerHints:
        """Validated hints, or ``InvalidInput`` naming the field: whole numbers from 1 to
        ``speaker_limit``, ``min_speakers <= max_speakers``, and ``num_speakers`` alone (an exact
        count and bounds at once contradict each other or say nothing more)."""
        counts: dict[str, int | None] = {}
        for name, value in (
            ("num_speakers", num_speakers),
            ("min_speakers", min_speakers),
            ("max_speakers", max_speakers),
        ):
            if value is None:
                counts[name] = None
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (isinstance(value, float) and not value.is_integer())
                or value < 1
            ):
                raise InvalidInput(f"{name} must be a whole number >= 1, got {value!r}")
            if value > speaker_limit:
                raise InvalidInput(
                    f"{name} must be at most {speaker_limit} (REFLECTOR_GPU_DIARIZER_SPEAKER_LIMIT), got {value!r}"
                )
            counts[name] = int(value)
        num, lo, hi = counts["num_speakers"], counts["min_speakers"], counts["max_speakers"]
        if num is not None and (lo is not None or hi is not None):
            raise InvalidInput(
                "num_speakers cannot be combined with min_speakers or max_speakers; send one or the other"
            )
        if lo is not None and hi is not None and lo > hi:
            raise InvalidInput(f"min_speakers ({lo}) must not exceed max_speakers ({hi})")
        return cls(num, lo, hi)

    def as_params(self) -> dict[str, int]:
        """The hints that are set, by name (query or form fields)."""
        return {k: v for k, v in vars(self).items() if v is not None}


def _canonical(turns: Sequence[SpeakerTurn]) -> list[SpeakerTurn]:
    return sorted((t for t in turns if t.end >= t.start), key=lambda t: (t.start, t.end, t.speaker))


def assign_speakers(words: Sequence[Word], turns: Sequence[SpeakerTurn]) -> list[int]:
    """One speaker (a turn's ``speaker``) per word, in word order.

    The speaker whose turns overlap the word the longest in total; a word no turn overlaps (or a
    word of zero length) gets the speaker of the nearest turn (distance 0 when a turn touches or
    contains it). Ties go to the lowest speaker number. With no turns at all (the diarizer heard
    no speech) every word gets speaker 0: one unknown speaker.
    """
    if not words:
        return []
    ordered = _canonical(turns)
    if not ordered:
        return [0] * len(words)
    t_start = np.array([t.start for t in ordered], dtype=np.float64)
    t_end = np.array([t.end for t in ordered], dtype=np.float64)
    labels = sorted({t.speaker for t in ordered})
    column = {s: i for i, s in enumerate(labels)}
    t_col = np.array([column[t.speaker] for t in ordered], dtype=np.int64)
    onehot = np.zeros((len(ordered), len(labels)), dtype=np.float64)
    onehot[np.arange(len(ordered)), t_col] = 1.0
    out: list[int] = []
    for first in range(0, len(words), _BLOCK):
        block = words[first : first + _BLOCK]
        w_start = np.array([w.start for w in block], dtype=np.float64)[:, None]
        w_end = np.array([max(w.end, w.start) for w in block], dtype=np.float64)[:, None]
        overlap = np.clip(np.minimum(w_end, t_end) - np.maximum(w_start, t_start), 0.0, None)
        per_speaker = overlap @ onehot  # summed in the canonical turn order: order-independent
        chosen = per_speaker.argmax(axis=1)  # the first maximum: the lowest speaker
        alone = np.flatnonzero(per_speaker.max(axis=1) <= 0)
        if alone.size:
            distance = np.maximum(
                np.maximum(t_start - w_end[alone], w_start[alone] - t_end), 0.0
            )  # 0 when a turn touches or contains the word
            closest = distance == distance.min(axis=1, keepdims=True)
            chosen[alone] = np.where(closest, t_col, len(labels)).min(axis=1)
        out.extend(labels[int(c)] for c in chosen)
    return out


def by_first_appearance(speakers: Sequence[int]) -> dict[int, int]:
    """Diarizer speaker -> 0, 1, ... in the order they first speak in ``speakers``."""
    ids: dict[int, int] = {}
    for s in speakers:
        ids.setdefault(s, len(ids))
    return ids


def join_words(words: Sequence[str]) -> str:
    """Words as one text: Whisper-style words carry their leading space and are concatenated;
    words without one are joined with a space."""
    out = ""
    for w in words:
        out += w if (not out or w[:1].isspace()) else " " + w
    return out.strip()


def split_segments(words: Sequence[SpeakerWord], max_pause_s: float = DEFAULT_MAX_PAUSE_S) -> list[SpeakerSegment]:
    """Consecutive words of one speaker, cut on every speaker change and every pause longer than
    ``max_pause_s``."""
    segments: list[SpeakerSegment] = []
    current: list[SpeakerWord] = []

    def close() -> None:
        if current:
            text = join_words([w.word for w in current])
            segments.append(SpeakerSegment(current[0].start, current[-1].end, current[0].speaker, text))

    for w in words:
        if current and (w.speaker != current[-1].speaker or w.start - current[-1].end > max_pause_s):
            close()
            current = []
        current.append(w)
    close()
    return segments


@dataclass(frozen=True)
class DiarizedTranscript:
    """A transcript whose words and segments carry speakers numbered 0, 1, ... by first
    appearance; ``names`` maps some of those numbers to the caller's known-speaker names."""

    transcript: Transcript
    words: list[SpeakerWord]
    segments: list[SpeakerSegment]
    names: dict[int, str] = field(default_factory=dict)

    @property
    def speakers(self) -> int:
        return len({w.speaker for w in self.words})

    def shifted(self, offset_s: float) -> DiarizedTranscript:
        """Every time moved by ``offset_s`` (a caller's ``timestamp_offset``); applied once."""
        if not offset_s:
            return self

        def move(t: float) -> float:
            return round(t + offset_s, 3)

        return replace(
            self,
            transcript=self.transcript.shifted(offset_s),
            words=[replace(w, start=move(w.start), end=move(w.end)) for w in self.words],
            segments=[replace(s, start=move(s.start), end=move(s.end)) for s in self.segments],
        )


def attribute(
    transcript: Transcript,
    turns: Sequence[SpeakerTurn],
    names: dict[int, str] | None = None,
    max_pause_s: float = DEFAULT_MAX_PAUSE_S,
) -> DiarizedTranscript:
    """``transcript`` with a speaker on every word (``names`` keyed by the turns' speakers)."""
    raw = assign_speakers(transcript.words, turns)
    ids = by_first_appearance(raw)
    words = [SpeakerWord(w.word, w.start, w.end, ids[s]) for w, s in zip(transcript.words, raw, strict=True)]
    renamed = {ids[s]: name for s, name in (names or {}).items() if s in ids}
    return DiarizedTranscript(transcript, words, split_segments(words, max_pause_s), renamed)


def letters(index: int) -> str:
    """0 -> "A", 25 -> "Z", 26 -> "AA", ...: OpenAI's speaker labels."""
    out = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        out = chr(ord("A") + rest) + out
    return out


def label(speaker: int, names: dict[int, str]) -> str:
    """The caller's name for ``speaker`` when a reference matched it, else its letter."""
    return names.get(speaker) or letters(speaker)


def cosine_similarities(references: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """(references x speakers) cosine similarities; a zero vector is similar to nothing (-1)."""
    a = np.asarray(references, dtype=np.float64)
    b = np.asarray(speakers, dtype=np.float64)
    na = np.linalg.norm(a, axis=1, keepdims=True)
    nb = np.linalg.norm(b, axis=1, keepdims=True)
    sims = (a @ b.T) / np.maximum(na * nb.T, 1e-12)
    sims[(na[:, 0] == 0)[:, None] | (nb[:, 0] == 0)[None, :]] = -1.0
    out: np.ndarray = np.nan_to_num(sims, nan=-1.0)
    return out


def match_references(similarity: np.ndarray, threshold: float) -> dict[int, int]:
    """Speaker column -> reference row, one to one: the most similar pair first, then the next
    most similar pair among those left, as long as the similarity is at least ``threshold``.
    Equal similarities go to the lower reference, then the lower speaker (deterministic)."""
    sims = np.asarray(similarity, dtype=np.float64)
    if sims.ndim != 2 or not sims.size:
        return {}
    pairs = sorted(
        ((float(sims[r, s]), r, s) for r in range(sims.shape[0]) for s in range(sims.shape[1])),
        key=lambda p: (-p[0], p[1], p[2]),
    )
    taken_refs: set[int] = set()
    out: dict[int, int] = {}
    for sim, r, s in pairs:
        if not math.isfinite(sim) or sim < threshold:
            break
        if r in taken_refs or s in out:
            continue
        out[s] = r
        taken_refs.add(r)
    return out
