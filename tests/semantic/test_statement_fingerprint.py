"""Statement fingerprints: values out, shape kept; statements differing only in values read as one."""

from __future__ import annotations

import pytest

from semantic.statement_fingerprint import (
    MAX_FINGERPRINT_CHARS,
    redis_fingerprint,
    sql_fingerprint,
    sql_operation,
)


@pytest.mark.parametrize(
    ("statement", "fingerprint"),
    [
        # ClickHouse bound parameters, numbers and a list of literals.
        (
            "SELECT count() FROM events WHERE content_id = {c:String} AND timestamp >= {lo:DateTime64(3, 'UTC')}\n"
            "  AND event_type IN ('content_view', 'content_play') LIMIT 10",
            "SELECT count() FROM events WHERE content_id = ? AND timestamp >= ? AND event_type IN (?) LIMIT ?",
        ),
        # PostgreSQL positional parameters.
        (
            "SELECT id, name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            "SELECT id, name FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
        ),
        # Literals of every kind: quoted with escapes, decimals, exponents, hex, negative (values in a
        # row are one value).
        (
            "SELECT quantileExactInclusive(0.95)(x), 1e-3, 0x1F, -7 FROM t WHERE s = 'it''s' OR s = 'a\\'b'",
            "SELECT quantileExactInclusive(?)(x), ?, -? FROM t WHERE s = ? OR s = ?",
        ),
        # Digits inside identifiers stay; tuple element access stays.
        (
            "SELECT cityHash64(e_user_id), toYYYYMM(day), pair.1 FROM t1 WHERE lbl0s < 3",
            "SELECT cityHash64(e_user_id), toYYYYMM(day), pair.1 FROM t1 WHERE lbl0s < ?",
        ),
        # Comments go (a quote inside one is no string), quoted identifiers stay, arrays collapse.
        (
            "/* it's a comment */ SELECT \"weird name\", `other` -- trailing 'note'\nFROM t WHERE a IN [1, 2, 3];",
            'SELECT "weird name", `other` FROM t WHERE a IN [?]',
        ),
        ("  select 1  ", "select ?"),
    ],
)
def test_values_are_removed_and_the_shape_kept(statement: str, fingerprint: str) -> None:
    assert sql_fingerprint(statement) == fingerprint


def test_statements_differing_only_in_values_share_a_fingerprint() -> None:
    a = sql_fingerprint("SELECT * FROM events WHERE id = 'e-1' AND user_id IN ('u1', 'u2') LIMIT 5")
    b = sql_fingerprint("SELECT *  FROM events\nWHERE id = 'e-999' AND user_id IN ('u7') LIMIT 500")
    assert a == b
    assert a != sql_fingerprint("SELECT * FROM events WHERE session_id = 'e-1'")


def test_no_value_survives() -> None:
    secret = "ak_9f8e7d6c5b4a"
    statement = f"UPDATE api_keys SET name = '{secret}', revoked_at = now() WHERE id = 'key_12345' AND n > 42"
    fingerprint = sql_fingerprint(statement)
    assert secret not in fingerprint and "key_12345" not in fingerprint and "42" not in fingerprint
    assert fingerprint == "UPDATE api_keys SET name = ?, revoked_at = now() WHERE id = ? AND n > ?"


def test_a_long_statement_is_cut_and_keeps_what_tells_it_apart() -> None:
    head = "SELECT " + ", ".join(f"column_{i}" for i in range(400))
    one, other = sql_fingerprint(head + " FROM a"), sql_fingerprint(head + " FROM b")
    assert len(one) <= MAX_FINGERPRINT_CHARS and len(other) <= MAX_FINGERPRINT_CHARS
    assert one.startswith("SELECT column_0, column_1") and one != other
    assert sql_fingerprint(head + " FROM a WHERE x = 1") == sql_fingerprint(head + " FROM a WHERE x = 2")


@pytest.mark.parametrize(
    ("statement", "operation"),
    [
        ("SELECT 1", "select"),
        ("  insert INTO t VALUES ($1)", "insert"),
        ("UPDATE t SET a = $1", "update"),
        ("DELETE FROM t WHERE id = $1", "delete"),
        ("-- leading\nWITH x AS (SELECT 1) SELECT * FROM x", "select"),
        ("WITH gone AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM gone)", "delete"),
        ("/* note */ SHOW TABLES", "show"),
        ("(SELECT 1) UNION ALL (SELECT 2)", "select"),
        ("", "unknown"),
    ],
)
def test_operation_is_the_verb(statement: str, operation: str) -> None:
    assert sql_operation(statement) == operation


@pytest.mark.parametrize(
    ("command", "key", "fingerprint"),
    [
        ("get", "auth:3fa9c2e1", "GET auth:?"),
        ("SET", "result:4:content.report:ab12:cd34:7.7.1", "SET result:?"),
        ("DEL", "plainkey", "DEL ?"),
        ("GET", ":leading", "GET ?"),
        ("PING", None, "PING"),
    ],
)
def test_redis_commands_keep_only_the_key_namespace(command: str, key: str | None, fingerprint: str) -> None:
    assert redis_fingerprint(command, key) == fingerprint
