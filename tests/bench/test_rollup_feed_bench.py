"""The rollup feed benchmark runs on tiny sizes in the test process's chDB directory and writes a
well-formed result; the steps it times leave the rollups exact. Timings are not asserted."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from bench import bench_rollup_feed


def test_rollup_feed_benchmark_runs_and_writes_its_result(chdb_dir: Path, tmp_path: Path) -> None:
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    bench_rollup_feed.run(
        "tiny", chdb_path=chdb_dir, database=f"bench_feed_{secrets.token_hex(4)}", results_dir=tmp_path, end=end
    )
    result = orjson.loads((tmp_path / "rollup_feed.json").read_bytes())
    params = bench_rollup_feed.SIZES["tiny"]
    assert result["benchmark"] == "rollup_feed" and {"cpus", "cpu_model", "versions"} <= set(result["machine"])
    assert [s["rows"] for s in result["steps"]] == params["steps"]
    for step in result["steps"]:
        for way in bench_rollup_feed.WAYS:
            assert step[way]["n"] == params["rounds"] and len(step[way]["cpu_ms"]) == params["rounds"]
            assert step[way]["cpu_ms_min"] > 0
    consistency = result["consistency"]
    # Every event stored (history, then every timed step) was fed, once.
    assert consistency["events_stored"] == params["stored"] + sum(params["steps"]) * params["rounds"] * len(
        bench_rollup_feed.WAYS
    )
    assert consistency["events_by_user_rows"] == consistency["events_with_a_user"] > 0
    assert consistency["watch_rollup_equals_from_scratch"] and consistency["watch_rollup_rows"] > 0
    assert set(result["summary"]) == {
        f"step_{rows}_{way}_cpu_ms_median" for rows in params["steps"] for way in bench_rollup_feed.WAYS
    }
