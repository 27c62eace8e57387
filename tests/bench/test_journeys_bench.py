"""The journeys benchmark runs on a tiny store (in a process of its own: chDB allows one data
directory per process) and writes a well-formed result. Timings are not asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson


def test_journeys_benchmark_runs_and_writes_its_result(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.bench_journeys",
            "--events",
            "50000",
            "--runs",
            "1",
            "--results-dir",
            str(tmp_path),
            "--store",
            str(tmp_path / "store"),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    result = orjson.loads((tmp_path / "journeys.json").read_bytes())
    assert result["benchmark"] == "journeys"
    assert len(result["cases"]) == 5
