"""Security benchmark: what rate limits and content scopes cost, what the request guard costs in
process, and how long erasing one user takes.

    python -m bench.bench_security --size small
    python -m bench.bench_security --size full      # erasure on the 10M-event store

Every cost is a comparison within the same run:

- ingest: the same batches and single events into a service with rate limits off, then into one with
  them on (Redis token buckets, limits high enough never to refuse), in the order off, on, on, off, off, on so
  that drift on the machine falls on both alike. Authentication, the role check and the audit trail run
  in both: the service has no way to switch them off. Their cost is the in-process guard figure.
- guard: the request guard of every route (serve_app/deps.py Allow: the key from the auth cache, the
  role check, the content scope, the rate limit), timed in this process per call.
- content analytics: the same content read fresh (``Cache-Control: no-cache``) by an unscoped and a
  scoped content_manager key of the guarded service, alternating, against the loaded workload.
- erasure: the busiest user of the workload erased; the time until the API shows nothing of them (their
  user analytics 404 and no raw event of theirs), and until the job has completed (their rows rewritten
  out of every table, the receipt written).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pyarrow as pa
import ray

from bench.bench_ingest import BATCH_PATH, SINGLE_PATH
from bench.common import BenchService, load_average, percentiles, print_table, write_result
from bench.loadgen import LoadGenerator
from bench.workload import PLATFORM_HOST, Workload, batch_bodies, load_into_actor, load_metadata_into_actor

NAME = "security"
REDIS_URL = "redis://127.0.0.1:6379/0"
SIZES: dict[str, dict[str, Any]] = {
    # For the test suite: proves the harness runs end to end, measures nothing.
    "tiny": {
        "batch_events": 4_000,
        "single_events": 300,
        "workload_events": 3_000,
        "content_requests": 20,
        "guard_calls": 2_000,
    },
    "small": {
        "batch_events": 150_000,
        "single_events": 6_000,
        "workload_events": 300_000,
        "content_requests": 300,
        "guard_calls": 50_000,
    },
    "full": {
        "batch_events": 150_000,
        "single_events": 6_000,
        "workload_events": 10_000_000,
        "content_requests": 300,
        "guard_calls": 50_000,
    },
}
BATCH_SIZE = 500
BATCH_CONCURRENCY = 4
SINGLE_CONCURRENCY = 8
# One client: latencies of one request at a time, which a scope's cost would show in.
CONTENT_CONCURRENCY = 1
# High enough that no request is refused: the benchmark times the limiter's bookkeeping, not limiting.
UNREFUSING_LIMITS = {
    "rate_limit_ingest_per_second": 1_000_000.0,
    "rate_limit_ingest_burst": 1_000_000,
    "rate_limit_query_per_second": 1_000_000.0,
    "rate_limit_query_burst": 1_000_000,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "rate_limits_off": {"rate_limits_enabled": False},
    "rate_limits_on": {"rate_limits_enabled": True, **UNREFUSING_LIMITS},
}


def _key(client: httpx.Client, name: str, role: str, scope: dict[str, list[str]] | None = None) -> str:
    body: dict[str, Any] = {"name": name, "role": role}
    if scope is not None:
        body["scope"] = scope
    made = client.post("/api/v1/admin/api-keys", json=body)
    made.raise_for_status()
    return str(made.json()["key"])


def _summary(outcome: dict[str, Any]) -> dict[str, Any]:
    """A load generator outcome without its raw samples: events stored per second, latency percentiles."""
    out = {k: v for k, v in outcome.items() if k != "latencies"}
    out["latency"] = percentiles(outcome["latencies"])
    out["events_per_second"] = round(outcome["accepted"] / outcome["seconds"]) if outcome["seconds"] else 0
    return out


def _ingest_round(variant: str, params: dict[str, Any], lines: pa.Array, generator: LoadGenerator) -> dict[str, Any]:
    """One service of ``variant``: the batches, then the single events; events per second of each."""
    with BenchService(internal_hosts=[PLATFORM_HOST], redis_url=REDIS_URL, **VARIANTS[variant]) as service:
        with httpx.Client(
            base_url=service.base_url, headers={"Authorization": f"Bearer {service.admin_key}"}, timeout=60
        ) as admin:
            key = _key(admin, "bench ingest", "service")
        n_batch, n_single = params["batch_events"], params["single_events"]
        warm = batch_bodies(lines.slice(0, 2_000), 100)
        generator.closed_loop(service.base_url, key, BATCH_PATH, warm, BATCH_CONCURRENCY)
        batches = batch_bodies(lines.slice(2_000, n_batch), BATCH_SIZE)
        batch = _summary(generator.closed_loop(service.base_url, key, BATCH_PATH, batches, BATCH_CONCURRENCY))
        singles = [line.encode() for line in lines.slice(2_000 + n_batch, n_single).to_pylist()]
        single = _summary(generator.closed_loop(service.base_url, key, SINGLE_PATH, singles, SINGLE_CONCURRENCY))
    return {"variant": variant, "batch": batch, "single": single}


def run_ingest(params: dict[str, Any], generator: LoadGenerator) -> dict[str, Any]:
    needed = 2_000 + params["batch_events"] + params["single_events"]
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    rounds = []
    order = (
        "rate_limits_off",
        "rate_limits_on",
        "rate_limits_on",
        "rate_limits_off",
        "rate_limits_off",
        "rate_limits_on",
    )
    for i, variant in enumerate(order):
        # Fresh ids every round: a repeated id would be a duplicate, which costs less.
        workload = Workload(events=needed, days=1, seed=53 + i, prefix=f"bs{i}{time.time_ns() % 10**6}-", end=end)
        lines = pa.concat_arrays(list(workload.api_lines()))
        rounds.append(_ingest_round(variant, params, lines, generator))
    summary: dict[str, Any] = {}
    for kind in ("batch", "single"):
        by_variant = {
            v: statistics.mean(r[kind]["events_per_second"] for r in rounds if r["variant"] == v)
            for v in ("rate_limits_off", "rate_limits_on")
        }
        off, on = by_variant["rate_limits_off"], by_variant["rate_limits_on"]
        summary[kind] = {
            "events_per_second_off": round(off),
            "events_per_second_on": round(on),
            "cost_percent": round((off - on) / off * 100, 2) if off else None,
        }
    return {"rounds": rounds, "summary": summary}


def run_guard(calls: int) -> dict[str, Any]:
    """Microseconds per call of the request guard's parts, in this process, as a replica runs them."""
    from core.access import CAN_READ_CONTENT_ANALYTICS, ContentScope, Role
    from core.settings import Settings
    from semantic.content_scope import CURRENT_SCOPE
    from semantic.rate_limits import RateLimiter, RateLimitMetrics, RouteClass
    from serve_app.auth import Authenticator
    from storage.cache import InProcessCache
    from storage.metadata import ApiKey

    scope = ContentScope.of(["news", "sports"], ["c1"])
    stored = ApiKey("key_bench", "bench", Role.CONTENT_MANAGER, "ak_bench", datetime.now(UTC), scope=scope)

    class OneKey:
        async def find_api_key(self, plain: str) -> ApiKey | None:
            return stored if plain == "ak_bench" else None

    async def per_call(step: Callable[[], Any]) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await step()
        return (time.perf_counter() - started) / calls * 1e6

    async def measure() -> dict[str, float]:
        auth = Authenticator(OneKey(), InProcessCache(), cache_seconds=3600)
        principal = await auth.authenticate("Bearer ak_bench")  # now in the auth cache
        limits = {"rate_limit_query_per_second": 1e9, "rate_limit_query_burst": 10**9}
        local = RateLimiter.from_settings(Settings(environment="test", **limits), RateLimitMetrics())
        shared = RateLimiter.from_settings(
            Settings(environment="test", redis_url=REDIS_URL, **limits), RateLimitMetrics()
        )

        async def role_and_scope() -> None:
            CAN_READ_CONTENT_ANALYTICS.check(principal)
            CURRENT_SCOPE.set(principal.scope)

        return {
            "authenticate (cached key)": await per_call(lambda: auth.authenticate("Bearer ak_bench")),
            "role check and scope": await per_call(role_and_scope),
            "rate limit (in-process buckets)": await per_call(lambda: local.admit(principal, RouteClass.QUERY)),
            "rate limit (Redis, leased)": await per_call(lambda: shared.admit(principal, RouteClass.QUERY)),
        }

    timings = asyncio.run(measure())
    return {"calls": calls, "microseconds_per_call": {k: round(v, 2) for k, v in timings.items()}}


def _fresh_get(client: httpx.Client, key: str, path: str) -> httpx.Response:
    return client.get(path, headers={"Authorization": f"Bearer {key}", "Cache-Control": "no-cache"})


def run_content(
    service: Any, params: dict[str, Any], workload: Workload, generator: LoadGenerator, admin: httpx.Client
) -> dict[str, Any]:
    """Content analytics of in-scope content read fresh by an unscoped and a scoped key, alternating."""
    actor = service.event_store
    rows = ray.get(
        actor.query.remote(
            "SELECT e.content_id, any(m.category) AS category, count() AS n FROM events AS e "
            "INNER JOIN content_metadata AS m ON m.content_id = e.content_id "
            "WHERE startsWith(e.id, {p:String}) AND e.event_type = 'content_view' "
            "GROUP BY e.content_id ORDER BY n DESC, e.content_id LIMIT 200",
            {"p": workload.prefix},
        )
    ).rows
    categories = sorted({row[1] for row in rows})
    in_scope = categories[: max(1, len(categories) // 2)]
    contents = [row[0] for row in rows if row[1] in in_scope][:50]
    unscoped = _key(admin, "bench unscoped", "content_manager")
    scoped = _key(admin, "bench scoped", "content_manager", {"categories": in_scope, "content_ids": []})
    end = workload.end
    dates = {"start_date": (end - timedelta(days=29)).date().isoformat(), "end_date": end.date().isoformat()}
    requests: list[tuple[str, str, bytes | None]] = [
        ("GET", f"/api/v1/analytics/content/{quote(contents[i % len(contents)])}?{urlencode(dates)}", None)
        for i in range(params["content_requests"])
    ]
    # The scoped key sees the same numbers for in-scope content: checked once before timing.
    probe = f"/api/v1/analytics/content/{quote(contents[0])}?{urlencode(dates)}"
    a, b = _fresh_get(admin, unscoped, probe), _fresh_get(admin, scoped, probe)
    same = a.status_code == b.status_code == 200 and a.json().get("views") == b.json().get("views")
    latencies: dict[str, list[float]] = {"unscoped": [], "scoped": []}
    statuses: dict[str, dict[str, int]] = {"unscoped": {}, "scoped": {}}
    for name in ("unscoped", "scoped", "scoped", "unscoped") * 2:
        key = unscoped if name == "unscoped" else scoped
        outcome = generator.request_loop(service.base_url, key, requests, CONTENT_CONCURRENCY, fresh=True)
        latencies[name] += outcome["latencies"]
        for status, n in outcome["statuses"].items():
            statuses[name][status] = statuses[name].get(status, 0) + n
    p95 = {name: percentiles(samples)["p95_ms"] for name, samples in latencies.items()}
    return {
        "categories_in_scope": in_scope,
        "contents": len(contents),
        "same_answer_in_scope": same,
        "latency": {name: percentiles(samples) for name, samples in latencies.items()},
        "statuses": statuses,
        "p95_ms_unscoped": round(p95["unscoped"], 2),
        "p95_ms_scoped": round(p95["scoped"], 2),
        "scope_cost_p95_ms": round(p95["scoped"] - p95["unscoped"], 2),
    }


def _poll(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> float | None:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if check():
            return time.perf_counter() - started
        time.sleep(interval)
    return None


def run_erasure(service: Any, workload: Workload, admin: httpx.Client) -> dict[str, Any]:
    """Erase the busiest user: seconds until the API shows nothing of them, and until the job completed."""
    actor = service.event_store
    user, events = ray.get(
        actor.query.remote(
            "SELECT user_id, count() AS n FROM events WHERE startsWith(id, {p:String}) AND user_id != '' "
            "GROUP BY user_id ORDER BY n DESC, user_id LIMIT 1",
            {"p": workload.prefix},
        )
    ).rows[0]
    store_events = int(ray.get(actor.query.remote("SELECT count() FROM events")).rows[0][0])
    fresh = {"Cache-Control": "no-cache"}
    user_path = f"/api/v1/analytics/users/{quote(user, safe='')}"
    assert admin.get(user_path, headers=fresh).status_code == 200

    def invisible() -> bool:
        analytics = admin.get(user_path, headers=fresh)
        raw = admin.get("/api/v1/analytics/events", params={"user_id": user, "limit": 1})
        return analytics.status_code == 404 and raw.status_code == 200 and not raw.json()["events"]

    started = time.perf_counter()
    job = admin.delete(f"{user_path}/data")
    job.raise_for_status()
    accepted = time.perf_counter() - started
    status_url = job.json()["status_url"]
    to_invisible = _poll(invisible, timeout=3600)
    done = _poll(lambda: admin.get(status_url).json()["status"] == "completed", timeout=3600, interval=0.5)
    receipt = admin.get(status_url).json()
    return {
        "store_events": store_events,
        "user_events": int(events),
        "accepted_seconds": round(accepted, 3),
        # Measured from the DELETE; the two polls run one after the other.
        "seconds_to_invisible": round(accepted + to_invisible, 2) if to_invisible is not None else None,
        "seconds_to_completed": round(time.perf_counter() - started, 2) if done is not None else None,
        "status": receipt.get("status"),
        "receipt_removed": (receipt.get("receipt") or {}).get("removed"),
    }


def run(size: str = "small", *, results_dir: Path | None = None) -> dict[str, Any]:
    params = SIZES[size]
    load_before = load_average()
    with ExitStack() as stack:
        generator = stack.enter_context(LoadGenerator())
        ingest = run_ingest(params, generator)
        guard = run_guard(params["guard_calls"])
        service = stack.enter_context(
            BenchService(internal_hosts=[PLATFORM_HOST], redis_url=REDIS_URL, **VARIANTS["rate_limits_on"])
        )
        workload = Workload(events=params["workload_events"], days=30, seed=59, prefix=f"bsw{time.time_ns() % 10**6}-")
        load_into_actor(workload, service.event_store)
        load_metadata_into_actor(workload, service.event_store)
        admin = stack.enter_context(
            httpx.Client(
                base_url=service.base_url, headers={"Authorization": f"Bearer {service.admin_key}"}, timeout=600
            )
        )
        content = run_content(service, params, workload, generator, admin)
        erasure = run_erasure(service, workload, admin)
    payload = {
        "size": size,
        "parameters": params,
        "load_average": {"before": load_before, "after": load_average()},
        "ingest": ingest,
        "guard": guard,
        "content_analytics": content,
        "erasure": erasure,
    }
    payload["summary"] = {
        "ingest_batch_cost_percent": ingest["summary"]["batch"]["cost_percent"],
        "ingest_single_cost_percent": ingest["summary"]["single"]["cost_percent"],
        "content_scope_cost_p95_ms": content["scope_cost_p95_ms"],
        "guard_microseconds_redis": round(
            sum(v for k, v in guard["microseconds_per_call"].items() if "in-process" not in k), 2
        ),
        "erasure_seconds_to_invisible": erasure["seconds_to_invisible"],
        "erasure_seconds_to_completed": erasure["seconds_to_completed"],
    }
    path = write_result(NAME if size != "full" else f"{NAME}_full", payload, results_dir)
    _print(payload, path)
    return payload


def _print(payload: dict[str, Any], path: Path) -> None:
    ingest = payload["ingest"]["summary"]
    print(f"\nsecurity benchmark ({payload['size']}), load average {payload['load_average']}")
    print_table(
        ["ingest", "events/s rate limits off", "events/s on", "cost %"],
        [
            [kind, s["events_per_second_off"], s["events_per_second_on"], s["cost_percent"]]
            for kind, s in ingest.items()
        ],
    )
    print_table(["guard part", "µs per call"], list(payload["guard"]["microseconds_per_call"].items()))
    c = payload["content_analytics"]
    print_table(
        ["content analytics", "p95 ms unscoped", "p95 ms scoped", "difference ms", "same answer"],
        [["fresh", c["p95_ms_unscoped"], c["p95_ms_scoped"], c["scope_cost_p95_ms"], c["same_answer_in_scope"]]],
    )
    e = payload["erasure"]
    print_table(
        ["erasure", "store events", "user events", "s to invisible", "s to completed", "status"],
        [
            [
                "one user",
                e["store_events"],
                e["user_events"],
                e["seconds_to_invisible"],
                e["seconds_to_completed"],
                e["status"],
            ]
        ],
    )
    print(f"result: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_security")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--results-dir", type=Path)
    args = parser.parse_args(argv)
    run(args.size, results_dir=args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
