"""Small helpers shared by test modules."""

from __future__ import annotations

import socket

import httpx


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
