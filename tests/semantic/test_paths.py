"""Paths on real chDB, against a Python reference over the same rows: step names (content from
content_id or properties, search, page, other event types), repeats collapsed, the first anchor of
a session, entry and exit, both directions, an event type as anchor, filters, ties in a millisecond,
the per-session cap, limits, an empty answer, and seeded random sessions."""

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
import pytest

from core.errors import InvalidRequest
from semantic.paths import MAX_EVENTS_PER_SESSION, PathsRequest, PathsResult, run_paths
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
    def loaded(rows: Sequence[Row]) -> InProcessStore:
        events.query("TRUNCATE TABLE events")
        if rows:
            events.insert_raw(event_table(rows), secrets.token_hex(8))
        return InProcessStore(events)

    return loaded


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def view(at: datetime, content: str, session: str, **extra: Any) -> Row:
    return Row(at, VIEW, session_id=session, content_id=content, **extra)


# --- the reference ------------------------------------------------------------------------------


def step_name(row: Row) -> str:
    if row.event_type == VIEW:
        named = row.content_id or orjson.loads(row.properties).get("content_id")
        return "content:" + (named if isinstance(named, str) else "")
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


async def test_paths_after_a_content(load: Any) -> None:
    rows = hand_built()
    result = await run_paths(load(rows), request("content:A"))
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


async def test_paths_before_a_search(load: Any) -> None:
    rows = hand_built()
    result = await run_paths(load(rows), request("search", direction="before", depth=2))
    assert {tuple(p.steps): p.sessions for p in result.paths} == {
        ("entry", "content:A", "search"): 1,
        ("entry", "search"): 1,
        ("content:B", "content:A", "search"): 1,
    }
    assert answer(result) == reference(rows, "search", direction="before", depth=2)


async def test_an_event_type_anchors_each_of_its_steps_and_other_types_take_part(load: Any) -> None:
    rows = hand_built()
    result = await run_paths(load(rows), request(VIEW, depth=2))
    assert answer(result) == reference(rows, VIEW, depth=2)
    assert result.sessions == 5
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


async def test_steps_of_one_millisecond(load: Any) -> None:
    rows = [view(s(0), "A", "t"), view(s(0), "B", "t"), view(s(0), "C", "t"), view(s(1), "A", "t")]
    result = await run_paths(load(rows), request("content:A"))
    assert answer(result) == reference(rows, "content:A")


async def test_limit_and_other_paths(load: Any) -> None:
    rows = []
    for i in range(7):
        rows += [view(s(0), "A", f"l{i}"), view(s(1), f"N{i % 3}", f"l{i}")]
    result = await run_paths(load(rows), request("content:A", depth=1, limit=2))
    expected = reference(rows, "content:A", depth=1, limit=2)
    assert answer(result) == expected
    assert result.other_paths == 2 and len(result.paths) == 2


async def test_a_session_is_read_up_to_the_cap(load: Any) -> None:
    bot = [view(s(i / 1000), f"b{i % 7}", "bot") for i in range(MAX_EVENTS_PER_SESSION + 10)]
    bot.append(view(s(5), "A", "bot"))
    rows = [*bot, view(s(0), "A", "human"), view(s(1), "B", "human")]
    result = await run_paths(load(rows), request("content:A"))
    assert result.sessions == 1
    assert answer(result) == reference(rows, "content:A")


async def test_empty_answer(load: Any) -> None:
    result = await run_paths(load([view(s(0), "B", "x")]), request("content:A"))
    assert result.sessions == 0 and result.paths == [] and result.other_paths == 0
    assert [(d.depth, d.steps) for d in result.by_depth] == [(1, []), (2, []), (3, [])]


@pytest.mark.parametrize("seed", range(8))
async def test_random_sessions_match_the_reference(load: Any, seed: int) -> None:
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
    types = rng.choice([(VIEW, SEARCH, PAGE), (VIEW, LIKE)])
    result = await run_paths(
        load(rows), request(anchor, direction=direction, depth=depth, limit=limit, event_types=list(types))
    )
    assert answer(result) == reference(rows, anchor, direction=direction, depth=depth, limit=limit, types=types)


# --- the request ------------------------------------------------------------------------------------


INJECTION = "x'); DROP TABLE events; --"


async def test_injection_strings_are_refused_or_bound(load: Any, events: ClickHouseEvents) -> None:
    rows = [view(s(0), INJECTION, INJECTION), view(s(1), "B", INJECTION, country=INJECTION)]
    result = await run_paths(
        load(rows),
        request(f"content:{INJECTION}", filters=[{"dimension": "session_id", "value": INJECTION}]),
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
