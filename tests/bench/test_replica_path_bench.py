"""The replica path benchmark runs on tiny sizes and writes a well-formed result; timings are not
asserted. The instruction count is parsed from callgrind's own summary line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bench import bench_replica_path


def test_replica_path_benchmark_runs_every_stage_and_writes_its_result(tmp_path: Path) -> None:
    bench_replica_path.run("tiny", results_dir=tmp_path, count_instructions=False)
    result = orjson.loads((tmp_path / "replica_path.json").read_bytes())
    assert result["benchmark"] == "replica_path" and {"cpus", "cpu_model", "versions"} <= set(result["machine"])
    # Every event of the workload went the whole path (run_pass raises otherwise).
    assert result["events"] == bench_replica_path.SIZES["tiny"]["events"] and result["requests"] == 2
    assert set(result["us_per_event_best"]) == set(bench_replica_path.STAGES)
    for stage in ("parse", "validate", "columns", "table_and_ipc"):
        assert result["us_per_event_best"][stage] > 0
    # The best pass overall is never faster than the best of each stage added up (a min of sums is at
    # least the sum of the mins; equal only when one pass was best at every stage).
    assert result["total_us_per_event_best"] >= sum(result["us_per_event_best"].values()) - 0.01
    assert result["instructions"] == {"instructions_per_event": None, "skipped": "not asked"}
    assert result["summary"]["instructions_per_event"] is None


def test_the_path_refuses_a_workload_it_did_not_fully_accept() -> None:
    path = bench_replica_path.prepare("tiny")
    path.bodies = [path.bodies[0].replace(b'"event_type":"', b'"event_type":"X', 1), *path.bodies[1:]]
    with pytest.raises(RuntimeError, match="accepted 1999 of 2000"):
        bench_replica_path.run_pass(path)


def test_collected_instructions_reads_callgrinds_total() -> None:
    stderr = (
        "==4242== Events    : Ir\n==4242== Collected : 5,401,228,329\n==4242==\n==4242== I   refs:      5,401,228,329\n"
    )
    assert bench_replica_path.collected_instructions(stderr) == 5_401_228_329
    with pytest.raises(RuntimeError, match="no instruction total"):
        bench_replica_path.collected_instructions("valgrind: command not found\n")
