"""Ingest benchmark: durable events/s through the batch endpoint, single-event latency at fixed
rates (open loop), side by side with a bare uvicorn app and the raw engine, and service memory.

    python -m bench.bench_ingest --size small            # a few minutes
    python -m bench.bench_ingest --size full             # + memory with 10M events stored
    python -m bench.bench_ingest --size memory --no-baseline   # only the memory with 10M events stored
    ANALYTICS_INGRESS_MODE=proxy python -m bench.bench_ingest --size small --results-dir /tmp/proxy  # via Serve's proxy
    python -m bench.bench_ingest --serve-env RAY_SERVE_THROUGHPUT_OPTIMIZED=1   # try a Ray Serve knob

Every acknowledged event is durable (a 2xx means stored in ClickHouse), so events/s here is
durable events/s; the run ends by counting the stored rows to prove it. Each cell sends fresh
events (no duplicates), and the baseline app gets exactly the same request bodies. Throughput
cells alternate service / baseline so drifting background load hits both alike.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import (
    BenchService,
    cpu_by_role,
    cpu_delta,
    free_port,
    listening_addresses,
    load_average,
    percentiles,
    print_table,
    service_memory,
    service_processes,
    settle,
    write_result,
)
from bench.loadgen import LoadGenerator
from bench.serve_floor import deploy_empty_endpoint, remove_empty_endpoint
from bench.workload import PLATFORM_HOST, Workload, batch_bodies, load_into_actor

NAME = "ingest"
BATCH_PATH = "/api/v1/analytics/events/batch"
SINGLE_PATH = "/api/v1/analytics/events"

SIZES: dict[str, dict[str, Any]] = {
    # For the test suite: proves the harness runs end to end, measures nothing.
    "tiny": {
        "warmup": 200,
        "cell_events": 1_000,
        "batch_sizes": (100,),
        "concurrency": (2,),
        "single_rates": (20,),
        "single_seconds": 1.0,
        "memory_events": 0,
        "raw_blocks": (500,),
        "idle_seconds": 1.0,
    },
    # A throughput cell (small and full) is large enough to outlast the store's insert and rollup feed intervals, so it
    # pays for the feed and the merges of what it sends, as sustained ingest does; a cell over before the first feed
    # step would not.
    "small": {
        "warmup": 5_000,
        "cell_events": 300_000,
        "batch_sizes": (100, 1000),
        "concurrency": (4, 16),
        "single_rates": (100, 500),
        "single_seconds": 8.0,
        "memory_events": 1_000_000,
        "raw_blocks": (1000, 10_000, 200_000),
        "idle_seconds": 30.0,
    },
    "full": {
        "warmup": 10_000,
        "cell_events": 300_000,
        "batch_sizes": (100, 500, 1000, 5000),
        "concurrency": (1, 4, 16),
        "single_rates": (100, 250, 500, 1000),
        "single_seconds": 20.0,
        "memory_events": 10_000_000,
        "raw_blocks": (1000, 10_000, 200_000),
        "idle_seconds": 30.0,
    },
    # Only the memory figure: 10M events bulk-loaded through the event store actor.
    "memory": {
        "warmup": 1_000,
        "cell_events": 0,
        "batch_sizes": (),
        "concurrency": (),
        "single_rates": (),
        "single_seconds": 0.0,
        "memory_events": 10_000_000,
        "raw_blocks": (),
        "idle_seconds": 0.0,
    },
}

TARGETS = {
    "batch_events_per_second": 50_000,
    "ratio_to_baseline": 0.5,
    "single_p95_ms_at_500": 50.0,
    "memory_rss_gib_at_10m": 4.0,
}


@contextmanager
def baseline_server(internal_hosts: list[str]) -> Any:
    """The bare uvicorn + FastAPI app in a subprocess; yields (base_url, token, pid)."""
    data_dir = Path(tempfile.mkdtemp(prefix="analytics-baseline-"))
    port = free_port()
    token = secrets.token_urlsafe(16)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.baseline_app",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--token",
            token,
            "--internal-hosts",
            ",".join(internal_hosts),
            "--schema",
            "events",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                errors = process.stderr.read().decode()[-2000:] if process.stderr else ""
                raise RuntimeError(f"the baseline app did not start: {errors}")
            time.sleep(0.2)
        yield base_url, token, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def raw_engine(rows: pa.Table, blocks: tuple[int, ...], max_seconds: float = 20.0) -> list[dict[str, Any]]:
    """The ceiling: the same rows inserted straight into chDB, with all views and with the events table alone."""
    folder = Path(tempfile.mkdtemp(prefix="analytics-raw-"))
    try:
        pq.write_table(rows, folder / "rows.parquet")
        out = []
        for schema in ("full", "events"):
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.baseline_app",
                    "raw-insert",
                    "--parquet",
                    str(folder / "rows.parquet"),
                    "--data-dir",
                    str(folder / schema),
                    "--blocks",
                    ",".join(map(str, blocks)),
                    "--schema",
                    schema,
                    "--max-seconds",
                    str(max_seconds),
                ],
                cwd=Path(__file__).resolve().parent.parent,
                capture_output=True,
                text=True,
                check=True,
            )
            import orjson

            out.append(orjson.loads(done.stdout.strip().splitlines()[-1]))
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def idle_cpu(processes: list[Any], seconds: float) -> dict[str, Any]:
    """What the running service costs doing nothing: its CPU by process role over ``seconds``."""
    before = cpu_by_role(processes)
    started = time.monotonic()
    time.sleep(seconds)
    used = cpu_delta(before, cpu_by_role(processes))
    elapsed = time.monotonic() - started
    return {
        "seconds": round(elapsed, 1),
        "share_of_a_core": round(sum(used.values()) / elapsed, 4),
        "share_by_role": {role: round(cpu / elapsed, 4) for role, cpu in sorted(used.items(), key=lambda kv: -kv[1])},
    }


def _summary(outcome: dict[str, Any]) -> dict[str, Any]:
    """A load generator outcome without the raw samples."""
    out = {k: v for k, v in outcome.items() if k not in ("latencies", "service_latencies")}
    out["latency"] = percentiles(outcome["latencies"])
    if "service_latencies" in outcome:
        out["latency_from_send"] = percentiles(outcome["service_latencies"])
    out["events_per_second"] = round(outcome["accepted"] / outcome["seconds"]) if outcome["seconds"] else None
    return out


def _with_cpu(run_cell: Any, processes: list[Any], events: int) -> dict[str, Any]:
    """The cell's summary with the CPU each service process used meanwhile, in total and per event."""
    before = cpu_by_role(processes)
    out = _summary(run_cell())
    used = cpu_delta(before, cpu_by_role(processes))
    out["cpu_seconds_by_role"] = used
    out["cpu_us_per_event"] = {role: round(seconds / events * 1e6, 1) for role, seconds in used.items()}
    return out


def _add_tail_cost(outcome: dict[str, Any], events: int) -> None:
    """CPU per event of the cell and of its tail together: what an event costs in the end."""
    total = sum(outcome["cpu_seconds_by_role"].values()) + outcome["tail"]["cpu_seconds"]
    outcome["cpu_us_per_event_with_tail"] = round(total / events * 1e6, 1)


def run(
    size: str = "small",
    *,
    service: Any = None,
    results_dir: Path | None = None,
    baseline: bool = True,
    serve_env: dict[str, str] | None = None,
    workload_end: datetime | None = None,
) -> dict[str, Any]:
    """Run the ingest benchmark; ``service`` is an already running service (e.g. the test session's)."""
    params = SIZES[size]
    load_before = load_average()
    token = secrets.token_hex(3)
    cells = [(b, c) for b in params["batch_sizes"] for c in params["concurrency"]]
    single_events = int(sum(r * params["single_seconds"] for r in params["single_rates"]))
    needed = params["warmup"] + len(cells) * params["cell_events"] + single_events
    end = workload_end or datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)
    workload = Workload(events=needed, days=1, seed=31, prefix=f"bi{token}-", end=end)
    offset = 0

    def take(n: int) -> tuple[pa.Array, slice]:
        nonlocal offset
        part = slice(offset, offset + n)
        offset += n
        return lines.slice(part.start, n), part

    with ExitStack() as stack:
        if service is None:
            for key, value in (serve_env or {}).items():
                os.environ[key] = value
            service = stack.enter_context(BenchService(internal_hosts=[PLATFORM_HOST]))
        # Made after the service started, so the driver's memory at start is the service's alone.
        tables, line_parts = [], []
        for table, part in workload.both():
            tables.append(table)
            line_parts.append(part)
        rows = pa.concat_tables(tables)
        lines = pa.concat_arrays(line_parts)
        del tables, line_parts
        generator = stack.enter_context(LoadGenerator())
        base = stack.enter_context(baseline_server([PLATFORM_HOST])) if baseline else None
        exclude = generator.pids + ([base[2]] if base else [])
        processes = service_processes(exclude)
        targets = {"service": (service.base_url, service.admin_key)}
        if base:
            targets["baseline"] = (base[0], base[1])

        warm, _ = take(params["warmup"])
        for url, key in targets.values():
            generator.closed_loop(url, key, BATCH_PATH, batch_bodies(warm, 100), 4)
        # Each cell starts on a quiet machine and its tail (rollup feed, merges) is waited out after
        # it, not charged to the next cell; the tail is reported with the cell.
        quiet_on = processes + ([psutil.Process(base[2])] if base else [])
        wait_quiet = partial(settle, service.event_store, quiet_on, max_seconds=5.0 if size == "tiny" else 90.0)
        wait_quiet()
        idle = idle_cpu(processes, params["idle_seconds"]) if params["idle_seconds"] else None

        batch_cells = []
        raw_slices = []
        for batch_size, concurrency in cells:
            chunk, part = take(params["cell_events"])
            raw_slices.append(part)
            bodies = batch_bodies(chunk, batch_size)
            cell: dict[str, Any] = {"batch_size": batch_size, "concurrency": concurrency, "events": len(chunk)}
            for name, (url, key) in targets.items():
                run_cell = partial(generator.closed_loop, url, key, BATCH_PATH, bodies, concurrency)
                cell[name] = _with_cpu(run_cell, processes, len(chunk)) if name == "service" else _summary(run_cell())
                cell[name]["tail"] = wait_quiet()
                if name == "service":
                    _add_tail_cost(cell[name], len(chunk))
            if base:
                cell["ratio_to_baseline"] = round(
                    cell["service"]["events_per_second"] / max(1, cell["baseline"]["events_per_second"]), 3
                )
            batch_cells.append(cell)

        single_cells = []
        floor_url = deploy_empty_endpoint(SINGLE_PATH, service) + "/" if params["single_rates"] else ""
        for rate in params["single_rates"]:
            chunk, _ = take(int(rate * params["single_seconds"]))
            bodies = [line.encode() for line in chunk.to_pylist()]
            cell = {"rate": rate, "seconds": params["single_seconds"], "requests": len(bodies)}
            for name, (url, key) in targets.items():
                run_cell = partial(generator.open_loop, url, key, SINGLE_PATH, bodies, rate)
                cell[name] = _with_cpu(run_cell, processes, len(bodies)) if name == "service" else _summary(run_cell())
                cell[name]["tail"] = wait_quiet()
                if name == "service":
                    _add_tail_cost(cell[name], len(bodies))
            # The same requests to an empty endpoint deployed the same way (bench/serve_floor.py).
            cell["serve_floor"] = _summary(
                generator.open_loop(floor_url, service.admin_key, SINGLE_PATH.lstrip("/"), bodies, rate)
            )
            single_cells.append(cell)
        if params["single_rates"]:
            remove_empty_endpoint()

        # Durability: every acknowledged event is in ClickHouse.
        import ray

        prefix = workload.prefix
        stored = ray.get(
            service.event_store.query.remote(
                "SELECT count() FROM events WHERE startsWith(id, {p:String})", {"p": prefix}
            )
        ).rows[0][0]
        acknowledged = (
            sum(c["service"]["accepted"] for c in batch_cells)
            + sum(c["service"]["accepted"] for c in single_cells)
            + params["warmup"]
        )
        sent = offset

        memory = {
            "events_stored": int(ray.get(service.event_store.query.remote("SELECT count() FROM events")).rows[0][0]),
            **service_memory(exclude),
        }
        memory_large = None
        if params["memory_events"] > memory["events_stored"]:
            extra = Workload(
                events=params["memory_events"] - memory["events_stored"],
                days=30,
                seed=32,
                prefix=f"bm{token}-",
                end=end,
            )
            loaded = load_into_actor(extra, service.event_store)
            memory_large = {
                "events_stored": int(
                    ray.get(service.event_store.query.remote("SELECT count() FROM events")).rows[0][0]
                ),
                "bulk_load_events_per_second": round(loaded.events / loaded.seconds) if loaded.seconds else None,
                **service_memory(exclude),
            }
        listening = listening_addresses(processes)

    raw = []
    if baseline and raw_slices:
        # The rows of the throughput cells (at most 200k): what the service and the baseline stored.
        picked = [i for s in raw_slices for i in range(s.start, s.stop)][:200_000]
        raw = raw_engine(rows.take(pa.array(picked)), params["raw_blocks"], max_seconds=2.0 if size == "tiny" else 20.0)
    payload = {
        "size": size,
        "parameters": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        "serve_env": serve_env or {},
        "ingress_mode": service.settings.ingress_mode,
        "ingress_replicas": service.settings.ingress_replicas,
        "load_average": {"before": load_before, "after": load_average()},
        "targets": TARGETS,
        "batch": batch_cells,
        "single": single_cells,
        "raw_engine": raw,
        # Requests the client gave up on (timeouts) may still have been stored: a disconnect does not
        # cancel a write. So acknowledged <= stored <= sent; stored < acknowledged would be a loss.
        "durability": {
            "sent": sent,
            "acknowledged": acknowledged,
            "stored": int(stored),
            "all_stored": acknowledged <= int(stored) <= sent,
        },
        "idle": idle,
        "memory": memory,
        "memory_large": memory_large,
        "service_listening": listening,
        "load_generator": {
            "max_client_cpu_share": max(
                [c[n]["client_cpu_share"] or 0 for c in batch_cells + single_cells for n in targets if n in c] or [0]
            ),
            "note": "share of one core the load generator process used while sending "
            "(separate process, aiohttp on uvloop, pre-serialized bodies)",
        },
    }
    payload["summary"] = _headline(payload)
    # The memory-only run keeps its own file, so it does not replace the throughput figures.
    path = write_result(NAME if size != "memory" else f"{NAME}_memory", payload, results_dir)
    _print(payload, path)
    return payload


def _headline(payload: dict[str, Any]) -> dict[str, Any]:
    batch = payload["batch"]
    best = max(batch, key=lambda c: c["service"]["events_per_second"] or 0) if batch else None
    best_base = max((c["baseline"]["events_per_second"] or 0 for c in batch if "baseline" in c), default=None)
    at_500 = next((c for c in payload["single"] if c["rate"] == 500), None)
    large = payload["memory_large"] or payload["memory"]
    return {
        "best_batch_events_per_second": best["service"]["events_per_second"] if best else None,
        "best_batch_cell": {"batch_size": best["batch_size"], "concurrency": best["concurrency"]} if best else None,
        "best_baseline_events_per_second": best_base,
        "ratio_best_to_best_baseline": (
            round(best["service"]["events_per_second"] / best_base, 3) if best and best_base else None
        ),
        "single_p95_ms_at_500": at_500["service"]["latency"].get("p95_ms") if at_500 else None,
        "single_achieved_rate_at_500": at_500["service"]["achieved_rate"] if at_500 else None,
        "empty_serve_endpoint_p95_ms_at_500": at_500["serve_floor"]["latency"].get("p95_ms") if at_500 else None,
        "empty_serve_endpoint_achieved_rate_at_500": at_500["serve_floor"]["achieved_rate"] if at_500 else None,
        # The driver as `analytics run` holds it, not with the benchmark's request bodies.
        "memory_rss_mib": large.get("service_rss_mib", large["rss_mib"]),
        "memory_pss_mib": large.get("service_pss_mib", large["pss_mib"]),
        "memory_events_stored": large["events_stored"],
        "all_acknowledged_stored": payload["durability"]["all_stored"],
        "idle_share_of_a_core": payload["idle"]["share_of_a_core"] if payload["idle"] else None,
        "load_average_before": payload["load_average"]["before"],
    }


def _print(payload: dict[str, Any], path: Path) -> None:
    print(
        f"\ningest benchmark ({payload['size']}), "
        f"load average {payload['load_average']['before']} -> {payload['load_average']['after']}"
    )
    rows = []
    for c in payload["batch"]:
        s, b = c["service"], c.get("baseline")
        rows.append(
            [
                c["batch_size"],
                c["concurrency"],
                s["events_per_second"],
                s["latency"].get("p50_ms"),
                s["latency"].get("p95_ms"),
                b["events_per_second"] if b else "-",
                c.get("ratio_to_baseline", "-"),
                s.get("cpu_us_per_event_with_tail"),
                " ".join(
                    f"{k}={v}" for k, v in sorted(s.get("cpu_us_per_event", {}).items(), key=lambda kv: -kv[1])[:4]
                ),
            ]
        )
    print_table(
        [
            "batch",
            "conc",
            "events/s",
            "p50 ms",
            "p95 ms",
            "baseline ev/s",
            "ratio",
            "CPU us/event with tail",
            "service CPU us/event",
        ],
        rows,
    )
    print()
    rows = []
    for c in payload["single"]:
        s, b = c["service"], c.get("baseline")
        f = c.get("serve_floor")
        cpu = " ".join(f"{k}={v}" for k, v in sorted(s.get("cpu_us_per_event", {}).items(), key=lambda kv: -kv[1])[:3])
        rows.append(
            [
                c["rate"],
                s["achieved_rate"],
                s["latency"].get("p50_ms"),
                s["latency"].get("p95_ms"),
                s["latency"].get("p99_ms"),
                s["statuses"],
                b["latency"].get("p95_ms") if b else "-",
                f"{f['achieved_rate']} / {f['latency'].get('p95_ms')}" if f else "-",
                s["dispatch_lag_max_ms"],
                cpu,
            ]
        )
    print_table(
        [
            "req/s",
            "achieved",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "statuses",
            "baseline p95",
            "empty Serve endpoint req/s / p95",
            "send lag max ms",
            "service CPU us/request",
        ],
        rows,
    )
    for engine in payload["raw_engine"]:
        print(
            f"\nraw chDB insert ({engine['schema']} schema): "
            + ", ".join(f"{r['block_rows']:,}-row blocks {r['rows_per_second']:,} rows/s" for r in engine["results"])
        )
    m = payload["memory_large"] or payload["memory"]
    rss, pss = m.get("service_rss_mib", m["rss_mib"]), m.get("service_pss_mib", m["pss_mib"])
    print(
        f"\nmemory with {m['events_stored']:,} events stored: RSS {rss:,.0f} MiB, PSS {pss:,.0f} MiB "
        f"over {m['processes']} processes (the driver as at start)"
    )
    if payload.get("idle"):
        idle = payload["idle"]
        roles = " ".join(f"{role}={share:.1%}" for role, share in idle["share_by_role"].items())
        print(f"idle for {idle['seconds']:.0f} s: {idle['share_of_a_core']:.1%} of one core ({roles})")
    print(f"durable: {payload['durability']}")
    print(f"result: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_ingest")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--serve-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="Ray Serve environment knob for the service under test",
    )
    parser.add_argument("--results-dir", type=Path)
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.serve_env)
    run(args.size, baseline=not args.no_baseline, serve_env=env, results_dir=args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
