"""The event bus: NATS when ``ANALYTICS_NATS_URL`` is set, in-process otherwise.

Publishing is a notification, not the durable log (ClickHouse is): a message that cannot be
sent is counted and dropped, never retried into a duplicate. Each message carries a
``Nats-Msg-Id`` header, so a JetStream stream bound to the subject deduplicates it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

log = logging.getLogger("analytics.bus")

EVENT_PROCESSED = "analytics.event_processed"

CONNECT_TIMEOUT_SECONDS = 5.0
RETRY_AFTER_SECONDS = 5.0

Handler = Callable[[str, bytes], Awaitable[None]]


class EventBus(Protocol):
    async def publish(self, subject: str, payload: bytes, *, message_id: str | None = None) -> None: ...
    async def close(self) -> None: ...


class InProcessBus:
    """Delivers to handlers registered in this process (the default, and for tests)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = {}
        self.published = 0

    def subscribe(self, subject: str, handler: Handler) -> None:
        self._handlers.setdefault(subject, []).append(handler)

    @property
    def has_subscribers(self) -> bool:
        return bool(self._handlers)

    async def publish(self, subject: str, payload: bytes, *, message_id: str | None = None) -> None:
        self.published += 1
        for handler in self._handlers.get(subject, ()):
            await handler(subject, payload)

    async def close(self) -> None:
        self._handlers.clear()


class NatsBus:
    def __init__(self, url: str) -> None:
        self._url = url
        self._nc = None
        self._lock = asyncio.Lock()
        self._retry_at = 0.0
        self.failures = 0

    async def _client(self):
        if self._nc is not None and self._nc.is_connected:
            return self._nc
        if time.monotonic() < self._retry_at:
            raise ConnectionError(f"NATS at {self._url} was unreachable; retrying later")
        async with self._lock:
            if self._nc is None or not self._nc.is_connected:
                import nats

                try:
                    # Once connected the client reconnects by itself; the first connect is bounded.
                    self._nc = await asyncio.wait_for(
                        nats.connect(self._url, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=1),
                        timeout=CONNECT_TIMEOUT_SECONDS,
                    )
                except Exception:
                    self._retry_at = time.monotonic() + RETRY_AFTER_SECONDS
                    raise
        return self._nc

    async def publish(self, subject: str, payload: bytes, *, message_id: str | None = None) -> None:
        try:
            nc = await self._client()
            await nc.publish(subject, payload, headers={"Nats-Msg-Id": message_id} if message_id else None)
        except Exception:  # a notification must never fail the write path
            self.failures += 1
            log.warning("could not publish to %s", subject, exc_info=True)

    async def flush(self) -> None:
        if self._nc is not None and self._nc.is_connected:
            await self._nc.flush(timeout=5)

    async def close(self) -> None:
        if self._nc is not None:
            try:
                await self._nc.drain()
            except Exception:  # closing anyway
                log.debug("nats drain failed", exc_info=True)
            self._nc = None


def open_bus(nats_url: str | None) -> EventBus:
    return NatsBus(nats_url) if nats_url else InProcessBus()
