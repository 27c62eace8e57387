"""Group commit: concurrent submissions share one flush.

While a flush runs, new items queue; the next flush takes all of them. There is no
timer, so a lone request is flushed at once and a busy one rides with many others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[list[R]]],
        *,
        weight: Callable[[T], int] = lambda _: 1,
        max_weight: int = 10_000,
    ) -> None:
        self._flush = flush
        self._weight = weight
        self._max_weight = max_weight
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        # Shielded: a caller that goes away (client disconnect) does not cancel the write.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        while self._queue:
            count, total = 0, 0
            for item, _ in self._queue:
                total += self._weight(item)
                if count and total > self._max_weight:
                    break
                count += 1
            taken, self._queue = self._queue[:count], self._queue[count:]
            try:
                results = await self._flush([item for item, _ in taken])
            except BaseException as exc:  # every waiter must hear about the failure
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            if len(results) != len(taken):
                mismatch = RuntimeError(f"flush returned {len(results)} results for {len(taken)} items")
                for _, future in taken:
                    if not future.done():
                        future.set_exception(mismatch)
                continue
            for (_, future), result in zip(taken, results, strict=True):
                if not future.done():
                    future.set_result(result)
