"""Admission control: how many requests a predictor holds at once; beyond it, 503 + Retry-After."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .errors import unavailable


class Admission:
    """Bounds the requests a predictor holds at once; beyond it, 503 + ``Retry-After``."""

    def __init__(self, limit: int, retry_after_s: int, what: str = "requests"):
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.what = what
        self.active = 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        if self.active >= self.limit:
            raise unavailable(
                f"server is saturated ({self.active} {self.what} in progress, limit {self.limit}); retry later",
                self.retry_after_s,
            )
        self.active += 1
        try:
            yield
        finally:
            self.active -= 1
