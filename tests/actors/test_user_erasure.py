"""The event store's part of an erasure in this process (no Ray): written events still waiting in the
write-ahead log are stored and fed before the plan; the erasure leaves no row naming the user while the
other user's stay, moves the watermark on (cached answers are not served again), and the log segment
that held the user's events is deleted once the next write is checkpointed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from actors.event_store import EventStoreActor
from core.arrow_ipc import pack
from core.settings import Settings
from storage.events import EventFilter
from storage.user_data_tables import ErasurePlan
from tests.support import stored_events

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def test_the_store_erases_a_user_written_moments_ago(settings: dict[str, Any]) -> None:
    wal = Path(Settings(**settings).data_dir).resolve() / "wal"

    async def scenario() -> None:
        store = EventStoreActor(settings)
        try:
            n = 40
            users = ["u-gone" if i % 2 else "u-kept" for i in range(n)]
            table = stored_events("e", n, NOW, step=timedelta(seconds=30), user_id=users)
            await store.write(pack(table), [n])
            # Acknowledged, not flushed yet (the flush interval is long): the plan must see them anyway.
            assert (await store.describe())["pending_rows"] == n
            before = await store.watermark()
            segments = sorted(wal.glob("wal-*.log"))

            plan = ErasurePlan.from_dict(await store.user_data_plan(["u-gone"]))
            assert plan.rows["events"] == n // 2 and plan.rows["events_by_user"] == n // 2
            erased = await store.erase_user_data(["u-gone"], plan.to_dict())

            assert erased["events"] == {"rows": n // 2}
            assert set((await store.user_data_remaining(["u-gone"])).values()) == {0}
            assert await store.count(EventFilter(user_id="u-kept")) == n // 2
            assert (await store.watermark())[3] > before[3]

            # The next write starts a new segment; once it is in ClickHouse the old one is gone.
            await store.write(pack(stored_events("f", 3, NOW)), [3])
            await store.settle_rollups()
            assert not set(segments) & set(wal.glob("wal-*.log"))
        finally:
            store.close()

    asyncio.run(scenario())
