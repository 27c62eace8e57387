"""The key expressions are the ones the rollup migrations spell, and the migrations name only known types."""

import re
from importlib import resources

import pytest

from core.taxonomy import EventType
from storage import event_keys
from storage.event_keys import sql_list


def _migrations() -> dict[str, str]:
    folder = resources.files("storage") / "migrations" / "clickhouse"
    return {item.name: re.sub(r"\s+", " ", item.read_text()) for item in folder.iterdir() if item.name.endswith(".sql")}


def event_types_in(sql: str) -> set[str]:
    """The event types a SQL text compares event_type with."""
    found = set(re.findall(r"event_type\s*!?=\s*'(\w+)'", sql))
    for listed in re.findall(r"event_type\s+(?:NOT\s+)?IN\s*\(([^)]*)\)", sql):
        found.update(re.findall(r"'(\w+)'", listed))
    return found


@pytest.mark.parametrize("name", ["CONTENT_KEY", "VIEWER_KEY", "SESSION_KEY", "DURATION_SECONDS", "QUERY_KEY"])
def test_every_key_is_spelled_as_in_a_migration(name):
    expression = re.sub(r"\s+", " ", getattr(event_keys, name))
    assert [file for file, sql in _migrations().items() if expression in sql]


def test_migrations_name_only_taxonomy_types():
    named = set().union(*(event_types_in(sql) for sql in _migrations().values()))
    assert named
    assert named <= {t.value for t in EventType}


def test_sql_list():
    assert sql_list(("content_view", "page_view")) == "('content_view', 'page_view')"
    assert sql_list(iter(["a"])) == "('a')"
