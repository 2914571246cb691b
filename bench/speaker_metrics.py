"""Word error rates for transcripts with speakers: plain WER and cpWER.

cpWER (concatenated minimum-permutation word error rate, from the CHiME-6 challenge): concatenate
each speaker's words, in time order, into one text per speaker, on both the reference and the
hypothesis side; pair reference speakers with hypothesis speakers one to one (the side with fewer
speakers padded with empty texts) in the way that gives the fewest word errors; cpWER is those
errors (substitutions + deletions + insertions) over the number of reference words. A word
attributed to the wrong speaker counts twice (deleted from one speaker, inserted in another), so
cpWER >= WER, and cpWER == WER when every word has the right speaker.

The best pairing is exact: the total is a sum over pairs, so it is an assignment problem
(Hungarian algorithm on the matrix of pairwise edit distances) rather than a search over all
permutations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

import jiwer
import numpy as np
from scipy.optimize import linear_sum_assignment


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]+", " ", text.lower())).strip()


def errors(reference: str, hypothesis: str) -> int:
    """Word edits (S + D + I) turning ``hypothesis`` into ``reference`` (normalized texts)."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return len(hyp.split())
    if not hyp:
        return len(ref.split())
    out = jiwer.process_words(ref, hyp)
    return int(out.substitutions + out.deletions + out.insertions)


def wer(reference: str, hypothesis: str) -> float:
    n = len(normalize(reference).split())
    return errors(reference, hypothesis) / n if n else float(bool(normalize(hypothesis)))


def by_speaker(items: Iterable[tuple[object, str]]) -> dict[object, str]:
    """(speaker, text) in time order -> one text per speaker."""
    out: dict[object, list[str]] = {}
    for speaker, text in items:
        out.setdefault(speaker, []).append(text)
    return {k: " ".join(v) for k, v in out.items()}


def cpwer(reference: Mapping[object, str], hypothesis: Mapping[object, str]) -> float:
    """cpWER of per-speaker texts (see the module docstring)."""
    refs: Sequence[str] = list(reference.values())
    hyps: Sequence[str] = list(hypothesis.values())
    n = max(len(refs), len(hyps))
    refs = [*refs, *([""] * (n - len(refs)))]
    hyps = [*hyps, *([""] * (n - len(hyps)))]
    cost = np.array([[errors(r, h) for h in hyps] for r in refs], dtype=np.int64)
    rows, cols = linear_sum_assignment(cost)
    total = sum(len(normalize(r).split()) for r in refs)
    return float(cost[rows, cols].sum()) / total if total else 0.0
