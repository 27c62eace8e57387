"""The event store's read threads. chDB serves several clients on one directory inside one
process, so each thread reads through a client of its own and reads run beside the inserts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clickhouse_connect.driver.client import Client

from storage.events import ClickHouseEvents


class ReadPool:
    def __init__(self, connect: Callable[[], Client], *, threads: int) -> None:
        self._connect = connect
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="clickhouse-read")
        # Each thread's client, made on its first read: never shared between threads.
        self._local = threading.local()

    def thread_store(self) -> ClickHouseEvents:
        """The calling thread's own client (the read threads', and the append thread's for its
        duplicate checks)."""
        store: ClickHouseEvents | None = getattr(self._local, "store", None)
        if store is None:
            store = ClickHouseEvents(self._connect())
            self._local.store = store
        return store

    async def call(self, method: str, *args: Any) -> Any:
        """``ClickHouseEvents.<method>(*args)`` on a read thread."""

        def run() -> Any:
            return getattr(self.thread_store(), method)(*args)

        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)
