"""Journeys benchmark: behavior patterns, a user's journey and a content's journey on a store with bot
sessions, in one process (embedded chDB, no Ray or HTTP).

    python -m bench.bench_journeys                                   # 2M events, 1% bot sessions
    python -m bench.bench_journeys --events 10000000 --store /tmp/journeys-10m --runs 5

Bots view hundreds to thousands of items in one session; statements that hold a whole session (or
a whole user) in memory, or copy it per step, grow with the square of that. This loads a workload
with a bot slice (``Workload.bot_session_share``) into a chDB store, then calls each service the
way its route does and times every call and every statement it sends, with the CPU time of the
process during the call (chDB's threads included: steadier than wall time on a shared machine) and
its peak resident memory (VmHWM, reset before each call; the resident memory before the call is
reported beside it, as memory a process once used stays resident).

``--service-budget`` runs the statements under the service's query budget (``QueryBudget`` from
Settings: time, memory and rows read per statement), so a statement the service would refuse
fails here too. ``--store DIR`` keeps the store: a later run with the same workload arguments
reuses it, so one store serves many measurements. The result goes to
``<results-dir>/journeys.json`` (default: the temp dir): this benchmark is run on demand and its
figures are not kept in bench/results.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from bench.common import load_average, print_table, write_result
from bench.workload import Workload, bulk_rows, metadata_rows
from core.settings import Settings
from semantic.analytics import Analytics
from semantic.periods import Period
from storage.events import ClickHouseEvents, QueryResult
from storage.query_budget import QueryBudget

NAME = "journeys"
DATABASE = "bench_journeys"
MARKER = "workload.json"


class TimedStore:
    """The EventStore read interface over a ClickHouseEvents in this process, timing each statement.

    Statements run one after another here (the client is synchronous), so each time is that
    statement's alone even where a service gathers several.
    """

    def __init__(self, events: ClickHouseEvents) -> None:
        self.events = events
        self.log: list[tuple[str, float]] = []

    async def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        started = time.perf_counter()
        result = self.events.query(sql, parameters)
        self.log.append((sql, time.perf_counter() - started))
        return result

    async def query_arrow(self, sql: str, parameters: dict[str, Any] | None = None) -> pa.Table:
        started = time.perf_counter()
        result = self.events.query_arrow(sql, parameters)
        self.log.append((sql, time.perf_counter() - started))
        return result


def _reset_peak_memory() -> None:
    """Start a new VmHWM (Linux: writing 5 to clear_refs resets the process's peak RSS)."""
    Path("/proc/self/clear_refs").write_text("5")


def _memory_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmHWM: peak resident, VmRSS: resident now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _statement_label(sql: str) -> str:
    """A short name for a statement: its first words and the tables it reads."""
    text = " ".join(sql.split())
    tables = sorted(set(re.findall(r"\bFROM\s+([a-z_]+)", text)))
    return f"{text[:48]}... [{', '.join(tables)}]"


def _open_store(folder: Path, workload: Workload, described: dict[str, Any]) -> tuple[ClickHouseEvents, bool]:
    """The store in ``folder``, loaded with ``workload`` unless an earlier run already did; (store, loaded now)."""
    marker = folder / MARKER
    folder.mkdir(parents=True, exist_ok=True)
    reuse = marker.exists() and orjson.loads(marker.read_bytes()) == described
    if not reuse:
        if not marker.exists() and any(folder.iterdir()):
            raise SystemExit(f"{folder} is not empty and holds no journeys benchmark store: give an empty directory")
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
    store = ClickHouseEvents.open(None, chdb_path=folder, database=DATABASE, retention_days=3650)
    if reuse:
        return store, False
    for table in workload.tables():
        for part in bulk_rows(table):
            token = hashlib.blake2b(f"{workload.seed}|{part.column('id')[0]}".encode(), digest_size=16).hexdigest()
            store.insert(part, token)
    columns: dict[str, set[str]] = {}
    for name, column in store.query(
        "SELECT table, name FROM system.columns WHERE database = currentDatabase() "
        "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')"
    ).rows:
        columns.setdefault(name, set()).add(column)
    target = metadata_rows(workload, columns)
    if target is not None:
        store.insert_table(*target)
    marker.write_bytes(orjson.dumps(described))
    return store, True


def _context(store: ClickHouseEvents) -> dict[str, Any]:
    """What to ask about: the most viewed item and a median one, the user with the most events (a
    signed-in bot in a workload with bots) and the user with the most events outside bot sessions."""

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return store.query(sql).rows

    views = rows(
        "SELECT content_id, count() AS n FROM events WHERE event_type = 'content_view' AND content_id != '' "
        "GROUP BY content_id ORDER BY n DESC, content_id"
    )
    users = rows(
        "SELECT user_id, count() AS n, max(s) AS biggest_session FROM ("
        "  SELECT user_id, session_id, count() OVER (PARTITION BY session_id) AS s FROM events_by_user"
        ") GROUP BY user_id ORDER BY n DESC, user_id"
    )
    human = next((u for u, _, biggest in users if biggest < 1000), users[-1][0])
    sessions = rows(
        "SELECT countIf(n >= 1000), count(), max(n), sumIf(n, n >= 1000) FROM "
        "(SELECT session_id, count() AS n FROM events WHERE session_id != '' GROUP BY session_id)"
    )[0]
    return {
        "top_content": views[0][0],
        "mid_content": views[len(views) // 2][0],
        "heavy_user": users[0][0],
        "heavy_user_events": int(users[0][1]),
        "human_user": human,
        "bot_sessions": int(sessions[0]),
        "sessions": int(sessions[1]),
        "largest_session": int(sessions[2]),
        "events_in_bot_sessions": int(sessions[3]),
    }


def _cases(analytics: Analytics, period: Period, context: dict[str, Any]) -> dict[str, Callable[[], Awaitable[Any]]]:
    """The calls each route makes, with the route's default arguments."""
    return {
        "behavior_patterns": lambda: analytics.behavior.patterns(period),
        "user_journey.heavy_user": lambda: analytics.journeys.user_journey(context["heavy_user"], period),
        "user_journey.human_user": lambda: analytics.journeys.user_journey(context["human_user"], period),
        "content_journey.top_content": lambda: analytics.journeys.content_journey(context["top_content"], period),
        "content_journey.mid_content": lambda: analytics.journeys.content_journey(context["mid_content"], period),
    }


def _measure(timed: TimedStore, call: Callable[[], Awaitable[Any]], runs: int) -> dict[str, Any]:
    totals: list[float] = []
    cpu: list[float] = []
    peaks: list[float] = []
    resident: list[float] = []
    statements: dict[str, list[float]] = {}
    answer: Any = None
    for _ in range(runs):
        timed.log.clear()
        _reset_peak_memory()
        resident.append(_memory_mib("VmRSS"))
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = asyncio.run(call())
        totals.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        peaks.append(_memory_mib("VmHWM"))
        for index, (sql, seconds) in enumerate(timed.log):
            statements.setdefault(f"{index}: {_statement_label(sql)}", []).append(seconds)
    dumped = answer.model_dump(mode="json") if hasattr(answer, "model_dump") else answer
    return {
        "runs": runs,
        "p50_ms": round(statistics.median(totals) * 1000, 1),
        "max_ms": round(max(totals) * 1000, 1),
        "cpu_p50_ms": round(statistics.median(cpu) * 1000, 1),
        "peak_rss_mib": max(peaks),
        # What the process held before the call: the peak above is that plus the call's growth.
        "rss_before_mib": min(resident),
        "statements_p50_ms": {name: round(statistics.median(s) * 1000, 1) for name, s in statements.items()},
        "answer_sha256": hashlib.sha256(orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16],
    }


def run(
    events: int,
    *,
    bot_session_share: float = 0.01,
    days: float = 30.0,
    runs: int = 5,
    store_dir: Path | None = None,
    results_dir: Path | None = None,
    end: datetime | None = None,
    cases_wanted: list[str] | None = None,
    service_budget: bool = False,
) -> dict[str, Any]:
    """Load (or reuse) the store, then time every case ``runs`` times."""
    load_before = load_average()
    own_dir = store_dir is None
    folder = Path(tempfile.mkdtemp(prefix="analytics-bench-journeys-")) if store_dir is None else store_dir
    marker = folder / MARKER
    if end is None and marker.exists():
        end = datetime.fromisoformat(orjson.loads(marker.read_bytes())["end"])
    end = end or datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    workload = Workload(events=events, days=days, seed=41, prefix="bj-", end=end, bot_session_share=bot_session_share)
    described = {"events": events, "days": days, "bot_session_share": bot_session_share, "end": end.isoformat()}
    started = time.perf_counter()
    store, loaded = _open_store(folder, workload, described)
    load_seconds = time.perf_counter() - started
    try:
        stored = int(store.query("SELECT count() FROM events").rows[0][0])
        context = _context(store)
        settings = Settings()
        if service_budget:
            store.budget = QueryBudget.from_settings(settings)
        timed = TimedStore(store)
        analytics = Analytics.build(timed, settings)  # type: ignore[arg-type]  # the read interface is enough
        last_day = (end - timedelta(milliseconds=1)).date()
        period = Period(last_day - timedelta(days=analytics.default_range_days - 1), last_day)
        cases = _cases(analytics, period, context)
        unknown = set(cases_wanted or ()) - set(cases)
        if unknown:
            raise SystemExit(f"unknown cases: {', '.join(sorted(unknown))}")
        results = {
            name: _measure(timed, call, runs)
            for name, call in cases.items()
            if cases_wanted is None or name in cases_wanted
        }
    finally:
        store.close()
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)
    payload = {
        "workload": {**described, "events_stored": stored, "loaded_now": loaded, "load_seconds": round(load_seconds)},
        "query_budget": str(store.budget) if service_budget else None,
        "period": period.to_dict(),
        "context": context,
        "load_average": {"before": load_before, "after": load_average()},
        "cases": results,
    }
    path = write_result(NAME, payload, results_dir or Path(tempfile.gettempdir()))
    _print(payload, path)
    return payload


def _print(payload: dict[str, Any], path: Path) -> None:
    w, c = payload["workload"], payload["context"]
    print(
        f"\njourneys benchmark: {w['events_stored']:,} events, {c['bot_sessions']:,} bot sessions of "
        f"{c['sessions']:,} ({c['events_in_bot_sessions']:,} events, largest {c['largest_session']:,})"
    )
    rows = []
    for name, r in payload["cases"].items():
        rows.append([name, r["p50_ms"], r["max_ms"], r["cpu_p50_ms"], r["peak_rss_mib"], ""])
        for statement, ms in r["statements_p50_ms"].items():
            rows.append(["", ms, "", "", "", statement])
    print_table(["case", "p50 ms", "max ms", "CPU p50 ms", "peak RSS MiB", "statement"], rows)
    print(f"result: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_journeys", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--bot-session-share", type=float, default=0.01)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--store", type=Path, help="keep the store here and reuse it when the workload matches")
    parser.add_argument("--results-dir", type=Path, help="where journeys.json goes (default: the temp dir)")
    parser.add_argument("--cases", help="comma-separated cases to run (default: all)")
    parser.add_argument("--service-budget", action="store_true", help="run under the service's query budget")
    args = parser.parse_args(argv)
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()] if args.cases else None
    run(
        args.events,
        bot_session_share=args.bot_session_share,
        days=args.days,
        runs=args.runs,
        store_dir=args.store,
        results_dir=args.results_dir,
        cases_wanted=wanted,
        service_budget=args.service_budget,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
