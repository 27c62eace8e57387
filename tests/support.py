"""Small functions shared by test modules."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from typing import Any

import httpx
import pyarrow as pa

from storage.events import EVENT_SCHEMA


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def all_event_ids(client: httpx.Client, **filters: str) -> list[str]:
    """Every stored event id matching the filters, following next_cursor through all pages."""
    ids: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {**filters, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/api/v1/analytics/events", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids.extend(e["id"] for e in body["events"])
        cursor = body["next_cursor"]
        if not cursor:
            return ids


def stored_events(
    prefix: str, n: int, start: datetime, *, step: timedelta = timedelta(minutes=1), **columns: list[Any]
) -> pa.Table:
    """``n`` content views in the stored form (EVENT_SCHEMA), ids ``prefix0``…; ``columns`` override."""
    cols: dict[str, list[Any]] = {name: [""] * n for name in EVENT_SCHEMA.names}
    cols.update(
        id=[f"{prefix}{i}" for i in range(n)],
        event_type=["content_view"] * n,
        event_category=["content"] * n,
        timestamp=[start + step * i for i in range(n)],
        processed_at=[start] * n,
        content_id=[f"c{i % 3}" for i in range(n)],
        user_id=[f"u{i % 7}" for i in range(n)],
        session_id=[f"s{i % 5}" for i in range(n)],
        properties=["{}"] * n,
    )
    cols.update(columns)
    return pa.table(cols, schema=EVENT_SCHEMA)
