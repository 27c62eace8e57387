"""How fresh an analytics answer is: the data watermark.

The event store reports, per read, how far its tables are: ``stored_seq`` (inserts in the events
table), ``fed_seq`` (inserts fed to the rollups), ``tables_seq`` (writes to the other tables, such as
content metadata updates) and ``as_of`` (every event acknowledged before this instant is in both).
Answers carry ``as_of``; the result cache keys on the sequence numbers, so a cached answer is never
older than the data it would be computed from now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Watermark:
    stored_seq: int
    fed_seq: int
    as_of_ms: int
    # Writes to tables beside events (content metadata): they change answers without new events.
    tables_seq: int = 0

    @property
    def as_of(self) -> datetime:
        return datetime.fromtimestamp(self.as_of_ms / 1000, UTC)

    @property
    def key(self) -> str:
        return f"{self.stored_seq}.{self.fed_seq}.{self.tables_seq}"


WatermarkSource = Callable[[], Awaitable[Watermark]]


class WatermarkTracker:
    """A replica's view of the store's watermark, refreshed every ``poll_seconds`` in the background.

    Reading it costs nothing per request; an answer is then at most one poll older than the data
    (the documented rollup lag already allows that). A reader that finds it older than a few polls
    (the poll task stopped, or has not run yet) asks the store itself.
    """

    def __init__(self, source: WatermarkSource, *, poll_seconds: float) -> None:
        self._source = source
        self._poll = poll_seconds
        self._latest: Watermark | None = None
        self._read_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def current(self) -> Watermark:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        if self._latest is None or time.monotonic() - self._read_at > 5 * self._poll:
            await self._refresh()
        assert self._latest is not None
        return self._latest

    async def _refresh(self) -> None:
        watermark = await self._source()
        self._latest, self._read_at = watermark, time.monotonic()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll)
            try:
                await self._refresh()
            except Exception:  # noqa: BLE001 - the next poll retries; readers fall back to asking
                log.debug("watermark poll failed", exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
