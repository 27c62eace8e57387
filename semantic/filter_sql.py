"""A filter's operator as a ClickHouse condition, and whether the empty text passes it.

One rule for the compiler's filters (semantic/compiler.py: analyticsQuery, the rollup reads) and the
raw-event dimensions' (semantic/event_dimensions.py: funnels, retention, paths, stickiness), so a
filter means the same wherever it is asked. Values are always bound, never written into the SQL.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any, Literal

FilterOp = Literal["in", "not_in", "eq", "neq", "contains", "gt", "gte", "lt", "lte"]
# ``bind(value)`` stores the value as a query parameter and returns its name.
Bind = Callable[[Any], str]

COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_COMPARE_PY: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
SINGLE_VALUE_OPS = frozenset({"eq", "neq", "contains", *COMPARE})


def condition(expression: str, op: FilterOp, values: Sequence[Any], value_type: str, bind: Bind) -> str:
    """``expression <op> values`` over a column of ``value_type`` (String or Int64). Values come typed
    for the column (numbers for comparisons); a comparison on text compares its number ('' is 0)."""
    if op in ("in", "not_in"):
        return f"{expression} {'NOT IN' if op == 'not_in' else 'IN'} {{{bind(list(values))}:Array({value_type})}}"
    value = values[0]
    if op in ("eq", "neq"):
        return f"{expression} {'!=' if op == 'neq' else '='} {{{bind(value)}:{value_type}}}"
    if op == "contains":
        return f"positionCaseInsensitiveUTF8(toString({expression}), {{{bind(str(value))}:String}}) > 0"
    if value_type == "Int64":
        return f"{expression} {COMPARE[op]} {{{bind(value)}:Int64}}"
    return f"toFloat64OrZero(toString({expression})) {COMPARE[op]} {{{bind(float(value))}:Float64}}"


def passes_empty(op: FilterOp, values: Sequence[Any]) -> bool:
    """Whether the text '' satisfies the filter, as ClickHouse evaluates ``condition`` on it."""
    texts = [str(v) for v in values]
    if op == "in":
        return "" in texts
    if op == "not_in":
        return "" not in texts
    if op in ("eq", "contains"):
        return texts[0] == ""
    if op == "neq":
        return texts[0] != ""
    # '' is not a number: it compares as 0.
    return _COMPARE_PY[op](0.0, float(values[0]))


def metadata_condition(content: str, field: str, op: FilterOp, values: Sequence[Any], bind: Bind) -> str:
    """A filter on a content metadata field as a subquery on the content key ``content``, so no read
    needs the join. Content without metadata (and events without content) have '' for the field, as
    the grouped dimension shows them: they pass exactly when '' passes."""
    inner = condition(field, op, values, "String", bind)
    if passes_empty(op, values):
        return f"{content} NOT IN (SELECT content_id FROM content_metadata WHERE NOT ({inner}))"
    return f"{content} IN (SELECT content_id FROM content_metadata WHERE {inner})"
