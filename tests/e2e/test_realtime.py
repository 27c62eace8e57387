"""The real-time layer end to end: live counters, trending, Redis snapshots, shard recovery."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest
import ray
import redis

from actors import names
from tests.e2e.realtime_support import (
    WINDOWS,
    ago,
    event,
    expected_trend,
    expected_window,
    minute_of,
    poll,
    send,
    window_counts,
)

pytestmark = pytest.mark.e2e

LIVE = "/api/v1/analytics/content/{}/live"


def known_stream(prefix: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Four items: A takes off now, B is steady (also 90 min ago), C was busy 5 h ago, D is quiet."""
    a, b, c, d = (f"{prefix}-{x}" for x in "abcd")
    events: list[dict[str, Any]] = []

    def add(kind: str, content: str, user: str, at: datetime, **extra: Any) -> None:
        events.append(
            event(
                f"{prefix}-{len(events)}",
                kind,
                content,
                f"{prefix}-{user}",
                at,
                session_id=f"{prefix}-s-{user}",
                **extra,
            )
        )

    for i in range(12):
        add("content_view", a, f"u{i % 7}", ago(seconds=4), properties={"duration_seconds": 30})
    for i in range(4):
        add("content_share", a, f"u{i}", ago(seconds=3))
    add("content_complete", a, "u1", ago(seconds=3), properties={"duration_seconds": 95.5})
    for minutes in (0.05, 30, 90, 95):
        add("content_view", b, "u2", ago(minutes=minutes))
        add("content_play", b, "u3", ago(minutes=minutes))
    add("content_bookmark", b, "u4", ago(minutes=30))
    for i in range(6):
        add("content_view", c, f"u{i}", ago(hours=5))
    add("content_view", d, "u9", ago(seconds=2), properties={"duration_seconds": "not a number"})
    add("search_result_click", d, "u9", ago(seconds=2))
    return events, [a, b, c, d]


def settled_totals(client: httpx.Client, timeout: float = 30.0) -> dict[str, Any]:
    """The global figures once earlier tests' events have all been counted (two reads a tick apart agree)."""
    deadline = time.monotonic() + timeout
    last = client.get("/api/v1/analytics/real-time").json()
    while time.monotonic() < deadline:
        time.sleep(0.6)  # longer than the hub's snapshot age, so the second read is a new computation
        current = client.get("/api/v1/analytics/real-time").json()
        if (
            current["windows"]["24h"]["events"] == last["windows"]["24h"]["events"]
            and current["active_users_5m"] == last["active_users_5m"]
        ):
            return current
        last = current
    return last


def test_live_counters_and_trending_match_the_stream(admin: httpx.Client, unique: str) -> None:
    prefix = f"rt-{unique}"
    before = settled_totals(admin)
    events, contents = known_stream(prefix)
    # A category of their own keeps these items apart from every other test's content in the rankings.
    category = f"cat-{prefix}"
    for content_id in contents:
        response = admin.put(f"/api/v1/analytics/content-metadata/{content_id}", json={"category": category})
        assert response.status_code == 200, response.text
    send(admin, events)

    for content_id in contents:
        now_minute = minute_of(ago(seconds=0))
        expected = {w: expected_window(events, content_id, size, now_minute) for w, size in WINDOWS.items()}
        view = poll(
            lambda cid=content_id: admin.get(LIVE.format(cid)).json(),
            lambda v, expected=expected: all(window_counts(v, w) == expected[w] for w in WINDOWS),
        )
        for window in WINDOWS:
            assert window_counts(view, window) == expected[window], (content_id, window)
        assert view["source"] == "live"
        newest = max(datetime.fromisoformat(e["timestamp"]) for e in events if e["content_id"] == content_id)
        assert datetime.fromisoformat(view["as_of"]) == newest.replace(microsecond=newest.microsecond // 1000 * 1000)

    # GraphQL gives the same figures.
    body = admin.post(
        "/graphql",
        json={
            "query": "query($id: String!) { contentLive(contentId: $id) { contentId source "
            "windows { window views uniqueUsers shares watchTimeSeconds } } }",
            "variables": {"id": contents[0]},
        },
    ).json()
    assert body.get("errors") is None, body
    gql = {w["window"]: w for w in body["data"]["contentLive"]["windows"]}
    assert gql["5m"] == {"window": "5m", "views": 12, "uniqueUsers": 7, "shares": 4, "watchTimeSeconds": 12 * 30 + 95.5}

    # Top-K: exactly these items, in score order, with the figures computed here.
    for window in ("5m", "1h", "24h"):
        active = {cid for cid in contents if expected_trend(events, cid, WINDOWS[window], time.time())["activity"] > 0}
        ranking = poll(
            lambda w=window: admin.get(
                "/api/v1/analytics/content/trending", params={"window": w, "limit": 100, "category": category}
            ).json(),
            lambda r, want=active: {i["content_id"] for i in r["items"]} == want,
        )
        computed_at = datetime.fromisoformat(ranking["computed_at"]).timestamp()
        mine = ranking["items"]
        expected_items = {
            cid: expected_trend(events, cid, WINDOWS[window], computed_at)
            for cid in contents
            if expected_trend(events, cid, WINDOWS[window], computed_at)["activity"] > 0
        }
        assert [i["content_id"] for i in mine] == sorted(
            expected_items, key=lambda cid: -expected_items[cid]["score"]
        ), window
        for item in mine:
            want = expected_items[item["content_id"]]
            for field in ("activity", "baseline_per_minute", "velocity", "acceleration"):
                assert item[field] == pytest.approx(want[field], abs=1e-9), (window, item["content_id"], field)
            for field in ("popularity", "score"):
                assert item[field] == pytest.approx(want[field], rel=2e-3), (window, item["content_id"], field)
        assert [i["rank"] for i in ranking["items"]] == list(range(1, len(ranking["items"]) + 1))
        assert ranking["source"] == "live"

    # Global figures moved by exactly this stream (no other test sends events meanwhile).
    mine_24h = len(events)
    after = poll(
        lambda: admin.get("/api/v1/analytics/real-time").json(),
        lambda v: v["windows"]["24h"]["events"] - before["windows"]["24h"]["events"] == mine_24h,
    )
    assert after["windows"]["24h"]["events"] - before["windows"]["24h"]["events"] == mine_24h
    recent_users = {e["user_id"] for e in events if minute_of(e["timestamp"]) >= minute_of(ago(seconds=0)) - 4}
    assert after["active_users_5m"] - before["active_users_5m"] == len(recent_users)
    assert after["source"] == "live"
    assert after["as_of"] is not None


def test_errors_name_the_parameter(admin: httpx.Client, client_for: Any) -> None:
    response = admin.get("/api/v1/analytics/content/trending", params={"window": "2h"})
    assert response.status_code == 400
    assert response.json()["details"] == {"field": "window"}
    response = admin.get("/api/v1/analytics/content/trending", params={"limit": 101})
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "limit"
    body = admin.post("/graphql", json={"query": '{ trending(window: "7d") { window } }'}).json()
    assert body["errors"][0]["extensions"]["details"] == {"field": "window"}
    # service keys ingest only
    assert client_for("service").get("/api/v1/analytics/real-time").status_code == 403
    assert client_for("viewer").get("/api/v1/analytics/real-time").status_code == 200


def _shard_of(content_id: str, shards: int) -> int:
    import xxhash

    return xxhash.xxh64_intdigest(content_id.encode()) % shards


def test_killed_shard_recovers_to_clickhouse(admin: httpx.Client, service: Any, unique: str) -> None:
    shards = service.settings.counter_shards
    prefix = f"kill-{unique}"
    contents = [f"{prefix}-{i}" for i in range(8)]
    victim_index = _shard_of(contents[0], shards)
    victim = ray.get_actor(names.counter_shard(victim_index), namespace=names.NAMESPACE)
    pid_before = ray.get(victim.describe.remote())["pid"]
    kinds = ["content_view", "content_play", "content_share", "content_complete"]
    events = [
        event(
            f"{prefix}-{i}",
            kinds[i % 4],
            contents[i % 8],
            f"{prefix}-u{i % 23}",
            ago(seconds=30 - i * 0.005),
            session_id=f"{prefix}-s{i % 5}",
            properties={"duration_seconds": i % 11},
        )
        for i in range(3000)
    ]
    batches = [events[i : i + 100] for i in range(0, len(events), 100)]
    killed = threading.Event()

    def stream() -> None:
        for n, batch in enumerate(batches):
            send(admin, batch)
            if n == 10:
                killed.wait(30)

    sender = threading.Thread(target=stream)
    sender.start()
    poll(lambda: ray.get(victim.describe.remote())["deltas"], lambda d: d > 0, timeout=30)
    ray.kill(victim, no_restart=False)
    killed.set()
    sender.join(120)
    assert not sender.is_alive()

    # ClickHouse's truth for these items, read back through the raw events API (admin).
    stored: list[dict[str, Any]] = []
    for content_id in contents:
        cursor = None
        while True:
            params = {"content_id": content_id, "limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = admin.get("/api/v1/analytics/events", params=params).json()
            stored.extend(page["events"])
            cursor = page["next_cursor"]
            if not cursor:
                break
    assert len(stored) == len(events)

    now_minute = minute_of(ago(seconds=0))
    for content_id in contents:
        truth = expected_window(stored, content_id, 1440, now_minute)
        view = poll(
            lambda cid=content_id: admin.get(LIVE.format(cid)).json(),
            lambda v, t=truth: window_counts(v, "24h") == t,
            timeout=60,
        )
        assert window_counts(view, "24h") == truth, content_id
    after = ray.get(victim.describe.remote())
    assert after["pid"] != pid_before
    assert after["resyncs"] >= 1


def test_redis_snapshots_match_the_actors(admin: httpx.Client, service: Any, unique: str) -> None:
    prefix = f"redis-{unique}"
    content_id = f"{prefix}-a"
    send(
        admin,
        [event(f"{prefix}-{i}", "content_view", content_id, f"{prefix}-u{i % 3}", ago(seconds=2)) for i in range(9)],
    )
    live = poll(lambda: admin.get(LIVE.format(content_id)).json(), lambda v: v["windows"]["5m"]["views"] == 9)
    r = redis.Redis.from_url(service.settings.redis_url)
    try:
        snapshot = poll(
            lambda: orjson.loads(r.get(f"analytics:rt:content:{content_id}") or b"null"),
            lambda s: s is not None and s["windows"]["5m"]["views"] == 9,
            timeout=10,
        )
        assert snapshot is not None
        live = admin.get(LIVE.format(content_id)).json()
        for window in WINDOWS:
            assert window_counts(snapshot, window) == window_counts(live, window)
        assert snapshot["as_of"] == live["as_of"]
        assert 0 < r.ttl(f"analytics:rt:content:{content_id}") <= 25 * 3600

        real_time = admin.get("/api/v1/analytics/real-time").json()
        stored = poll(
            lambda: orjson.loads(r.get("analytics:rt:global") or b"null"),
            lambda s: s is not None and s["windows"]["24h"]["events"] == real_time["windows"]["24h"]["events"],
            timeout=10,
        )
        assert stored["windows"]["24h"]["events"] == real_time["windows"]["24h"]["events"]
        assert 0 < r.ttl("analytics:rt:global") <= 10

        def ranked(items: list[dict[str, Any]]) -> list[tuple[str, float]]:
            return [(i["content_id"], i["activity"]) for i in items]

        actors_ranking = admin.get("/api/v1/analytics/content/trending", params={"window": "5m", "limit": 100}).json()
        trending = poll(
            lambda: orjson.loads(r.get("analytics:rt:trending:5m") or b"null"),
            lambda s: s is not None and ranked(s["items"]) == ranked(actors_ranking["items"]),
            timeout=10,
        )
        assert ranked(trending["items"]) == ranked(actors_ranking["items"])
        assert 0 < r.ttl("analytics:rt:trending:5m") <= 10
        shard_keys = [f"analytics:rt:shard:{i}" for i in range(service.settings.counter_shards)]
        assert all(r.exists(k) for k in shard_keys)
    finally:
        r.close()


def test_trending_per_category(admin: httpx.Client, unique: str) -> None:
    prefix = f"cat-{unique}"
    category = f"category-{unique}"
    news, sport, other = f"{prefix}-news", f"{prefix}-sport", f"{prefix}-other"
    for content_id in (news, sport):
        response = admin.put(f"/api/v1/analytics/content-metadata/{content_id}", json={"category": category})
        assert response.status_code == 200, response.text
    events = [event(f"{prefix}-{i}", "content_view", news, f"{prefix}-u{i}", ago(seconds=2)) for i in range(3)]
    events += [event(f"{prefix}-s{i}", "content_share", sport, f"{prefix}-u{i}", ago(seconds=2)) for i in range(2)]
    events += [event(f"{prefix}-o{i}", "content_share", other, f"{prefix}-u{i}", ago(seconds=2)) for i in range(9)]
    send(admin, events)
    ranking = poll(
        lambda: admin.get("/api/v1/analytics/content/trending", params={"window": "5m", "category": category}).json(),
        lambda r: len(r["items"]) == 2,
    )
    assert [(i["content_id"], i["activity"], i["category"]) for i in ranking["items"]] == [
        (sport, 10.0, category),
        (news, 3.0, category),
    ]
    assert ranking["category"] == category


async def test_rollup_source_gives_the_same_figures(admin: httpx.Client, unique: str) -> None:
    """What the service answers from ClickHouse's minute table when the actors cannot."""
    from actors.event_store import RemoteEventStore, find_event_store_actor
    from semantic.realtime_rollup import RealtimeRollup

    events, contents = known_stream(f"rollup-{unique}")
    category = f"cat-rollup-{unique}"
    for content_id in contents:
        assert (
            admin.put(f"/api/v1/analytics/content-metadata/{content_id}", json={"category": category}).status_code
            == 200
        )
    send(admin, events)
    rollup = RealtimeRollup(RemoteEventStore(find_event_store_actor()))
    for content_id in contents:
        now_minute = minute_of(ago(seconds=0))
        expected = {w: expected_window(events, content_id, size, now_minute) for w, size in WINDOWS.items()}
        live = poll(
            lambda cid=content_id: admin.get(LIVE.format(cid)).json(),
            lambda v, expected=expected: all(window_counts(v, w) == expected[w] for w in WINDOWS),
        )
        stored = await rollup.content_live(content_id)
        assert stored["source"] == "rollup"
        for window in WINDOWS:
            assert window_counts(stored, window) == window_counts(live, window) == expected[window], (
                content_id,
                window,
            )
        assert stored["as_of"] == live["as_of"]
    totals = await rollup.realtime()
    live_totals = poll(
        lambda: admin.get("/api/v1/analytics/real-time").json(),
        lambda v: v["windows"]["24h"]["events"] == totals["windows"]["24h"]["events"],
    )
    assert live_totals["windows"]["24h"]["by_event_type"] == totals["windows"]["24h"]["by_event_type"]
    assert totals["source"] == "rollup"

    # Trending from the minute table: the same items, order and figures as computed here (and live).
    for window, size in WINDOWS.items():
        ranking = await rollup.trending(window, 100, category)
        assert ranking["source"] == "rollup" and ranking["category"] == category
        at = datetime.fromisoformat(ranking["computed_at"]).timestamp()
        want = {cid: expected_trend(events, cid, size, at) for cid in contents}
        want = {cid: w for cid, w in want.items() if w["activity"] > 0}
        assert [i["content_id"] for i in ranking["items"]] == sorted(
            want, key=lambda cid: (-want[cid]["score"], cid)
        ), window
        for item in ranking["items"]:
            for field in ("activity", "baseline_per_minute", "velocity", "acceleration"):
                assert item[field] == pytest.approx(want[item["content_id"]][field], abs=1e-9), (window, field)
            for field in ("popularity", "score"):
                # computed_at is to the millisecond; the decay used the exact clock.
                assert item[field] == pytest.approx(want[item["content_id"]][field], rel=1e-4), (window, field)
            assert item["category"] == category
        mine = [i["content_id"] for i in ranking["items"]]
        # The live ranking learns new categories on its next metadata refresh.
        live = poll(
            lambda w=window: admin.get(
                "/api/v1/analytics/content/trending", params={"window": w, "limit": 100, "category": category}
            ).json(),
            lambda r, want=mine: [i["content_id"] for i in r["items"]] == want,
        )
        assert [i["content_id"] for i in live["items"]] == mine, window
