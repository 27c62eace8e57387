"""The catalog and the SQL built beside it name event types only from the taxonomy."""

from __future__ import annotations

from core.taxonomy import EventType
from semantic import journeys, sessions
from semantic.catalog import FAMILIES, USER_EVENT_SOURCES
from storage import playback_rollup
from tests.storage.test_event_keys import event_types_in

KNOWN = {t.value for t in EventType}


def _catalog_sql() -> list[str]:
    texts = list(USER_EVENT_SOURCES.values())
    for family in FAMILIES.values():
        texts.append(family.raw_source)
        texts += list((family.row_columns or {}).values())
        for metric in family.metrics.values():
            texts += [metric.raw, metric.rollup or ""]
        for dimension in family.dimensions.values():
            texts += [dimension.raw, dimension.rollup or "", dimension.raw_prefilter or "", dimension.row_sql or ""]
    return texts


def test_every_event_type_in_catalog_sql_is_in_the_taxonomy():
    named = set().union(*(event_types_in(sql) for sql in _catalog_sql()))
    # The extraction works: the content family alone names several types.
    assert {"content_view", "content_like", "search_query", "recommendation_click"} <= named
    assert {"api_request", "error_occurred", "import_failed"} <= named
    assert named <= KNOWN, named - KNOWN


def test_every_event_type_in_other_semantic_sql_is_in_the_taxonomy():
    texts = [
        journeys._STEP,
        journeys.transitions_sql("events", "1", "'0'"),
        journeys.raw_session_rows("1"),
        journeys.session_steps("1", "events"),
        journeys.content_journey_sql("1"),
        *sessions.SESSION_SOURCES.values(),
        playback_rollup.delta_sql(),
        playback_rollup.backfill_sql(),
    ]
    named = set().union(*(event_types_in(sql) for sql in texts))
    assert {"content_view", "content_play", "content_pause"} <= named
    assert named <= KNOWN, named - KNOWN


def test_metric_descriptions_name_their_types():
    content = FAMILIES["content"].metrics
    assert content["likes"].description == "content_like events"
    assert content["likes"].raw == "countIf(event_type = 'content_like')"
    assert content["search_clicks"].description == "search_result_click events naming the content"
    assert FAMILIES["users"].metrics["pages"].description == "content_view, search_query and page_view events"
    assert content["playback_sessions"].description.startswith(
        "distinct sessions with a content_view, content_play or content_complete of the content"
    )


def test_events_family_metrics_say_what_they_read() -> None:
    """Each metric of the events family lists the row columns its expression reads (the compiler
    selects only those) and, when it counts given types, those types."""
    events = FAMILIES["events"]
    assert events.row_columns is not None and not events.rollups
    for metric in events.metrics.values():
        if metric.derived:
            assert not metric.columns and metric.event_types is None, metric.name
            continue
        used = {name for name in events.row_columns if f"e_{name}" in metric.raw}
        assert used == set(metric.columns), metric.name
        named = event_types_in(metric.raw)
        if metric.event_types is not None:
            assert named == set(metric.event_types) or named == set(), metric.name
        assert metric.names_content == ("e_content_id != ''" in metric.raw), metric.name
    likes = events.metrics["likes"]
    assert likes.raw == "countIf(e_event_type = 'content_like' AND e_content_id != '')"
    assert likes.description.startswith("content_like events naming a content")
    assert events.metrics["latency_p50"].nullable and not events.metrics["views"].nullable
