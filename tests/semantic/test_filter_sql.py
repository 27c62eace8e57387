"""One rule for filters wherever they are asked: the compiler's (analyticsQuery, rollup reads) and
the raw-event dimensions' (funnels, retention, paths, stickiness) become the same condition, and
``passes_empty`` agrees with what ClickHouse itself decides for the empty text."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from semantic.compiler import Filter, MetricQuery, compile_query
from semantic.event_dimensions import DimensionFilter, filter_sql
from semantic.filter_sql import FilterOp, condition, metadata_condition, passes_empty
from semantic.periods import Period
from storage.event_keys import CONTENT_KEY
from storage.events import ClickHouseEvents
from tests.semantic.conftest import open_store

PERIOD = Period(date(2025, 3, 1), date(2025, 3, 31), "UTC", "day")
OPS_AND_VALUES: list[tuple[FilterOp, list[Any]]] = [
    ("in", ["", "a"]),
    ("in", ["a"]),
    ("not_in", ["a"]),
    ("not_in", [""]),
    ("eq", [""]),
    ("eq", ["a"]),
    ("neq", ["a"]),
    ("neq", [""]),
    ("contains", ["a"]),
    ("contains", [""]),
    ("gt", [-1.0]),
    ("gt", [0.0]),
    ("gte", [0.0]),
    ("lt", [0.0]),
    ("lt", [1.0]),
    ("lte", [0.0]),
    ("lte", [-0.5]),
]


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[ClickHouseEvents]:
    events = open_store(chdb_dir, f"filters_{secrets.token_hex(4)}")
    yield events
    events.close()


@pytest.mark.parametrize(("op", "values"), OPS_AND_VALUES)
def test_passes_empty_is_what_clickhouse_decides_for_the_empty_text(
    store: ClickHouseEvents, op: FilterOp, values: list[Any]
) -> None:
    params: dict[str, Any] = {}

    def bind(value: Any) -> str:
        params[f"p{len(params)}"] = value
        return f"p{len(params) - 1}"

    sql = f"SELECT ({condition('x', op, values, 'String', bind)}) AS passes FROM (SELECT '' AS x)"
    (row,) = store.query(sql, params).rows
    assert bool(row[0]) is passes_empty(op, values)


def _binder(params: dict[str, Any]) -> Any:
    def bind(value: Any) -> str:
        name = f"p{len(params)}"
        params[name] = value
        return name

    return bind


@pytest.mark.parametrize(("op", "values"), OPS_AND_VALUES)
def test_a_metadata_filter_is_the_same_condition_in_the_query_layer_and_the_analyses(
    op: FilterOp, values: list[Any]
) -> None:
    from_compiler: dict[str, Any] = {}
    from_analyses: dict[str, Any] = {}
    compiled = compile_query(
        MetricQuery("events", ("events",), PERIOD, (), (Filter("category", tuple(values), op=op),)),
    )
    analyses = filter_sql(DimensionFilter(dimension="category", op=op, values=values), _binder(from_analyses))
    expected = metadata_condition(CONTENT_KEY, "category", op, values, _binder(from_compiler))
    assert analyses == expected
    assert _shape(expected) in _shape(compiled.sql)
    assert list(from_analyses.values()) == list(from_compiler.values())
    # Content without metadata ('' for the field) is kept exactly when '' passes the filter.
    assert (f"{CONTENT_KEY} NOT IN (SELECT" in analyses) is passes_empty(op, values)


def _shape(sql: str) -> str:
    return re.sub(r"\{p\d+:", "{?:", sql)


def test_a_comparison_on_metadata_keeps_content_without_metadata_when_zero_passes() -> None:
    keeps = filter_sql(DimensionFilter(dimension="category", op="lt", value=5), _binder({}))
    drops = filter_sql(DimensionFilter(dimension="category", op="gt", value=5), _binder({}))
    assert keeps.startswith(f"{CONTENT_KEY} NOT IN (SELECT content_id FROM content_metadata WHERE NOT (")
    assert drops.startswith(f"{CONTENT_KEY} IN (SELECT content_id FROM content_metadata WHERE ")
