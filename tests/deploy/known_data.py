"""Known events for the BI files' SQL, and the tables of a store's database."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pyarrow as pa

from storage.events import ClickHouseEvents
from tests.support import stored_events

# The first of the days the events fall on (UTC midnight), recent enough for any retention setting.
BASE = datetime.combine(datetime.now(UTC).date() - timedelta(days=10), time(), UTC)
# Content views over three days from BASE's next day, about two hours apart: contents c0..c2, users
# u0..u6, on desktop and mobile, from search and direct; then four searches, one without a result.
VIEWS = 36


def known_events() -> pa.Table:
    views = stored_events(
        "bi-view-",
        VIEWS,
        BASE + timedelta(days=1, hours=10),
        step=timedelta(hours=1, minutes=59),
        device_type=["desktop" if i % 3 else "mobile" for i in range(VIEWS)],
        traffic_source=["search" if i % 2 else "direct" for i in range(VIEWS)],
    )
    searches = stored_events(
        "bi-search-",
        4,
        BASE + timedelta(days=2, hours=9),
        event_type=["search_query"] * 4,
        event_category=["search"] * 4,
        content_id=[""] * 4,
        properties=['{"query": "Ray", "results_count": 3}'] * 3 + ['{"query": "nothing", "results_count": 0}'],
    )
    return pa.concat_tables([views, searches])


def tables(store: ClickHouseEvents) -> dict[str, str]:
    """Table name -> engine, in the store's database."""
    rows = store.client.query("SELECT name, engine FROM system.tables WHERE database = currentDatabase()").result_rows
    return {name: engine for name, engine in rows}
