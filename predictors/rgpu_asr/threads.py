"""Blocking work on a thread that stops when the request waiting for it is cancelled.

``asyncio.to_thread`` returns at once when its awaiting task is cancelled while the thread runs
on: a decoder would keep a spool file and a core busy after the request ended. Here the work gets
a ``threading.Event``, set on cancellation; the caller waits for the thread to notice it (the
decoders check it on every packet or frame) before the cancellation propagates, so no work
outlives its request.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """Raised by work that saw its cancel flag; the caller has gone away."""


async def run_cancellable(work: Callable[[threading.Event], T], cancel: threading.Event | None = None) -> T:
    """``work(cancel)`` on a worker thread; on cancellation, set ``cancel`` (a new event, or the
    caller's, which it may also set itself) and wait for the thread to stop."""
    cancel = cancel or threading.Event()
    future = asyncio.ensure_future(asyncio.to_thread(work, cancel))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(BaseException):
            await future
        raise
