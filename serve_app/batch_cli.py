"""``analytics aggregate`` and ``analytics backfill``: the daily job run from a shell, through the running
service's API (POST /api/v1/analytics/jobs/aggregate), with the admin key.

A backfill runs its days one after the other, oldest first, and keeps the days it finished in a state
file (by default in the data directory, named after the range): run the same command again after an
interruption and it goes on from the first day it had not finished.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.settings import Settings

JOBS = "/api/v1/analytics/jobs"
POLL_SECONDS = 0.5


class JobFailed(Exception):
    pass


def _client(args: argparse.Namespace, settings: Settings) -> httpx.Client:
    url = args.url or settings.public_url or f"http://{settings.host}:{settings.port}"
    key_file = Path(args.key_file) if args.key_file else settings.data_dir / "admin-api-key"
    try:
        key = key_file.read_text().strip()
    except OSError as exc:
        raise JobFailed(f"cannot read the admin key from {key_file}: {exc.strerror}; give --key-file") from exc
    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {key}"}, timeout=60)


def run_day(client: httpx.Client, day: date, engine: str, trigger: str) -> dict[str, Any]:
    """Start the day's run and wait for it to end; its final state (JobFailed when it failed)."""
    response = client.post(f"{JOBS}/aggregate", json={"date": day.isoformat(), "engine": engine, "trigger": trigger})
    if response.status_code != 202:
        raise JobFailed(f"{day}: the service refused the run ({response.status_code}): {response.text[:500]}")
    run: dict[str, Any] = response.json()
    while run["status"] == "running":
        time.sleep(POLL_SECONDS)
        polled = client.get(f"{JOBS}/{run['id']}")
        if polled.status_code == 200:
            run = polled.json()
    if run["status"] != "completed":
        raise JobFailed(f"{day}: run {run['id']} failed: {run.get('error')}")
    return run


def _aggregate(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        with _client(args, settings) as client:
            run = run_day(client, args.date, args.engine, "cli")
    except (JobFailed, httpx.HTTPError) as exc:
        print(f"analytics aggregate: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(run, indent=2))
    return 0


def state_file(settings: Settings, first: date, last: date, given: str | None) -> Path:
    if given:
        return Path(given)
    return settings.data_dir / "backfills" / f"{first.isoformat()}_{last.isoformat()}.json"


def _backfill(args: argparse.Namespace) -> int:
    settings = Settings()
    first, last = args.first, args.last
    if last < first:
        print("analytics backfill: --to must not be before --from", file=sys.stderr)
        return 2
    state = state_file(settings, first, last, args.state_file)
    done: set[str] = set(json.loads(state.read_text())["done"]) if state.exists() else set()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    try:
        with (
            _client(args, settings) as client,
            Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
            ) as progress,
        ):
            task = progress.add_task(f"backfill {first} to {last}", total=len(days), completed=len(done))
            for day in days:
                if day.isoformat() in done:
                    continue
                progress.update(task, description=f"backfill {day}")
                run_day(client, day, args.engine, "backfill")
                done.add(day.isoformat())
                state.parent.mkdir(parents=True, exist_ok=True)
                # Written whole then renamed: an interruption leaves the old state or the new, never half.
                partial = state.with_suffix(".tmp")
                partial.write_text(
                    json.dumps({"from": first.isoformat(), "to": last.isoformat(), "done": sorted(done)})
                )
                partial.replace(state)
                progress.advance(task)
    except (JobFailed, httpx.HTTPError) as exc:
        print(f"analytics backfill: {exc}; run the same command again to go on from there", file=sys.stderr)
        return 1
    print(f"backfill {first} to {last}: {len(days)} days done (state in {state})")
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def add_commands(sub: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--engine", default="ray", choices=["ray"], help="the engine that computes the day")
    common.add_argument("--url", help="the service's address (default: from the settings)")
    common.add_argument("--key-file", help="a file holding an admin API key (default: <data dir>/admin-api-key)")
    aggregate = sub.add_parser("aggregate", parents=[common], help="compute one day's analytics records now")
    aggregate.add_argument("--date", required=True, type=_day, help="the UTC day, YYYY-MM-DD")
    aggregate.set_defaults(func=_aggregate)
    backfill = sub.add_parser(
        "backfill", parents=[common], help="compute the records of a range of days; resumes where it stopped"
    )
    backfill.add_argument("--from", dest="first", required=True, type=_day, help="the first day, YYYY-MM-DD")
    backfill.add_argument("--to", dest="last", required=True, type=_day, help="the last day, YYYY-MM-DD")
    backfill.add_argument("--state-file", help="where finished days are kept (default: <data dir>/backfills/)")
    backfill.set_defaults(func=_backfill)
