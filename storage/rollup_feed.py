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
range makes to the touched sessions' pieces (storage/playback_rollup.py).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from storage import playback_rollup
from storage.clickhouse import identifier, settings_clause

FEED_TABLE = "events_rollup_feed"
CLAIMS_TABLE = "rollup_feed_claims"
# Views that stay on ``events`` and so run inside the acknowledged insert: the live-minute
# rollup, because counter shards rebuild from it tagged with the exact insert it includes.
SYNCHRONOUS_VIEWS = frozenset({"realtime_minutes_mv"})

# One INSERT ... SELECT feeds at most this many rows (and always at least one stored insert, which
# holds ≤ 200k), so a long backlog is worked off in steps that each leave a claim behind.
MAX_ROWS_PER_CLAIM = 1_000_000

_FEED_SETTINGS = {
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

_PLAYBACK_SETTINGS = {
    "max_insert_threads": 1,
    "min_insert_block_size_rows": 1 << 40,
    "min_insert_block_size_bytes": 1 << 40,
}


@dataclass(frozen=True, slots=True)
class Claim:
    first_seq: int
    last_seq: int
    token: str
    # Rows in the range, when known as the claim is made (not for one recovered after a restart).
    rows: int | None = None


class RollupFeed:
    """Tracks what has been fed; ``feed_through`` brings the rollups up to a stored insert."""

    def __init__(self, client: Client, columns: tuple[str, ...], *, fed_through: int = 0) -> None:
        self._client = client
        self._columns = ", ".join(columns)
        self.fed_through = fed_through
        self.fed_rows = 0
        # Steps of at most this many rows compute the watch-time change in Python (0: always in SQL).
        self.python_delta_max_rows = playback_rollup.PYTHON_DELTA_MAX_ROWS
        # A claim written but not known to be fed: re-run (same token) before anything newer.
        self._open: Claim | None = None

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
                end, rows = self._claim_end(first, stored_seq)
                claim = Claim(first, end, f"rollup-{uuid.uuid4().hex}", rows)
                self._mark(claim, done=False)
                self._open = claim
            fed += self._feed(self._open)
            # Marked done, so a restart does not even re-run it; the token covers a crash before this.
            self._mark(self._open, done=True)
            self.fed_through = max(self.fed_through, self._open.last_seq)
            self._open = None
        self.fed_rows += fed
        return fed

    def _claim_end(self, first: int, stored_seq: int) -> tuple[int, int]:
        """The last insert of a claim starting at ``first`` (as many as fit in MAX_ROWS_PER_CLAIM),
        and the rows through it."""
        sizes = self._client.query(
            "SELECT stored_seq, count() FROM events WHERE stored_seq BETWEEN {f:UInt64} AND {l:UInt64} "
            "GROUP BY stored_seq ORDER BY stored_seq",
            parameters={"f": first, "l": stored_seq},
        ).result_rows
        end, rows = first, 0
        for seq, count in sizes:
            if rows and rows + count > MAX_ROWS_PER_CLAIM:
                return end, rows
            end, rows = int(seq), rows + int(count)
        # Inserts without rows (every id was a duplicate) still belong to some claim.
        return (stored_seq if rows <= MAX_ROWS_PER_CLAIM else end), rows

    def _mark(self, claim: Claim, *, done: bool) -> None:
        self._client.command(
            f"INSERT INTO {CLAIMS_TABLE} (first_seq, last_seq, token, done) VALUES "
            "({f:UInt64}, {l:UInt64}, {t:String}, {d:UInt8})",
            parameters={"f": claim.first_seq, "l": claim.last_seq, "t": claim.token, "d": int(done)},
        )

    def _feed(self, claim: Claim) -> int:
        in_range = "FROM events WHERE stored_seq BETWEEN {f:UInt64} AND {l:UInt64}"
        bounds = {"f": claim.first_seq, "l": claim.last_seq}
        # In id order: a re-run must present the views the very same block, row for row, to be
        # recognized (their deduplication looks at the data, not only at the token).
        # The settings are written into the statement: see settings_clause for why.
        feed_settings = settings_clause({**_FEED_SETTINGS, "insert_deduplication_token": claim.token})
        self._client.command(
            f"INSERT INTO {FEED_TABLE} ({self._columns}) {feed_settings} SELECT {self._columns} {in_range} ORDER BY id",
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

    def _playback_in_python(self, claim: Claim, bounds: dict[str, int], settings: dict[str, object]) -> bool:
        """Feed the claim's watch-time change computed in Python, when that is the cheaper way;
        False when the caller must run the SQL instead."""
        if claim.rows is None or claim.rows > self.python_delta_max_rows:
            return False
        touched = self._client.query_arrow(playback_rollup.touched_rows_sql(), parameters=bounds)
        if touched.num_rows > playback_rollup.PYTHON_DELTA_MAX_TOUCHED:
            return False
        change = playback_rollup.delta_table(touched, claim.first_seq)
        if change.num_rows:
            self._client.insert_arrow(playback_rollup.TABLE, change, settings=settings)
        return True


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

