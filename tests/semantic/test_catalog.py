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
        for metric in family.metrics.values():
            texts += [metric.raw, metric.rollup or ""]
        for dimension in family.dimensions.values():
            texts += [dimension.raw, dimension.rollup or "", dimension.raw_prefilter or ""]
    return texts


def test_every_event_type_in_catalog_sql_is_in_the_taxonomy():
    named = set().union(*(event_types_in(sql) for sql in _catalog_sql()))
    # The extraction works: the content family alone names several types.
    assert {"content_view", "content_like", "search_query", "recommendation_click"} <= named
    assert named <= KNOWN, named - KNOWN


def test_every_event_type_in_other_semantic_sql_is_in_the_taxonomy():
    texts = [
        journeys._STEP,
        journeys.transitions_sql("events", "1", "'0'"),
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
