"""The benchmark harness runs end to end on tiny sizes against the session's service and writes
well-formed results. Timings are not asserted: benchmarks live in bench/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import bench_ingest, bench_queries

pytestmark = [pytest.mark.e2e, pytest.mark.bench_smoke]

# Days in the past, so the live windows other tests read stay untouched.
PAST = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)


def _result(folder: Path, name: str) -> dict[str, Any]:
    document = orjson.loads((folder / f"{name}.json").read_bytes())
    assert document["benchmark"] == name
    assert {"cpus", "cpu_model", "memory_gib", "versions", "python"} <= set(document["machine"])
    assert len(document["load_average"]["before"]) == 3
    return document


def test_ingest_benchmark_runs_and_writes_its_result(service: Any, tmp_path: Path) -> None:
    bench_ingest.run("tiny", service=service, results_dir=tmp_path, workload_end=PAST)
    result = _result(tmp_path, "ingest")
    params = bench_ingest.SIZES["tiny"]
    [cell] = result["batch"]
    assert (cell["batch_size"], cell["concurrency"]) == (100, 2)
    # Every event of the cell was acknowledged by the service and by the baseline app.
    assert cell["service"]["accepted"] == params["cell_events"] and cell["service"]["statuses"] == {"200": 10}
    assert cell["baseline"]["accepted"] == params["cell_events"]
    assert cell["ratio_to_baseline"] > 0 and "ServeReplica" in cell["service"]["cpu_us_per_event"]
    [single] = result["single"]
    assert single["service"]["statuses"] == {"201": 20} and single["service"]["latency"]["n"] == 20
    assert single["baseline"]["statuses"] == {"201": 20}
    assert "ServeReplica" in single["service"]["cpu_us_per_event"] and result["ingress_mode"] == "direct"
    assert result["ingress_replicas"] == 2  # the test session runs two (tests/e2e/conftest.py)
    # Every cell's tail was waited out before the next cell: the rollups caught up, then a quiet second.
    assert all(c[name]["tail"]["seconds"] >= 1.0 for c in (cell, single) for name in ("service", "baseline"))
    # The empty endpoint deployed like the service answered every request (and is gone again).
    assert single["serve_floor"]["statuses"] == {"201": 20}
    # What was acknowledged is stored.
    assert result["durability"] == {"sent": 1220, "acknowledged": 1220, "stored": 1220, "all_stored": True}
    assert [engine["schema"] for engine in result["raw_engine"]] == ["full", "events"]
    assert all(r["rows"] > 0 for engine in result["raw_engine"] for r in engine["results"])
    assert result["memory"]["rss_mib"] > 0 and "EventStoreActor" in result["memory"]["by_role"]
    # The idle cost was sampled over its own quiet interval, by process role.
    assert result["idle"]["seconds"] >= params["idle_seconds"] and result["idle"]["share_of_a_core"] > 0
    assert result["idle"]["share_of_a_core"] == pytest.approx(sum(result["idle"]["share_by_role"].values()), abs=0.001)
    assert set(result["summary"]) >= {
        "best_batch_events_per_second",
        "ratio_best_to_best_baseline",
        "memory_rss_mib",
        "all_acknowledged_stored",
    }


def test_query_benchmark_runs_and_writes_its_result(service: Any, tmp_path: Path) -> None:
    bench_queries.run("tiny", service=service, results_dir=tmp_path, workload_end=PAST)
    result = _result(tmp_path, "queries")
    assert result["workload"]["events"] == bench_queries.SIZES["tiny"]["events"]
    classes = {c["name"]: c for c in result["classes"]}
    assert set(classes) == {qc.name for qc in bench_queries.QUERY_CLASSES}
    # The raw event queries answer on both interfaces; the floor ran on the engine.
    for name in ("events.by_content", "events.by_user", "events.by_type_last_day", "events.get"):
        for interface in ("rest_c2", "graphql_c2"):
            outcome = classes[name][interface]
            assert outcome["ok"] == outcome["n"] > 0, (name, interface, outcome["errors"])
        assert classes[name]["floor_sql"]["n"] == bench_queries.SIZES["tiny"]["floor_runs"]
    naive = result["naive_content_analytics"]
    assert len(naive) == 2 and all(n["events_fetched"] > 0 and n["naive"]["n"] == 1 for n in naive)
    assert result["summary"]["events.get"]["rest_c2"] > 0
