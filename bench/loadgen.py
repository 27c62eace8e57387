"""HTTP load generation for the benchmarks, run in a process of its own.

Bodies arrive pre-serialized, connections are kept alive (aiohttp on uvloop), and each run
reports the CPU time it used, so a reader can check that the load generator was not the
bottleneck. Two shapes:

- closed loop (:func:`closed_loop`): ``concurrency`` workers each send their next body as soon as
  the previous answer arrives. For sustained throughput.
- open loop (:func:`open_loop`): request ``i`` is due at ``start + i / rate`` whatever happened
  before, and its latency counts from that due time. A slow server therefore shows as latency
  instead of quietly lowering the offered rate (coordinated omission).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import orjson


def _headers(api_key: str, *, fresh: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    if fresh:
        # Analytics answers are computed, not served from the result cache (docs/queries.md).
        headers["Cache-Control"] = "no-cache"
    return headers


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(coro)


def _outcome(
    started_wall: float,
    started_cpu: float,
    latencies: list[float],
    statuses: Counter,
    counts: Counter,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    seconds = time.perf_counter() - started_wall
    cpu = time.process_time() - started_cpu
    return {
        "seconds": seconds,
        "latencies": latencies,
        "statuses": {str(k): v for k, v in statuses.items()},
        "accepted": counts["accepted"],
        "duplicates": counts["duplicates"],
        "rejected": counts["rejected"],
        "client_cpu_seconds": round(cpu, 3),
        "client_cpu_share": round(cpu / seconds, 3) if seconds else None,
        **(extra or {}),
    }


def _tally(status: int, payload: bytes, statuses: Counter, counts: Counter, single: bool) -> None:
    statuses[status] += 1
    if status >= 300:
        return
    if single:
        counts["accepted"] += 1
        counts["duplicates"] += status == 200
        return
    answer = orjson.loads(payload)
    counts["accepted"] += answer["accepted"]
    counts["duplicates"] += answer["duplicates"]
    counts["rejected"] += answer["rejected"]


async def _closed(base_url: str, api_key: str, path: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    statuses: Counter = Counter()
    counts: Counter = Counter()
    headers = _headers(api_key)
    single = not path.endswith("/batch")
    next_body = iter(bodies)

    async def worker(session: aiohttp.ClientSession) -> None:
        for body in next_body:
            started = time.perf_counter()
            async with session.post(path, data=body, headers=headers) as response:
                payload = await response.read()
            latencies.append(time.perf_counter() - started)
            _tally(response.status, payload, statuses, counts, single)

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(
        base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=600)
    ) as session:
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return _outcome(wall, cpu, latencies, statuses, counts, {"concurrency": concurrency, "requests": len(bodies)})


async def _open(
    base_url: str, api_key: str, path: str, bodies: list[bytes], rate: float, timeout: float = 30.0
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    service_latencies: list[float] = []
    statuses: Counter = Counter()
    counts: Counter = Counter()
    headers = _headers(api_key)
    single = not path.endswith("/batch")
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def send(session: aiohttp.ClientSession, body: bytes, due: float) -> None:
        sent = loop.time()
        lags.append(sent - due)
        try:
            async with session.post(path, data=body, headers=headers) as response:
                payload = await response.read()
            status = response.status
        except (TimeoutError, aiohttp.ClientError):
            payload, status = b"", 599  # no answer in time: counted, with its latency so far
        done = loop.time()
        latencies.append(done - due)
        service_latencies.append(done - sent)
        _tally(status, payload, statuses, counts, single)

    connector = aiohttp.TCPConnector(limit=1024)
    async with aiohttp.ClientSession(
        base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as session:
        # Open a pool of connections before the clock starts.
        await asyncio.gather(*(session.get("/healthz") for _ in range(min(32, len(bodies)))))
        wall, cpu = time.perf_counter(), time.process_time()
        start = loop.time() + 0.05
        tasks = []
        for i, body in enumerate(bodies):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(send(session, body, due)))
        await asyncio.gather(*tasks)
    lags.sort()
    extra = {
        "rate": rate,
        "requests": len(bodies),
        "achieved_rate": round(len(bodies) / (time.perf_counter() - wall), 1),
        "service_latencies": service_latencies,
        "dispatch_lag_p99_ms": round(lags[int(0.99 * (len(lags) - 1))] * 1000, 2) if lags else None,
        "dispatch_lag_max_ms": round(lags[-1] * 1000, 2) if lags else None,
    }
    return _outcome(wall, cpu, latencies, statuses, counts, extra)


async def _requests(
    base_url: str,
    api_key: str,
    requests: list[tuple[str, str, bytes | None]],
    concurrency: int,
    max_seconds: float | None,
    fresh: bool,
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    statuses: Counter = Counter()
    headers = _headers(api_key, fresh=fresh)
    pending = iter(requests)
    errors: list[str] = []

    deadline = time.perf_counter() + max_seconds if max_seconds else None

    async def worker(session: aiohttp.ClientSession) -> None:
        for method, path, body in pending:
            if deadline is not None and time.perf_counter() > deadline:
                return
            started = time.perf_counter()
            async with session.request(method, path, data=body, headers=headers) as response:
                payload = await response.read()
                if response.status >= 400 and len(errors) < 3:
                    errors.append(f"{response.status} {method} {path}: {payload[:300].decode(errors='replace')}")
                elif response.status == 200 and b'"errors"' in payload[:20] and len(errors) < 3:
                    errors.append(f"GraphQL errors: {payload[:300].decode(errors='replace')}")
            latencies.append(time.perf_counter() - started)
            statuses[response.status] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(
        base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=600)
    ) as session:
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return _outcome(
        wall,
        cpu,
        latencies,
        statuses,
        Counter(),
        {"concurrency": concurrency, "requests": len(latencies), "errors": errors},
    )


def closed_loop(base_url: str, api_key: str, path: str, bodies: list[bytes], concurrency: int) -> dict[str, Any]:
    return _run(_closed(base_url, api_key, path, bodies, concurrency))


def request_loop(
    base_url: str,
    api_key: str,
    requests: list[tuple[str, str, bytes | None]],
    concurrency: int,
    max_seconds: float | None = None,
    fresh: bool = False,
) -> dict[str, Any]:
    """Closed loop over arbitrary (method, path, body) requests, e.g. queries; stops early after
    ``max_seconds``. ``fresh`` asks for analytics answers computed, not from the result cache."""
    return _run(_requests(base_url, api_key, requests, concurrency, max_seconds, fresh))


def open_loop(base_url: str, api_key: str, path: str, bodies: list[bytes], rate: float) -> dict[str, Any]:
    return _run(_open(base_url, api_key, path, bodies, rate))


class LoadGenerator:
    """A separate process that runs the load; ``with LoadGenerator() as gen: gen.closed_loop(...)``."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    def __enter__(self) -> LoadGenerator:
        self._pool.submit(time.sleep, 0).result()  # start the process now, not inside a measurement
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.pid]

    def closed_loop(
        self, base_url: str, api_key: str, path: str, bodies: list[bytes], concurrency: int
    ) -> dict[str, Any]:
        return self._pool.submit(closed_loop, base_url, api_key, path, bodies, concurrency).result()

    def open_loop(self, base_url: str, api_key: str, path: str, bodies: list[bytes], rate: float) -> dict[str, Any]:
        return self._pool.submit(open_loop, base_url, api_key, path, bodies, rate).result()

    def request_loop(
        self,
        base_url: str,
        api_key: str,
        requests: list[tuple[str, str, bytes | None]],
        concurrency: int,
        max_seconds: float | None = None,
        fresh: bool = False,
    ) -> dict[str, Any]:
        return self._pool.submit(request_loop, base_url, api_key, requests, concurrency, max_seconds, fresh).result()
