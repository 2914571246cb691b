"""Word-level comparison of hypotheses: one normalization, and where a decoder started looping.

Whisper's decoder, given room after the speech, sometimes says the speech again ("Sure, what is
the date? Sure, what is the date?"), and a live partial decode sometimes stutters ("Thanks.
Thanks."). The realtime path compares partial hypotheses word by word and the Whisper engine
checks its short-window decodes for such tails; both use these functions.
"""

from __future__ import annotations

from collections.abc import Sequence


def norm_word(word: str) -> str:
    """What two hypotheses must agree on: the word without case, spaces or punctuation (a later
    decode that only adds a comma still confirms it)."""
    return "".join(ch for ch in word.lower() if ch.isalnum())


def repeated_tail(words: Sequence[str], min_period: int = 1) -> int:
    """Where the words stop saying something new: the index of the first word of a tail that
    repeats the ``k`` words before it (``k >= min_period``), once or several times, up to the
    end; ``len(words)`` when the end repeats nothing. The first copy is kept: ``a b c a b c``
    gives 3, ``Thanks. Thanks.`` gives 1 with ``min_period=1``. Compared normalized."""
    w = [norm_word(x) for x in words]
    n = len(w)
    cut = n
    for k in range(max(1, min_period), n // 2 + 1):
        start = n  # the tail w[start:] has w[i] == w[i - k] throughout
        while start - 1 - k >= 0 and w[start - 1] and w[start - 1] == w[start - 1 - k]:
            start -= 1
        if n - start >= k:
            cut = min(cut, start)
    return cut


__all__ = ["norm_word", "repeated_tail"]
