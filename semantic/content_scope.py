"""The content scope of the principal a request is answered for, and how answers apply it.

Set once per request by the transport (serve_app/deps.py Allow for REST, graphql_schema/permissions.py
for GraphQL fields and subscriptions) after the role check; read by the analytics layer, which filters
every content-bearing answer to it. The default is all content: code that runs outside a request (jobs,
the service's own tasks) sees everything.

How each kind of answer applies a scope (docs/security.md, "Content scopes"):

- The query compiler (semantic/compiler.py) adds ``scope_condition`` to every statement it compiles over
  a family that names content (content, breakdown, events; raw events or rollups); a family that does
  not (users, search, system) refuses with ``ScopeNotApplicable``. analyticsQuery, content analytics,
  recommendations and the saved queries of those kinds are therefore filtered in one place.
- The analyses (funnels, retention, paths, stickiness) count only the events that name in-scope content.
- A read of one content (its analytics, audience, insights, journey, metadata, live counters) outside
  the scope is 404, with the message of content that does not exist.
- Answers that cannot be restricted to content (user, search-query, system, import and database
  analytics, global live totals) refuse a scoped principal with ``ScopeNotApplicable`` (403): the result
  cache (semantic/answers.py) answers only the kinds in ``SCOPED_ANSWERS`` for a scoped principal, so a
  kind added later is refused until it applies the scope.

A content is in scope when its id is one of the scope's ids, or when its category (from the content
metadata, the ``content_metadata`` view) is one of the scope's categories. Content without metadata has
no category: it is in scope only by id. Every value is a bound parameter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson

from core.access import ALL_CONTENT, ContentScope
from core.errors import Forbidden, NotFound
from semantic.filter_sql import Bind
from storage.events import EventStore

CURRENT_SCOPE: ContextVar[ContentScope] = ContextVar("content_scope", default=ALL_CONTENT)

# The kinds of cached answers (semantic/answers.py) that apply a content scope; every other kind refuses a
# scoped principal. Search overview, top and zero-result queries are about queries, not content: refused.
SCOPED_ANSWERS: frozenset[str] = frozenset(
    {
        "content.list",
        "content.top_performing",
        "content.comparison",
        "content.report",
        "content.insights",
        "content.audience",
        "content.journey",
        "search.recommendations",
        "analytics_query",
        "funnel",
        "retention",
        "paths",
        "stickiness",
        # A dashboard's data is its widgets' answers, each asked (and scoped, or refused) by its own kind.
        "dashboard.data",
    }
)


class ScopeNotApplicable(Forbidden):
    """The answer asked for is not about content, so the principal's content scope cannot narrow it."""

    def __init__(self, what: str, scope: ContentScope) -> None:
        super().__init__(
            f"the principal's content scope ({describe(scope)}) cannot be applied to {what}; "
            "only answers about content are filtered to a scope, so this one is refused",
            details={"scope": scope.to_dict()},
        )


def current_scope() -> ContentScope:
    return CURRENT_SCOPE.get()


@contextmanager
def using_scope(scope: ContentScope) -> Iterator[None]:
    """Answer what runs inside (in this task and the tasks it starts) for ``scope``."""
    token = CURRENT_SCOPE.set(scope)
    try:
        yield
    finally:
        CURRENT_SCOPE.reset(token)


def describe(scope: ContentScope) -> str:
    if scope.unrestricted:
        return "all content"
    parts = []
    if scope.categories:
        parts.append("categories " + ", ".join(repr(c) for c in sorted(scope.categories)))
    if scope.content_ids:
        parts.append("content ids " + ", ".join(repr(c) for c in sorted(scope.content_ids)))
    return " or ".join(parts)


def scope_digest(scope: ContentScope) -> str:
    """A stable digest of the scope (the same categories and ids, in any order, give the same one)."""
    data = orjson.dumps(scope.to_dict(), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()[:32]


def scope_from_dict(data: Mapping[str, Iterable[str]] | None) -> ContentScope:
    """A scope sent as ``ContentScope.to_dict()`` (across Ray); None is all content."""
    if not data:
        return ALL_CONTENT
    return ContentScope.of(data.get("categories", ()), data.get("content_ids", ()))


def require_applicable(what: str, scope: ContentScope | None = None) -> None:
    """ScopeNotApplicable when the scope (by default the request's) restricts anything: for answers that
    cannot be narrowed to content."""
    scope = current_scope() if scope is None else scope
    if not scope.unrestricted:
        raise ScopeNotApplicable(what, scope)


def check_answer_kind(kind: str, scope: ContentScope) -> None:
    """ScopeNotApplicable for a scoped principal asking a kind of answer that does not apply scopes."""
    if not scope.unrestricted and kind not in SCOPED_ANSWERS:
        raise ScopeNotApplicable(f"{kind} answers", scope)


def unknown_content(content_id: str) -> NotFound:
    """The error of a content nobody ever recorded, which a content outside the scope gets too."""
    return NotFound(
        f"content {content_id!r} is unknown: no events and no metadata were ever recorded for it",
        details={"field": "content_id", "content_id": content_id},
    )


# --- SQL -----------------------------------------------------------------------------------------------


def _named(values: frozenset[str]) -> list[str]:
    # The empty text names no content (events without content have ''): it never widens a scope.
    return sorted(v for v in values if v)


def scope_condition(content: str, bind: Bind, scope: ContentScope) -> str:
    """A condition on ``content`` (an expression naming a row's content) that keeps in-scope content only.

    For an unrestricted scope the caller adds nothing; here it is ``1``."""
    if scope.unrestricted:
        return "1"
    parts = []
    ids, categories = _named(scope.content_ids), _named(scope.categories)
    if ids:
        parts.append(f"{content} IN {{{bind(ids)}:Array(String)}}")
    if categories:
        parts.append(
            f"{content} IN (SELECT content_id FROM content_metadata "
            f"WHERE category IN {{{bind(categories)}:Array(String)}})"
        )
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def metadata_scope_condition(bind: Bind, scope: ContentScope) -> str:
    """``scope_condition`` over rows of ``content_metadata`` (their own content_id and category)."""
    if scope.unrestricted:
        return "1"
    parts = []
    ids, categories = _named(scope.content_ids), _named(scope.categories)
    if ids:
        parts.append(f"content_id IN {{{bind(ids)}:Array(String)}}")
    if categories:
        parts.append(f"category IN {{{bind(categories)}:Array(String)}}")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def binder(params: dict[str, Any], prefix: str) -> Bind:
    """A ``bind`` that stores each value in ``params`` as ``<prefix><n>``."""

    def bind(value: Any) -> str:
        name = f"{prefix}{len(params)}"
        params[name] = value
        return name

    return bind


async def admitted(store: EventStore, content_ids: Iterable[str], scope: ContentScope | None = None) -> set[str]:
    """The ids among ``content_ids`` inside the scope (by default the request's)."""
    scope = current_scope() if scope is None else scope
    wanted = {c for c in content_ids if c}
    if scope.unrestricted:
        return wanted
    inside = wanted & scope.content_ids
    rest = sorted(wanted - inside)
    categories = _named(scope.categories)
    if rest and categories:
        result = await store.query(
            "SELECT content_id FROM content_metadata "
            "WHERE content_id IN {scope_ids:Array(String)} AND category IN {scope_categories:Array(String)}",
            {"scope_ids": rest, "scope_categories": categories},
        )
        inside |= {str(row[0]) for row in result.rows}
    return inside


async def require_in_scope(store: EventStore, content_ids: Iterable[str], scope: ContentScope | None = None) -> None:
    """404 (``unknown_content``) for the first id outside the scope, as for a content never recorded."""
    scope = current_scope() if scope is None else scope
    if scope.unrestricted:
        return
    ids = list(dict.fromkeys(content_ids))
    inside = await admitted(store, ids, scope)
    for content_id in ids:
        if content_id not in inside:
            raise unknown_content(content_id)
