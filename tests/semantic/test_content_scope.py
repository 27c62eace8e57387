"""Content scopes in the analytics layer: the SQL predicate, the compiler on raw events and rollups,
the analyses, metadata reads, trending from the minute table, and the result cache's keys.

Every answer is compared with the one computed here from the rows the test stored."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from pydantic import BaseModel

from core.access import ALL_CONTENT, ContentScope, Principal, Role
from core.taxonomy import default_category
from semantic import scores
from semantic.analytics_query import AnalyticsQueryRequest, AnalyticsQueryService
from semantic.answers import Answers, scope_of
from semantic.catalog import FAMILIES
from semantic.compiler import Filter, MetricQuery, compile_query, run_query
from semantic.content import ContentAnalyticsService
from semantic.content_metadata import ContentMetadataStore
from semantic.content_scope import (
    SCOPED_ANSWERS,
    ScopeNotApplicable,
    admitted,
    binder,
    current_scope,
    metadata_scope_condition,
    require_in_scope,
    scope_condition,
    scope_digest,
    using_scope,
)
from semantic.freshness import Watermark, WatermarkTracker
from semantic.funnels import FunnelRequest, run_funnel
from semantic.paths import PathsRequest, run_paths
from semantic.periods import Period
from semantic.realtime_rollup import RealtimeRollup
from semantic.result_cache import ResultCache
from semantic.stickiness import StickinessRequest, run_stickiness
from storage.cache import InProcessCache
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store

NEWS = ContentScope.of(categories=["news"], content_ids=["x1"])
T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
PERIOD = Period(date(2025, 3, 1), date(2025, 3, 7), "UTC", "day")
CATEGORIES = {"n1": "news", "n2": "news", "n3": "news", "s1": "sports", "m1": "music"}
# x1 has no metadata: in NEWS by its id only. n3's events name it in properties only.
VIEWS = {"n1": 5, "n2": 3, "n3": 2, "x1": 4, "s1": 6, "m1": 7}
LIKES = {"n1": 1, "s1": 2}
SEARCHES = 3
IN_NEWS = {"n1", "n2", "n3", "x1"}


def _row(index: int, event_type: str, content: str, user: str, at: datetime) -> dict[str, Any]:
    in_properties = content == "n3"
    return {
        "id": f"cs{index:04d}",
        "event_type": event_type,
        "event_category": default_category(event_type),
        "timestamp": at,
        "user_id": user,
        "session_id": f"s-{user}",
        "content_id": "" if in_properties else content,
        "resource_type": "",
        "resource_id": "",
        "ip_address": "",
        "user_agent": "",
        "referrer": "",
        "country": "DE" if index % 2 else "FR",
        "region": "",
        "city": "",
        "properties": orjson.dumps({"content_id": content} if in_properties else {"query": "q"}).decode(),
        "processed_at": at,
        "batch_id": "",
        "device_type": "desktop",
        "browser": "Chrome",
        "os": "",
        "traffic_source": "direct",
        "referrer_host": "",
    }


def build_rows(start: datetime) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    users = ("u1", "u2", "u3", "u4")
    for content, views in VIEWS.items():
        for n in range(views):
            # Each content's users in order; the views a minute apart.
            at = start + timedelta(minutes=len(rows))
            rows.append(_row(len(rows), "content_view", content, users[n % len(users)], at))
    for content, likes in LIKES.items():
        for _ in range(likes):
            rows.append(_row(len(rows), "content_like", content, "u1", start + timedelta(minutes=len(rows))))
    for _ in range(SEARCHES):
        rows.append(_row(len(rows), "search_query", "", "u2", start + timedelta(minutes=len(rows))))
    return rows


ROWS = build_rows(T0)


def load(events: ClickHouseEvents, rows: list[dict[str, Any]], token: str) -> None:
    events.insert(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), token)
    updated = datetime(2025, 1, 1, tzinfo=UTC)
    events.client.insert(
        "content_metadata_updates",
        [[cid, category, updated] for cid, category in CATEGORIES.items()],
        column_names=["content_id", "category", "updated_at"],
    )


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"content_scope_{secrets.token_hex(4)}")
    load(events, ROWS, "content-scope-1")
    yield InProcessStore(events)
    events.close()


def views_of(rows: list[dict[str, Any]], scope: ContentScope) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        content = row["content_id"] or orjson.loads(row["properties"]).get("content_id", "")
        if row["event_type"] == "content_view" and scope.admits(content, CATEGORIES.get(content)):
            out[content] = out.get(content, 0) + 1
    return out


# --- the predicate -----------------------------------------------------------------------------------


def test_the_predicate_binds_every_value_and_names_no_content_for_empty_text() -> None:
    params: dict[str, Any] = {}
    hostile = ContentScope.of(categories=["news' OR 1=1 --"], content_ids=["x1", ""])
    sql = scope_condition("content_key", binder(params, "s"), hostile)
    assert "OR 1=1" not in sql and "x1" not in sql
    assert sorted(params.values(), key=str) == [["news' OR 1=1 --"], ["x1"]]
    assert sql.startswith("(content_key IN {s0:Array(String)} OR content_key IN (SELECT content_id FROM")
    # The empty id never widens a scope; a scope naming only '' admits nothing.
    assert scope_condition("c", binder({}, "s"), ContentScope.of(content_ids=[""])) == "0"
    assert scope_condition("c", binder({}, "s"), ALL_CONTENT) == "1"
    meta_params: dict[str, Any] = {}
    meta = metadata_scope_condition(binder(meta_params, "m"), NEWS)
    assert meta == "(content_id IN {m0:Array(String)} OR category IN {m1:Array(String)})"
    assert meta_params == {"m0": ["x1"], "m1": ["news"]}


def test_an_unrestricted_scope_compiles_exactly_as_without_one() -> None:
    for family, route in (("content", "raw"), ("content", "rollup"), ("events", "raw"), ("breakdown", "rollup")):
        query = MetricQuery(family, ("views",), PERIOD, ("content_id",), route=route)  # type: ignore[arg-type]
        assert current_scope().unrestricted
        plain = compile_query(query)
        assert compile_query(query, scope=ALL_CONTENT) == plain
        with using_scope(NEWS):
            scoped = compile_query(query)
        assert scoped.sql != plain.sql
        assert ["x1"] in scoped.parameters.values() and ["news"] in scoped.parameters.values()
        assert "'news'" not in scoped.sql


@pytest.mark.parametrize("family", ["users", "search", "system_requests", "system_health"])
def test_a_family_whose_rows_name_no_content_refuses_a_scope(family: str) -> None:
    metric = next(iter(FAMILIES[family].metrics))
    query = MetricQuery(family, (metric,), PERIOD)
    compile_query(query)  # unrestricted: as always
    with pytest.raises(ScopeNotApplicable) as refused:
        compile_query(query, scope=NEWS)
    error = refused.value
    assert (error.status, error.code) == (403, "forbidden")
    assert "content scope" in error.message and "'news'" in error.message and "'x1'" in error.message
    assert error.details == {"scope": {"categories": ["news"], "content_ids": ["x1"]}}


# --- the compiler over stored rows -------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["raw", "rollup"])
async def test_content_rows_are_those_of_in_scope_content(store: InProcessStore, route: str) -> None:
    query = MetricQuery("content", ("views", "likes"), PERIOD, ("content_id",), route=route)  # type: ignore[arg-type]
    everything = await run_query(store, query)
    assert {r["content_id"]: r["views"] for r in everything.rows} == VIEWS
    with using_scope(NEWS):
        scoped = await run_query(store, query)
        by_category = await run_query(
            store,
            MetricQuery("content", ("views",), PERIOD, ("category",), route=route),  # type: ignore[arg-type]
        )
        breakdown = await run_query(
            store,
            MetricQuery(
                "breakdown",
                ("views",),
                PERIOD,
                ("content_id", "value"),
                (Filter("dimension", ("country",)),),
                route=route,  # type: ignore[arg-type]
            ),
        )
    assert scoped.source == ("events" if route == "raw" else "content_daily")
    assert {r["content_id"]: r["views"] for r in scoped.rows} == views_of(ROWS, NEWS)
    assert {r["content_id"]: r["likes"] for r in scoped.rows if r["likes"]} == {"n1": 1}
    # x1 has no metadata: its category is ''.
    assert {r["category"]: r["views"] for r in by_category.rows} == {"news": 10, "": 4}
    assert {r["content_id"] for r in breakdown.rows} == IN_NEWS
    assert sum(r["views"] for r in breakdown.rows) == sum(views_of(ROWS, NEWS).values())


async def test_analytics_query_counts_only_events_naming_in_scope_content(store: InProcessStore) -> None:
    service = AnalyticsQueryService(store)
    body = {
        "metrics": ["views", "searches", "users"],
        "dimensions": ["content_id"],
        "date_range": {"start_date": "2025-03-01", "end_date": "2025-03-07"},
    }
    request = service.resolve(AnalyticsQueryRequest.parse(body))
    everything = await service.run(request, Role.ANALYST)
    assert everything.totals["searches"] == SEARCHES
    with using_scope(NEWS):
        scoped = await service.run(request, Role.ANALYST)
        searches_alone = await service.run(
            service.resolve(AnalyticsQueryRequest.parse({**body, "metrics": ["searches"], "dimensions": []})),
            Role.ANALYST,
        )
    assert {r["content_id"]: r["views"] for r in scoped.rows} == views_of(ROWS, NEWS)
    viewers = {r["user_id"] for r in ROWS if r["event_type"] == "content_view" and r["id"] in _in_news_ids()}
    assert scoped.totals == {"views": 14, "searches": 0, "users": len(viewers)}
    # The search family's rollup cannot say which content a search was about: the events answer, with none.
    assert searches_alone.source == "events" and searches_alone.totals == {"searches": 0}


def _in_news_ids() -> set[str]:
    out = set()
    for row in ROWS:
        content = row["content_id"] or orjson.loads(row["properties"]).get("content_id", "")
        if NEWS.admits(content, CATEGORIES.get(content)):
            out.add(row["id"])
    return out


# --- analyses -------------------------------------------------------------------------------------------


async def test_the_analyses_count_only_events_on_in_scope_content(store: InProcessStore) -> None:
    dates = {"date_range": {"start_date": "2025-03-01", "end_date": "2025-03-07"}}
    stickiness = StickinessRequest.parse({**dates, "event": {"event_type": "content_view"}}).resolved()
    funnel = FunnelRequest.parse(
        {**dates, "steps": [{"event_type": "content_view"}, {"event_type": "content_like"}]}
    ).resolved()
    paths = PathsRequest.parse({**dates, "anchor": "content_view", "depth": 2, "limit": 50}).resolved()
    with using_scope(NEWS):
        sticky = await run_stickiness(store, stickiness)
        funnelled = await run_funnel(store, funnel)
        walked = await run_paths(store, paths)
    in_news = _in_news_ids()
    view_users = {r["user_id"] for r in ROWS if r["event_type"] == "content_view" and r["id"] in in_news}
    assert sticky.active_users == len(view_users)
    # Only u1 liked in-scope content (n1), after viewing it.
    assert [s.count for s in funnelled.steps] == [len(view_users), 1]
    steps = {step for path in walked.paths for step in path.steps}
    assert steps and all(s in ("exit", "entry") or s.removeprefix("content:") in IN_NEWS for s in steps)
    # Sessions anchored on out-of-scope content: there for everyone, none within the scope.
    sports = PathsRequest.parse({**dates, "anchor": "content:s1"}).resolved()
    assert (await run_paths(store, sports)).sessions == 4
    with using_scope(NEWS):
        assert (await run_paths(store, sports)).sessions == 0


# --- metadata and single contents ----------------------------------------------------------------------


async def test_metadata_and_single_contents_outside_the_scope_read_as_absent(store: InProcessStore) -> None:
    metadata = ContentMetadataStore(store)
    ids = ["n1", "s1", "x1", "m1", "nobody"]
    assert set(await metadata.get_many(ids)) == {"n1", "s1", "m1"}
    assert await admitted(store, ids) == set(ids)
    with using_scope(NEWS):
        assert set(await metadata.get_many(ids)) == {"n1"}
        assert await metadata.get("s1") is None
        assert await admitted(store, ids) == {"n1", "x1"}
        await require_in_scope(store, ["n1", "x1"])
        with pytest.raises(Exception) as missing:
            await require_in_scope(store, ["n1", "s1"])
    assert (missing.value.status, missing.value.code) == (404, "not_found")  # type: ignore[attr-defined]
    assert missing.value.message == (  # type: ignore[attr-defined]
        "content 's1' is unknown: no events and no metadata were ever recorded for it"
    )


async def test_one_contents_report_under_a_scope_has_its_own_numbers_and_an_in_scope_popularity(
    store: InProcessStore,
) -> None:
    service = ContentAnalyticsService(store, ContentMetadataStore(store))
    everyone = await service.report("n1", PERIOD)
    most_anywhere = max(VIEWS.values())
    most_in_news = max(views_of(ROWS, NEWS).values())
    assert most_in_news < most_anywhere
    assert everyone.analytics.total_views == VIEWS["n1"]
    assert everyone.analytics.popularity_score == scores.popularity(VIEWS["n1"], most_anywhere)
    with using_scope(NEWS):
        scoped = await service.report("n1", PERIOD)
        by_id = await service.report("x1", PERIOD)
        with pytest.raises(Exception) as outside:
            await service.report("s1", PERIOD)
    # The one content's numbers are its own, whatever the scope; popularity compares within the scope.
    assert scoped.analytics.total_views == VIEWS["n1"]
    assert scoped.analytics.unique_views == everyone.analytics.unique_views
    assert scoped.series == everyone.series
    assert scoped.analytics.popularity_score == scores.popularity(VIEWS["n1"], most_in_news)
    assert by_id.analytics.total_views == VIEWS["x1"]
    assert (outside.value.status, outside.value.details) == (  # type: ignore[attr-defined]
        404,
        {"field": "content_id", "content_id": "s1"},
    )


async def test_trending_from_the_minute_table_ranks_in_scope_content_only(chdb_dir: Path) -> None:
    events = open_store(chdb_dir, f"content_scope_live_{secrets.token_hex(4)}")
    try:
        now = time.time()
        load(events, build_rows(datetime.fromtimestamp(now - 2400, UTC)), "content-scope-live")
        rollup = RealtimeRollup(InProcessStore(events))
        everything = await rollup.trending("1h", 100, now=now)
        scoped = await rollup.trending("1h", 100, now=now, scope=NEWS)
        sports = await rollup.trending("1h", 100, now=now, scope=ContentScope.of(categories=["sports"]))
    finally:
        events.close()
    # The live figures count events by their content_id column: n3's name it in properties only.
    assert {i["content_id"] for i in everything["items"]} == set(VIEWS) - {"n3"}
    assert {i["content_id"] for i in scoped["items"]} == IN_NEWS - {"n3"}
    assert [i["rank"] for i in scoped["items"]] == [1, 2, 3]
    assert [i["content_id"] for i in sports["items"]] == ["s1"]
    # The same figures as in the unrestricted ranking.
    score = {i["content_id"]: i["score"] for i in everything["items"]}
    assert all(i["score"] == score[i["content_id"]] for i in scoped["items"])


# --- the result cache ------------------------------------------------------------------------------------


class Seen(BaseModel):
    categories: list[str]
    computed: int


W1 = Watermark(stored_seq=1, fed_seq=1, as_of_ms=1_700_000_000_000)


async def _watermark() -> Watermark:
    return W1


async def test_answers_for_different_scopes_never_share_a_cache_entry() -> None:
    answers = Answers(ResultCache(InProcessCache(), ttl_seconds=60), WatermarkTracker(_watermark, poll_seconds=60))
    computed = 0

    async def compute(_watermark: Watermark) -> Seen:
        nonlocal computed
        computed += 1
        return Seen(categories=sorted(current_scope().categories), computed=computed)

    anyone = Principal("k1", "all", Role.CONTENT_MANAGER)
    news = Principal("k2", "news", Role.CONTENT_MANAGER, NEWS)
    same_news = Principal("k3", "news too", Role.CONTENT_MANAGER, ContentScope.of(["news"], ["x1"]))
    sports = Principal("k4", "sports", Role.CONTENT_MANAGER, ContentScope.of(categories=["sports"]))
    request = {"period": PERIOD.to_dict()}
    try:
        first = (await answers.answer("content.list", request, anyone, compute)).json()
        scoped = (await answers.answer("content.list", request, news, compute)).json()
        again = await answers.answer("content.list", request, same_news, compute)
        other = (await answers.answer("content.list", request, sports, compute)).json()
        unscoped_again = await answers.answer("content.list", request, anyone, compute)
        with pytest.raises(ScopeNotApplicable):
            await answers.answer("users.overview", request, news, compute)
        await answers.answer("users.overview", request, anyone, compute)
    finally:
        await answers.close()
    assert first == {"categories": [], "computed": 1}
    assert scoped == {"categories": ["news"], "computed": 2}
    assert again.hit and again.json() == scoped
    assert other == {"categories": ["sports"], "computed": 3}
    assert unscoped_again.hit and unscoped_again.json() == first
    assert computed == 4
    # Unrestricted callers keep the key they always had; a scope adds its stable digest.
    assert scope_of(anyone) == "role=content_manager"
    assert scope_of(news) == scope_of(same_news) == f"role=content_manager;content={scope_digest(NEWS)}"
    assert scope_of(news) != scope_of(sports)


def test_only_kinds_that_apply_scopes_answer_a_scoped_principal() -> None:
    assert {"content.report", "analytics_query", "funnel", "search.recommendations"} <= SCOPED_ANSWERS
    assert not SCOPED_ANSWERS & {"users.overview", "search.queries", "search.overview", "system.health"}
