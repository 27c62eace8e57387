"""GraphQL subscriptions over a real websocket (graphql-transport-ws) through Ray Serve,
and the batched ``analytics.event_processed`` notifications on the real NATS."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import nats
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from storage.bus import EVENT_PROCESSED
from tests.conftest import NATS_URL
from tests.e2e.realtime_support import ago, event

pytestmark = pytest.mark.e2e

CONTENT_LIVE = (
    "subscription($id: String!) { contentLive(contentId: $id, intervalMs: 100) "
    "{ contentId asOf source windows { window views uniqueUsers } } }"
)


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/graphql"


async def subscribe(base_url: str, key: str, query: str, variables: dict[str, Any]) -> ClientConnection:
    ws = await connect(ws_url(base_url), subprotocols=["graphql-transport-ws"], open_timeout=60, max_size=2**24)
    await ws.send(orjson.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}).decode())
    ack = orjson.loads(await asyncio.wait_for(ws.recv(), 60))
    assert ack["type"] == "connection_ack", ack
    await ws.send(
        orjson.dumps({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}).decode()
    )
    return ws


async def next_data(ws: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        if message["type"] == "ping":
            await ws.send('{"type": "pong"}')
            continue
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        return message["payload"]["data"]


def views_5m(data: dict[str, Any]) -> int:
    return next(w["views"] for w in data["contentLive"]["windows"] if w["window"] == "5m")


async def wait_for_views(ws: ClientConnection, views: int, timeout: float = 30) -> tuple[float, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        data = await next_data(ws, max(0.1, deadline - time.monotonic()))
        if views_5m(data) == views:
            return time.monotonic(), data


async def ingest(base_url: str, key: str, events: list[dict[str, Any]]) -> float:
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        response = await client.post("/api/v1/analytics/events/batch", json={"events": events})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(events)
    return time.monotonic()


async def test_subscriber_sees_new_events_within_a_second(service: Any, role_keys: dict[str, str], unique: str) -> None:
    content_id = f"sub-{unique}"
    ws = await subscribe(service.base_url, role_keys["viewer"], CONTENT_LIVE, {"id": content_id})
    try:
        first = await next_data(ws)
        assert first["contentLive"]["contentId"] == content_id
        assert views_5m(first) == 0
        assert first["contentLive"]["source"] == "live"
        events = [
            event(f"{content_id}-{i}", "content_view", content_id, f"{content_id}-u{i % 2}", ago(seconds=1))
            for i in range(3)
        ]
        accepted_at = await ingest(service.base_url, service.admin_key, events)
        seen_at, data = await wait_for_views(ws, 3)
        assert seen_at - accepted_at < 1.0
        window = next(w for w in data["contentLive"]["windows"] if w["window"] == "5m")
        assert window["uniqueUsers"] == 2
        assert data["contentLive"]["asOf"] is not None
    finally:
        await ws.close()


async def test_hundred_subscribers_all_receive_the_update(service: Any, role_keys: dict[str, str], unique: str) -> None:
    content_id = f"fan-{unique}"
    sockets = await asyncio.gather(
        *(subscribe(service.base_url, role_keys["analyst"], CONTENT_LIVE, {"id": content_id}) for _ in range(100))
    )
    try:
        firsts = await asyncio.gather(*(next_data(ws) for ws in sockets))
        assert all(views_5m(d) == 0 for d in firsts)
        events = [
            event(f"{content_id}-{i}", "content_view", content_id, f"{content_id}-u{i}", ago(seconds=1))
            for i in range(5)
        ]
        accepted_at = await ingest(service.base_url, service.admin_key, events)
        seen = await asyncio.gather(*(wait_for_views(ws, 5) for ws in sockets))
        assert len(seen) == 100
        assert all(views_5m(data) == 5 for _, data in seen)
        latest = max(at for at, _ in seen) - accepted_at
        assert latest < 1.0, f"slowest subscriber saw the update {latest:.3f} s after the ingest was acknowledged"
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets))


async def test_realtime_metrics_and_trending_subscriptions(
    service: Any, role_keys: dict[str, str], unique: str
) -> None:
    content_id = f"trend-sub-{unique}"
    metrics = await subscribe(
        service.base_url,
        role_keys["viewer"],
        "subscription { realtimeMetrics(intervalMs: 100) { asOf source eventsLast60s windows { window events } } }",
        {},
    )
    trending = await subscribe(
        service.base_url,
        role_keys["viewer"],
        'subscription { trendingContent(window: "5m", limit: 100, intervalMs: 100) '
        "{ window source items { contentId activity } } }",
        {},
    )
    try:
        before = (await next_data(metrics))["realtimeMetrics"]
        await next_data(trending)
        events = [event(f"{content_id}-{i}", "content_share", content_id, "u1", ago(seconds=1)) for i in range(4)]
        await ingest(service.base_url, service.admin_key, events)
        total_before = next(w["events"] for w in before["windows"] if w["window"] == "24h")
        deadline = time.monotonic() + 30
        while True:
            data = (await next_data(metrics, deadline - time.monotonic()))["realtimeMetrics"]
            if next(w["events"] for w in data["windows"] if w["window"] == "24h") == total_before + 4:
                break
        assert data["source"] == "live"
        while True:
            ranking = (await next_data(trending, deadline - time.monotonic()))["trendingContent"]
            mine = [i for i in ranking["items"] if i["contentId"] == content_id]
            if mine:
                break
        assert mine[0]["activity"] == 20.0  # 4 shares, weight 5
    finally:
        await metrics.close()
        await trending.close()


async def test_websocket_without_a_valid_key_is_closed(service: Any) -> None:
    ws = await connect(ws_url(service.base_url), subprotocols=["graphql-transport-ws"], open_timeout=60)
    await ws.send(orjson.dumps({"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}).decode())
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_service_key_may_not_subscribe(service: Any, role_keys: dict[str, str]) -> None:
    ws = await subscribe(service.base_url, role_keys["service"], CONTENT_LIVE, {"id": "x"})
    try:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 30))
        assert message["type"] in ("error", "next"), message
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "forbidden"
    finally:
        await ws.close()


async def test_event_processed_published_in_batches(service: Any, unique: str) -> None:
    nc = await nats.connect(NATS_URL)
    received: list[dict[str, Any]] = []
    ids = {f"bus-{unique}-{i}" for i in range(250)}

    async def handler(msg: Any) -> None:
        body = orjson.loads(msg.data)
        if ids & set(body["events"]["id"]):
            received.append(body)

    try:
        await nc.subscribe(EVENT_PROCESSED, cb=handler)
        await nc.flush()
        events = [event(i, "content_view", f"bus-{unique}", None, ago(seconds=1)) for i in sorted(ids)]
        await ingest(service.base_url, service.admin_key, events)
        deadline = time.monotonic() + 20
        while sum(len(set(b["events"]["id"]) & ids) for b in received) < len(ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        got = [i for b in received for i in b["events"]["id"] if i in ids]
        assert sorted(got) == sorted(ids)  # each stored event once
        assert len(received) < len(ids)  # batched, not one message per event
        assert all(b["count"] == len(b["events"]["id"]) for b in received)
    finally:
        await nc.close()
