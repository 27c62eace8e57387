"""storage/query_budget.py through storage/events.py against embedded chDB: each limit of a budget
is enforced by ClickHouse and refused with its own message, the client answers the next statement
exactly, and only analytics reads are budgeted."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from core.errors import Overloaded, QueryBudgetExceeded
from core.settings import Settings
from storage import clickhouse
from storage.events import ClickHouseEvents, EventFilter
from storage.query_budget import QueryBudget, refusal
from tests.support import stored_events

ROOMY = QueryBudget(max_execution_seconds=30, max_memory_bytes=1 << 30, max_rows_to_read=10**9)
EVENTS = 20_000
# The rows of ``big``: (n, n % 1000) for n below this.
BIG_ROWS = 300_000


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    """A migrated store holding EVENTS events and a table ``big`` of BIG_ROWS rows."""
    events = ClickHouseEvents.open(
        None, chdb_path=chdb_dir, database=f"budget_{secrets.token_hex(4)}", retention_days=3650
    )
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    events.insert(stored_events("e", EVENTS, start, step=timedelta(seconds=1)), "budget-test")
    events.client.command(
        "CREATE TABLE big ENGINE = MergeTree ORDER BY n"
        f" AS SELECT number AS n, number % 1000 AS k FROM numbers({BIG_ROWS})"
    )
    yield events
    events.close()


@pytest.fixture
def budgeted(store: ClickHouseEvents) -> Iterator[ClickHouseEvents]:
    """``store``'s client; each test sets its budget, the roomy one is back afterwards."""
    yield store
    store.budget = None


def _answers_next(store: ClickHouseEvents) -> None:
    """The same client answers the next statements exactly, as rows and as Arrow."""
    expected = [(n, n % 1000) for n in range(5)]
    assert store.query("SELECT n, k FROM big WHERE n < 5 ORDER BY n").rows == expected
    table = store.query_arrow("SELECT n, k FROM big WHERE n < 5 ORDER BY n")
    assert list(zip(table.column("n").to_pylist(), table.column("k").to_pylist(), strict=True)) == expected


def test_the_rows_read_limit_refuses_a_statement_over_it(budgeted: ClickHouseEvents) -> None:
    budgeted.budget = QueryBudget(max_execution_seconds=30, max_memory_bytes=1 << 30, max_rows_to_read=1000)
    for read in (budgeted.query, budgeted.query_arrow):
        with pytest.raises(QueryBudgetExceeded) as refused:
            read("SELECT count() FROM events WHERE event_type = {t:String}", {"t": "content_view"})
        error = refused.value
        assert (error.status, error.code) == (422, "query_budget_exceeded")
        assert error.details == {"limit": "rows_read", "max": 1000, "setting": "ANALYTICS_QUERY_MAX_ROWS_TO_READ"}
        assert "its limit of rows read of 1,000 (ANALYTICS_QUERY_MAX_ROWS_TO_READ)" in error.message
        assert "shorter date range" in error.message and "filter" in error.message
    # Under the limit, the same client answers.
    assert budgeted.query("SELECT count() FROM numbers(500)").rows == [(500,)]
    budgeted.budget = ROOMY
    _answers_next(budgeted)


def test_the_budget_governs_the_whole_statement(budgeted: ClickHouseEvents) -> None:
    """Subqueries, UNION branches and a trailing comment are all under the clause at the end.
    (Sums, not counts: ClickHouse counts a whole table from its metadata, reading no rows.)"""
    budgeted.budget = QueryBudget(max_execution_seconds=30, max_memory_bytes=1 << 30, max_rows_to_read=1000)
    for sql in (
        "SELECT 1 UNION ALL SELECT sum(k) FROM big",
        "SELECT count() FROM numbers(100) WHERE number IN (SELECT n FROM big)",
        "WITH c AS (SELECT sum(k) AS c FROM big) SELECT c FROM c -- a trailing comment",
        "SELECT sum(k) FROM big;",
    ):
        with pytest.raises(QueryBudgetExceeded):
            budgeted.query(sql)
    assert budgeted.query("SELECT 1 -- under budget").rows == [(1,)]


def test_the_memory_limit_refuses_a_big_aggregation(budgeted: ClickHouseEvents) -> None:
    budgeted.budget = QueryBudget(max_execution_seconds=30, max_memory_bytes=20 << 20, max_rows_to_read=10**9)
    sql = "SELECT k, uniqExact(n * 7919) AS u FROM big GROUP BY k ORDER BY k"
    started = time.monotonic()
    with pytest.raises(QueryBudgetExceeded) as refused:
        budgeted.query("SELECT uniqExact(number) FROM numbers(10000000)")
    assert refused.value.details == {
        "limit": "memory",
        "max": 20 << 20,
        "setting": "ANALYTICS_QUERY_MAX_MEMORY_BYTES",
    }
    assert "needed more memory than its memory limit of 20 MiB" in refused.value.message
    assert time.monotonic() - started < 10
    # A big GROUP BY within the limit answers, and is right.
    rows = budgeted.query(sql).rows
    assert rows[:3] == [(0, BIG_ROWS // 1000), (1, BIG_ROWS // 1000), (2, BIG_ROWS // 1000)] and len(rows) == 1000
    _answers_next(budgeted)


def test_the_time_limit_stops_a_slow_statement(budgeted: ClickHouseEvents) -> None:
    budgeted.budget = QueryBudget(max_execution_seconds=0.2, max_memory_bytes=1 << 30, max_rows_to_read=10**12)
    for read in (budgeted.query, budgeted.query_arrow):
        started = time.monotonic()
        with pytest.raises(QueryBudgetExceeded) as refused:
            read("SELECT count() FROM numbers(10000000000)")
        assert time.monotonic() - started < 5
        assert refused.value.details == {
            "limit": "execution_time",
            "max": 0.2,
            "setting": "ANALYTICS_QUERY_MAX_EXECUTION_SECONDS",
        }
        assert "ran longer than its time limit of 0.2 s" in refused.value.message
    budgeted.budget = ROOMY
    _answers_next(budgeted)


@pytest.mark.parametrize("read", ["query", "query_arrow"])
def test_output_of_a_statement_stopped_midway_never_reaches_the_next(budgeted: ClickHouseEvents, read: str) -> None:
    """chDB hands a failed statement's partial output to the next statement on its connection: a
    next statement with the same columns would answer with the stopped one's rows in front."""
    budgeted.budget = QueryBudget(max_execution_seconds=0.3, max_memory_bytes=1 << 30, max_rows_to_read=10**9)
    with pytest.raises(QueryBudgetExceeded):
        getattr(budgeted, read)(
            "SELECT number AS n, sleepEachRow(0.001) AS z FROM numbers(100000) SETTINGS max_block_size = 1"
        )
    # Same columns, same types: nothing but these three rows.
    sql = "SELECT number AS n, toUInt8(0) AS z FROM numbers(3)"
    if read == "query":
        assert budgeted.query(sql).rows == [(0, 0), (1, 0), (2, 0)]
    else:
        assert budgeted.query_arrow(sql).column("n").to_pylist() == [0, 1, 2]


def test_too_many_simultaneous_queries_is_overloaded(budgeted: ClickHouseEvents, chdb_dir: Path) -> None:
    budgeted.budget = ROOMY
    other = ClickHouseEvents(clickhouse.connect(None, chdb_path=chdb_dir, database="default"))
    running = threading.Thread(target=other.query, args=("SELECT sleep(1.5)",))
    running.start()
    try:
        time.sleep(0.3)
        with pytest.raises(Overloaded) as refused:
            budgeted.query("SELECT 1 SETTINGS max_concurrent_queries_for_user = 1")
    finally:
        running.join()
        other.close()
    assert (refused.value.status, refused.value.code) == (503, "overloaded")
    assert "retry shortly" in refused.value.message
    _answers_next(budgeted)


def test_other_limits_are_refused_naming_them_and_errors_that_are_no_limit_pass_through(
    budgeted: ClickHouseEvents,
) -> None:
    budgeted.budget = ROOMY
    with pytest.raises(QueryBudgetExceeded) as ast:
        budgeted.query("SELECT 1 + 2 + 3 + 4 + 5 + 6 SETTINGS max_ast_elements = 5")
    assert ast.value.details == {"limit": "too_big_ast"}
    # TOO_MANY_ROWS of another limit than rows read (rows to GROUP BY) is not the budget's.
    with pytest.raises(QueryBudgetExceeded) as group_by:
        budgeted.query("SELECT n FROM big GROUP BY n SETTINGS max_rows_to_group_by = 10")
    assert group_by.value.details == {"limit": "too_many_rows"}
    # Not a limit: the ClickHouse error as it was.
    with pytest.raises(DatabaseError) as unknown:
        budgeted.query("SELECT no_such_column FROM big")
    assert not isinstance(unknown.value, QueryBudgetExceeded)
    _answers_next(budgeted)


def test_without_a_budget_a_limit_set_by_the_server_is_named_without_a_value(store: ClickHouseEvents) -> None:
    assert store.budget is None
    with pytest.raises(QueryBudgetExceeded) as refused:
        store.query("SELECT sum(k) FROM big SETTINGS max_rows_to_read = 100")
    assert refused.value.details == {"limit": "rows_read"}
    assert refused.value.message.startswith("the query would read more rows than the server's limit of rows read")


def test_only_analytics_reads_are_budgeted(budgeted: ClickHouseEvents) -> None:
    """Inserts (with their rollup feed), id checks and the event API's reads ignore the budget."""
    budgeted.budget = QueryBudget(max_execution_seconds=30, max_memory_bytes=1 << 30, max_rows_to_read=1000)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    budgeted.insert(stored_events("late", 3000, start, step=timedelta(milliseconds=10)), "budget-late")
    assert budgeted.count(EventFilter()) == EVENTS + 3000
    assert budgeted.stored_ids(["late0", "late2999", "missing"]) == {"late0", "late2999"}
    with pytest.raises(QueryBudgetExceeded):
        budgeted.query("SELECT countIf(user_id != '') FROM events")


def test_the_clause_and_its_guards() -> None:
    budget = QueryBudget(max_execution_seconds=2.5, max_memory_bytes=1 << 30, max_rows_to_read=5000)
    assert budget.apply("SELECT 1 ; \n") == (
        "SELECT 1\nSETTINGS max_execution_time = 2.5, timeout_overflow_mode = 'throw', "
        "max_memory_usage = 1073741824, max_rows_to_read = 5000, read_overflow_mode = 'throw'"
    )
    # ClickHouse keeps the first value a statement gives: one of its own would win over the budget.
    with pytest.raises(ValueError, match="budget's settings"):
        budget.apply("SELECT 1 SETTINGS max_rows_to_read = 10")
    # 0 means no limit to ClickHouse.
    with pytest.raises(ValueError, match="positive"):
        QueryBudget(max_execution_seconds=0, max_memory_bytes=1, max_rows_to_read=1)
    defaults = QueryBudget.from_settings(Settings(environment="test"))
    assert defaults == QueryBudget(max_execution_seconds=10.0, max_memory_bytes=1 << 30, max_rows_to_read=2_000_000_000)


def test_memory_short_for_every_query_is_overloaded_not_the_querys_fault() -> None:
    """A server's total (or a user's) memory limit is not the statement's budget: retry, not narrow.
    These are the errors clickhouse-connect raises for a server; chDB has no total limit to trip."""
    total = DatabaseError(
        "Code: 241. DB::Exception: Memory limit (total) exceeded: would use 30.00 GiB, maximum: 28.00 GiB."
        " (MEMORY_LIMIT_EXCEEDED)",
        code=241,
    )
    mapped = refusal(total, ROOMY)
    assert isinstance(mapped, Overloaded) and mapped.details == {"reason": "memory"}
    own = DatabaseError(
        "Code: 241. DB::Exception: Query memory limit exceeded: would use 2.00 GiB (MEMORY_LIMIT_EXCEEDED)"
    )
    mapped = refusal(own, ROOMY)
    assert isinstance(mapped, QueryBudgetExceeded) and "1 GiB" in mapped.message
