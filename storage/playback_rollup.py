"""Watch time as pieces, kept per content and hour in ``playback_hourly``.

A playback session (storage.event_keys.SESSION_KEY) of one content yields pieces of watch time:
- if it has a play or resume event at all, one piece per pause or complete whose previous
  event, among the session's play / resume / pause / complete events in (time, id) order, is a
  play or resume: from the opener to the closer;
- otherwise, one piece per content_view, of the ``duration_seconds`` it reported (articles, or
  clients that report durations), at the view's time.

A period's watch time is the sum of the pieces that open and close inside it. Pieces depend on a
session's whole history, so no view over one insert can make them; instead the rollup feed
(storage/rollup_feed.py) adds, for each fed range of inserts, the pieces of every session the
range touches minus the pieces those sessions had before it. The sums are then additive per
(content, hour opened, hour closed), and periods that start and end on whole hours read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.taxonomy import CONTENT_VIEW, PLAYBACK_EVENT_TYPES, SEGMENT_CLOSERS, SEGMENT_OPENERS
from storage.event_keys import CONTENT_KEY, DURATION_SECONDS, SESSION_KEY, sql_list

TABLE = "playback_hourly"

_SEGMENT_SET = frozenset((*SEGMENT_OPENERS, *SEGMENT_CLOSERS))
_SEGMENT_TYPES = sql_list((*SEGMENT_OPENERS, *SEGMENT_CLOSERS))
_OPENERS = sql_list(SEGMENT_OPENERS)
HOUR_MS = 3_600_000
# A feed step of at most this many new rows computes its change in Python (delta_table): it reads
# the touched sessions' events once, where delta_sql reads them twice and plans a large statement,
# and it measured cheaper up to well past this size. delta_table's own cost per touched row grows
# with the touched sessions' history, so past PYTHON_DELTA_MAX_TOUCHED such rows the step goes to
# SQL, which also bounds the Arrow held for it.
PYTHON_DELTA_MAX_ROWS = 200_000
PYTHON_DELTA_MAX_TOUCHED = 400_000
HOURLY_SCHEMA = pa.schema(
    [
        ("content_id", pa.string()),
        ("opened_hour", pa.timestamp("s", tz="UTC")),
        ("closed_hour", pa.timestamp("s", tz="UTC")),
        ("watch_ms", pa.int64()),
    ]
)


def pieces_sql(rows: str) -> str:
    """(content_key, opened_ms, closed_ms, watch_ms) per piece, over ``rows`` with columns
    content_key, session_key, timestamp, event_type, id, duration_seconds."""
    # ``at``: the session's segment times in order; ``opens``: whether each (in (time, id) order) opens one.
    return f"""
SELECT content_key, piece.1 AS opened_ms, piece.2 AS closed_ms, piece.3 AS watch_ms
FROM (
    SELECT
        content_key, session_key,
        groupArrayIf(toUnixTimestamp64Milli(timestamp), event_type IN {_SEGMENT_TYPES}) AS times,
        arraySort(times) AS at,
        arraySort((opener, t, i) -> (t, i), groupArrayIf(event_type IN {_OPENERS}, event_type IN {_SEGMENT_TYPES}),
                  times, groupArrayIf(id, event_type IN {_SEGMENT_TYPES})) AS opens,
        if(has(opens, 1),
           arrayMap(i -> (at[i - 1], at[i], at[i] - at[i - 1]),
                    arrayFilter(i -> opens[i] = 0 AND opens[i - 1] = 1, range(2, length(at) + 1))),
           groupArrayIf((toUnixTimestamp64Milli(timestamp), toUnixTimestamp64Milli(timestamp),
                         toInt64(round(duration_seconds * 1000))), event_type = '{CONTENT_VIEW}')) AS pieces
    FROM {rows}
    GROUP BY content_key, session_key
)
ARRAY JOIN pieces AS piece"""


def pieces_of(rows: Iterable[tuple[Any, str, int, str, str, float]]) -> list[tuple[Any, int, int, int]]:
    """The same pieces as pieces_sql, in Python, for a few rows (one user's events): rows are
    (content_key, session_key, time ms, event_type, id, duration_seconds); returns
    (content_key, opened_ms, closed_ms, watch_ms). For a handful of rows, the SQL's planning
    costs more than the rows."""
    sessions: dict[tuple[Any, str], list[tuple[int, str, str, float]]] = {}
    for content_key, session_key, at, event_type, event_id, duration in rows:
        sessions.setdefault((content_key, session_key), []).append((at, event_id, event_type, duration))
    pieces: list[tuple[Any, int, int, int]] = []
    for (content_key, _), events in sessions.items():
        segment = sorted(
            (at, event_id, event_type in SEGMENT_OPENERS)
            for at, event_id, event_type, _ in events
            if event_type in _SEGMENT_SET
        )
        if any(opens for _, _, opens in segment):
            for (opened, _, opener), (closed, _, closer_opens) in pairwise(segment):
                if opener and not closer_opens:
                    pieces.append((content_key, opened, closed, closed - opened))
        else:
            # round() on a float is round-half-even, as ClickHouse's round() on Float64.
            pieces.extend(
                (content_key, at, at, round(duration * 1000))
                for at, _, event_type, duration in events
                if event_type == CONTENT_VIEW
            )
    return pieces


def event_rows(condition: str, stored: str = "1") -> str:
    """The playback rows of ``events`` matching ``condition`` (over content_key, session_key and the
    columns), with the insert that stored each; ``stored`` is a condition on the stored columns,
    checked first."""
    return f"""(
    SELECT content_key, session_key, timestamp, event_type, id, duration_seconds, stored_seq
    FROM (
        SELECT timestamp, event_type, id, stored_seq, content_id,
               {CONTENT_KEY} AS content_key, {SESSION_KEY} AS session_key,
               if(event_type = '{CONTENT_VIEW}', {DURATION_SECONDS}, 0) AS duration_seconds
        FROM events
        WHERE event_type IN {sql_list(PLAYBACK_EVENT_TYPES)} AND {stored}
    )
    WHERE {condition}
)"""


def _hourly(pieces: str, signed: str = "watch_ms") -> str:
    return f"""
SELECT content_key AS content_id,
       toDateTime(intDiv(opened_ms, {HOUR_MS}) * 3600, 'UTC') AS opened_hour,
       toDateTime(intDiv(closed_ms, {HOUR_MS}) * 3600, 'UTC') AS closed_hour,
       sum({signed}) AS watch_ms
FROM ({pieces})
GROUP BY content_id, opened_hour, closed_hour
HAVING watch_ms != 0
ORDER BY content_id, opened_hour, closed_hour"""


def backfill_sql() -> str:
    """The pieces of every stored event, for a new ``playback_hourly`` (migration 011)."""
    return (
        f"INSERT INTO {TABLE} (content_id, opened_hour, closed_hour, watch_ms) {_hourly(pieces_sql(event_rows('1')))}"
    )


def _touched() -> str:
    return f"""
        SELECT DISTINCT {CONTENT_KEY} AS content_key, {SESSION_KEY} AS session_key
        FROM events
        WHERE stored_seq BETWEEN {{f:UInt64}} AND {{l:UInt64}} AND event_type IN {sql_list(PLAYBACK_EVENT_TYPES)}"""


_OF_TOUCHED = (
    "(content_id = '' OR content_id IN (SELECT content_key FROM touched)) "
    "AND (content_key, session_key) IN (SELECT content_key, session_key FROM touched)"
)
# Implied by _OF_TOUCHED (a row with a session id has it as its session key), but on the stored
# column, where the session_id bloom filter skips the granules of other sessions; without it every
# event of a touched content is read, and a popular content has most of them.
_OF_TOUCHED_SESSIONS = "(session_id = '' OR session_id IN (SELECT session_key FROM touched))"


def delta_sql(settings: str = "") -> str:
    """What inserts {f}..{l} change: the touched sessions' pieces through {l} minus those before {f};
    ``settings`` is the INSERT's SETTINGS clause, if any."""
    after = pieces_sql(event_rows(f"stored_seq <= {{l:UInt64}} AND {_OF_TOUCHED}", _OF_TOUCHED_SESSIONS))
    before = pieces_sql(event_rows(f"stored_seq < {{f:UInt64}} AND {_OF_TOUCHED}", _OF_TOUCHED_SESSIONS))
    signed = f"SELECT *, 1 AS sign FROM ({after}) UNION ALL SELECT *, -1 AS sign FROM ({before})"
    return (
        f"INSERT INTO {TABLE} (content_id, opened_hour, closed_hour, watch_ms) {settings} "
        f"WITH touched AS ({_touched()}) {_hourly(signed, 'sign * watch_ms')}"
    )


# The columns delta_table reads, and the pair's hash that storage/recent_playback.py keys on.
_ROW_COLUMNS = (
    "content_key, session_key, toUnixTimestamp64Milli(timestamp) AS at, event_type, id, duration_seconds, "
    "stored_seq, cityHash64(content_key, session_key) AS session_hash"
)


def touched_rows_sql() -> str:
    """The rows delta_table needs: every playback event through insert {l} of the sessions that
    inserts {f}..{l} touch, with the insert that stored it."""
    return (
        f"WITH touched AS ({_touched()}) "
        f"SELECT {_ROW_COLUMNS} "
        f"FROM {event_rows(f'stored_seq <= {{l:UInt64}} AND {_OF_TOUCHED}', _OF_TOUCHED_SESSIONS)}"
    )


def new_rows_sql() -> str:
    """The playback rows of inserts {f}..{l} alone, as touched_rows_sql gives them."""
    return f"SELECT {_ROW_COLUMNS} FROM {event_rows('1', 'stored_seq BETWEEN {f:UInt64} AND {l:UInt64}')}"


def pairs_sql(stored: str) -> str:
    """The hash of every (content, session) pair with playback rows in the inserts ``stored`` picks
    (a condition on stored_seq), as ``session_hash``."""
    return f"SELECT DISTINCT cityHash64(content_key, session_key) AS session_hash FROM {event_rows('1', stored)}"


def delta_table(rows: pa.Table, first_seq: int) -> pa.Table:
    """delta_sql's rows, computed from touched_rows_sql's ``rows``: the same sums, in the same order,
    so a re-run of the step by either way is one identical block. The pieces are those of pieces_of,
    found with array operations (a loop over Python tuples costs far more per touched row)."""
    contents, content = _codes(rows.column("content_key"))
    sessions, session = _codes(rows.column("session_key"))
    # Sessions numbered so that one number is one (content, session) pair, as pieces_of groups them.
    group = content.astype(np.int64) * max(1, len(sessions)) + session
    event_type = rows.column("event_type")
    if pa.types.is_dictionary(event_type.type):
        event_type = event_type.cast(pa.string())
    kind = _Kinds(
        opens=pc.is_in(event_type, pa.array(SEGMENT_OPENERS)).to_numpy(zero_copy_only=False),
        segment=pc.is_in(event_type, pa.array(sorted(_SEGMENT_SET))).to_numpy(zero_copy_only=False),
        view=pc.equal(event_type, CONTENT_VIEW).to_numpy(zero_copy_only=False),
    )
    at = rows.column("at").to_numpy().astype(np.int64, copy=False)
    # Ids in byte order, as the SQL sorts them and as Python compares str (code points, for UTF-8 the same).
    id_rank = np.empty(rows.num_rows, dtype=np.int64)
    id_rank[pc.sort_indices(rows.column("id")).to_numpy()] = np.arange(rows.num_rows)
    duration = rows.column("duration_seconds").to_numpy().astype(np.float64, copy=False)
    earlier = rows.column("stored_seq").to_numpy() < first_seq
    after = np.ones(rows.num_rows, dtype=bool)
    parts = [
        _signed_pieces(mask, sign, group, content, kind, at, id_rank, duration)
        for mask, sign in ((after, 1), (earlier, -1))
    ]
    piece_content, opened, closed, watch = (np.concatenate(column) for column in zip(*parts, strict=True))
    # Content in byte order, then the hours: _hourly's ORDER BY.
    content_rank = np.empty(len(contents), dtype=np.int64)
    content_rank[pc.sort_indices(contents).to_numpy()] = np.arange(len(contents))
    # intDiv(ms, HOUR_MS) * 3600, as _hourly: numpy's // floors, and times are after 1970 anyway.
    opened_hour = opened // HOUR_MS * 3600
    closed_hour = closed // HOUR_MS * 3600
    order = np.lexsort((closed_hour, opened_hour, content_rank[piece_content]))
    keys = np.stack([content_rank[piece_content], opened_hour, closed_hour])[:, order]
    watch = watch[order]
    # One sum per key: runs of equal keys start where the sorted keys change.
    changes = (keys[:, 1:] != keys[:, :-1]).any(axis=0)
    starts = np.flatnonzero(np.concatenate(([True], changes))) if order.size else order
    sums = np.add.reduceat(watch, starts) if order.size else watch
    keep = starts[sums != 0]
    sums = sums[sums != 0]
    return pa.table(
        [
            contents.take(pa.array(piece_content[order][keep])),
            pa.array(opened_hour[order][keep], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            pa.array(closed_hour[order][keep], pa.int64()).cast(pa.timestamp("s", tz="UTC")),
            pa.array(sums, pa.int64()),
        ],
        schema=HOURLY_SCHEMA,
    )


@dataclass(frozen=True, slots=True)
class _Kinds:
    """Per row: a segment opener, any segment event, a content view."""

    opens: np.ndarray
    segment: np.ndarray
    view: np.ndarray


def _codes(column: pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """(the distinct strings, each row's index into them)."""
    encoded = pc.dictionary_encode(column.cast(pa.string()).combine_chunks())
    return encoded.dictionary, encoded.indices.to_numpy().astype(np.int64)


def _signed_pieces(
    mask: np.ndarray,
    sign: int,
    group: np.ndarray,
    content: np.ndarray,
    kind: _Kinds,
    at: np.ndarray,
    id_rank: np.ndarray,
    duration: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """pieces_of over the rows in ``mask``: (content index, opened ms, closed ms, sign * watch ms)."""
    segment = np.flatnonzero(mask & kind.segment)
    # The session's segment events in (time, id) order, as pieces_of sorts them.
    segment = segment[np.lexsort((kind.opens[segment], id_rank[segment], at[segment], group[segment]))]
    opens = kind.opens[segment]
    # A piece is an opener followed, in the same session, by a closer.
    pair = (group[segment][1:] == group[segment][:-1]) & opens[:-1] & ~opens[1:]
    opening, closing = segment[:-1][pair], segment[1:][pair]
    # Sessions with no opener fall back to their views' reported durations.
    with_opener = np.unique(group[mask & kind.opens])
    views = np.flatnonzero(mask & kind.view & ~np.isin(group, with_opener))
    return (
        np.concatenate((content[closing], content[views])),
        np.concatenate((at[opening], at[views])),
        np.concatenate((at[closing], at[views])),
        # np.rint rounds half to even, as Python's round() and ClickHouse's round() on Float64.
        sign * np.concatenate((at[closing] - at[opening], np.rint(duration[views] * 1000).astype(np.int64))),
    )
