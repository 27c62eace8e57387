"""Paths on real chDB, against a Python reference over the same rows: step names (content from
content_id or properties, search, page, other event types), repeats collapsed, the first anchor of
a session, entry and exit, both directions, an event type as anchor, filters, ties in a millisecond,
the per-session cap, limits, an empty answer, and seeded random sessions.

Every case runs on both step sources (``source``): session_steps, where the request allows it, and
raw events. The rows are stored through the rollup feed, so session_steps holds them too."""

from __future__ import annotations

import random
import secrets
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from core.errors import InvalidRequest
from semantic.paths import (
    EVENTS,
    MAX_EVENTS_PER_SESSION,
    SESSION_STEPS,
    STEP_SOURCES,
    PathsRequest,
    PathsResult,
    paths_statement,
    run_paths,
    steps_source,
)
from storage.events import ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.test_funnels import Row, event_table

VIEW, SEARCH, PAGE, PLAY, LIKE = "content_view", "search_query", "page_view", "content_play", "content_like"
RANGE = {"start_date": "2026-03-02", "end_date": "2026-03-08"}
RANGE_START = datetime(2026, 3, 2, tzinfo=UTC)
RANGE_END = datetime(2026, 3, 9, tzinfo=UTC)
T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def events(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    store = open_store(chdb_dir, f"paths_{secrets.token_hex(4)}")
    yield store
    store.close()


@pytest.fixture
def load(events: ClickHouseEvents) -> Any:
    """Replace the stored events with ``rows``, fed to session_steps as well."""

    def loaded(rows: Sequence[Row]) -> InProcessStore:
        events.query("TRUNCATE TABLE events")
        events.query("TRUNCATE TABLE session_steps")
        if rows:
            events.insert(event_table(rows), secrets.token_hex(8))
        return InProcessStore(events)

    return loaded


@pytest.fixture(params=STEP_SOURCES)
def source(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def view(at: datetime, content: str, session: str, **extra: Any) -> Row:
    return Row(at, VIEW, session_id=session, content_id=content, **extra)


# --- the reference ------------------------------------------------------------------------------


def content_of(row: Row) -> str:
    """The event's content: its content_id, else a text properties.content_id, else ''."""
    named = row.content_id or orjson.loads(row.properties).get("content_id")
    return named if isinstance(named, str) else ""


def step_name(row: Row) -> str:
    if row.event_type == VIEW:
        return "content:" + content_of(row)
    return {SEARCH: "search", PAGE: "page"}.get(row.event_type, row.event_type)


def is_anchor(step: str, anchor: str) -> bool:
    if anchor == VIEW:
        return step.startswith("content:")
    return step == {SEARCH: "search", PAGE: "page"}.get(anchor, anchor)


def reference(
    rows: Sequence[Row],
    anchor: str,
    *,
    direction: str = "after",
    depth: int = 3,
    limit: int = 10,
    types: Sequence[str] = (VIEW, SEARCH, PAGE),
    countries: tuple[str, ...] | None = None,
    sessions_in: tuple[str, ...] | None = None,
    contents_in: set[str] | None = None,
) -> dict[str, Any]:
    anchor_type = VIEW if anchor.startswith("content:") else {"search": SEARCH, "page": PAGE}.get(anchor, anchor)
    wanted = {*types, anchor_type}
    start_ms = int(RANGE_START.timestamp() * 1000)
    sessions: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        if not (row.session_id and RANGE_START <= row.timestamp < RANGE_END and row.event_type in wanted):
            continue
        if countries is not None and row.country not in countries:
            continue
        if sessions_in is not None and row.session_id not in sessions_in:
            continue
        if contents_in is not None and content_of(row) not in contents_in:
            continue
        name = step_name(row)
        # The documented order: time, then a hash of the step name within a millisecond.
        key = ((row.ms - start_ms) << 28) | (zlib.crc32(name.encode()) & ((1 << 28) - 1))
        sessions.setdefault(row.session_id, []).append((key, name))
    found: list[list[str]] = []
    for events in sessions.values():
        names = [name for _, name in sorted(events)[:MAX_EVENTS_PER_SESSION]]
        steps = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
        at = next((i for i, n in enumerate(steps) if is_anchor(n, anchor)), None)
        if at is None:
            continue
        if direction == "after":
            path = steps[at : at + depth + 1] + (["exit"] if len(steps) - 1 - at < depth else [])
        else:
            path = (["entry"] if at < depth else []) + steps[max(0, at - depth) : at + 1]
        found.append(path)
    total = len(found)
    paths = Counter(tuple(p) for p in found)
    top = sorted(paths.items(), key=lambda item: (-item[1], list(item[0])))[:limit]
    by_depth = {}
    for d in range(1, depth + 1):
        at_depth = Counter((p if direction == "after" else p[::-1])[d] for p in found if len(p) > d)
        by_depth[d] = sorted(at_depth.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return {
        "sessions": total,
        "paths": [(list(p), n) for p, n in top],
        "other_paths": total - sum(n for _, n in top),
        "by_depth": by_depth,
    }


def answer(result: PathsResult) -> dict[str, Any]:
    return {
        "sessions": result.sessions,
        "paths": [(p.steps, p.sessions) for p in result.paths],
        "other_paths": result.other_paths,
        "by_depth": {d.depth: [(s.step, s.sessions) for s in d.steps] for d in result.by_depth},
    }


def request(anchor: str, **body: Any) -> PathsRequest:
    return PathsRequest.parse({"date_range": RANGE, "anchor": anchor, **body}).resolved()


# --- cases ----------------------------------------------------------------------------------------


def hand_built() -> list[Row]:
    return [
        # s1: A, A (a repeat), search, B, page, C
        view(s(0), "A", "s1"),
        view(s(1), "A", "s1"),
        Row(s(2), SEARCH, session_id="s1", properties='{"query": "dunes"}'),
        view(s(3), "B", "s1"),
        Row(s(4), PAGE, session_id="s1"),
        view(s(5), "C", "s1"),
        # s2: search, A (named only in properties), then the session ends
        Row(s(0), SEARCH, session_id="s2"),
        Row(s(1), VIEW, session_id="s2", properties='{"content_id": "A"}'),
        # s3: B, A, search, A (the first A is the anchor)
        view(s(0), "B", "s3"),
        view(s(1), "A", "s3"),
        Row(s(2), SEARCH, session_id="s3"),
        view(s(3), "A", "s3"),
        # s4: never A; s5: A with a play between (not a step by default)
        view(s(0), "B", "s4"),
        view(s(0), "A", "s5"),
        Row(s(1), PLAY, session_id="s5"),
        view(s(2), "B", "s5"),
        # Without a session: never part of a path.
        view(s(0), "A", "", user_id="u"),
        view(s(1), "B", "", user_id="u"),
        # Outside the range.
        view(RANGE_START - timedelta(seconds=1), "A", "s6"),
        view(RANGE_END, "A", "s7"),
    ]


async def test_paths_after_a_content(load: Any, source: str) -> None:
    rows = hand_built()
    result = await run_paths(load(rows), request("content:A"), source=source)
    # By hand: s1 A search B page; s2 A exit; s3 A search A exit; s5 A B exit.
    assert result.sessions == 4
    assert {tuple(p.steps): p.sessions for p in result.paths} == {
        ("content:A", "search", "content:B", "page"): 1,
        ("content:A", "exit"): 1,
        ("content:A", "search", "content:A", "exit"): 1,
        ("content:A", "content:B", "exit"): 1,
    }
    assert result.by_depth[0].depth == 1
    assert {s.step: s.sessions for s in result.by_depth[0].steps} == {"search": 2, "exit": 1, "content:B": 1}
    assert result.by_depth[0].steps[0].share == 0.5
    assert answer(result) == reference(rows, "content:A")


async def test_paths_before_a_search(load: Any, source: str) -> None:
    rows = hand_built()
    result = await run_paths(load(rows), request("search", direction="before", depth=2), source=source)
    assert {tuple(p.steps): p.sessions for p in result.paths} == {
        ("entry", "content:A", "search"): 1,
        ("entry", "search"): 1,
        ("content:B", "content:A", "search"): 1,
    }
    assert answer(result) == reference(rows, "search", direction="before", depth=2)


async def test_an_event_type_anchors_each_of_its_steps(load: Any, source: str) -> None:
    rows = hand_built()
    result = await run_paths(load(rows), request(VIEW, depth=2), source=source)
    assert answer(result) == reference(rows, VIEW, depth=2)
    assert result.sessions == 5


async def test_other_event_types_take_part(load: Any) -> None:
    """Steps beyond the page types: only raw events have them."""
    rows = hand_built()
    with_play = await run_paths(load(rows), request("content:A", event_types=[VIEW, PLAY], depth=1))
    assert answer(with_play) == reference(rows, "content:A", depth=1, types=(VIEW, PLAY))
    assert ["content:A", PLAY] in [p.steps for p in with_play.paths]
    # A custom type as the anchor.
    played = await run_paths(load(rows), request(PLAY, direction="before", depth=1))
    assert [p.steps for p in played.paths] == [["content:A", PLAY]]


async def test_filters_apply_to_every_step(load: Any) -> None:
    rows = [
        view(s(0), "A", "f1", country="DE"),
        view(s(1), "B", "f1", country="FR"),
        view(s(2), "C", "f1", country="DE"),
        view(s(0), "A", "f2", country="FR"),
    ]
    body = {"filters": [{"dimension": "country", "value": "DE"}]}
    result = await run_paths(load(rows), request("content:A", **body))
    assert [p.steps for p in result.paths] == [["content:A", "content:C", "exit"]]
    assert answer(result) == reference(rows, "content:A", countries=("DE",))


async def test_filters_session_steps_answers(load: Any, events: ClickHouseEvents, source: str) -> None:
    """Filters on the session and on content metadata (by the content, from content_id or
    properties): session_steps answers them as raw events do."""
    rows = [
        view(s(0), "A", "m1"),
        Row(s(1), SEARCH, session_id="m1", properties='{"content_id": "N"}'),
        view(s(2), "B", "m1"),
        Row(s(3), VIEW, session_id="m1", properties='{"content_id": "N"}'),
        view(s(4), "C", "m1"),
        view(s(0), "A", "m2"),
        view(s(1), "C", "m2"),
        Row(s(2), PAGE, session_id="m2"),
    ]
    store = load(rows)
    events.insert_table(
        "content_metadata_updates",
        pa.table(
            {
                "content_id": ["A", "B", "N", "C"],
                "category": ["news", "sports", "news", "music"],
                "updated_at": pa.array([T0] * 4, pa.timestamp("ms", tz="UTC")),
            }
        ),
    )
    news = {"filters": [{"dimension": "category", "value": "news"}]}
    result = await run_paths(store, request("content:A", **news), source=source)
    # m1: A, search (about N), N; m2: A alone.
    assert [p.steps for p in result.paths] == [["content:A", "exit"], ["content:A", "search", "content:N", "exit"]]
    assert answer(result) == reference(rows, "content:A", contents_in={"A", "N"})
    # Content without metadata ('' included) passes a neq filter.
    not_news = {"filters": [{"dimension": "category", "op": "neq", "value": "news"}]}
    result = await run_paths(store, request(VIEW, direction="before", **not_news), source=source)
    assert {tuple(p.steps): p.sessions for p in result.paths} == {("entry", "content:B"): 1, ("entry", "content:C"): 1}
    assert answer(result) == reference(rows, VIEW, direction="before", contents_in={"B", "C", ""})
    one_session = {"filters": [{"dimension": "session_id", "op": "in", "values": ["m2"]}]}
    result = await run_paths(store, request(VIEW, **one_session), source=source)
    assert [p.steps for p in result.paths] == [["content:A", "content:C", "page", "exit"]]
    assert answer(result) == reference(rows, VIEW, sessions_in=("m2",))


def test_the_source_follows_the_step_types_and_filters() -> None:
    assert steps_source(request("content:A")) == SESSION_STEPS
    assert steps_source(request("search", event_types=[SEARCH])) == SESSION_STEPS
    assert steps_source(request(PAGE, filters=[{"dimension": "event_type", "value": PAGE}])) == SESSION_STEPS
    assert steps_source(request("content:A", filters=[{"dimension": "author", "value": "x"}])) == SESSION_STEPS
    # A type session_steps does not keep, among the steps or as the anchor.
    assert steps_source(request("content:A", event_types=[VIEW, PLAY])) == EVENTS
    assert steps_source(request(PLAY)) == EVENTS
    # Filters on columns session_steps does not have (content_id: it keeps only the content key).
    for dimension in ("country", "user_id", "content_id", "device_type", "search_query"):
        assert steps_source(request("content:A", filters=[{"dimension": dimension, "value": "x"}])) == EVENTS
    with pytest.raises(ValueError, match="session_steps"):
        paths_statement(request(PLAY), request(PLAY).period(), SESSION_STEPS)


async def test_session_steps_holds_what_the_rollup_feed_passed_on(load: Any, events: ClickHouseEvents) -> None:
    """Events stored and not yet fed are in raw events only: session_steps, like every rollup, trails
    them until the feed passes them on (answers carry as_of)."""
    store = load([view(s(0), "A", "fed"), view(s(1), "B", "fed")])
    events.insert_raw(event_table([view(s(0), "A", "unfed"), view(s(1), "C", "unfed")]), secrets.token_hex(8))
    from_steps = await run_paths(store, request("content:A"), source=SESSION_STEPS)
    assert [p.steps for p in from_steps.paths] == [["content:A", "content:B", "exit"]]
    from_events = await run_paths(store, request("content:A"), source=EVENTS)
    assert from_events.sessions == 2
    events.rollups.feed_through(events.stored_seq)
    assert answer(await run_paths(store, request("content:A"), source=SESSION_STEPS)) == answer(from_events)


async def test_steps_of_one_millisecond(load: Any, source: str) -> None:
    rows = [view(s(0), "A", "t"), view(s(0), "B", "t"), view(s(0), "C", "t"), view(s(1), "A", "t")]
    result = await run_paths(load(rows), request("content:A"), source=source)
    assert answer(result) == reference(rows, "content:A")


def crc_order(names: Sequence[str]) -> list[str]:
    """``names`` (step names) in the order of their 28-bit CRC-32, the documented tie order."""
    return sorted(names, key=lambda name: zlib.crc32(name.encode()) & ((1 << 28) - 1))


async def test_ties_follow_the_names_not_the_stored_order(load: Any, source: str) -> None:
    """Steps of one millisecond whose ids (session_steps' order within a millisecond) and insert
    order both run against the CRC order of their names."""
    contents = [f"K{i}" for i in range(8)]
    by_crc = crc_order([f"content:{c}" for c in contents])
    backwards = [name.removeprefix("content:") for name in reversed(by_crc)]
    rows = [Row(s(0), VIEW, session_id="tie", content_id=c, id=f"id{i}") for i, c in enumerate(backwards)]
    rows.append(view(s(1), "Z", "tie"))
    result = await run_paths(load(rows), request(VIEW, depth=5), source=source)
    # The first anchor is the tie's first name in CRC order, then the others in that order.
    assert result.paths[0].steps == [*by_crc[:6]]
    assert answer(result) == reference(rows, VIEW, depth=5)
    before = await run_paths(load(rows), request("content:Z", direction="before", depth=2), source=source)
    assert before.paths[0].steps == [*by_crc[-2:], "content:Z"]
    assert answer(before) == reference(rows, "content:Z", direction="before", depth=2)


async def test_limit_and_other_paths(load: Any, source: str) -> None:
    rows = []
    for i in range(7):
        rows += [view(s(0), "A", f"l{i}"), view(s(1), f"N{i % 3}", f"l{i}")]
    result = await run_paths(load(rows), request("content:A", depth=1, limit=2), source=source)
    expected = reference(rows, "content:A", depth=1, limit=2)
    assert answer(result) == expected
    assert result.other_paths == 2 and len(result.paths) == 2


async def test_a_session_is_read_up_to_the_cap(load: Any, source: str) -> None:
    bot = [view(s(i / 1000), f"b{i % 7}", "bot") for i in range(MAX_EVENTS_PER_SESSION + 10)]
    bot.append(view(s(5), "A", "bot"))
    rows = [*bot, view(s(0), "A", "human"), view(s(1), "B", "human")]
    result = await run_paths(load(rows), request("content:A"), source=source)
    assert result.sessions == 1
    assert answer(result) == reference(rows, "content:A")


async def test_the_cap_cuts_a_millisecond_by_the_tie_order(load: Any, source: str) -> None:
    """The cap falls inside a millisecond: the steps kept there are the first in CRC order, whatever
    their ids and insert order, so what comes before and after the anchor follows that order."""
    tied = crc_order([f"content:T{i}" for i in range(10)])
    anchor, kept = tied[2], 5
    early = [view(s(i / 1000), f"b{i % 2}", "bot") for i in range(MAX_EVENTS_PER_SESSION - kept)]
    late = [
        Row(s(2), VIEW, session_id="bot", content_id=name.removeprefix("content:"), id=f"x{len(tied) - i}")
        for i, name in enumerate(tied)
    ]
    rows = [*early, *reversed(late)]
    after = await run_paths(load(rows), request(anchor), source=source)
    # The two kept after the anchor, then the cap ends the session.
    assert [p.steps for p in after.paths] == [[anchor, *tied[3:kept], "exit"]]
    assert answer(after) == reference(rows, anchor)
    before = await run_paths(load(rows), request(anchor, direction="before"), source=source)
    assert [p.steps for p in before.paths] == [["content:b0", *tied[:2], anchor]]
    assert answer(before) == reference(rows, anchor, direction="before")
    # A tied step past the cap is no anchor.
    assert (await run_paths(load(rows), request(tied[kept]), source=source)).sessions == 0


async def test_empty_answer(load: Any, source: str) -> None:
    result = await run_paths(load([view(s(0), "B", "x")]), request("content:A"), source=source)
    assert result.sessions == 0 and result.paths == [] and result.other_paths == 0
    assert [(d.depth, d.steps) for d in result.by_depth] == [(1, []), (2, []), (3, [])]


@pytest.mark.parametrize("seed", range(8))
async def test_random_sessions_match_the_reference(load: Any, source: str, seed: int) -> None:
    rng = random.Random(seed)
    rows = []
    for session in range(25):
        for _ in range(rng.randint(1, 9)):
            kind = rng.choice([VIEW, VIEW, SEARCH, PAGE, LIKE])
            content = rng.choice(["A", "B", "C"]) if kind in (VIEW, LIKE) else ""
            # Whole seconds: ties in a millisecond happen.
            rows.append(Row(s(rng.randint(0, 40)), kind, session_id=f"r{session}", content_id=content))
    anchor = rng.choice(["content:A", "search", "page", VIEW])
    direction = rng.choice(["after", "before"])
    depth = rng.randint(1, 5)
    limit = rng.randint(1, 6)
    # LIKE is a step only raw events have.
    kept = [(VIEW, SEARCH, PAGE), (VIEW, SEARCH), (SEARCH, PAGE)]
    types = rng.choice(kept if source == SESSION_STEPS else [*kept[:2], (VIEW, LIKE)])
    req = request(anchor, direction=direction, depth=depth, limit=limit, event_types=list(types))
    result = await run_paths(load(rows), req, source=source)
    assert answer(result) == reference(rows, anchor, direction=direction, depth=depth, limit=limit, types=types)


# --- the request ------------------------------------------------------------------------------------


INJECTION = "x'); DROP TABLE events; --"


async def test_injection_strings_are_refused_or_bound(load: Any, source: str, events: ClickHouseEvents) -> None:
    rows = [view(s(0), INJECTION, INJECTION), view(s(1), "B", INJECTION, country=INJECTION)]
    result = await run_paths(
        load(rows),
        request(f"content:{INJECTION}", filters=[{"dimension": "session_id", "value": INJECTION}]),
        source=source,
    )
    assert [p.steps for p in result.paths] == [[f"content:{INJECTION}", "content:B", "exit"]]
    for bad in (
        {"anchor": INJECTION},
        {"anchor": "search", "event_types": [INJECTION]},
        {"anchor": "search", "direction": INJECTION},
    ):
        with pytest.raises(InvalidRequest):
            PathsRequest.parse({"date_range": RANGE, **bad}).resolved()
    assert events.query("SELECT count() FROM events").rows[0][0] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "anchor"),
        ({"anchor": "content:"}, "anchor"),
        ({"anchor": "exit"}, "anchor"),
        ({"anchor": "Search Query"}, "anchor"),
        ({"anchor": "search", "depth": 0}, "depth"),
        ({"anchor": "search", "depth": 6}, "depth"),
        ({"anchor": "search", "limit": 101}, "limit"),
        ({"anchor": "search", "direction": "sideways"}, "direction"),
        ({"anchor": "search", "event_types": []}, "event_types"),
        ({"anchor": "search", "event_types": [VIEW, "entry"]}, "event_types[1]"),
        ({"anchor": "search", "filters": [{"dimension": "colour", "value": "red"}]}, "filters[0].dimension"),
        ({"anchor": "search", "timezone": "Nowhere/Else"}, "timezone"),
    ],
)
def test_validation_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        PathsRequest.parse({"date_range": RANGE, **body}).resolved()
    assert caught.value.status == 400
    assert caught.value.details["field"] == field, caught.value.details
