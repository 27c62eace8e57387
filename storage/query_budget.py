"""Query budgets: the limits ClickHouse enforces on every analytics statement, and what its
refusals become.

A budget is three limits (time, memory, rows read), written into the statement as a trailing
``SETTINGS`` clause, so chDB and a server enforce them alike and at no extra cost: clickhouse-connect's
``settings=`` argument costs extra statements per query on chDB (storage/clickhouse.py
``settings_clause``). The overflow modes are set to ``throw`` too, so a server profile set to
``break`` cannot turn an over-budget statement into a silently partial answer.

A statement over its budget is refused by ClickHouse with an error code; ``refusal`` maps it to
QueryBudgetExceeded (422, naming the limit, its value and what to narrow) or, when the server as a
whole is at capacity rather than the statement being too big, to Overloaded (503, retry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.errors import AnalyticsError, Overloaded, QueryBudgetExceeded
from core.settings import Settings

# ClickHouse error codes (system.errors) a budget trips.
TOO_MANY_ROWS = 158
TIMEOUT_EXCEEDED = 159
TOO_SLOW = 160
TOO_MANY_SIMULTANEOUS_QUERIES = 202
MEMORY_LIMIT_EXCEEDED = 241
TOO_MANY_BYTES = 307
TOO_MANY_ROWS_OR_BYTES = 396
# The other limits a statement can be over: its shape, not its data, is too big.
_OTHER_LIMITS = {
    161: "TOO_MANY_COLUMNS",
    162: "TOO_DEEP_SUBQUERIES",
    165: "TOO_MANY_TEMPORARY_COLUMNS",
    166: "TOO_MANY_TEMPORARY_NON_CONST_COLUMNS",
    167: "TOO_DEEP_AST",
    168: "TOO_BIG_AST",
    191: "SET_SIZE_LIMIT_EXCEEDED",
    201: "QUOTA_EXCEEDED",
    290: "LIMIT_EXCEEDED",
    306: "TOO_DEEP_RECURSION",
    776: "RESOURCE_LIMIT_EXCEEDED",
}
# The process or server is short of memory for all queries, not this one over its own limit.
_SERVER_MEMORY = {173: "CANNOT_ALLOCATE_MEMORY", 777: "MEMORY_RESERVATION_KILLED", 778: "MEMORY_RESERVATION_FAILED"}
# A MEMORY_LIMIT_EXCEEDED of the server's or a user's total, not of the query: "Memory limit (total)
# exceeded", "(for user)".
_SHARED_MEMORY_LIMIT = re.compile(r"\((total|for user)\)|(total|user) memory limit", re.IGNORECASE)
# Which of the budget's limits each code means, and how the refusal says it. The codes of rows are
# shared with other limits (rows to GROUP BY, result rows, bytes read): the text names the setting.
_BUDGET_LIMITS = {TIMEOUT_EXCEEDED: "execution_time", TOO_SLOW: "execution_time", MEMORY_LIMIT_EXCEEDED: "memory"}
_ROWS_CODES = {
    TOO_MANY_ROWS: "TOO_MANY_ROWS",
    TOO_MANY_BYTES: "TOO_MANY_BYTES",
    TOO_MANY_ROWS_OR_BYTES: "TOO_MANY_ROWS_OR_BYTES",
}
_LIMIT_TEXT = {
    "execution_time": ("the query ran longer than", "time limit", "ANALYTICS_QUERY_MAX_EXECUTION_SECONDS"),
    "memory": ("the query needed more memory than", "memory limit", "ANALYTICS_QUERY_MAX_MEMORY_BYTES"),
    "rows_read": ("the query would read more rows than", "limit of rows read", "ANALYTICS_QUERY_MAX_ROWS_TO_READ"),
}
# The rows-read limit says so: "(controlled by 'max_rows_to_read' setting)", or reading a MergeTree
# table, "Limit for rows or bytes to read exceeded, max rows: ...".
_ROWS_READ_LIMIT = re.compile(r"max_rows_to_read|to read exceeded, max rows")
_CODE_IN_TEXT = re.compile(r"\bCode:\s*(\d+)")

_NARROW = "ask for a shorter date range, fewer dimensions or add a filter"

# The settings a budget writes: a statement that sets one itself would race the budget for it
# (ClickHouse keeps the first value given), so it is refused as a programming error.
_BUDGET_SETTINGS = (
    "max_execution_time",
    "timeout_overflow_mode",
    "max_memory_usage",
    "max_rows_to_read",
    "read_overflow_mode",
)
_SETS_A_BUDGET_SETTING = re.compile(r"\b(" + "|".join(_BUDGET_SETTINGS) + r")\s*=", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class QueryBudget:
    max_execution_seconds: float
    max_memory_bytes: int
    max_rows_to_read: int
    # The setting the time limit comes from, named when a statement runs over it.
    time_setting: str = "ANALYTICS_QUERY_MAX_EXECUTION_SECONDS"

    def __post_init__(self) -> None:
        # 0 means "no limit" to ClickHouse: never write it by accident.
        if not (self.max_execution_seconds > 0 and self.max_memory_bytes > 0 and self.max_rows_to_read > 0):
            raise ValueError(f"every query budget limit must be positive: {self}")

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryBudget:
        return cls(
            max_execution_seconds=settings.query_max_execution_seconds,
            max_memory_bytes=settings.query_max_memory_bytes,
            max_rows_to_read=settings.query_max_rows_to_read,
        )

    @classmethod
    def for_batch(cls, settings: Settings) -> QueryBudget:
        """The budget of the statements of report runs and exports: nobody waits on them in a request,
        and on a busy cluster a statement may wait long for a core, so only their time limit is longer."""
        return cls(
            max_execution_seconds=settings.batch_query_max_execution_seconds,
            max_memory_bytes=settings.query_max_memory_bytes,
            max_rows_to_read=settings.query_max_rows_to_read,
            time_setting="ANALYTICS_BATCH_QUERY_MAX_EXECUTION_SECONDS",
        )

    def clause(self) -> str:
        """``SETTINGS ...`` for the end of a read statement."""
        # ClickHouse measures time in milliseconds; never round a tiny limit down to 0 (no limit).
        seconds = max(round(self.max_execution_seconds, 3), 0.001)
        return (
            f"SETTINGS max_execution_time = {seconds!r}, timeout_overflow_mode = 'throw', "
            f"max_memory_usage = {int(self.max_memory_bytes)}, "
            f"max_rows_to_read = {int(self.max_rows_to_read)}, read_overflow_mode = 'throw'"
        )

    def apply(self, sql: str) -> str:
        """``sql`` (one SELECT, possibly with WITH, UNION and subqueries) with the budget's clause at
        its end, where it governs the whole statement.

        On its own line, so a trailing ``--`` comment cannot swallow it.
        """
        if _SETS_A_BUDGET_SETTING.search(sql):
            raise ValueError("a statement run under a query budget may not set the budget's settings itself")
        return f"{sql.rstrip().rstrip(';').rstrip()}\n{self.clause()}"

    def refusal(self, exc: BaseException) -> AnalyticsError | None:
        return refusal(exc, self)


def clickhouse_error_code(exc: BaseException) -> int | None:
    """The ClickHouse error code of ``exc``: clickhouse-connect's ``code`` (chDB and server alike),
    else the ``Code: N.`` ClickHouse writes at the start of its message."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    match = _CODE_IN_TEXT.search(str(exc))
    return int(match.group(1)) if match else None


def refusal(exc: BaseException, budget: QueryBudget | None) -> AnalyticsError | None:
    """What a ClickHouse error means to the caller when it is a limit, or None when it is not one.

    ``budget`` gives the values to name; without one (a limit set on the server), the message names
    the limit alone.
    """
    code = clickhouse_error_code(exc)
    if code is None:
        return None
    if code == TOO_MANY_SIMULTANEOUS_QUERIES:
        return Overloaded(
            "ClickHouse is running as many queries as it allows; retry shortly",
            details={"reason": "too_many_simultaneous_queries"},
        )
    if code in _SERVER_MEMORY or (code == MEMORY_LIMIT_EXCEEDED and _SHARED_MEMORY_LIMIT.search(str(exc))):
        return Overloaded(
            "ClickHouse is short of memory for queries right now; retry shortly", details={"reason": "memory"}
        )
    if code in _BUDGET_LIMITS:
        return _exceeded(_BUDGET_LIMITS[code], budget)
    if code in _ROWS_CODES and _ROWS_READ_LIMIT.search(str(exc)):
        return _exceeded("rows_read", budget)
    name = _OTHER_LIMITS.get(code) or _ROWS_CODES.get(code)
    if name is not None:
        return QueryBudgetExceeded(
            f"the query is over a ClickHouse limit ({name}); {_NARROW}", details={"limit": name.lower()}
        )
    return None


def _exceeded(limit: str, budget: QueryBudget | None) -> QueryBudgetExceeded:
    """The refusal for one of the budget's limits, named with its value and setting when known."""
    what, kind, setting = _LIMIT_TEXT[limit]
    if budget is None:
        return QueryBudgetExceeded(f"{what} the server's {kind}; {_NARROW}", details={"limit": limit})
    value: float | int
    if limit == "execution_time":
        value = budget.max_execution_seconds
        value_text = f"{value:g} s"
        setting = budget.time_setting
    elif limit == "memory":
        value = budget.max_memory_bytes
        value_text = _bytes_text(value)
    else:
        value = budget.max_rows_to_read
        value_text = f"{value:,}"
    return QueryBudgetExceeded(
        f"{what} its {kind} of {value_text} ({setting}); {_NARROW}",
        details={"limit": limit, "max": value, "setting": setting},
    )


def _bytes_text(value: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20)):
        if value >= size:
            amount = value / size
            return f"{amount:g} {unit}" if amount == int(amount) else f"{amount:.1f} {unit}"
    return f"{value:,} bytes"
