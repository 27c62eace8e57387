"""Real-time benchmark: live counter reads and event → subscriber latency under steady ingest.

    python -m bench.bench_realtime --size small
    python -m bench.bench_realtime --size full

While a steady stream of batches is ingested through the HTTP API, it measures
- counter reads over HTTP (``GET /content/{id}/live``, ``GET /real-time``, ``GET /content/trending``),
- the time from an event's ingest acknowledgement (and from its send) until every GraphQL
  ``contentLive`` subscriber (real websockets, graphql-transport-ws) has seen it.
Targets on the 2-core machine: counter read p95 < 20 ms, event → subscriber p95 < 1 s.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from bench.common import BenchService, percentiles, print_table, size_arguments, write_result

SIZES = {
    "small": {
        "seconds": 30,
        "events_per_second": 2000,
        "batch": 200,
        "contents": 500,
        "subscribers": 20,
        "reads_per_second": 40,
        "shards": 2,
    },
    "full": {
        "seconds": 120,
        "events_per_second": 5000,
        "batch": 500,
        "contents": 5000,
        "subscribers": 100,
        "reads_per_second": 100,
        "shards": 2,
    },
}
SUBSCRIPTION = (
    "subscription($id: String!) { contentLive(contentId: $id, intervalMs: 100) { windows { window views } } }"
)
KINDS = ("content_view", "content_view", "content_view", "content_play", "content_complete", "content_share")


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _steady_ingest(
    client: httpx.AsyncClient, p: dict[str, Any], run: str, stop: asyncio.Event, sent: list[int]
) -> None:
    period = p["batch"] / p["events_per_second"]
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        events = [
            {
                "id": f"{run}-{n + i}",
                "event_type": KINDS[(n + i) % len(KINDS)],
                "content_id": f"{run}-c{((n + i) * 7919) % p['contents']}",
                "user_id": f"{run}-u{(n + i) % 5000}",
                "session_id": f"{run}-s{(n + i) % 900}",
                "timestamp": _now(),
            }
            for i in range(p["batch"])
        ]
        n += p["batch"]
        response = await client.post("/api/v1/analytics/events/batch", json={"events": events})
        response.raise_for_status()
        sent[0] += p["batch"]
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _reads(
    client: httpx.AsyncClient, p: dict[str, Any], run: str, stop: asyncio.Event, out: dict[str, list[float]]
) -> None:
    paths = {
        "content_live": lambda i: f"/api/v1/analytics/content/{run}-c{i % p['contents']}/live",
        "real_time": lambda i: "/api/v1/analytics/real-time",
        "trending_1h": lambda i: "/api/v1/analytics/content/trending?window=1h&limit=20",
    }
    i = 0
    while not stop.is_set():
        for name, path in paths.items():
            started = time.perf_counter()
            response = await client.get(path(i))
            response.raise_for_status()
            out[name].append(time.perf_counter() - started)
        i += 1
        await asyncio.sleep(len(paths) / p["reads_per_second"])


async def _subscriber(
    base_url: str, key: str, content_id: str, seen: list[dict[int, float]], ready: asyncio.Event
) -> None:
    url = base_url.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"], open_timeout=60, max_size=2**24) as ws:
        await ws.send(orjson.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}).decode())
        await ws.recv()
        await ws.send(
            orjson.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIPTION, "variables": {"id": content_id}}}
            ).decode()
        )
        mine: dict[int, float] = {}
        seen.append(mine)
        ready.set()
        async for raw in ws:
            message = orjson.loads(raw)
            if message.get("type") != "next":
                continue
            windows = message["payload"]["data"]["contentLive"]["windows"]
            views = next(w["views"] for w in windows if w["window"] == "24h")
            mine.setdefault(views, time.monotonic())


async def _actor_reads(run: str, p: dict[str, Any], stop: asyncio.Event, out: dict[str, list[float]]) -> None:
    """The same reads straight from the actors (what the HTTP proxy adds is the difference)."""
    from actors.realtime_client import RealtimeClient

    client = RealtimeClient(shards=p["shards"])
    i = 0
    while not stop.is_set():
        for name, call in (
            ("actor_content_live", lambda i=i: client.content_live(f"{run}-c{i % p['contents']}")),
            ("actor_real_time", client.realtime),
        ):
            started = time.perf_counter()
            await call()
            out[name].append(time.perf_counter() - started)
        i += 1
        await asyncio.sleep(2 / p["reads_per_second"])


async def _probe(
    client: httpx.AsyncClient,
    run: str,
    content_id: str,
    count: int,
    stop: asyncio.Event,
    probes: list[tuple[int, float, float]],
) -> None:
    for n in range(1, count + 1):
        if stop.is_set():
            return
        event = {"id": f"{run}-probe-{n}", "event_type": "content_view", "content_id": content_id, "timestamp": _now()}
        sent = time.monotonic()
        response = await client.post("/api/v1/analytics/events", json=event)
        response.raise_for_status()
        probes.append((n, sent, time.monotonic()))
        await asyncio.sleep(1.0)


async def _measure(base_url: str, key: str, p: dict[str, Any]) -> dict[str, Any]:
    run = f"rtb-{secrets.token_hex(3)}"
    probe_content = f"{run}-probe"
    stop = asyncio.Event()
    sent = [0]
    reads: dict[str, list[float]] = {
        "content_live": [],
        "real_time": [],
        "trending_1h": [],
        "actor_content_live": [],
        "actor_real_time": [],
    }
    seen: list[dict[int, float]] = []
    probes: list[tuple[int, float, float]] = []
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits
    ) as client:
        readies = [asyncio.Event() for _ in range(p["subscribers"])]
        subs = [asyncio.create_task(_subscriber(base_url, key, probe_content, seen, r)) for r in readies]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        await asyncio.sleep(1.0)
        started = time.monotonic()
        tasks = [
            asyncio.create_task(_steady_ingest(client, p, run, stop, sent)),
            asyncio.create_task(_reads(client, p, run, stop, reads)),
            asyncio.create_task(_actor_reads(run, p, stop, reads)),
            asyncio.create_task(_probe(client, run, probe_content, p["seconds"] - 2, stop, probes)),
        ]
        await asyncio.sleep(p["seconds"])
        stop.set()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        await asyncio.sleep(2.0)
        for task in subs:
            task.cancel()
        await asyncio.gather(*subs, return_exceptions=True)
    from_ack, from_send, missed = [], [], 0
    for n, sent_at, acked_at in probes:
        for mine in seen:
            at = next((t for views, t in mine.items() if views >= n), None)
            if at is None:
                missed += 1
                continue
            from_ack.append(max(0.0, at - acked_at))
            from_send.append(at - sent_at)
    return {
        "ingested_events": sent[0],
        "ingest_events_per_second": round(sent[0] / elapsed, 1),
        "reads": {name: percentiles(values) for name, values in reads.items()},
        "event_to_subscriber_from_ack": percentiles(from_ack),
        "event_to_subscriber_from_send": percentiles(from_send),
        "probes": len(probes),
        "subscribers": p["subscribers"],
        "missed_updates": missed,
    }


def run(size: str = "small", results_dir: Path | None = None) -> dict[str, Any]:
    p = SIZES[size]
    with BenchService(redis_url="redis://127.0.0.1:6379/0", counter_shards=p["shards"]) as service:
        figures = asyncio.run(_measure(service.base_url, service.admin_key, p))
    result = {"size": size, "parameters": p, **figures}
    path = write_result("realtime", result, results_dir)
    rows = [
        [
            name if name.startswith("actor_") else f"GET {name}",
            v.get("n"),
            v.get("p50_ms"),
            v.get("p95_ms"),
            v.get("p99_ms"),
        ]
        for name, v in figures["reads"].items()
    ]
    for label in ("event_to_subscriber_from_ack", "event_to_subscriber_from_send"):
        v = figures[label]
        rows.append([label, v.get("n"), v.get("p50_ms"), v.get("p95_ms"), v.get("p99_ms")])
    print(
        f"steady ingest: {figures['ingest_events_per_second']} events/s, {p['subscribers']} subscribers, "
        f"missed updates: {figures['missed_updates']}"
    )
    print_table(["measure", "n", "p50 ms", "p95 ms", "p99 ms"], rows)
    print(f"written to {path}")
    return result


def main() -> None:
    args = size_arguments(__doc__, SIZES)
    run(args.size, results_dir=args.results_dir)


if __name__ == "__main__":
    main()
