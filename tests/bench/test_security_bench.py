"""The security benchmark's in-process part runs and times each part of the request guard; the rest of
the benchmark starts services of its own and runs on demand (bench/bench_security.py)."""

from __future__ import annotations

from bench.bench_security import SIZES, run_guard


def test_the_guard_is_timed_part_by_part() -> None:
    result = run_guard(SIZES["tiny"]["guard_calls"])
    assert result["calls"] == SIZES["tiny"]["guard_calls"]
    parts = result["microseconds_per_call"]
    assert set(parts) == {
        "authenticate (cached key)",
        "role check and scope",
        "rate limit (in-process buckets)",
        "rate limit (Redis, leased)",
    }
    assert all(value > 0 for value in parts.values())
