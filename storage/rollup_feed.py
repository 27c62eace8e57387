"""Feeding stored events into the rollups, after the ingest is acknowledged.

The rollup materialized views read from ``events_rollup_feed`` (a Null table), not from
``events``: running eight aggregations inside every acknowledged insert made each insert
5-10x slower (bench/bench_ingest.py, raw engine with and without the views). Each insert
into ``events`` carries a ``stored_seq``; the feed copies ranges of stored inserts into the
feed table with ``INSERT ... SELECT``, so the views see every stored row.

Exactly once, across crashes: before a range is fed, a claim (first, last, token) is written
to ``rollup_feed_claims``; the feed insert carries that token, and every view target keeps a
deduplication window. A restarted writer re-runs its latest claim with the same token: the
targets that already have it skip it, the others get it. Claims are fed in order, so every
range before the latest claim is complete.

Watch time is fed the same way, by a second insert per claim with its own token: the change the
range makes to the touched sessions' pieces (storage/playback_rollup.py). Their earlier rows come
from those the feed itself saw when it holds all of them (storage/recent_playback.py), else from
``events``.

The writer also hands each stored insert to the feed (``InsertMemory``), and a claim whose inserts
are all there, row counts matching ``events``, is fed from memory, sorted by id as the SELECT
sorts it: the same block without reading the rows back. A claim re-run after a restart, or one
whose inserts were dropped from memory, reads them back as before.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from clickhouse_connect.driver.client import Client

from storage import playback_rollup
from storage.clickhouse import identifier, settings_clause
from storage.recent_playback import RecentPlayback

FEED_TABLE = "events_rollup_feed"
CLAIMS_TABLE = "rollup_feed_claims"
# Views that stay on ``events`` and so run inside the acknowledged insert: the live-minute
# rollup, because counter shards rebuild from it tagged with the exact insert it includes.
SYNCHRONOUS_VIEWS = frozenset({"realtime_minutes_mv"})

# Stored inserts kept in memory for the feed, at most this many rows (~400 bytes each in Arrow):
# several seconds of a busy writer. Older ones are dropped and read back instead.
MAX_REMEMBERED_ROWS = 200_000

# One INSERT ... SELECT feeds at most this many rows (and always at least one stored insert, which
# holds ≤ 200k), so a long backlog is worked off in steps that each leave a claim behind.
MAX_ROWS_PER_CLAIM = 1_000_000

_FEED_SETTINGS: dict[str, int | str] = {
    # The claim's token reaches every view target, so a re-run claim is skipped where it landed.
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "parallel_view_processing": 1,
    # Deduplication is per block: a re-run must cut the claim's rows into the same blocks however
    # the parts holding them were merged since. One stream squashed into one block does.
    "max_threads": 1,
    "max_insert_threads": 1,
    "min_insert_block_size_rows": 2 * MAX_ROWS_PER_CLAIM,
    "min_insert_block_size_bytes": 1 << 34,
}

_PLAYBACK_SETTINGS: dict[str, int | str] = {
    "max_insert_threads": 1,
    "min_insert_block_size_rows": 1 << 40,
    "min_insert_block_size_bytes": 1 << 40,
}


@dataclass(frozen=True, slots=True)
class Claim:
    first_seq: int
    last_seq: int
    token: str
    # (stored_seq, rows in events) of every insert in the range that holds rows, when known as the
    # claim is made (not for one recovered after a restart).
    sizes: tuple[tuple[int, int], ...] | None = None

    @property
    def rows(self) -> int | None:
        """Rows in the range, when known."""
        return None if self.sizes is None else sum(n for _, n in self.sizes)


class InsertMemory:
    """Stored inserts not yet fed, by stored_seq, as the writer inserted them; thread-safe (the
    writer adds, the feed takes)."""

    def __init__(self, max_rows: int = MAX_REMEMBERED_ROWS) -> None:
        self._max_rows = max_rows
        self._tables: OrderedDict[int, pa.Table] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def add(self, seq: int, table: pa.Table) -> None:
        with self._lock:
            self._tables[seq] = table
            self._rows += table.num_rows
            while self._rows > self._max_rows and self._tables:
                _, dropped = self._tables.popitem(last=False)
                self._rows -= dropped.num_rows

    def take(self, claim: Claim) -> pa.Table | None:
        """The claim's rows, if memory holds exactly what ``events`` holds for each of its inserts."""
        if claim.sizes is None:
            return None
        sizes = dict(claim.sizes)
        with self._lock:
            held = {seq: t for seq, t in self._tables.items() if claim.first_seq <= seq <= claim.last_seq}
        # An insert ClickHouse deduplicated holds rows here and none in events; one dropped from
        # memory, the other way round: either way, read the claim back.
        if set(held) != set(sizes) or any(held[seq].num_rows != rows for seq, rows in sizes.items()):
            return None
        return pa.concat_tables([held[seq] for seq in sorted(held)]) if held else None

    def forget_through(self, seq: int) -> None:
        with self._lock:
            while self._tables and next(iter(self._tables)) <= seq:
                _, table = self._tables.popitem(last=False)
                self._rows -= table.num_rows

    @property
    def rows(self) -> int:
        return self._rows


class RollupFeed:
    """Tracks what has been fed; ``feed_through`` brings the rollups up to a stored insert."""

    def __init__(
        self, client: Client, columns: tuple[str, ...], *, fed_through: int = 0, memory: InsertMemory | None = None
    ) -> None:
        self._client = client
        # The event columns there are; those the feed table has are sent, read at the first step
        # (read_feed_columns): an instance that only reads never asks.
        self._event_columns = columns
        self._column_names: list[str] | None = None
        self.memory = memory if memory is not None else InsertMemory()
        self.fed_through = fed_through
        self.fed_rows = 0
        # Of those, the rows fed from memory instead of read back from events.
        self.fed_from_memory = 0
        # Steps of at most this many rows compute the watch-time change in Python (0: always in SQL).
        self.python_delta_max_rows = playback_rollup.PYTHON_DELTA_MAX_ROWS
        # The touched sessions' earlier rows, for those steps, without reading them back.
        self.recent = RecentPlayback()
        # Python steps whose touched sessions were all held, and those that read them back.
        self.history_held_steps = 0
        self.history_read_back_steps = 0
        # A claim written but not known to be fed: re-run (same token) before anything newer.
        self._open: Claim | None = None

    def read_feed_columns(self) -> list[str]:
        """Take the feed table's columns again (migrations change them): the rows are sent in
        those of ``columns`` the table has, the others are left out."""
        present = {
            row[0]
            for row in self._client.query(
                "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}",
                parameters={"t": FEED_TABLE},
            ).result_rows
        }
        self._column_names = [c for c in self._event_columns if c in present]
        return self._column_names

    def recover(self) -> int:
        """Finish the latest claim if a crash cut it short; returns the last fed seq."""
        latest = self._client.query(
            f"SELECT first_seq, last_seq, token, done FROM {CLAIMS_TABLE} ORDER BY last_seq DESC, done DESC LIMIT 1"
        ).result_rows
        if latest:
            first, last, token, done = latest[0]
            if done:
                self.fed_through = max(self.fed_through, int(last))
            else:
                # Maybe fed, maybe not, maybe in part: the same token makes the re-run safe.
                self._open = Claim(int(first), int(last), token)
                self.feed_through(int(last))
        return self.fed_through

    def feed_through(self, stored_seq: int) -> int:
        """Feed every stored insert up to ``stored_seq``; returns the rows fed."""
        fed = 0
        while True:
            if self._open is None:
                if self.fed_through >= stored_seq:
                    break
                first = self.fed_through + 1
                end, sizes = self._claim_end(first, stored_seq)
                claim = Claim(first, end, f"rollup-{uuid.uuid4().hex}", sizes)
                self._mark(claim, done=False)
                self._open = claim
            try:
                fed += self._feed(self._open)
                # Marked done, so a restart does not even re-run it; the token covers a crash before this.
                self._mark(self._open, done=True)
            except BaseException:
                # The step may have held rows and still be re-run: begin again from events.
                self.recent.reset()
                raise
            self.fed_through = max(self.fed_through, self._open.last_seq)
            self.memory.forget_through(self.fed_through)
            self._open = None
        self.fed_rows += fed
        return fed

    def _claim_end(self, first: int, stored_seq: int) -> tuple[int, tuple[tuple[int, int], ...]]:
        """The last insert of a claim starting at ``first`` (as many as fit in MAX_ROWS_PER_CLAIM),
        and (stored_seq, rows) of each insert through it that holds rows."""
        found = self._client.query(
            "SELECT stored_seq, count() FROM events WHERE stored_seq BETWEEN {f:UInt64} AND {l:UInt64} "
            "GROUP BY stored_seq ORDER BY stored_seq",
            parameters={"f": first, "l": stored_seq},
        ).result_rows
        end, rows = first, 0
        sizes: list[tuple[int, int]] = []
        for seq, count in found:
            if rows and rows + count > MAX_ROWS_PER_CLAIM:
                return end, tuple(sizes)
            end, rows = int(seq), rows + int(count)
            sizes.append((int(seq), int(count)))
        # Inserts without rows (every id was a duplicate) still belong to some claim.
        return (stored_seq if rows <= MAX_ROWS_PER_CLAIM else end), tuple(sizes)

    def _mark(self, claim: Claim, *, done: bool) -> None:
        self._client.command(
            f"INSERT INTO {CLAIMS_TABLE} (first_seq, last_seq, token, done) VALUES "
            "({f:UInt64}, {l:UInt64}, {t:String}, {d:UInt8})",
            parameters={"f": claim.first_seq, "l": claim.last_seq, "t": claim.token, "d": int(done)},
        )

    def _feed(self, claim: Claim) -> int:
        names = self._column_names if self._column_names is not None else self.read_feed_columns()
        columns = ", ".join(names)
        in_range = "FROM events WHERE stored_seq BETWEEN {f:UInt64} AND {l:UInt64}"
        bounds = {"f": claim.first_seq, "l": claim.last_seq}
        # In id order: a re-run must present the views the very same block, row for row, to be
        # recognized (their deduplication looks at the data, not only at the token).
        feed_settings = {**_FEED_SETTINGS, "insert_deduplication_token": claim.token}
        remembered = self.memory.take(claim)
        if remembered is not None:
            # The block the SELECT below would make: the same rows and columns, sorted by id (bytes).
            rows = remembered.select(names)
            self._client.insert_arrow(FEED_TABLE, rows.take(pc.sort_indices(rows.column("id"))), settings=feed_settings)
            self.fed_from_memory += rows.num_rows
        else:
            # The settings are written into the statement: see settings_clause for why.
            self._client.command(
                f"INSERT INTO {FEED_TABLE} ({columns}) {settings_clause(feed_settings)} "
                f"SELECT {columns} {in_range} ORDER BY id",
                parameters=bounds,
            )
        # Sorted and squashed into one block, so a re-run is recognized by its token, whichever way
        # computed it (a recovered claim does not know its rows, and goes to SQL).
        playback_settings = {**_PLAYBACK_SETTINGS, "insert_deduplication_token": f"{claim.token}:playback"}
        if not self._playback_in_python(claim, bounds, playback_settings):
            self._client.command(playback_rollup.delta_sql(settings_clause(playback_settings)), parameters=bounds)
        if claim.rows is not None:
            return claim.rows
        # chDB reports no written rows for INSERT ... SELECT; the minmax index makes this cheap.
        return int(self._client.query(f"SELECT count() {in_range}", parameters=bounds).result_rows[0][0])

    def _playback_in_python(self, claim: Claim, bounds: dict[str, int], settings: dict[str, int | str]) -> bool:
        """Feed the claim's watch-time change computed in Python, when that is the cheaper way;
        False when the caller must run the SQL instead."""
        if claim.rows is None or claim.rows > self.python_delta_max_rows:
            if self.recent.started:
                self._hold_or_forget(claim, bounds)
            return False
        touched = self._touched_rows(bounds)
        if touched.num_rows > playback_rollup.PYTHON_DELTA_MAX_TOUCHED:
            return False  # what is held stays exact: the SQL's change is the same
        change = playback_rollup.delta_table(touched, claim.first_seq)
        if change.num_rows:
            self._client.insert_arrow(playback_rollup.TABLE, change, settings=settings)
        return True

    def _hold_or_forget(self, claim: Claim, bounds: dict[str, int]) -> None:
        """The SQL feeds this claim: its rows join those held when every session it touches is held
        and it is small enough to hold, else its sessions are read back when next touched."""
        if claim.rows is not None and claim.rows <= self.recent.max_rows:
            new = self._client.query_arrow(playback_rollup.new_rows_sql(), parameters=bounds)
            if self.recent.history(new) is None:
                self.recent.forget(new)
            return
        pairs = playback_rollup.pairs_sql("stored_seq BETWEEN {f:UInt64} AND {l:UInt64}")
        self.recent.forget(self._client.query_arrow(pairs, parameters=bounds))

    def _touched_rows(self, bounds: dict[str, int]) -> pa.Table:
        """Every playback row through the claim of the sessions it touches: the held ones and the
        claim's own when every touched session is held, else read back from events."""
        recent = self.recent
        if not recent.started:
            stored = self._client.query_arrow(
                playback_rollup.pairs_sql("stored_seq < {f:UInt64}"), parameters={"f": bounds["f"]}
            )
            recent.start(stored.column("session_hash").to_numpy())
        new = self._client.query_arrow(playback_rollup.new_rows_sql(), parameters=bounds)
        touched = recent.history(new)
        if touched is not None:
            self.history_held_steps += 1
            return touched
        touched = self._client.query_arrow(playback_rollup.touched_rows_sql(), parameters=bounds)
        recent.replace(touched)
        self.history_read_back_steps += 1
        return touched


def rewire_views(client: Client) -> list[str]:
    """Point rollup views that still read ``events`` (made by an earlier schema) at the feed.

    Returns the views re-created. A no-op on a database made by the current migrations.
    """
    (sources,) = client.query(
        "SELECT dependencies_table FROM system.tables WHERE database = currentDatabase() AND name = 'events'"
    ).result_rows[0]
    database = client.query("SELECT currentDatabase()").result_rows[0][0]
    rewired = []
    for view in sources:
        if view in SYNCHRONOUS_VIEWS:
            continue
        (ddl,) = client.query(
            "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() AND name = {n:String}",
            parameters={"n": view},
        ).result_rows[0]
        new_ddl = re.sub(rf"\bFROM {re.escape(database)}\.events\b", f"FROM {database}.{FEED_TABLE}", ddl)
        if new_ddl == ddl:
            raise RuntimeError(f"cannot re-point view {view} at {FEED_TABLE}: unexpected definition")
        client.command(f"DROP VIEW {identifier(view)}")
        client.command(new_ddl)
        rewired.append(view)
    return rewired
