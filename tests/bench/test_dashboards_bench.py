"""The dashboards benchmark runs at its tiny size against a real service (in a process of its own: it starts
its own Ray cluster) and writes a well-formed result: every request of every part answered, the cache
behaved as each part says it measures, and every subscriber was shown every event. Timings are not
asserted."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from bench.bench_dashboards import (
    CREATED_WIDGETS,
    PREBUILT,
    SIZES,
    Batch,
    Subscriber,
    live_figures,
    parse_cache_counts,
    widget_answers,
)


@pytest.mark.bench_smoke
def test_dashboards_benchmark_runs_every_part_and_writes_its_result(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_dashboards", "--size", "tiny", "--results-dir", str(tmp_path)],
        check=False,
        timeout=560,
        capture_output=True,
        text=True,
    )
    # A failed request, a widget's error or a failed subscription stops the benchmark naming it.
    assert done.returncode == 0, done.stderr[-4000:]
    result = orjson.loads((tmp_path / "dashboards.json").read_bytes())
    params = SIZES["tiny"]
    assert result["benchmark"] == "dashboards" and result["size"] == "tiny"
    assert {"cpus", "cpu_model", "memory_gib", "versions"} <= set(result["machine"])
    assert result["parameters"] == params
    assert len(result["load_average"]["before"]) == len(result["load_average"]["after"]) == 3
    assert result["workload"]["events"] == params["workload_events"]

    assert set(result["data"]) == set(PREBUILT)
    for key, d in result["data"].items():
        assert d["widgets"] > 0 and d["response_bytes"] > 0, key
        # The repeats within a tick were answered from the cache (a repeat may cross into the next tick).
        cached = d["cached"]
        assert cached["latency"]["n"] + cached["misses"] == params["cached_requests"], key
        assert cached["x_cache"] == {"hit": cached["latency"]["n"]} and cached["latency"]["n"] >= 1, key
        # Every cold request computed the dashboard; without the cache every widget answer was computed.
        cold = d["cold_dashboard"]
        assert cold["all"]["x_cache"] == {"miss": params["cold_requests"]}, key
        assert cold["latency"].get("n", 0) + cold["partly_computed"]["latency"].get("n", 0) == params["cold_requests"]
        fully = d["fully_cold"]
        assert fully["x_cache"] == {"miss": params["cold_requests"]}, key
        assert all(n > 0 for n in fully["widget_answers_computed"]), key
        assert fully["widget_answers_cached"] == [0] * params["cold_requests"], key
        assert d["touch"]["n"] == 2 * params["cold_requests"]

    create = result["create"]
    assert create["widgets"] == CREATED_WIDGETS == 8
    assert create["latency"]["n"] == params["create_requests"]

    live = result["live"]
    assert live["subscribers"] == params["live_dashboards"] * params["live_subscribers"]
    assert live["subscriber_errors"] == [] and live["widget_errors"] == 0
    assert live["subscribe_to_first_update"]["n"] == live["subscribers"]
    assert live["events_sent"] > 0 and live["widget_updates"] > 0
    # Every event acknowledged in the window showed on every subscriber of its counter's dashboard.
    assert live["event_subscriber_pairs"] > 0 and live["missed"] == 0
    assert live["event_to_subscriber_from_ack"]["n"] == live["event_subscriber_pairs"]
    assert live["dashboard_computations"] > 0

    assert set(result["summary"]) >= {
        "executive_fully_cold_p95_ms",
        "executive_cached_p95_ms",
        "create_p95_ms",
        "live_widget_updates_per_second",
        "live_delay_from_ack_p95_ms",
    }


def test_each_event_is_timed_to_the_first_message_whose_counter_reaches_it() -> None:
    """Events go round robin over three contents in batches; a subscriber's messages show, per counter,
    how many of its events were acknowledged some time before. Each event's delay is checked against
    the first message found by walking the messages one by one."""
    rng = random.Random(5)
    contents, size = 3, 4
    batches = [Batch(i * size, size, i * 0.1, i * 0.1 + rng.uniform(0.005, 0.05)) for i in range(30)]
    acks = [b.acked for b in batches for _ in range(b.size)]
    widget_content = {f"w{k}": k for k in range(contents)}
    me = Subscriber(0, subscribed_at=-0.2)
    at = 0.0
    while at < 3.5:
        lag = rng.uniform(0.0, 0.4)
        shown = {k: sum(1 for j, a in enumerate(acks) if j % contents == k and a <= at - lag) for k in range(contents)}
        update = {
            "refreshedAt": datetime.fromtimestamp(1_000 + at - 0.03, UTC).isoformat(),
            "widgets": [{"widgetId": f"w{k}", "data": {"value": n}, "error": None} for k, n in shown.items()],
        }
        me.messages.append((at, 1_000 + at, update))
        at += rng.uniform(0.2, 0.6)
    window = (0.5, 2.5)
    figures = live_figures([me], batches, widget_content, contents, window)

    expected = []
    for j, ack in enumerate(acks):
        if not window[0] <= ack <= window[1]:
            continue
        ordinal = j // contents + 1
        seen = next(
            t
            for t, _, u in me.messages
            for w in u["widgets"]
            if w["widgetId"] == f"w{j % contents}" and w["data"]["value"] >= ordinal
        )
        expected.append(max(0.0, seen - ack))
    assert figures["event_subscriber_pairs"] == len(expected) > 0 and figures["missed"] == 0
    assert figures["event_to_subscriber_from_ack"]["max_ms"] == pytest.approx(max(expected) * 1000, abs=0.01)
    assert figures["event_to_subscriber_from_ack"]["mean_ms"] == pytest.approx(
        sum(expected) / len(expected) * 1000, abs=0.01
    )
    in_window = [u for t, _, u in me.messages[1:] if window[0] <= t <= window[1]]
    assert figures["messages"] == len(in_window)
    assert figures["widget_updates"] == contents * len(in_window)
    assert figures["refreshed_at_to_receipt"]["max_ms"] == pytest.approx(30, abs=0.5)


def test_widget_answers_are_counted_from_the_result_cache_metrics() -> None:
    before = parse_cache_counts(
        'analytics_result_cache_requests_total{kind="dashboard.data",outcome="hit"} 4.0\n'
        'analytics_result_cache_requests_total{kind="analytics_query",outcome="hit"} 7.0\n'
        'analytics_result_cache_created{kind="analytics_query",outcome="hit"} 1.7e+09\n'
    )
    after = parse_cache_counts(
        'analytics_result_cache_requests_total{kind="dashboard.data",outcome="miss"} 1.0\n'
        'analytics_result_cache_requests_total{kind="dashboard.data",outcome="hit"} 4.0\n'
        'analytics_result_cache_requests_total{kind="analytics_query",outcome="hit"} 9.0\n'
        'analytics_result_cache_requests_total{kind="analytics_query",outcome="refresh"} 3.0\n'
        'analytics_result_cache_requests_total{kind="system.health",outcome="miss"} 1.0\n'
    )
    assert widget_answers(before, after) == {"computed": 4, "cached": 2}
