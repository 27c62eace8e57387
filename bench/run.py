"""Run every benchmark (each ``bench/bench_*.py``) and print a summary.

    python -m bench.run --size small      # make bench: a few minutes
    python -m bench.run --size full       # make bench-full: 10M events
    python -m bench.run --only ingest queries

Each benchmark runs in a process of its own, with its own service (Ray allows one per process
and a crash stays contained). It replaces its own ``bench/results/<name>.json`` (one file per
benchmark and mode: ingest, ingest_memory, queries, queries_full, operations, operations_full,
realtime, replica_path, rollup_feed); the summary below is the ``summary`` entry of every result
written during this run.
``python -m bench.benchmarks_doc`` (make docs-benchmarks) then renders them into the docs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench import benchmarks_doc
from bench.common import RESULTS_DIR, load_average, machine_info

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Module names of the benchmarks, e.g. ``bench.bench_ingest``."""
    return sorted(f"bench.{p.stem}" for p in BENCH_DIR.glob("bench_*.py"))


def run_all(size: str, *, only: list[str] | None = None, results_dir: Path | None = None) -> list[dict[str, Any]]:
    folder = results_dir or RESULTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    modules = [m for m in discover() if not only or m.removeprefix("bench.bench_") in only]
    outcomes = []
    for module in modules:
        started_at = time.time()
        started = time.perf_counter()
        print(f"\n=== {module} --size {size} (load average {load_average()})", flush=True)
        command = [sys.executable, "-m", module, "--size", size]
        if results_dir is not None:
            command += ["--results-dir", str(results_dir)]
        code = subprocess.run(
            command, cwd=BENCH_DIR.parent, env={**os.environ, "PYTHONUNBUFFERED": "1"}, check=False
        ).returncode
        written = sorted(p for p in folder.glob("*.json") if p.stat().st_mtime >= started_at)
        outcomes.append(
            {
                "module": module,
                "exit_code": code,
                "seconds": round(time.perf_counter() - started, 1),
                "results": {p.stem: orjson.loads(p.read_bytes()).get("summary") for p in written},
            }
        )
    return outcomes


def _docs_stale() -> bool:
    try:
        return bool(benchmarks_doc.stale())
    except (OSError, ValueError) as exc:
        print(f"\ncould not compare the docs with the results: {exc}")
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run")
    parser.add_argument("--size", choices=("tiny", "small", "full"), default="small")
    parser.add_argument("--only", nargs="*", help="benchmark names, e.g. ingest queries")
    parser.add_argument("--results-dir", type=Path)
    args = parser.parse_args(argv)
    info = machine_info()
    outcomes = run_all(args.size, only=args.only, results_dir=args.results_dir)
    print(
        f"\n=== summary ({args.size}) on {info['cpus']} x {info['cpu_model']}, {info['memory_gib']} GiB, "
        f"load average now {load_average()}"
    )
    for outcome in outcomes:
        status = "ok" if outcome["exit_code"] == 0 else f"FAILED (exit {outcome['exit_code']})"
        print(f"{outcome['module']}: {status} in {outcome['seconds']} s")
        for name, summary in outcome["results"].items():
            print(f"  {name}: {orjson.dumps(summary).decode() if summary is not None else '(no summary)'}")
    if args.results_dir is None and _docs_stale():
        print(
            "\nbench/results changed: `make docs-benchmarks` renders the new figures into "
            "docs/benchmarks.md and README.md"
        )
    return 0 if all(o["exit_code"] == 0 for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
