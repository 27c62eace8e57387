"""Statement fingerprints: a database statement with every value taken out, so statements that differ only
in their values read as one, and no value (an id, a key hash, a user's text) leaves in telemetry.

A SQL fingerprint (ClickHouse or PostgreSQL) is the statement with comments removed, each literal
(quoted string, number) and each bound parameter (``{name:Type}``, ``$1``) written ``?``, a list of
them (``IN (?, ?, ?)``, ``[?, ?]``) written as one ``?``, and whitespace collapsed. Identifiers, keywords
and the statement's shape stay as written. A fingerprint longer than ``MAX_FINGERPRINT_CHARS`` is cut
there and ends with a hash of the whole, so two long statements that share their beginning still differ.

A Redis fingerprint is the command and the key's namespace (the part of the key before its first ``:``,
a name the service's code chose): ``GET auth:?``. A key without a namespace is all value: ``GET ?``.

The operation of a statement is its verb in lower case: ``select``, ``insert``, ``update`` ... for SQL
(a ``WITH`` query is the statement it leads to), the command for Redis (``get``, ``set``, ``del``).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

MAX_FINGERPRINT_CHARS = 1000

# One alternation, scanned once left to right, so a quote inside a comment or a comment marker inside a
# string is read as what it is inside.
_SQL_TOKENS = re.compile(
    r"""
    (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>'(?:[^'\\]|\\.|'')*')
    | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`\\]|\\.)*`)
    | (?P<param>\{\s*\w+\s*:[^{}]*\}|\$\d+|%\(\w+\)s|%s)
    | (?P<number>(?<![\w.])(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.]))
    """,
    re.DOTALL | re.VERBOSE,
)
_LIST_OF_VALUES = re.compile(r"\?(?:\s*,\s*\?)+")
_SPACE = re.compile(r"\s+")
_FIRST_WORD = re.compile(r"[A-Za-z]+")
_WITH_LEADS_TO = re.compile(r"\)\s*(INSERT|UPDATE|DELETE|SELECT)\b", re.IGNORECASE)


def _token(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "comment":
        return " "
    if kind == "quoted":
        return match.group(0)
    return "?"


def _bounded(text: str) -> str:
    if len(text) <= MAX_FINGERPRINT_CHARS:
        return text
    digest = hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
    return f"{text[: MAX_FINGERPRINT_CHARS - 16].rstrip()} …#{digest}"


@lru_cache(maxsize=2048)
def sql_fingerprint(statement: str) -> str:
    """``statement`` without its values (see the module docstring)."""
    text = _SQL_TOKENS.sub(_token, statement)
    text = _SPACE.sub(" ", text).strip().rstrip(";").strip()
    text = _LIST_OF_VALUES.sub("?", text)
    return _bounded(text)


@lru_cache(maxsize=2048)
def sql_operation(statement: str) -> str:
    """The statement's verb in lower case (``select`` for a ``WITH`` query that reads)."""
    text = _SQL_TOKENS.sub(_token, statement)
    match = _FIRST_WORD.search(text)
    if match is None:
        return "unknown"
    verb = match.group(0).lower()
    if verb == "with":
        leads_to = _WITH_LEADS_TO.search(text)
        return leads_to.group(1).lower() if leads_to else "select"
    return verb


def redis_fingerprint(command: str, key: str | None) -> str:
    """``GET auth:?``: the command and the key's namespace, never the rest of the key."""
    verb = command.upper()
    if key is None:
        return verb
    namespace, separator, _ = key.partition(":")
    return f"{verb} {namespace}:?" if separator and namespace else f"{verb} ?"
