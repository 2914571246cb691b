"""Splitting long text into sentences that fit the model, and putting the translation back.

Translation models are trained on sentences and have a hard input limit (512 tokens for Marian
and NLLB); feeding a whole transcript truncates it silently. The text is cut into sentences
(and over-long sentences at clause, then word, then character boundaries) so that every piece
fits ``max_tokens``; each piece remembers the whitespace that followed it, so the translations
are rejoined with the original paragraph and line structure. Concatenating the pieces with their
separators gives back the input exactly: nothing is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: End of a sentence: terminal punctuation (and closing quotes/brackets) followed by whitespace,
#: or CJK full-width terminal punctuation (no space follows it in CJK text).
_SENTENCE_END = re.compile(r"""(?<=[.!?…;])["'”’»)\]]*\s+|(?<=[。！？；])["'”’」』）]*\s*|\n\s*""")
_CLAUSE_END = re.compile(r"(?<=[,:;，、：；–—])\s+")


@dataclass(frozen=True)
class Piece:
    text: str
    sep: str  # whitespace that followed it in the source


@dataclass(frozen=True)
class Split:
    lead: str  # leading whitespace of the whole text
    pieces: tuple[Piece, ...]

    def join(self, translations: list[str]) -> str:
        assert len(translations) == len(self.pieces), "one translation per piece"
        return self.lead + "".join(t.strip() + p.sep for t, p in zip(translations, self.pieces, strict=True))

    def source(self) -> str:
        return self.lead + "".join(p.text + p.sep for p in self.pieces)


def _cut(text: str, pattern: re.Pattern) -> list[tuple[str, str]]:
    out, pos = [], 0
    for m in pattern.finditer(text):
        if m.start() == m.end() and m.start() >= len(text):
            break
        piece = text[pos : m.start()]
        if piece:
            out.append((piece, m.group(0)))
        elif out:  # separator right after a separator: extend the previous one
            out[-1] = (out[-1][0], out[-1][1] + m.group(0))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], ""))
    return out


def _words(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in re.finditer(r"(\S+)(\s*)", text)]


def _chars(text: str, count: Callable[[str], int], max_tokens: int) -> list[tuple[str, str]]:
    """Last resort for a run without spaces (e.g. CJK without punctuation): greedy by characters."""
    out, start = [], 0
    while start < len(text):
        lo, hi = start + 1, min(len(text), start + 16 * max_tokens)  # no token spans 16 characters
        while lo < hi:  # longest prefix that fits
            mid = (lo + hi + 1) // 2
            if count(text[start:mid]) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        out.append((text[start:lo], ""))
        start = lo
    return out


def _join(group: list[tuple[str, str]]) -> tuple[str, str]:
    return "".join(t + sp for t, sp in group[:-1]) + group[-1][0], group[-1][1]


def _pack(parts: list[tuple[str, str, int]], count: Callable[[str], int], max_tokens: int) -> list[tuple[str, str]]:
    """Greedily merge neighbouring parts (each fits alone) while their token counts add up to the limit.

    Counts are summed (sub-word tokenizers split at spaces first, so they nearly add up) and each
    merged group is counted once more; a group that turns out too long is halved.
    """
    groups: list[list[tuple[str, str]]] = []
    total = 0
    for text, sep, n in parts:
        if groups and "\n" not in groups[-1][-1][1] and total + n <= max_tokens:
            groups[-1].append((text, sep))
            total += n
        else:
            groups.append([(text, sep)])
            total = n
    out: list[tuple[str, str]] = []
    stack = list(reversed(groups))
    while stack:
        group = stack.pop()
        merged = _join(group)
        if len(group) == 1 or count(merged[0]) <= max_tokens:
            out.append(merged)
        else:
            half = len(group) // 2
            stack.extend([group[half:], group[:half]])
    return out


def _fit(piece: str, sep: str, count: Callable[[str], int], max_tokens: int, depth: int = 0) -> list[tuple[str, str]]:
    """Split one sentence until every part fits: at clauses, then words, then characters."""
    if count(piece) <= max_tokens:
        return [(piece, sep)]
    splitters = (lambda t: _cut(t, _CLAUSE_END), _words)
    if depth >= len(splitters):
        parts = _chars(piece, count, max_tokens)
        parts[-1] = (parts[-1][0], parts[-1][1] + sep)
        return parts
    parts = splitters[depth](piece)
    if len(parts) <= 1:
        return _fit(piece, sep, count, max_tokens, depth + 1)
    parts[-1] = (parts[-1][0], parts[-1][1] + sep)
    fitted: list[tuple[str, str, int]] = []
    for text, s in parts:
        n = count(text)
        if n <= max_tokens:
            fitted.append((text, s, n))
        else:
            fitted.extend((t, s2, count(t)) for t, s2 in _fit(text, s, count, max_tokens, depth + 1))
    return _pack(fitted, count, max_tokens)


def split_text(text: str, count: Callable[[str], int], max_tokens: int) -> Split:
    """Sentences of ``text`` (each at most ``max_tokens`` by ``count``), with their separators."""
    stripped = text.lstrip()
    lead = text[: len(text) - len(stripped)]
    pieces: list[Piece] = []
    for sentence, sep in _cut(stripped, _SENTENCE_END):
        for part, s in _fit(sentence, sep, count, max_tokens):
            pieces.append(Piece(part, s))
    return Split(lead, tuple(pieces))
