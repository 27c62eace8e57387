"""Reports benchmark: how long a report takes from the request to its file, how long a day of raw events
takes to export as Parquet, and what twenty reports at once cost in time and memory.

    python -m bench.bench_reports --size small     # 300k events
    python -m bench.bench_reports --size full      # 10M events over 30 days (the load alone takes minutes)

The real service (BenchService) runs with a workload of ``workload_events`` events over 30 days loaded
into its event store, and the workload's content metadata. Everything goes through the HTTP API with the
admin key, as a client would:

- simple report: a ``custom`` report over a saved analyticsQuery (views and unique viewers by day over
  the workload's 30 days), in CSV and in JSON. Each run is timed from ``POST /reports/{id}/generate``
  to the first ``GET /reports/{id}/status?run_id=`` that answers the run ``completed`` (polled every
  20 ms). The first run of each report is a warm-up (it may start and import a worker) and is recorded
  apart; the CSV and JSON runs alternate.
- complex report: ``content_performance`` as PDF over the workload's last 30 days with its default
  metrics (six tables, four charts: line, bar, pie, heatmap), timed the same way; its file size.
- export: one full UTC day of raw events (the day before the workload's last) exported as Parquet,
  timed from ``POST /exports`` until ``GET /exports/{id}`` answers ``completed`` (polled every 50 ms),
  with its row count checked against the workload's events of that day (counted while loading them),
  its file size and the peak RSS of the export's worker (``ray::export:<export id>``).
- parallel reports: definitions cycling through every format and four report types, generated at
  once (the generate requests sent together from a thread pool), timed until every one is completed
  (the report list polled every 50 ms). Meanwhile the resident memory (RSS) of the Ray workers whose
  process title names a report run (``ray::report-run:<run id>``; Ray titles a task's worker after the
  task) is sampled every 50 ms: the peak of their sum and the peak of the largest one. The chart
  workers (``ray::chart_task``) are sampled the same way, and the machine's used memory
  (``psutil.virtual_memory().used``) beside them: its rise from before the requests to its peak.

Every run must end ``completed``: a failed one stops the benchmark with the run's error, and so does one
that makes no progress for ``STALL_SECONDS`` (naming the runs still unfinished).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NoReturn

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.common import BenchService, load_average, percentiles, print_table, write_result
from bench.workload import PLATFORM_HOST, Workload, load_into_actor, load_metadata_into_actor

NAME = "reports"
SIZES: dict[str, dict[str, Any]] = {
    # For the test suite: proves the harness runs end to end, measures nothing.
    "tiny": {"workload_events": 3_000, "simple_runs": 2, "complex_runs": 1, "parallel_reports": 5, "export_runs": 1},
    "small": {
        "workload_events": 300_000,
        "simple_runs": 10,
        "complex_runs": 5,
        "parallel_reports": 20,
        "export_runs": 3,
    },
    "full": {
        "workload_events": 10_000_000,
        "simple_runs": 10,
        "complex_runs": 5,
        "parallel_reports": 20,
        "export_runs": 3,
    },
}
API = "/api/v1/analytics"
REPORTS = f"{API}/reports"
EXPORTS = f"{API}/exports"
SIMPLE_FORMATS = ("csv", "json")
PARALLEL_FORMATS = ("pdf", "excel", "csv", "json", "html")
PARALLEL_TYPES = ("content_performance", "search_analytics", "user_engagement", "system_health")
TARGET_SECONDS = {"simple": 3.0, "complex": 15.0}
RUN_POLL_SECONDS = 0.02
LIST_POLL_SECONDS = 0.05
EXPORT_POLL_SECONDS = 0.05
SAMPLE_SECONDS = 0.05
# A worker that starts during a measurement is found within this many samples.
RESCAN_EVERY_SAMPLES = 10
# A run (or the parallel batch) that makes no progress for this long is taken for stuck: the benchmark
# stops with what is still unfinished rather than wait for the service's own run timeout.
STALL_SECONDS = 300.0
# Ray titles a task's worker process "ray::<task name>" while the task runs.
RUN_WORKER_TITLE = "ray::report-run:"
CHART_WORKER_TITLE = "ray::chart_task"
EXPORT_WORKER_TITLE = "ray::export:"
# Exports count against the export rate limit class; the benchmark polls faster than it allows.
UNREFUSING_EXPORT_LIMITS = {"rate_limit_export_per_second": 1_000_000.0, "rate_limit_export_burst": 1_000_000}
FINISHED = ("completed", "failed")
WORKLOAD_SEED = 61
MIB = 2**20


# --- what is measured around the runs ----------------------------------------------------------------


class WorkerMemory:
    """Peak RSS of this process's descendant processes whose title starts with one of ``titles``
    (group name -> title prefix), sampled in a thread every ``SAMPLE_SECONDS``; and the machine's
    used memory, before and at its peak.

    The list of descendants is taken again every ``RESCAN_EVERY_SAMPLES`` samples (a full scan of the
    process table); in between, only the known ones are read, so sampling stays light.
    """

    def __init__(self, titles: dict[str, str]) -> None:
        self._titles = titles
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-memory", daemon=True)
        self._peak_sum = dict.fromkeys(titles, 0)
        self._peak_single = dict.fromkeys(titles, 0)
        self._seen: dict[str, set[int]] = {group: set() for group in titles}
        self._samples = 0
        self._used_before = 0
        self._used_peak = 0

    def __enter__(self) -> WorkerMemory:
        import psutil

        self._used_before = self._used_peak = psutil.virtual_memory().used
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psutil

        me = psutil.Process()
        processes: list[Any] = []
        while not self._stop.is_set():
            if self._samples % RESCAN_EVERY_SAMPLES == 0:
                processes = me.children(recursive=True)
            self._sample(processes)
            self._used_peak = max(self._used_peak, psutil.virtual_memory().used)
            self._samples += 1
            self._stop.wait(SAMPLE_SECONDS)

    def _sample(self, processes: list[Any]) -> None:
        sums = dict.fromkeys(self._titles, 0)
        for process in processes:
            try:
                cmdline = process.cmdline()
                title = cmdline[0] if cmdline else ""
                group = next((g for g, prefix in self._titles.items() if title.startswith(prefix)), None)
                if group is None:
                    continue
                rss = process.memory_info().rss
            except Exception:  # noqa: BLE001, S112 - a process may end while we look
                continue
            sums[group] += rss
            self._peak_single[group] = max(self._peak_single[group], rss)
            self._seen[group].add(process.pid)
        for group, total in sums.items():
            self._peak_sum[group] = max(self._peak_sum[group], total)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            group: {
                "peak_sum_rss_mib": round(self._peak_sum[group] / MIB, 1),
                "peak_single_rss_mib": round(self._peak_single[group] / MIB, 1),
                "processes_seen": len(self._seen[group]),
            }
            for group in self._titles
        }
        out["machine_used"] = {
            "before_mib": round(self._used_before / MIB, 1),
            "peak_mib": round(self._used_peak / MIB, 1),
            "delta_mib": round((self._used_peak - self._used_before) / MIB, 1),
        }
        out["samples"] = self._samples
        return out


class _DayCountingStore:
    """The event store actor as ``load_into_actor`` calls it, counting each UTC day's events on their
    way in: the export's row count is checked against these counts."""

    def __init__(self, actor: Any) -> None:
        self._actor = actor
        self.by_day: Counter[date] = Counter()
        self.load_events = SimpleNamespace(remote=self._load_events)
        self.settle_rollups = actor.settle_rollups

    def _load_events(self, part: pa.Table) -> Any:
        millis = pc.cast(part.column("timestamp"), pa.int64()).to_numpy()
        days, counts = np.unique(millis // 86_400_000, return_counts=True)
        for day, n in zip(days.tolist(), counts.tolist(), strict=True):
            self.by_day[date(1970, 1, 1) + timedelta(days=day)] += n
        return self._actor.load_events.remote(part)


# --- runs --------------------------------------------------------------------------------------------


def _completed(run: dict[str, Any], what: str) -> dict[str, Any]:
    """``run`` when it completed; a failed (or unfinished) run stops the benchmark with its error."""
    if run.get("status") != "completed":
        raise RuntimeError(
            f"{what}: run {run.get('run_id') or run.get('id')} ended {run.get('status')!r}: {run.get('error')}"
        )
    return run


def _wait(poll: Callable[[], dict[str, Any]], interval: float, what: str) -> dict[str, Any]:
    """Poll until the answer's ``status`` is final; the last answer."""
    deadline = time.perf_counter() + STALL_SECONDS
    while True:
        answer = poll()
        if answer.get("status") in FINISHED:
            return answer
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{what}: still {answer.get('status')!r} after {STALL_SECONDS:.0f} s: {answer}")
        time.sleep(interval)


def _server_seconds(job: dict[str, Any]) -> float | None:
    """From the job's creation to its end, by the service's own clock."""
    if not job.get("created_at") or not job.get("finished_at"):
        return None
    return round(
        (datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])).total_seconds(), 3
    )


def generate_and_wait(admin: httpx.Client, report_id: str, what: str) -> tuple[float, dict[str, Any]]:
    """Seconds from the generate request to the first status that shows the run completed, and the run."""
    started = time.perf_counter()
    answer = admin.post(f"{REPORTS}/{report_id}/generate")
    answer.raise_for_status()
    run_id = answer.json()["run_id"]

    def status() -> dict[str, Any]:
        got = admin.get(f"{REPORTS}/{report_id}/status", params={"run_id": run_id})
        got.raise_for_status()
        return dict(got.json()["run"])

    run = _wait(status, RUN_POLL_SECONDS, what)
    return time.perf_counter() - started, _completed(run, what)


def _create(admin: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    made = admin.post(path, json=body)
    if made.status_code >= 400:
        raise RuntimeError(f"POST {path} answered {made.status_code}: {made.text}")
    return dict(made.json())


def _timed_summary(first: float, seconds: list[float], runs: list[dict[str, Any]], target: float) -> dict[str, Any]:
    p50, worst = statistics.median(seconds), max(seconds)
    return {
        "runs": len(seconds),
        "first_run_seconds": round(first, 3),
        "seconds": [round(s, 3) for s in seconds],
        "statuses": [r["status"] for r in runs],
        "server_seconds": [_server_seconds(r) for r in runs],
        "latency": percentiles(seconds),
        "p50_seconds": round(p50, 3),
        "max_seconds": round(worst, 3),
        "target_seconds": target,
        "within_target": worst < target,
        "file_size": runs[-1]["file_size"],
        "file_name": runs[-1]["file_name"],
    }


def run_simple(admin: httpx.Client, dates: dict[str, str], runs: int) -> dict[str, Any]:
    """The custom report over a saved analyticsQuery, CSV and JSON runs alternating after a warm-up each."""
    saved = _create(
        admin,
        f"{API}/saved-queries",
        {
            "name": "bench views and viewers by day",
            "kind": "query",
            "definition": {
                "metrics": ["views", "unique_viewers"],
                "dimensions": ["day"],
                "date_range": dates,
                "timezone": "UTC",
            },
        },
    )
    reports = {
        fmt: _create(
            admin,
            REPORTS,
            {
                "name": f"bench simple {fmt}",
                "report_type": "custom",
                "report_format": fmt,
                "data_source": f"saved_query:{saved['id']}",
                "date_range": {**dates, "timezone": "UTC"},
            },
        )["id"]
        for fmt in SIMPLE_FORMATS
    }
    first = {fmt: generate_and_wait(admin, rid, f"simple {fmt} (warm-up)")[0] for fmt, rid in reports.items()}
    seconds: dict[str, list[float]] = {fmt: [] for fmt in SIMPLE_FORMATS}
    done: dict[str, list[dict[str, Any]]] = {fmt: [] for fmt in SIMPLE_FORMATS}
    for _ in range(runs):
        for fmt, report_id in reports.items():
            took, run = generate_and_wait(admin, report_id, f"simple {fmt}")
            seconds[fmt].append(took)
            done[fmt].append(run)
    by_format = {
        fmt: _timed_summary(first[fmt], seconds[fmt], done[fmt], TARGET_SECONDS["simple"]) for fmt in SIMPLE_FORMATS
    }
    return {"saved_query_id": saved["id"], "date_range": dates, "formats": by_format}


def run_complex(admin: httpx.Client, dates: dict[str, str], runs: int) -> dict[str, Any]:
    """Content performance as PDF with its default metrics, tables and charts."""
    report_id = _create(
        admin,
        REPORTS,
        {
            "name": "bench content performance",
            "report_type": "content_performance",
            "report_format": "pdf",
            "date_range": {**dates, "period_type": "daily", "timezone": "UTC"},
        },
    )["id"]
    first, _ = generate_and_wait(admin, report_id, "complex pdf (warm-up)")
    seconds, done = [], []
    for _ in range(runs):
        took, run = generate_and_wait(admin, report_id, "complex pdf")
        seconds.append(took)
        done.append(run)
    return {
        "report_type": "content_performance",
        "format": "pdf",
        "date_range": dates,
        **_timed_summary(first, seconds, done, TARGET_SECONDS["complex"]),
    }


def run_parallel(admin: httpx.Client, dates: dict[str, str], count: int) -> dict[str, Any]:
    """``count`` reports of mixed types and formats generated at once; wall time and worker memory."""
    kinds = [
        (PARALLEL_TYPES[i % len(PARALLEL_TYPES)], PARALLEL_FORMATS[i % len(PARALLEL_FORMATS)]) for i in range(count)
    ]
    ids = [
        _create(
            admin,
            REPORTS,
            {
                "name": f"bench parallel {i} {kind} {fmt}",
                "report_type": kind,
                "report_format": fmt,
                "date_range": {**dates, "period_type": "daily", "timezone": "UTC"},
            },
        )["id"]
        for i, (kind, fmt) in enumerate(kinds)
    ]

    def generate(report_id: str) -> str:
        answer = admin.post(f"{REPORTS}/{report_id}/generate")
        answer.raise_for_status()
        return str(answer.json()["run_id"])

    seen_done: dict[str, float] = {}
    titles = {"report_run_workers": RUN_WORKER_TITLE, "chart_workers": CHART_WORKER_TITLE}
    with WorkerMemory(titles) as memory, ThreadPoolExecutor(max_workers=count) as pool:
        started = time.perf_counter()
        run_ids = list(pool.map(generate, ids))
        requests_seconds = time.perf_counter() - started
        progress = started
        # One list request per poll (the report's status follows its run) rather than one per run.
        while len(seen_done) < count:
            listed = admin.get(REPORTS, params={"limit": 200})
            listed.raise_for_status()
            now = time.perf_counter()
            for report in listed.json()["items"]:
                if report["id"] in ids and report["status"] in FINISHED and report["id"] not in seen_done:
                    seen_done[report["id"]] = now - started
                    progress = now
            if now - progress > STALL_SECONDS:
                _stalled(admin, ids, run_ids, kinds, seen_done)
            if len(seen_done) < count:
                time.sleep(LIST_POLL_SECONDS)
        wall = time.perf_counter() - started
    runs, created, finished = [], [], []
    for report_id, run_id, (kind, fmt) in zip(ids, run_ids, kinds, strict=True):
        got = admin.get(f"{REPORTS}/{report_id}/status", params={"run_id": run_id})
        got.raise_for_status()
        run = _completed(dict(got.json()["run"]), f"parallel {kind} {fmt}")
        created.append(datetime.fromisoformat(run["created_at"]))
        finished.append(datetime.fromisoformat(run["finished_at"]))
        runs.append(
            {
                "report_type": kind,
                "format": fmt,
                "run_id": run_id,
                "status": run["status"],
                "seconds_seen_done": round(seen_done[report_id], 3),
                "server_seconds": _server_seconds(run),
                "file_size": run["file_size"],
            }
        )
    sampled = memory.result()
    return {
        "reports": count,
        "requests_seconds": round(requests_seconds, 3),
        "wall_seconds": round(wall, 3),
        "server_wall_seconds": round((max(finished) - min(created)).total_seconds(), 3),
        "memory": sampled,
        "peak_run_workers_rss_mib": sampled["report_run_workers"]["peak_sum_rss_mib"],
        "peak_single_run_worker_rss_mib": sampled["report_run_workers"]["peak_single_rss_mib"],
        "machine_used_delta_mib": sampled["machine_used"]["delta_mib"],
        "runs": runs,
    }


def _stalled(
    admin: httpx.Client, ids: list[str], run_ids: list[str], kinds: list[tuple[str, str]], done: dict[str, float]
) -> NoReturn:
    """Stop the benchmark naming the runs that made no progress, with what the service says of them."""
    stuck = []
    for report_id, run_id, (kind, fmt) in zip(ids, run_ids, kinds, strict=True):
        if report_id in done:
            continue
        run = admin.get(f"{REPORTS}/{report_id}/status", params={"run_id": run_id}).json().get("run") or {}
        stuck.append(f"{kind} {fmt} {run_id}: {run.get('status')!r}, started {run.get('started_at')}")
    raise RuntimeError(
        f"parallel reports: no run finished for {STALL_SECONDS:.0f} s; {len(stuck)} of {len(ids)} unfinished: "
        + "; ".join(stuck)
    )


def run_export(admin: httpx.Client, day: date, expected_rows: int, runs: int) -> dict[str, Any]:
    """One day of raw events as Parquet, ``runs`` times: time, rows, size and the worker's peak RSS."""
    body = {
        "dataset": "events",
        "format": "parquet",
        "date_range": {"start_date": day.isoformat(), "end_date": day.isoformat()},
    }
    done = []
    for i in range(runs):
        with WorkerMemory({"export_worker": EXPORT_WORKER_TITLE}) as memory:
            started = time.perf_counter()
            export_id = _create(admin, EXPORTS, body)["id"]

            def status(export_id: str = export_id) -> dict[str, Any]:
                got = admin.get(f"{EXPORTS}/{export_id}")
                got.raise_for_status()
                return dict(got.json())

            export = _completed(_wait(status, EXPORT_POLL_SECONDS, f"export {i}"), f"export {i}")
            took = time.perf_counter() - started
        if export["row_count"] != expected_rows:
            raise RuntimeError(
                f"export {export['id']} holds {export['row_count']} rows; the workload has {expected_rows} on {day}"
            )
        sampled = memory.result()
        done.append(
            {
                "export_id": export["id"],
                "status": export["status"],
                "seconds": round(took, 3),
                "server_seconds": _server_seconds(export),
                "row_count": export["row_count"],
                "file_size": export["file_size"],
                "peak_worker_rss_mib": sampled["export_worker"]["peak_single_rss_mib"],
                "memory": sampled,
            }
        )
    seconds = [r["seconds"] for r in done]
    return {
        "day": day.isoformat(),
        "format": "parquet",
        "expected_rows": expected_rows,
        "runs": done,
        "latency": percentiles(seconds),
        "p50_seconds": round(statistics.median(seconds), 3),
        "max_seconds": round(max(seconds), 3),
        "row_count": done[-1]["row_count"],
        "file_size": done[-1]["file_size"],
        "peak_worker_rss_mib": max(r["peak_worker_rss_mib"] for r in done),
    }


@contextmanager
def _admin_client(service: Any) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {service.admin_key}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=120) as client:
        yield client


def run(size: str = "small", *, results_dir: Path | None = None) -> dict[str, Any]:
    params = SIZES[size]
    load_before = load_average()
    with ExitStack() as stack:
        service = stack.enter_context(BenchService(internal_hosts=[PLATFORM_HOST], **UNREFUSING_EXPORT_LIMITS))
        workload = Workload(events=params["workload_events"], days=30, seed=WORKLOAD_SEED)
        counting = _DayCountingStore(service.event_store)
        loaded = load_into_actor(workload, counting)
        load_metadata_into_actor(workload, service.event_store)
        assert workload.end is not None
        last_day = workload.end.date()
        dates = {"start_date": (last_day - timedelta(days=29)).isoformat(), "end_date": last_day.isoformat()}
        export_day = last_day - timedelta(days=1)
        admin = stack.enter_context(_admin_client(service))
        print(f"\nreports benchmark ({size}, {loaded.events:,} events), load average {load_before}")
        # Each part's figures are printed as soon as they are measured: a later part that stops the
        # benchmark leaves the earlier ones on the screen.
        simple = run_simple(admin, dates, params["simple_runs"])
        complex_report = run_complex(admin, dates, params["complex_runs"])
        _print_timed(simple, complex_report)
        export = run_export(admin, export_day, counting.by_day[export_day], params["export_runs"])
        _print_export(export)
        # Last: the batch leaves the most workers behind.
        parallel = run_parallel(admin, dates, params["parallel_reports"])
        _print_parallel(parallel)
    payload: dict[str, Any] = {
        "size": size,
        "parameters": params,
        "load_average": {"before": load_before, "after": load_average()},
        "workload": {
            "events": loaded.events,
            "days": workload.days,
            "seed": workload.seed,
            "end": workload.end.isoformat(),
            "first_event": loaded.first,
            "last_event": loaded.last,
            "load_seconds": round(loaded.seconds, 2),
        },
        "simple": simple,
        "complex": complex_report,
        "export": export,
        "parallel": parallel,
    }
    payload["summary"] = {
        **{
            f"simple_{fmt}_{key}_seconds": simple["formats"][fmt][f"{key}_seconds"]
            for fmt in SIMPLE_FORMATS
            for key in ("p50", "max")
        },
        "simple_target_seconds": TARGET_SECONDS["simple"],
        "complex_pdf_p50_seconds": complex_report["p50_seconds"],
        "complex_pdf_max_seconds": complex_report["max_seconds"],
        "complex_pdf_file_size": complex_report["file_size"],
        "complex_target_seconds": TARGET_SECONDS["complex"],
        "export_p50_seconds": export["p50_seconds"],
        "export_row_count": export["row_count"],
        "export_file_size": export["file_size"],
        "export_peak_worker_rss_mib": export["peak_worker_rss_mib"],
        "parallel_reports": parallel["reports"],
        "parallel_wall_seconds": parallel["wall_seconds"],
        "parallel_peak_run_workers_rss_mib": parallel["peak_run_workers_rss_mib"],
        "parallel_peak_single_run_worker_rss_mib": parallel["peak_single_run_worker_rss_mib"],
        "parallel_machine_used_delta_mib": parallel["machine_used_delta_mib"],
    }
    path = write_result(NAME if size != "full" else f"{NAME}_full", payload, results_dir)
    print(f"load average after {payload['load_average']['after']}\nresult: {path}")
    return payload


def _print_timed(simple: dict[str, Any], complex_report: dict[str, Any]) -> None:
    timed = [(f"simple (custom) {fmt}", s) for fmt, s in simple["formats"].items()]
    timed.append(("complex (content_performance) pdf", complex_report))
    print_table(
        ["report", "runs", "first run s", "p50 s", "max s", "target s", "within", "file bytes"],
        [
            [
                name,
                s["runs"],
                s["first_run_seconds"],
                s["p50_seconds"],
                s["max_seconds"],
                s["target_seconds"],
                s["within_target"],
                s["file_size"],
            ]
            for name, s in timed
        ],
    )


def _print_export(e: dict[str, Any]) -> None:
    print_table(
        ["export", "runs", "p50 s", "max s", "rows", "expected rows", "file bytes", "worker peak MiB"],
        [
            [
                f"events of {e['day']} as parquet",
                len(e["runs"]),
                e["p50_seconds"],
                e["max_seconds"],
                e["row_count"],
                e["expected_rows"],
                e["file_size"],
                e["peak_worker_rss_mib"],
            ]
        ],
    )


def _print_parallel(p: dict[str, Any]) -> None:
    m = p["memory"]
    print_table(
        [
            "parallel",
            "wall s",
            "server wall s",
            "run workers peak MiB",
            "largest run worker MiB",
            "run workers seen",
            "chart workers peak MiB",
            "machine used +MiB",
        ],
        [
            [
                f"{p['reports']} mixed reports",
                p["wall_seconds"],
                p["server_wall_seconds"],
                p["peak_run_workers_rss_mib"],
                p["peak_single_run_worker_rss_mib"],
                m["report_run_workers"]["processes_seen"],
                m["chart_workers"]["peak_sum_rss_mib"],
                p["machine_used_delta_mib"],
            ]
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_reports")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--results-dir", type=Path)
    args = parser.parse_args(argv)
    run(args.size, results_dir=args.results_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
