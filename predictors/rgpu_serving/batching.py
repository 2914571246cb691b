"""Dynamic batching and admission control.

Concurrent requests put their work items (audio chunks) in one queue; a single worker gathers
what is waiting (up to ``max_batch`` items sharing a key, after at most ``max_wait_s``) into one
model call on a dedicated thread, so the event loop never blocks on inference and the model
sees batches instead of a lock-protected queue of single items.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .errors import unavailable

log = logging.getLogger("rgpu.batching")

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T]):
    item: T
    key: Hashable
    future: asyncio.Future = field(repr=False)


class DynamicBatcher(Generic[T, R]):
    """Gathers items from concurrent callers into calls of ``run_batch(key, items) -> results``."""

    def __init__(
        self,
        run_batch: Callable[[Hashable, list[T]], Sequence[R]],
        max_batch: int = 8,
        max_wait_s: float = 0.01,
        name: str = "model",
    ):
        self.run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_s
        self.name = name
        self._queue: collections.deque[_Pending[T]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-infer")
        self.batches_run = 0
        self.items_run = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def submit(self, items: Sequence[T], key: Hashable = None) -> list[R]:
        """Queue one caller's items; results come back in the same order."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        self._ensure_worker(loop)
        pendings = [_Pending(item, key, loop.create_future()) for item in items]
        self._queue.extend(pendings)
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            return list(await asyncio.gather(*(p.future for p in pendings)))
        finally:
            # A caller that went away (cancelled) leaves no work behind.
            for p in pendings:
                if not p.future.done():
                    p.future.cancel()

    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._work(), name=f"{self.name}-batcher")

    def _take(self) -> tuple[Hashable, list[_Pending[T]]]:
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()  # cancelled by its caller
        if not self._queue:
            return None, []
        key = self._queue[0].key
        batch, rest = [], collections.deque()
        while self._queue and len(batch) < self.max_batch:
            p = self._queue.popleft()
            if p.future.done():
                continue
            (batch if p.key == key else rest).append(p)
        self._queue.extendleft(reversed(rest))
        return key, batch

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                if len(self._queue) < self.max_batch and self.max_wait_s > 0:
                    await asyncio.sleep(self.max_wait_s)
                key, batch = self._take()
                if not batch:
                    continue
                try:
                    results = await loop.run_in_executor(self._executor, self.run_batch, key, [p.item for p in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{self.name}: batch of {len(batch)} gave {len(results)} results")
                except Exception as exc:  # every caller in the batch gets the error
                    log.exception("%s batch of %d failed", self.name, len(batch))
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(exc)
                    continue
                self.batches_run += 1
                self.items_run += len(batch)
                for p, r in zip(batch, results):
                    if p.future.done():
                        continue
                    if isinstance(r, BaseException):  # only this item failed; its neighbours did not
                        p.future.set_exception(r)
                    else:
                        p.future.set_result(r)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


class Admission:
    """Bounds the requests a predictor holds at once; beyond it, 503 + ``Retry-After``."""

    def __init__(self, limit: int, retry_after_s: int, what: str = "requests"):
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.what = what
        self.active = 0

    @contextlib.contextmanager
    def admit(self):
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


__all__ = ["Admission", "DynamicBatcher"]
