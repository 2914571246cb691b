"""Dynamic batching: work from concurrent callers gathered into model calls.

Concurrent requests put their work items (audio chunks, sentences, prompts) in one queue; a
single worker gathers what is waiting (up to ``max_batch`` items sharing a key, after at most
``max_wait_s``) into one model call on a dedicated thread, so the event loop never blocks on
inference and the model sees batches instead of a lock-protected queue of single items.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger("rgpu.batching")

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    key: Hashable
    future: asyncio.Future[R] = field(repr=False)


class DynamicBatcher(Generic[T, R]):
    """Gathers items from concurrent callers into calls of ``run_batch(key, items) -> results``.

    A result that is an exception fails only its own item's caller; an exception raised by
    ``run_batch`` fails every caller in that batch. ``on_batch(size)`` sees every model call
    (the edge counts them in a histogram).
    """

    def __init__(
        self,
        run_batch: Callable[[Hashable, list[T]], Sequence[R | BaseException]],
        max_batch: int = 8,
        max_wait_s: float = 0.01,
        name: str = "model",
        on_batch: Callable[[int], None] | None = None,
    ):
        self.run_batch = run_batch
        self.max_batch = max(1, max_batch)
        self.max_wait_s = max_wait_s
        self.name = name
        self.on_batch = on_batch
        self._queue: collections.deque[_Pending[T, R]] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-infer")

    async def submit(self, items: Sequence[T], key: Hashable = None, first: bool = False) -> list[R]:
        """Queue one caller's items; results come back in the same order. ``first``: ahead of
        what is waiting (work someone is waiting on, before best-effort work)."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        wakeup = self._ensure_worker(loop)
        pendings: list[_Pending[T, R]] = [_Pending(item, key, loop.create_future()) for item in items]
        if first:
            self._queue.extendleft(reversed(pendings))
        else:
            self._queue.extend(pendings)
        wakeup.set()
        try:
            return list(await asyncio.gather(*(p.future for p in pendings)))
        finally:
            # A caller that went away (cancelled) leaves no work behind.
            for p in pendings:
                if not p.future.done():
                    p.future.cancel()

    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        if self._wakeup is None or self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._work(self._wakeup), name=f"{self.name}-batcher")
        return self._wakeup

    def _take(self) -> tuple[Hashable, list[_Pending[T, R]]]:
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()  # cancelled by its caller
        if not self._queue:
            return None, []
        key = self._queue[0].key
        batch: list[_Pending[T, R]] = []
        rest: collections.deque[_Pending[T, R]] = collections.deque()
        while self._queue and len(batch) < self.max_batch:
            p = self._queue.popleft()
            if p.future.done():
                continue
            (batch if p.key == key else rest).append(p)
        self._queue.extendleft(reversed(rest))
        return key, batch

    async def _work(self, wakeup: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._queue:
                if len(self._queue) < self.max_batch and self.max_wait_s > 0:
                    await asyncio.sleep(self.max_wait_s)
                key, batch = self._take()
                if not batch:
                    continue
                if self.on_batch is not None:
                    self.on_batch(len(batch))
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
                for p, r in zip(batch, results, strict=True):
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


__all__ = ["DynamicBatcher"]
