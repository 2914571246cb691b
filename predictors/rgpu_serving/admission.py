"""Admission control: requests a replica works on at once, and a bounded FIFO queue behind them.

Two numbers per predictor (``REFLECTOR_GPU_MAX_IN_FLIGHT``, ``REFLECTOR_GPU_MAX_QUEUED``; the
operator's ``maxInFlight`` / ``maxQueued``): up to ``max_in_flight`` requests are worked on at
once; the next ``max_queued`` wait, first come first served, holding nothing but their connection
(the gate runs before the body is read, so a queued upload is not spooled yet); beyond that a
request is refused at once with 503 + ``Retry-After``. Autoscaling is a third, separate number
(``targetInFlight``), read by KEDA from the gauges exported here (docs/scaling.md).

The gauges ``reflector_gpu_inflight_requests`` and ``reflector_gpu_queued_requests`` and the
histogram ``reflector_gpu_queue_wait_seconds`` (all by ``route``) are a documented contract: the
operator's KEDA trigger sums the first two.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator

from .errors import unavailable
from .metrics import INFLIGHT, QUEUE_WAIT, QUEUED


class Admission:
    """``max_in_flight`` working at once, ``max_queued`` waiting (FIFO); beyond, 503 + ``Retry-After``.

    Single event loop only (the predictors' server): counters are plain ints.
    """

    def __init__(self, max_in_flight: int, max_queued: int, retry_after_s: int, what: str = "requests"):
        self.max_in_flight = max(1, max_in_flight)
        self.max_queued = max(0, max_queued)
        self.retry_after_s = retry_after_s
        self.what = what
        #: Requests holding a slot now (being worked on).
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiters)

    def _release(self) -> None:
        """A slot freed: hand it to the oldest waiter still waiting, else give it back."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: in_flight unchanged
                return
        self.in_flight -= 1

    async def _acquire(self, route: str) -> None:
        if self.in_flight < self.max_in_flight and not self._waiters:
            self.in_flight += 1
            QUEUE_WAIT.labels(route).observe(0.0)
            return
        if len(self._waiters) >= self.max_queued:
            raise unavailable(
                f"server is saturated ({self.in_flight} {self.what} in progress, {len(self._waiters)} queued; "
                f"limits {self.max_in_flight} + {self.max_queued}); retry later",
                self.retry_after_s,
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        started = time.perf_counter()
        QUEUED.labels(route).inc()
        try:
            await waiter
        except BaseException:
            # Cancelled while queued (the client went away): leave the queue; a slot already
            # handed to us (set_result raced the cancellation) goes to the next one.
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self._release()
            raise
        finally:
            QUEUED.labels(route).dec()
            QUEUE_WAIT.labels(route).observe(time.perf_counter() - started)

    @contextlib.asynccontextmanager
    async def admit(self, route: str) -> AsyncIterator[None]:
        """Hold a slot for the body of the ``async with`` (waiting in the queue first when all
        are taken); 503 + ``Retry-After`` when the queue is full too."""
        await self._acquire(route)
        INFLIGHT.labels(route).inc()
        try:
            yield
        finally:
            INFLIGHT.labels(route).dec()
            self._release()
