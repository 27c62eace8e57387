"""The reports benchmark runs at its tiny size against a real service (in a process of its own: it starts
its own Ray cluster) and writes a well-formed result in which every run completed. Timings are not
asserted."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest

from bench.bench_reports import PARALLEL_FORMATS, PARALLEL_TYPES, SIMPLE_FORMATS, SIZES
from bench.workload import Workload


@pytest.mark.bench_smoke
def test_reports_benchmark_runs_every_part_and_writes_its_result(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_reports", "--size", "tiny", "--results-dir", str(tmp_path)],
        check=False,
        timeout=560,
        capture_output=True,
        text=True,
    )
    # A run that failed or stalled stops the benchmark with the run's error, which ends its output.
    assert done.returncode == 0, done.stderr[-4000:]
    result = orjson.loads((tmp_path / "reports.json").read_bytes())
    params = SIZES["tiny"]
    assert result["benchmark"] == "reports" and result["size"] == "tiny"
    assert {"cpus", "cpu_model", "memory_gib", "versions"} <= set(result["machine"])
    assert result["parameters"] == params
    assert len(result["load_average"]["before"]) == len(result["load_average"]["after"]) == 3
    assert result["workload"]["events"] == params["workload_events"]

    # The timed runs: as many as asked, each with the service's own duration (a completed run has one).
    for fmt in SIMPLE_FORMATS:
        simple = result["simple"]["formats"][fmt]
        assert simple["runs"] == len(simple["seconds"]) == params["simple_runs"]
        assert simple["statuses"] == ["completed"] * params["simple_runs"]
        assert all(s is not None and s > 0 for s in simple["server_seconds"])
        assert simple["target_seconds"] == 3.0 and simple["file_size"] > 0
        assert simple["file_name"].endswith(".zip" if fmt == "csv" else ".json")
    complex_report = result["complex"]
    assert complex_report["runs"] == params["complex_runs"] and complex_report["target_seconds"] == 15.0
    assert complex_report["statuses"] == ["completed"] * params["complex_runs"]
    assert complex_report["file_name"].endswith(".pdf") and complex_report["file_size"] > 0

    parallel = result["parallel"]
    count = params["parallel_reports"]
    assert parallel["reports"] == count == len(parallel["runs"])
    assert [(r["report_type"], r["format"]) for r in parallel["runs"]] == [
        (PARALLEL_TYPES[i % len(PARALLEL_TYPES)], PARALLEL_FORMATS[i % len(PARALLEL_FORMATS)]) for i in range(count)
    ]
    assert all(r["status"] == "completed" and r["file_size"] > 0 for r in parallel["runs"])
    assert all(r["server_seconds"] is not None for r in parallel["runs"])
    assert parallel["wall_seconds"] >= max(r["seconds_seen_done"] for r in parallel["runs"])
    # The sampler found the run workers by their process title.
    assert parallel["memory"]["report_run_workers"]["processes_seen"] >= 1
    assert parallel["peak_single_run_worker_rss_mib"] > 0
    assert parallel["peak_run_workers_rss_mib"] >= parallel["peak_single_run_worker_rss_mib"]

    export = result["export"]
    workload = Workload(
        events=result["workload"]["events"],
        days=result["workload"]["days"],
        seed=result["workload"]["seed"],
        end=datetime.fromisoformat(result["workload"]["end"]),
    )
    assert workload.end is not None
    day = workload.end.date() - timedelta(days=1)
    # The workload's events of that UTC day, generated again here: what the export must hold.
    on_day = sum(1 for t in workload.tables() for at in t.column("timestamp").to_pylist() if at.date() == day)
    assert export["day"] == day.isoformat()
    assert export["expected_rows"] == on_day > 0
    assert len(export["runs"]) == params["export_runs"]
    assert all(r["status"] == "completed" and r["file_size"] > 0 for r in export["runs"])
    assert all(r["row_count"] == export["expected_rows"] > 0 for r in export["runs"])

    assert set(result["summary"]) >= {
        "simple_csv_p50_seconds",
        "simple_json_max_seconds",
        "complex_pdf_p50_seconds",
        "parallel_wall_seconds",
        "parallel_peak_run_workers_rss_mib",
        "export_p50_seconds",
        "export_row_count",
    }
