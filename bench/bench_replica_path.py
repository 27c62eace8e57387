"""Replica path benchmark: what an ingress replica does per event of a batch request, by stage.

    python -m bench.bench_replica_path --size small    # plus minutes of instruction counting under valgrind
    python -m bench.bench_replica_path --size small --no-instructions

In a replica a batch request's body goes: JSON parse → the envelope check → validation → columns,
with enrichment → one Arrow table and its IPC bytes, which the event store actor receives. This runs
that path (the parse as serve_app/http.py does it, semantic/ingestion.py, storage/events.py,
core/arrow_ipc.py) on the ingest benchmark's request bodies, in one process, without HTTP, Ray or the
store, and with the collector set as a replica sets it (core/heap.py).

Two measures:
- time per event by stage, the best of several passes (the least disturbed one) and the median;
- instructions per event, counted by ``valgrind --tool=callgrind``: the same code on the same inputs
  executes the same instructions whatever else the machine does, so this compares two versions of the
  path where times drift from hour to hour. It is the difference between a process that runs
  the path ``instruction_passes`` times and one that only prepares it, divided by the events.
In the service the same work costs more time than here (the other core is busy, caches are shared) and
the replica has HTTP and the Ray call besides: bench_ingest measures that whole.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from bench.common import load_average, print_table, write_result
from bench.workload import PLATFORM_HOST, Workload, batch_bodies
from core.arrow_ipc import pack
from core.heap import tune_for_serving
from core.models import utc_now
from core.settings import Settings
from semantic.ingestion import IngestResult, IngestService
from storage.events import EventColumns, WriteReceipt, events_table

NAME = "replica_path"
WORKLOAD_END = datetime(2026, 12, 1, tzinfo=UTC)
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"events": 2_000, "batch_size": 1000, "passes": 2, "instruction_passes": 1},
    "small": {"events": 8_000, "batch_size": 1000, "passes": 7, "instruction_passes": 1},
    "full": {"events": 20_000, "batch_size": 1000, "passes": 7, "instruction_passes": 1},
}
# "release": freeing the request's objects when it is done, which a replica pays too.
STAGES = ("parse", "envelope", "validate", "columns", "table_and_ipc", "release")
# Fixed so that two counted processes execute the same thing: hashing, and no BLAS thread pool.
_COUNTING_ENV = {"PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")


def table_and_ipc(columns: EventColumns) -> bytes:
    """What the replica sends the event store actor for one request (actors/event_store.py)."""
    return pack(events_table([columns]))


class PackingStore:
    """The event store as the replica sees it, up to the actor call: one Arrow table, as IPC bytes."""

    async def write(self, columns: EventColumns) -> WriteReceipt:
        table_and_ipc(columns)
        return WriteReceipt(inserted=len(columns["id"]))


@dataclass
class ReplicaPath:
    service: IngestService
    bodies: list[bytes]
    events: int


def prepare(size: str) -> ReplicaPath:
    """The request bodies and the ingest service; the same every time for one size."""
    params = SIZES[size]
    # A fixed day, so every run gets the same bodies (and the same instruction count), and a retention
    # that keeps that day valid: the events are all accepted, as in bench_ingest.
    workload = Workload(events=params["events"], days=1, seed=31, prefix="rp-", end=WORKLOAD_END)
    lines = pa.concat_arrays([part for _, part in workload.both()])
    bodies = batch_bodies(lines, params["batch_size"])
    retention_days = (datetime.now(UTC) - WORKLOAD_END).days + 30
    settings = Settings(internal_hosts=[PLATFORM_HOST], retention_days=retention_days)
    service = IngestService(PackingStore(), settings)  # type: ignore[arg-type]
    path = ReplicaPath(service=service, bodies=bodies, events=len(lines))
    run_pass(path)  # caches, lazy imports and the geo database: a replica has them warm
    tune_for_serving()
    return path


def run_pass(path: ReplicaPath) -> dict[str, float]:
    """Every body once, stage by stage as ``IngestService.ingest_batch`` runs them; seconds per stage."""
    service = path.service
    spent = dict.fromkeys(STAGES, 0.0)
    clock = time.perf_counter
    accepted = 0
    for body in path.bodies:
        t0 = clock()
        parsed = orjson.loads(body)
        t1 = clock()
        raw_events = service.check_batch_shape(parsed)
        t2 = clock()
        now = utc_now()
        checked = service.validator.validate_batch(raw_events, now)
        screened = service.privacy.screen(checked.events)  # consent and the suppression list
        t3 = clock()
        result = IngestResult(errors=checked.errors, batch_id="0" * 32)
        columns, _ids = service._to_columns(screened.events, now, result, screened.anonymized)  # the stage itself
        t4 = clock()
        table_and_ipc(columns)
        t5 = clock()
        accepted += len(columns["id"])
        del parsed, raw_events, checked, screened, result, columns, _ids
        t6 = clock()
        for stage, seconds in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5), strict=True):
            spent[stage] += seconds
    if accepted != path.events:
        raise RuntimeError(f"the path accepted {accepted} of {path.events} events: the workload should be valid")
    return spent


def timed(path: ReplicaPath, passes: int) -> dict[str, Any]:
    samples = [run_pass(path) for _ in range(passes)]
    per_event = {stage: [s[stage] / path.events * 1e6 for s in samples] for stage in STAGES}
    totals = [sum(s.values()) / path.events * 1e6 for s in samples]
    return {
        "us_per_event_best": {stage: round(min(v), 3) for stage, v in per_event.items()},
        "us_per_event_median": {stage: round(statistics.median(v), 3) for stage, v in per_event.items()},
        "total_us_per_event_best": round(min(totals), 3),
        "total_us_per_event_median": round(statistics.median(totals), 3),
    }


def collected_instructions(valgrind_stderr: str) -> int:
    """The instruction total callgrind prints at exit (``==pid== Collected : 1,234``)."""
    found = _COLLECTED.findall(valgrind_stderr)
    if not found:
        raise RuntimeError("callgrind printed no instruction total")
    return int(found[-1].replace(",", ""))


def _counted_run(size: str, passes: int, valgrind: str) -> int:
    with tempfile.TemporaryDirectory(prefix="analytics-bench-callgrind-") as folder:
        command = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={folder}/callgrind.out",
            sys.executable, "-m", "bench.bench_replica_path", "--count-passes", str(passes), "--size", size,
        ]  # fmt: skip
        done = subprocess.run(command, env={**os.environ, **_COUNTING_ENV}, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the counted run failed ({done.returncode}): {done.stderr[-2000:]}")
        return collected_instructions(done.stderr)


def instructions(size: str, path_events: int) -> dict[str, Any]:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {"instructions_per_event": None, "skipped": "valgrind is not installed"}
    passes = SIZES[size]["instruction_passes"]
    prepared_only = _counted_run(size, 0, valgrind)
    with_passes = _counted_run(size, passes, valgrind)
    return {
        "instructions_per_event": round((with_passes - prepared_only) / (passes * path_events)),
        "prepared_only": prepared_only,
        "with_passes": with_passes,
        "passes": passes,
    }


def run(size: str = "small", *, results_dir: Path | None = None, count_instructions: bool = True) -> dict[str, Any]:
    params = SIZES[size]
    load_before = load_average()
    path = prepare(size)
    timing = timed(path, params["passes"])
    counted = (
        instructions(size, path.events)
        if count_instructions
        else {"instructions_per_event": None, "skipped": "not asked"}
    )
    payload = {
        "size": size,
        "parameters": params,
        "events": path.events,
        "requests": len(path.bodies),
        "load_average": {"before": load_before, "after": load_average()},
        "stages": list(STAGES),
        **timing,
        "instructions": counted,
    }
    payload["summary"] = {
        "total_us_per_event_best": timing["total_us_per_event_best"],
        "instructions_per_event": counted["instructions_per_event"],
    }
    written = write_result(NAME, payload, results_dir)
    print(f"replica path ({size}): {path.events:,} events in {len(path.bodies)} requests of {params['batch_size']}")
    print_table(
        ["stage", "best us/event", "median us/event"],
        [[s, timing["us_per_event_best"][s], timing["us_per_event_median"][s]] for s in STAGES]
        + [["total", timing["total_us_per_event_best"], timing["total_us_per_event_median"]]],
    )
    if counted["instructions_per_event"] is not None:
        print(f"\ninstructions per event (callgrind): {counted['instructions_per_event']:,}")
    else:
        print(f"\ninstructions per event: skipped ({counted['skipped']})")
    print(f"result: {written}")
    return payload


def _count_passes(size: str, passes: int) -> None:
    """The process valgrind counts: prepare, then run the path ``passes`` times."""
    path = prepare(size)
    for _ in range(passes):
        run_pass(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--no-instructions", action="store_true", help="skip the callgrind counts")
    parser.add_argument("--count-passes", type=int, help=argparse.SUPPRESS)  # the counted process
    args = parser.parse_args()
    if args.count_passes is not None:
        _count_passes(args.size, args.count_passes)
    else:
        run(args.size, results_dir=args.results_dir, count_instructions=not args.no_instructions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
