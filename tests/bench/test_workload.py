"""The workload generator: deterministic, exact in size, and its API form becomes exactly its
stored form when it goes through the service's own validation and enrichment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench.workload import (
    BOT_SESSION_EVENTS,
    EVENT_TYPES,
    Workload,
    batch_bodies,
    metadata_rows,
    write_ndjson,
    write_parquet,
)
from core.settings import Settings
from semantic.ingestion import IngestResult, IngestService
from storage.events import EVENT_SCHEMA, events_table

END = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def small() -> Workload:
    # Several chunks, so chunk boundaries are covered.
    return Workload(events=12_345, days=3, seed=5, end=END, chunk_events=5_000)


@pytest.fixture(scope="module")
def small_tables(small: Workload) -> pa.Table:
    return pa.concat_tables(list(small.tables()))


def test_exact_size_unique_sequential_ids_and_the_stored_schema(small: Workload, small_tables: pa.Table) -> None:
    assert small.chunk_sizes() == [4115, 4115, 4115]
    assert small_tables.schema == EVENT_SCHEMA
    assert small_tables.num_rows == 12_345
    ids = small_tables.column("id").to_pylist()
    assert sorted(ids, key=lambda i: int(i.split("-")[1])) == [f"e5-{i}" for i in range(12_345)]


def test_same_arguments_same_events_and_another_seed_others(small: Workload, small_tables: pa.Table) -> None:
    again = pa.concat_tables(list(Workload(events=12_345, days=3, seed=5, end=END, chunk_events=5_000).tables()))
    assert again.equals(small_tables)
    other = pa.concat_tables(list(Workload(events=12_345, days=3, seed=6, end=END, chunk_events=5_000).tables()))
    assert not other.column("timestamp").equals(small_tables.column("timestamp"))


def test_events_fall_in_the_window_and_chunks_are_chronological_slices(small: Workload) -> None:
    start = END - timedelta(days=3)
    previous_median = None
    for table in small.tables():
        bounds = pc.min_max(table.column("timestamp")).as_py()
        assert start <= bounds["min"] and bounds["max"] < END
        median = pc.approximate_median(pc.cast(table.column("timestamp"), pa.int64())).as_py()
        assert previous_median is None or median > previous_median
        previous_median = median


def test_every_event_family_is_present(small_tables: pa.Table) -> None:
    types = set(small_tables.column("event_type").to_pylist())
    assert types >= set(EVENT_TYPES) - {"user_register"}  # registrations are rare (0.6% of sessions)
    props = [orjson.loads(p) for p in small_tables.column("properties").to_pylist()]
    kinds = small_tables.column("event_type").to_pylist()
    searches = [p for p, k in zip(props, kinds, strict=True) if k == "search_query"]
    assert any(p["results_count"] == 0 for p in searches) and any(p["results_count"] > 0 for p in searches)
    api = [p for p, k in zip(props, kinds, strict=True) if k == "api_request"]
    assert {p["service"] for p in api} >= {"content-service", "search-service", "user-service"}
    assert all(p["duration_ms"] > 0 and isinstance(p["status"], int) and p["db_query_count"] >= 0 for p in api)
    assert all(0 <= p["external_errors"] <= p["external_calls"] for p in api if "external_calls" in p)
    assert any("external_calls" in p for p in api) and any("external_calls" not in p for p in api)
    assert {small_tables.column("device_type")[i].as_py() for i in range(small_tables.num_rows)} >= {
        "desktop",
        "mobile",
        "tablet",
        "bot",
    }


def _of_type(table: pa.Table, *event_types: str) -> list[tuple[str, dict]]:
    kinds = table.column("event_type").to_pylist()
    props = table.column("properties").to_pylist()
    return [(k, orjson.loads(p)) for k, p in zip(kinds, props, strict=True) if k in event_types]


def test_system_events_describe_services_their_resources_and_health(small_tables: pa.Table) -> None:
    usage = [p for _, p in _of_type(small_tables, "resource_usage")]
    assert {p["service"] for p in usage} >= {"content-service", "search-service"}
    assert all(p["instance"].startswith(p["service"] + "-") for p in usage)
    assert all(0 < p[k] <= 100 for p in usage for k in ("cpu_percent", "memory_percent", "disk_percent"))
    checks = [p for _, p in _of_type(small_tables, "health_check")]
    assert {p["status"] for p in checks} <= {"up", "degraded", "down"} and "up" in {p["status"] for p in checks}
    assert all(p["latency_ms"] > 0 for p in checks)
    # The platform's own events stay a small share of the stream.
    system = _of_type(small_tables, "api_request", "error_occurred", "resource_usage", "health_check")
    assert 0.05 < len(system) / small_tables.num_rows < 0.12


def test_jobs_report_their_figures_so_far() -> None:
    table = pa.concat_tables(list(Workload(events=60_000, days=3, seed=8, end=END).tables()))
    jobs: dict[str, list[tuple[str, dict]]] = {}
    for kind, p in _of_type(table, "import_started", "import_stage_completed", "import_completed", "import_failed"):
        jobs.setdefault(p["job_id"], []).append((kind, p))
    ended = {kind for events in jobs.values() for kind, _ in events[-1:]}
    assert {"import_completed", "import_failed"} <= ended
    figures = (
        "records_processed",
        "records_failed",
        "duplicates",
        "invalid_rows",
        "missing_fields",
        "transform_errors",
    )
    for events in jobs.values():
        assert events[0][0] == "import_started" and set(events[0][1]) == {"job_id", "source", "records_total"}
        total = events[0][1]["records_total"]
        for name in figures:
            reported = [p[name] for _, p in events[1:]]
            assert reported == sorted(reported) and all(0 <= v <= total for v in reported), (name, events)
        kind, last = events[-1]
        if kind == "import_completed":
            assert last["records_processed"] == total and "failure_reason" not in last
        if kind == "import_failed":
            assert last["failure_reason"] and last["stage"] in ("fetch", "parse", "validate", "store")
    processing: dict[str, list[tuple[str, dict]]] = {}
    for kind, p in _of_type(table, "processing_started", "processing_completed", "processing_failed"):
        processing.setdefault(p["job_id"], []).append((kind, p))
    finished = [events for events in processing.values() if len(events) == 2]
    assert len(finished) >= len(processing) - 3  # the last job of a chunk may be cut
    assert {events[1][0] for events in finished} == {"processing_completed", "processing_failed"}
    for (first, start), (_, end) in finished:
        assert first == "processing_started" and start["kind"] == end["kind"] and end["duration_ms"] > 0


def test_popularity_is_skewed_towards_a_few_items(small_tables: pa.Table) -> None:
    views = small_tables.filter(pc.equal(small_tables.column("event_type"), "content_view"))
    counts = sorted((r["counts"] for r in pc.value_counts(views.column("content_id")).to_pylist()), reverse=True)
    assert counts[0] > 5 * counts[len(counts) // 2]


@pytest.mark.parametrize("bot_session_share", [0.0, 0.02])
def test_the_api_form_ingests_into_exactly_the_stored_rows(small: Workload, bot_session_share: float) -> None:
    if bot_session_share:
        small = Workload(events=20_000, days=1, seed=5, end=END, bot_session_share=bot_session_share)
    table, lines = next(small.both())
    ingest = IngestService(None, Settings(internal_hosts=["platform.example"]))  # type: ignore[arg-type]  # no writes here
    raw = [orjson.loads(line) for line in lines.to_pylist()]
    now = END + timedelta(minutes=1)
    checked = ingest.validator.validate_batch(raw, now)
    assert checked.errors == []
    screened = ingest.privacy.screen(checked.events)
    columns, _ = ingest._to_columns(screened.events, now, IngestResult(batch_id="b"), screened.anonymized)
    ingested = events_table([columns])
    for name in EVENT_SCHEMA.names:
        if name in ("processed_at", "batch_id", "properties"):
            continue
        assert ingested.column(name).equals(table.column(name)), name
    as_stored = [orjson.loads(p) for p in table.column("properties").to_pylist()]
    assert [orjson.loads(p) for p in ingested.column("properties").to_pylist()] == as_stored
    if bot_session_share:  # the chunk holds a bot session
        sessions = pc.drop_null(pc.if_else(pc.equal(table.column("session_id"), ""), None, table.column("session_id")))
        assert pc.max(pc.value_counts(sessions).field("counts")).as_py() >= BOT_SESSION_EVENTS[0]


def test_batch_bodies_split_the_lines_into_requests(small: Workload) -> None:
    lines = next(small.api_lines())
    bodies = batch_bodies(lines, 1000)
    assert len(bodies) == 5
    events = [orjson.loads(b)["events"] for b in bodies]
    assert [len(e) for e in events] == [1000, 1000, 1000, 1000, 115]
    assert [e["id"] for batch in events for e in batch] == [orjson.loads(x)["id"] for x in lines.to_pylist()]


def test_catalogue_covers_every_content_id_and_fits_the_metadata_table(small: Workload, small_tables: pa.Table) -> None:
    catalogue = small.content_metadata()
    assert catalogue.num_rows == small.n_contents
    assert set(pc.unique(small_tables.column("content_id")).to_pylist()) - {""} <= set(
        catalogue.column("content_id").to_pylist()
    )
    assert set(catalogue.column("category").to_pylist()) <= {
        "news",
        "sports",
        "music",
        "comedy",
        "documentary",
        "kids",
        "education",
        "technology",
        "cooking",
        "travel",
    }
    table, rows = metadata_rows(
        small, {"content_metadata_updates": {"content_id", "title", "category", "published_at", "updated_at", "source"}}
    )
    assert table == "content_metadata_updates"
    assert rows.column_names == ["content_id", "title", "category", "published_at", "updated_at", "source"]
    assert rows.column("updated_at").equals(rows.column("published_at"))
    assert metadata_rows(small, {"other": {"x"}}) is None


def test_writers(small: Workload, small_tables: pa.Table, tmp_path: Path) -> None:
    summary = write_parquet(small, tmp_path / "w.parquet", progress=False)
    assert summary.events == 12_345 and sum(summary.by_type.values()) == 12_345
    assert pq.read_table(tmp_path / "w.parquet").equals(small_tables)
    assert pq.read_table(tmp_path / "w.content.parquet").num_rows == small.n_contents
    write_ndjson(small, tmp_path / "w.ndjson", progress=False)
    lines = (tmp_path / "w.ndjson").read_bytes().splitlines()
    assert len(lines) == 12_345
    assert orjson.loads(lines[-1])["id"] == small_tables.column("id")[-1].as_py()


def test_a_bot_slice_is_its_share_of_the_sessions_with_thousands_of_views_each() -> None:
    share = 0.01
    workload = Workload(events=400_000, days=7, seed=5, end=END, bot_session_share=share)
    table = pa.concat_tables(list(workload.tables()))
    assert table.num_rows == 400_000 and table.schema == EVENT_SCHEMA
    in_sessions = table.filter(pc.not_equal(table.column("session_id"), ""))
    sizes = in_sessions.group_by("session_id").aggregate([("id", "count")])
    low, high = BOT_SESSION_EVENTS
    big = sizes.filter(pc.greater_equal(sizes.column("id_count"), low))
    # Ordinary sessions stay far below the bot sizes; the bots are about `share` of all sessions.
    assert pc.max(sizes.filter(pc.less(sizes.column("id_count"), low)).column("id_count")).as_py() < 200
    assert big.num_rows >= 20
    assert 0.8 * share <= big.num_rows / sizes.num_rows <= 1.2 * share
    assert pc.max(big.column("id_count")).as_py() <= high
    bots = in_sessions.filter(pc.is_in(in_sessions.column("session_id"), big.column("session_id")))
    assert set(bots.column("device_type").to_pylist()) == {"bot"}
    kinds = pc.value_counts(bots.column("event_type")).to_pylist()
    assert {k["values"] for k in kinds} == {"content_view", "page_view"}
    views = bots.filter(pc.equal(bots.column("event_type"), "content_view"))
    assert views.num_rows > 0.85 * bots.num_rows
    assert len(pc.unique(views.column("content_id"))) > 0.9 * workload.n_contents  # many items, not a few
    signed_in = {
        s for s, u in zip(bots.column("session_id").to_pylist(), bots.column("user_id").to_pylist(), strict=True) if u
    }
    assert 0 < len(signed_in) < big.num_rows
    # Within a bot session, events come seconds apart.
    one = bots.filter(pc.equal(bots.column("session_id"), big.column("session_id")[0])).sort_by("timestamp")
    gaps = np.diff(pc.cast(one.column("timestamp"), pa.int64()).to_numpy())
    assert 0.5 <= np.median(gaps) / 1000 <= 5


def test_without_a_bot_slice_no_session_is_bot_sized(small_tables: pa.Table) -> None:
    sizes = small_tables.filter(pc.not_equal(small_tables.column("session_id"), "")).group_by("session_id")
    counts = sizes.aggregate([("id", "count")]).column("id_count")
    assert pc.max(counts).as_py() < BOT_SESSION_EVENTS[0] / 5
    with pytest.raises(ValueError, match="bot_session_share"):
        Workload(events=10, bot_session_share=1.0, end=END)
