"""Funnels on real chDB, against a brute-force Python reference over the same rows.

The reference enumerates every chain of events an actor could go through (semantic/funnels.py's
counting rule, read literally) instead of following the statement's algorithm. Hand-built cases
cover steps out of order, the window's edge, events of one millisecond, exclusions, repeated and
retried steps, anonymous sessions, filters, breakdowns, the timezone of the range, an empty answer
and a bot past the per-actor cap; seeded random actors cover the combinations.
"""

from __future__ import annotations

import random
import secrets
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from core.errors import InvalidRequest
from core.taxonomy import default_category
from semantic.freshness import Watermark
from semantic.funnels import MAX_EVENTS_PER_ACTOR, FunnelRequest, FunnelResult, run_funnel
from storage.events import EVENT_SCHEMA, ClickHouseEvents
from tests.semantic.conftest import InProcessStore, open_store

DAY = date(2026, 3, 2)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RANGE = {"start_date": "2026-03-02", "end_date": "2026-03-08"}
VIEW, PLAY, COMPLETE, PAUSE, LIKE = "content_view", "content_play", "content_complete", "content_pause", "content_like"


@dataclass(frozen=True)
class Row:
    timestamp: datetime
    event_type: str
    user_id: str = ""
    session_id: str = ""
    country: str = ""
    content_id: str = ""
    properties: str = "{}"
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def actor(self) -> str | None:
        return self.user_id or (f"session:{self.session_id}" if self.session_id else None)

    @property
    def ms(self) -> int:
        return int(self.timestamp.timestamp() * 1000)


def event_table(rows: Sequence[Row]) -> pa.Table:
    n = len(rows)
    columns: dict[str, Any] = {name: [""] * n for name in EVENT_SCHEMA.names}
    columns.update(
        id=[r.id for r in rows],
        event_type=[r.event_type for r in rows],
        event_category=[default_category(r.event_type) for r in rows],
        timestamp=[r.timestamp for r in rows],
        user_id=[r.user_id for r in rows],
        session_id=[r.session_id for r in rows],
        content_id=[r.content_id for r in rows],
        country=[r.country for r in rows],
        properties=[r.properties for r in rows],
        processed_at=[T0] * n,
    )
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)


@pytest.fixture(scope="module")
def events(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    store = open_store(chdb_dir, f"funnels_{secrets.token_hex(4)}")
    yield store
    store.close()


@pytest.fixture
def load(events: ClickHouseEvents) -> Any:
    """Replace the stored events with ``rows``; returns the reader the analyses take."""

    def loaded(rows: Sequence[Row]) -> InProcessStore:
        events.query("TRUNCATE TABLE events")
        if rows:
            events.insert_raw(event_table(rows), secrets.token_hex(8))
        return InProcessStore(events)

    return loaded


# --- the reference ------------------------------------------------------------------------------


@dataclass
class Spec:
    event_type: str
    countries: tuple[str, ...] | None = None  # a filter: country in ...

    def matches(self, row: Row) -> bool:
        return row.event_type == self.event_type and (self.countries is None or row.country in self.countries)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event_type": self.event_type}
        if self.countries is not None:
            out["filters"] = [{"dimension": "country", "op": "in", "values": list(self.countries)}]
        return out


@dataclass
class Expected:
    counts: list[int]
    medians: list[float | None]  # from the previous step, per step (None for the first)
    values: dict[str, str]  # actor -> breakdown value


def _chains(
    events: list[Row], step_of: dict[int, set[int]], excluded_after: dict[int, set[int]], n: int, window_ms: int
) -> list[tuple[Row, ...]]:
    """Every valid chain of ``events``: steps 1..k in strictly increasing time within the window, no
    exclusion event strictly between consecutive steps it sits between."""
    chains: list[tuple[Row, ...]] = []

    def extend(chain: tuple[Row, ...]) -> None:
        chains.append(chain)
        k = len(chain)
        if k == n:
            return
        last = chain[-1]
        for e in events:
            blocked = any(last.ms < x.ms < e.ms and k in excluded_after[id(x)] for x in events)
            if e.ms > last.ms and k + 1 in step_of[id(e)] and e.ms - chain[0].ms <= window_ms and not blocked:
                extend((*chain, e))

    for e in events:
        if 1 in step_of[id(e)]:
            extend((e,))
    return chains


def reference(
    rows: Sequence[Row],
    steps: Sequence[Spec],
    window_ms: int,
    exclusions: Sequence[tuple[Spec, int]] = (),
    *,
    start: datetime,
    end: datetime,
    value_of: Any = None,
) -> Expected:
    n = len(steps)
    by_actor: dict[str, list[Row]] = {}
    for row in rows:
        if row.actor is not None and start <= row.timestamp < end:
            by_actor.setdefault(row.actor, []).append(row)
    levels: dict[str, list[Row]] = {}
    values: dict[str, str] = {}
    for actor, events in by_actor.items():
        step_of = {id(e): {k for k, s in enumerate(steps, 1) if s.matches(e)} for e in events}
        excluded_after = {
            id(e): {after for x, after in exclusions if x.matches(e)} if not step_of[id(e)] else set() for e in events
        }
        chains = _chains(events, step_of, excluded_after, n, window_ms)
        if not chains:
            continue
        deepest = max(len(c) for c in chains)
        # The chain: the earliest event completing the deepest step, then the latest earlier steps.
        first_end = min(c[-1].ms for c in chains if len(c) == deepest)
        candidates = [c for c in chains if len(c) == deepest and c[-1].ms == first_end]
        chain = max(candidates, key=lambda c: tuple(e.ms for e in reversed(c[:-1])))
        levels[actor] = list(chain)
        if value_of is not None:
            values[actor] = max(value_of(e) for e in events if e.ms == chain[0].ms and 1 in step_of[id(e)])
    counts = [sum(1 for c in levels.values() if len(c) >= k) for k in range(1, n + 1)]
    medians: list[float | None] = [None]
    for k in range(2, n + 1):
        gaps = [(c[k - 1].ms - c[k - 2].ms) / 1000 for c in levels.values() if len(c) >= k]
        medians.append(statistics.median(gaps) if gaps else None)
    return Expected(counts, medians, values)


def request(steps: Sequence[Spec], **extra: Any) -> FunnelRequest:
    body = {"date_range": RANGE, "steps": [s.body() for s in steps], **extra}
    return FunnelRequest.parse(body).resolved()


def assert_matches(result: FunnelResult, expected: Expected) -> None:
    assert [s.count for s in result.steps] == expected.counts
    assert [s.median_seconds_from_previous for s in result.steps] == pytest.approx(expected.medians)
    first = expected.counts[0]
    for index, step in enumerate(result.steps):
        previous = expected.counts[index - 1] if index else expected.counts[0]
        assert step.conversion_from_first == pytest.approx(expected.counts[index] / first if first else 0.0)
        assert step.conversion_from_previous == pytest.approx(expected.counts[index] / previous if previous else 0.0)
        assert step.drop_off == previous - expected.counts[index]


def _ms(n: int) -> timedelta:
    return timedelta(milliseconds=n)


def _s(n: float) -> timedelta:
    return timedelta(seconds=n)


RANGE_START = datetime(2026, 3, 2, tzinfo=UTC)
RANGE_END = datetime(2026, 3, 9, tzinfo=UTC)


# --- hand-built cases ---------------------------------------------------------------------------


async def test_steps_in_order_out_of_order_and_partial(load: Any) -> None:
    rows = [
        # a: all three in order, with other events between.
        Row(T0, VIEW, "a"),
        Row(T0 + _s(5), LIKE, "a"),
        Row(T0 + _s(10), PLAY, "a"),
        Row(T0 + _s(70), COMPLETE, "a"),
        # b: the second step only before the first: reaches step 1.
        Row(T0, PLAY, "b"),
        Row(T0 + _s(1), VIEW, "b"),
        Row(T0 + _s(2), COMPLETE, "b"),
        # c: two steps.
        Row(T0, VIEW, "c"),
        Row(T0 + _s(30), PLAY, "c"),
        # d: never the first step.
        Row(T0, PLAY, "d"),
        Row(T0 + _s(1), COMPLETE, "d"),
    ]
    steps = [Spec(VIEW), Spec(PLAY), Spec(COMPLETE)]
    result = await run_funnel(load(rows), request(steps))
    # By hand: a, b, c enter; a and c play (10 s and 30 s after viewing); a completes 60 s later.
    assert [s.count for s in result.steps] == [3, 2, 1]
    assert [s.median_seconds_from_previous for s in result.steps] == [None, 20.0, 60.0]
    assert [s.drop_off for s in result.steps] == [0, 1, 1]
    assert result.overall_conversion == pytest.approx(1 / 3)
    assert result.counted_by == "user_id, else session_id"
    assert_matches(result, reference(rows, steps, 86_400_000, start=RANGE_START, end=RANGE_END))


async def test_window_edge_is_included_and_a_millisecond_more_is_not(load: Any) -> None:
    window = timedelta(hours=1)
    rows = [
        Row(T0, VIEW, "inside"),
        Row(T0 + window, PLAY, "inside"),
        Row(T0, VIEW, "outside"),
        Row(T0 + window + _ms(1), PLAY, "outside"),
        # The window counts from the first step, not the previous one.
        Row(T0, VIEW, "chain"),
        Row(T0 + _s(3000), PLAY, "chain"),
        Row(T0 + window + _ms(1), COMPLETE, "chain"),
    ]
    steps = [Spec(VIEW), Spec(PLAY), Spec(COMPLETE)]
    result = await run_funnel(load(rows), request(steps, conversion_window={"value": 60, "unit": "minutes"}))
    assert [s.count for s in result.steps] == [3, 2, 0]
    assert result.conversion_window_seconds == 3600
    assert_matches(result, reference(rows, steps, 3_600_000, start=RANGE_START, end=RANGE_END))


async def test_events_of_one_millisecond_do_not_follow_each_other(load: Any) -> None:
    rows = [
        Row(T0, VIEW, "same"),
        Row(T0, PLAY, "same"),
        Row(T0, VIEW, "next"),
        Row(T0 + _ms(1), PLAY, "next"),
        # A later start in the same millisecond as the second step: the earlier start still converts.
        Row(T0, VIEW, "restart"),
        Row(T0 + _s(5), VIEW, "restart"),
        Row(T0 + _s(5), PLAY, "restart"),
    ]
    steps = [Spec(VIEW), Spec(PLAY)]
    result = await run_funnel(load(rows), request(steps))
    assert [s.count for s in result.steps] == [3, 2]
    assert_matches(result, reference(rows, steps, 86_400_000, start=RANGE_START, end=RANGE_END))


async def test_exclusion_between_two_steps(load: Any) -> None:
    rows = [
        # The pause between play and complete ends the chain.
        Row(T0, VIEW, "paused"),
        Row(T0 + _s(1), PLAY, "paused"),
        Row(T0 + _s(2), PAUSE, "paused"),
        Row(T0 + _s(3), COMPLETE, "paused"),
        # A pause before play does not matter (the exclusion sits after step 2).
        Row(T0, VIEW, "early"),
        Row(T0 + _s(1), PAUSE, "early"),
        Row(T0 + _s(2), PLAY, "early"),
        Row(T0 + _s(3), COMPLETE, "early"),
        # Playing again after the pause gives a chain without one between its steps.
        Row(T0, VIEW, "again"),
        Row(T0 + _s(1), PLAY, "again"),
        Row(T0 + _s(2), PAUSE, "again"),
        Row(T0 + _s(4), PLAY, "again"),
        Row(T0 + _s(9), COMPLETE, "again"),
        # In the same millisecond as a step: not strictly between.
        Row(T0, VIEW, "tied"),
        Row(T0 + _s(1), PLAY, "tied"),
        Row(T0 + _s(1), PAUSE, "tied"),
        Row(T0 + _s(3), PAUSE, "tied"),
        Row(T0 + _s(3), COMPLETE, "tied"),
    ]
    steps = [Spec(VIEW), Spec(PLAY), Spec(COMPLETE)]
    exclusion = Spec(PAUSE)
    result = await run_funnel(load(rows), request(steps, exclusions=[{"event_type": PAUSE, "after_step": 2}]))
    assert [s.count for s in result.steps] == [4, 4, 3]
    # again's chain plays at +4 s (the latest play before completing), so 3 s and 5 s from the play.
    assert result.steps[2].median_seconds_from_previous == 2.0
    assert_matches(result, reference(rows, steps, 86_400_000, [(exclusion, 2)], start=RANGE_START, end=RANGE_END))


async def test_an_event_matching_a_step_is_never_an_exclusion(load: Any) -> None:
    rows = [
        Row(T0, VIEW, "u", country="DE"),
        Row(T0 + _s(1), VIEW, "u", country="FR"),  # also an exclusion event by type, but it is step 1 too
        Row(T0 + _s(2), PLAY, "u", country="DE"),
    ]
    steps = [Spec(VIEW), Spec(PLAY)]
    result = await run_funnel(load(rows), request(steps, exclusions=[{"event_type": VIEW, "after_step": 1}]))
    assert [s.count for s in result.steps] == [1, 1]


async def test_repeated_and_retried_steps_count_each_actor_once(load: Any) -> None:
    day = timedelta(days=1)
    rows = [
        # Fails the one-day window on Monday, converts on Thursday.
        Row(T0, VIEW, "retry"),
        Row(T0 + 2 * day, PLAY, "retry"),
        Row(T0 + 3 * day, VIEW, "retry"),
        Row(T0 + 3 * day + _s(40), PLAY, "retry"),
        # Views and plays over and over.
        *[Row(T0 + _s(10 * i), VIEW if i % 2 == 0 else PLAY, "busy") for i in range(20)],
        # The same type as two steps needs two events.
        Row(T0, COMPLETE, "twice"),
        Row(T0 + _s(1), COMPLETE, "twice"),
        Row(T0, COMPLETE, "once"),
    ]
    steps = [Spec(VIEW), Spec(PLAY)]
    result = await run_funnel(load(rows), request(steps))
    assert [s.count for s in result.steps] == [2, 2]
    assert_matches(result, reference(rows, steps, 86_400_000, start=RANGE_START, end=RANGE_END))
    twice = [Spec(COMPLETE), Spec(COMPLETE)]
    result = await run_funnel(load(rows), request(twice))
    assert [s.count for s in result.steps] == [2, 1]


async def test_anonymous_sessions_count_apart_from_users(load: Any) -> None:
    rows = [
        Row(T0, VIEW, session_id="s1"),
        Row(T0 + _s(1), PLAY, session_id="s1"),
        # The same session once signed in: the user is another actor, who never viewed.
        Row(T0 + _s(2), PLAY, "u1", session_id="s1"),
        Row(T0 + _s(3), VIEW, "u1", session_id="s2"),
        # Neither user nor session: not counted.
        Row(T0, VIEW),
        Row(T0 + _s(1), PLAY),
    ]
    steps = [Spec(VIEW), Spec(PLAY)]
    result = await run_funnel(load(rows), request(steps))
    assert [s.count for s in result.steps] == [2, 1]
    assert_matches(result, reference(rows, steps, 86_400_000, start=RANGE_START, end=RANGE_END))


async def test_step_filters(load: Any) -> None:
    rows = [
        Row(T0, VIEW, "de", country="DE"),
        Row(T0 + _s(1), PLAY, "de", country="DE"),
        Row(T0, VIEW, "fr", country="FR"),
        Row(T0 + _s(1), PLAY, "fr", country="FR"),
        Row(T0, VIEW, "mixed", country="FR"),
        Row(T0 + _s(1), VIEW, "mixed", country="DE"),
        Row(T0 + _s(5), PLAY, "mixed", country="FR"),
    ]
    steps = [Spec(VIEW, ("DE",)), Spec(PLAY)]
    result = await run_funnel(load(rows), request(steps))
    assert [s.count for s in result.steps] == [2, 2]
    assert result.steps[1].median_seconds_from_previous == 2.5
    assert_matches(result, reference(rows, steps, 86_400_000, start=RANGE_START, end=RANGE_END))


async def test_breakdown_keeps_the_top_values_and_groups_the_rest(load: Any) -> None:
    rows = []
    # DE: 3 actors (2 convert), FR: 2 (1), US: 1 (1), '' (not known): 1 (0).
    for i, (country, converts) in enumerate(
        [("DE", True), ("DE", True), ("DE", False), ("FR", True), ("FR", False), ("US", True), ("", False)]
    ):
        rows.append(Row(T0 + _s(i), VIEW, f"u{i}", country=country))
        if converts:
            rows.append(Row(T0 + _s(i + 30), PLAY, f"u{i}", country="XX"))
    # The value is the first-step event's of the counted chain: the later view (in FR) starts it.
    rows += [
        Row(T0, VIEW, "mover", country="US"),
        Row(T0 + _s(10), VIEW, "mover", country="FR"),
        Row(T0 + _s(11), PLAY, "mover", country="US"),
    ]
    steps = [Spec(VIEW), Spec(PLAY)]
    result = await run_funnel(load(rows), request(steps, breakdown={"dimension": "country", "limit": 2}))
    expected = reference(rows, steps, 86_400_000, start=RANGE_START, end=RANGE_END, value_of=lambda r: r.country)
    assert expected.values["mover"] == "FR"
    assert_matches(result, expected)
    assert result.breakdown is not None and result.breakdown.dimension == "country"
    groups = {g.value: [s.count for s in g.steps] for g in result.breakdown.groups}
    by_value: dict[str, list[int]] = {}
    for actor, value in expected.values.items():
        counts = by_value.setdefault(value, [0, 0])
        counts[0] += 1
        counts[1] += int(any(r.actor == actor and r.event_type == PLAY for r in rows))
    # Top two by actors entering (DE 3, FR 3), the rest (US 1, '' 1) as one group.
    assert by_value == {"DE": [3, 2], "FR": [3, 2], "US": [1, 1], "": [1, 0]}
    assert groups == {"DE": [3, 2], "FR": [3, 2], None: [2, 1]}
    assert [g.value for g in result.breakdown.groups] == ["DE", "FR", None]


async def test_breakdown_by_content_metadata(load: Any, events: ClickHouseEvents) -> None:
    rows = [
        Row(T0, VIEW, "a", content_id="v1"),
        Row(T0 + _s(1), PLAY, "a", content_id="v1"),
        Row(T0, VIEW, "b", content_id="v2"),
        Row(T0, VIEW, "c", content_id="v3"),  # no metadata
    ]
    reader = load(rows)
    updates = pa.table(
        {
            "content_id": ["v1", "v2"],
            "category": ["news", "sports"],
            "updated_at": pa.array([T0, T0], pa.timestamp("ms", tz="UTC")),
        }
    )
    events.insert_table("content_metadata_updates", updates)
    result = await run_funnel(reader, request([Spec(VIEW), Spec(PLAY)], breakdown={"dimension": "category"}))
    assert result.breakdown is not None
    groups = {g.value: [s.count for s in g.steps] for g in result.breakdown.groups}
    assert groups == {"news": [1, 1], "sports": [1, 0], "": [1, 0]}


async def test_range_in_the_request_timezone(load: Any) -> None:
    # 2026-03-02 in Tokyo starts at 2026-03-01 15:00 UTC.
    tokyo_start = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    rows = [
        Row(tokyo_start + _s(1), VIEW, "in"),
        Row(tokyo_start + _s(2), PLAY, "in"),
        Row(tokyo_start - _s(2), VIEW, "before"),
        Row(tokyo_start + _s(2), PLAY, "before"),
    ]
    steps = [Spec(VIEW), Spec(PLAY)]
    tokyo = FunnelRequest.parse(
        {
            "date_range": {"start_date": "2026-03-02", "end_date": "2026-03-02"},
            "timezone": "Asia/Tokyo",
            "steps": [s.body() for s in steps],
        }
    ).resolved()
    result = await run_funnel(load(rows), tokyo)
    assert [s.count for s in result.steps] == [1, 1]
    assert result.period.timezone == "Asia/Tokyo"
    expected = reference(rows, steps, 86_400_000, start=tokyo_start, end=tokyo_start + timedelta(days=1))
    assert_matches(result, expected)


async def test_empty_answer(load: Any) -> None:
    result = await run_funnel(load([Row(T0, PLAY, "x")]), request([Spec(VIEW), Spec(PLAY)]))
    assert [s.count for s in result.steps] == [0, 0]
    assert [s.median_seconds_from_previous for s in result.steps] == [None, None]
    assert result.overall_conversion == 0.0
    result = await run_funnel(load([]), request([Spec(VIEW), Spec(PLAY)], breakdown={"dimension": "country"}))
    assert [s.count for s in result.steps] == [0, 0]
    assert result.breakdown is not None and result.breakdown.groups == []


async def test_an_actor_is_read_up_to_the_cap(load: Any) -> None:
    bot = [Row(T0 + _ms(i), VIEW, "bot") for i in range(MAX_EVENTS_PER_ACTOR + 500)]
    bot.append(Row(T0 + _s(60), PLAY, "bot"))
    rows = [*bot, Row(T0, VIEW, "human"), Row(T0 + _s(1), PLAY, "human")]
    result = await run_funnel(load(rows), request([Spec(VIEW), Spec(PLAY)]))
    # The bot's play is past its first MAX_EVENTS_PER_ACTOR events.
    assert [s.count for s in result.steps] == [2, 1]


async def test_as_of_comes_from_the_watermark(load: Any) -> None:
    reader = load([])
    mark = Watermark(stored_seq=3, fed_seq=3, as_of_ms=1_772_400_000_000)
    result = await run_funnel(reader, request([Spec(VIEW), Spec(PLAY)]), mark)
    assert result.as_of == mark.as_of
    assert (await run_funnel(reader, request([Spec(VIEW), Spec(PLAY)]))).as_of is None


# --- random actors against the reference --------------------------------------------------------


def _random_rows(rng: random.Random) -> list[Row]:
    rows = []
    types = [VIEW, PLAY, COMPLETE, PAUSE]
    for actor in range(12):
        user = f"r{actor}" if actor % 4 else ""
        session = f"rs{actor}"
        for _ in range(rng.randint(0, 14)):
            # Whole seconds over ten minutes: ties within a millisecond happen.
            moment = T0 + _s(rng.randint(0, 600))
            rows.append(Row(moment, rng.choice(types), user, session, country=rng.choice(["DE", "FR"])))
    return rows


@pytest.mark.parametrize("seed", range(12))
async def test_random_actors_match_the_reference(load: Any, seed: int) -> None:
    rng = random.Random(seed)
    rows = _random_rows(rng)
    n = rng.randint(2, 4)
    steps = [Spec(rng.choice([VIEW, PLAY, COMPLETE]), rng.choice([None, ("DE",)])) for _ in range(n)]
    window_s = rng.choice([30, 120, 600])
    exclusions = [(Spec(PAUSE), rng.randint(1, n - 1))] if rng.random() < 0.6 else []
    body_exclusions = [{"event_type": PAUSE, "after_step": after} for _, after in exclusions]
    result = await run_funnel(
        load(rows),
        request(
            steps,
            conversion_window={"value": window_s, "unit": "seconds"},
            exclusions=body_exclusions,
            breakdown={"dimension": "country", "limit": 1},
        ),
    )
    expected = reference(
        rows, steps, window_s * 1000, exclusions, start=RANGE_START, end=RANGE_END, value_of=lambda r: r.country
    )
    assert_matches(result, expected)
    assert result.breakdown is not None
    entering: dict[str, int] = {}
    for value in expected.values.values():
        entering[value] = entering.get(value, 0) + 1
    groups = {g.value: g.steps[0].count for g in result.breakdown.groups}
    if entering:
        top = sorted(entering.items(), key=lambda item: (-item[1], item[0]))[0]
        assert groups[top[0]] == top[1]
        assert groups.get(None, 0) == sum(entering.values()) - top[1]


@pytest.mark.parametrize("seed", range(3))
async def test_ten_steps_and_five_exclusions_match_the_reference(load: Any, seed: int) -> None:
    rng = random.Random(100 + seed)
    rows = [
        Row(T0 + _s(rng.randint(0, 600)), rng.choice([VIEW, PLAY, COMPLETE] * 3 + [PAUSE]), f"t{actor}")
        for actor in range(6)
        for _ in range(22)
    ]
    steps = [Spec(rng.choice([VIEW, PLAY, COMPLETE])) for _ in range(10)]
    exclusions = [(Spec(PAUSE), after) for after in rng.sample(range(1, 10), 5)]
    result = await run_funnel(
        load(rows),
        request(
            steps,
            conversion_window={"value": 10, "unit": "minutes"},
            exclusions=[{"event_type": PAUSE, "after_step": after} for _, after in exclusions],
        ),
    )
    expected = reference(rows, steps, 600_000, exclusions, start=RANGE_START, end=RANGE_END)
    assert expected.counts[6] > 0
    assert_matches(result, expected)


# --- the request ------------------------------------------------------------------------------------


INJECTION = "x'); DROP TABLE events; --"


async def test_injection_strings_are_refused_or_bound(load: Any, events: ClickHouseEvents) -> None:
    rows = [Row(T0, VIEW, INJECTION, country=INJECTION), Row(T0 + _s(1), PLAY, INJECTION, country=INJECTION)]
    reader = load(rows)
    body = {
        "date_range": RANGE,
        "steps": [
            {"event_type": VIEW, "label": INJECTION, "filters": [{"dimension": "country", "value": INJECTION}]},
            {"event_type": PLAY, "filters": [{"dimension": "user_id", "op": "contains", "value": "DROP TABLE"}]},
        ],
        "breakdown": {"dimension": "country"},
    }
    result = await run_funnel(reader, FunnelRequest.parse(body).resolved())
    assert [s.count for s in result.steps] == [1, 1]
    assert result.steps[0].label == INJECTION
    assert result.breakdown is not None and result.breakdown.groups[0].value == INJECTION
    for bad in (
        {"steps": [{"event_type": INJECTION}, {"event_type": PLAY}]},
        {"steps": [{"event_type": VIEW, "filters": [{"dimension": INJECTION, "value": "x"}]}, {"event_type": PLAY}]},
        {"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "timezone": INJECTION},
        {"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "breakdown": {"dimension": INJECTION}},
    ):
        with pytest.raises(InvalidRequest):
            FunnelRequest.parse({"date_range": RANGE, **bad}).resolved()
    assert events.query("SELECT count() FROM events").rows[0][0] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": [{"event_type": VIEW}]}, "steps"),
        ({"steps": [{"event_type": VIEW}] * 11}, "steps"),
        ({"steps": [{"event_type": VIEW}, {"event_type": "Content Play"}]}, "steps[1].event_type"),
        ({"steps": [{"event_type": VIEW}, {"event_type": PLAY, "colour": "red"}]}, "steps[1].colour"),
        (
            {"steps": [{"event_type": VIEW, "filters": [{"dimension": "country"}]}, {"event_type": PLAY}]},
            "steps[0].filters[0]",
        ),
        (
            {"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "conversion_window": {"value": 91, "unit": "days"}},
            "conversion_window",
        ),
        (
            {"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "conversion_window": {"value": 0}},
            "conversion_window.value",
        ),
        (
            {"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "conversion_window": {"value": 1, "unit": "weeks"}},
            "conversion_window.unit",
        ),
        (
            {
                "steps": [{"event_type": VIEW}, {"event_type": PLAY}],
                "exclusions": [{"event_type": PAUSE, "after_step": 2}],
            },
            "exclusions[0].after_step",
        ),
        (
            {"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "breakdown": {"dimension": "colour"}},
            "breakdown.dimension",
        ),
        (
            {"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "breakdown": {"dimension": "country", "limit": 51}},
            "breakdown.limit",
        ),
        ({"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "timezone": "Mars/Olympus"}, "timezone"),
        (
            {
                "steps": [{"event_type": VIEW}, {"event_type": PLAY}],
                "date_range": {"start_date": "2026-03-09", "end_date": "2026-03-02"},
            },
            "date_range.end_date",
        ),
        (
            {
                "steps": [{"event_type": VIEW}, {"event_type": PLAY}],
                "date_range": {"start_date": "2024-03-09", "end_date": "2026-03-02"},
            },
            "date_range.start_date",
        ),
    ],
)
def test_validation_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        FunnelRequest.parse(body).resolved()
    assert caught.value.status == 400
    assert caught.value.details["field"] == field, caught.value.details


def test_a_body_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        FunnelRequest.parse([1, 2])
    assert caught.value.details == {"field": "(body)"}


def test_the_default_range_is_the_last_30_days() -> None:
    resolved = FunnelRequest.parse({"steps": [{"event_type": VIEW}, {"event_type": PLAY}]}).resolved(today=DAY)
    assert resolved.date_range is not None
    assert (resolved.date_range.start_date, resolved.date_range.end_date) == (DAY - timedelta(days=29), DAY)


def test_window_units() -> None:
    for unit, seconds in (("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86_400)):
        parsed = FunnelRequest.parse(
            {"steps": [{"event_type": VIEW}, {"event_type": PLAY}], "conversion_window": {"value": 2, "unit": unit}}
        )
        assert parsed.conversion_window.seconds == 2 * seconds
    default = FunnelRequest.parse({"steps": [{"event_type": VIEW}, {"event_type": PLAY}]})
    assert default.conversion_window.seconds == 86_400
