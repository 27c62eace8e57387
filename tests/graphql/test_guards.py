"""The guards around the API: GraphQL cost limits that fragments cannot hide, and unexpected errors
that never reach a client with their details (GraphQL in production, REST always)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import pytest
import strawberry
from fastapi.testclient import TestClient
from strawberry.types import ExecutionResult

from core.access import Role
from core.settings import Settings
from graphql_schema.guards import OperationLimits
from graphql_schema.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS, build_schema, schema
from serve_app.factory import create_app
from tests.graphql.conftest import only_error, run
from tests.graphql.fakes import ROLE_KEYS, FakeLiveReader, FakeServices

SECRET = "postgres://analytics:hunter2@10.0.0.5:5432/metadata refused the connection"


# ---- cost limits ----------------------------------------------------------------------------


@strawberry.type
class Node:
    value: int = 1

    @strawberry.field
    def child(self) -> Node:
        return Node()


@strawberry.type
class NodeQuery:
    @strawberry.field
    def root(self) -> Node:
        return Node()


# A schema as deep as one likes, under the production limits: the service's own types are not
# ten levels deep, so only a recursive type shows the depth limit at its boundary.
deep_schema = strawberry.Schema(
    query=NodeQuery,
    extensions=[lambda: OperationLimits(max_depth=MAX_DEPTH, max_aliases=MAX_ALIASES, max_fields=MAX_TOKENS)],
)


def nested_through_fragments(levels: int) -> str:
    """``root`` and then ``child`` fields nested ``levels`` deep in all, each level in its own
    fragment (and every other one through an inline fragment)."""
    fragments = []
    for level in range(1, levels):
        inner = f"child {{ ...L{level + 1} }}" if level % 2 else f"... on Node {{ child {{ ...L{level + 1} }} }}"
        fragments.append(f"fragment L{level} on Node {{ value {inner} }}")
    fragments.append(f"fragment L{levels} on Node {{ value }}")
    return "query Deep { root { ...L1 } }\n" + "\n".join(fragments)


def limit_errors(result: ExecutionResult, limit: str) -> list[dict[str, Any]]:
    formatted = [e.formatted for e in result.errors or []]
    return [e for e in formatted if e.get("extensions", {}).get("details", {}).get("limit") == limit]


def test_depth_hidden_in_fragments_is_refused_past_the_limit() -> None:
    # Fields with a selection of their own along the path: root and levels - 1 children.
    at_limit = deep_schema.execute_sync(nested_through_fragments(MAX_DEPTH))
    assert at_limit.errors is None, at_limit.errors

    over = deep_schema.execute_sync(nested_through_fragments(MAX_DEPTH + 1))
    assert over.data is None
    [error] = limit_errors(over, "depth")
    assert error["message"] == f"'Deep' exceeds maximum operation depth of {MAX_DEPTH}"
    assert error["extensions"] == {
        "code": "invalid_request",
        "status": 400,
        "details": {"limit": "depth", "allowed": MAX_DEPTH, "found": MAX_DEPTH + 1},
    }


def aliased_fragment_spread(times: int) -> str:
    # Four aliases in the fragment, the fragment spread ``times`` times in different places.
    fragment = (
        "fragment Four on Query "
        "{ a: realtime { asOf } b: realtime { asOf } c: trending { asOf } d: realtime { source } }"
    )
    spreads = " ".join(f"w{i}: realtime {{ asOf }} ...Four" for i in range(times))
    return f"query Wide {{ {spreads} }}\n{fragment}"


async def test_aliases_count_once_per_fragment_spread(services: FakeServices) -> None:
    # Each repetition: one alias written in the query, four in the spread fragment.
    allowed_times = MAX_ALIASES // 5
    accepted = await run(services, Role.ADMIN, aliased_fragment_spread(allowed_times))
    assert accepted.errors is None, accepted.errors

    refused = await run(services, Role.ADMIN, aliased_fragment_spread(allowed_times + 1))
    assert refused.data is None
    [error] = limit_errors(refused, "aliases")
    found = 5 * (allowed_times + 1)
    assert error["extensions"]["details"] == {"limit": "aliases", "allowed": MAX_ALIASES, "found": found}
    # Only the accepted query ran: its written-out realtime fields and the fragment's three (a, b, d)
    # and one trending (the fragment's fields run once however often it is spread).
    assert Counter(services.realtime.actor_calls) == {("snapshot",): allowed_times + 3, ("top", "1h", 20, None): 1}


def fragment_fan_out(fan_outs: list[int], extra_top_level_fields: int = 0) -> str:
    """Fragment F0 spreads F1 ``fan_outs[0]`` times, F1 spreads F2 ``fan_outs[1]`` times, ...; the
    last fragment selects ``realtime { asOf }`` (two fields)."""
    fragments = [
        f"fragment F{i} on Query {{ {' '.join([f'...F{i + 1}'] * times)} }}" for i, times in enumerate(fan_outs)
    ]
    fragments.append(f"fragment F{len(fan_outs)} on Query {{ realtime {{ asOf }} }}")
    extra = " ".join(f"x{i}: realtime {{ source }}" for i in range(extra_top_level_fields))
    return f"query FanOut {{ {extra} ...F0 }}\n" + "\n".join(fragments)


async def test_a_fragment_spread_many_times_counts_against_the_token_limit_once_written_out(
    services: FakeServices,
) -> None:
    # 4 * 5**4 = 2,500 copies of the last fragment's two fields: exactly the limit.
    fan_outs = [4, 5, 5, 5, 5]
    copies = 4 * 5**4
    assert 2 * copies == MAX_TOKENS
    accepted = await run(services, Role.ADMIN, fragment_fan_out(fan_outs))
    assert accepted.errors is None, accepted.errors
    assert accepted.data is not None and set(accepted.data) == {"realtime"}

    refused = await run(services, Role.ADMIN, fragment_fan_out(fan_outs, extra_top_level_fields=1))
    assert refused.data is None
    [error] = limit_errors(refused, "fields")
    # The extra field and the one inside it.
    assert error["extensions"]["details"] == {"limit": "fields", "allowed": MAX_TOKENS, "found": 2 * copies + 2}


async def test_a_doubling_fragment_chain_is_refused_at_once(services: FakeServices) -> None:
    # Each fragment spreads the next twice: 2**40 copies once written out. A limit that walks every
    # spread would take hours on this; the document itself is a few hundred tokens.
    links = 40
    started = time.perf_counter()
    result = await run(services, Role.ADMIN, fragment_fan_out([2] * links))
    elapsed = time.perf_counter() - started
    [error] = limit_errors(result, "fields")
    assert error["extensions"]["details"]["found"] == 2 * 2**links
    assert elapsed < 2.0, elapsed
    assert services.realtime.actor_calls == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("query { ...Missing }", "Unknown fragment 'Missing'."),
        (
            "query { ...A } fragment A on Query { realtime { asOf } ...B } fragment B on Query { ...A }",
            "Cannot spread fragment 'A' within itself via 'B'.",
        ),
    ],
)
async def test_broken_fragments_get_graphqls_own_error(services: FakeServices, document: str, message: str) -> None:
    # No limit trips over them (a missing fragment used to surface as a bare KeyError message).
    result = await run(services, Role.ADMIN, document)
    assert [e.message for e in result.errors or []] == [message]


def test_the_production_schema_has_the_same_limits() -> None:
    query = fragment_fan_out([2] * 30)
    for environment in ("development", "test", "production"):
        result = build_schema(environment).execute_sync(query)
        assert limit_errors(result, "fields"), environment


def test_too_many_tokens_are_refused_before_parsing_ends() -> None:
    names = " ".join(f"f{i}: __typename" for i in range(MAX_TOKENS // 3 + 1))  # three tokens each
    result = schema.execute_sync(f"query {{ {names} }}")
    assert result.errors is not None
    message = f"Syntax Error: Document contains more than {MAX_TOKENS} tokens. Parsing aborted."
    assert result.errors[0].message == message


# ---- unexpected errors --------------------------------------------------------------------------


class BrokenLiveReader(FakeLiveReader):
    """The live counters fail in a way nothing anticipated, with a message naming internals."""

    async def _call(self, name: str, method: str, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(SECRET)


@pytest.fixture
def broken() -> FakeServices:
    services = FakeServices.build()
    services.realtime = BrokenLiveReader()
    return services


async def test_production_masks_unexpected_errors_and_keeps_the_services_own(
    broken: FakeServices, caplog: pytest.LogCaptureFixture
) -> None:
    production = build_schema("production")
    with caplog.at_level(logging.ERROR, logger="strawberry.execution"):
        unexpected = await production.execute("{ realtime { asOf } }", context_value=broken.context(Role.ADMIN))
    # The server's log keeps the real message; the client gets the generic one.
    [logged] = [r.getMessage() for r in caplog.records if r.name == "strawberry.execution"]
    assert logged.startswith(SECRET)
    masked = only_error(unexpected)
    assert masked == {
        "message": "Unexpected error.",
        "locations": [{"line": 1, "column": 3}],
        "path": ["realtime"],
        "extensions": {"code": "internal_error", "status": 500},
    }
    query = '{ trending(window: "2h") { asOf } }'
    invalid = only_error(await production.execute(query, context_value=broken.context(Role.ADMIN)))
    assert invalid["message"] == "window must be one of 5m, 1h, 24h"
    assert invalid["extensions"] == {
        "code": "invalid_request",
        "status": 400,
        "details": {"field": "window"},
    }


async def test_production_keeps_refusals_and_document_errors(broken: FakeServices) -> None:
    production = build_schema("production")
    forbidden = await production.execute("{ events { nextCursor } }", context_value=broken.context(Role.VIEWER))
    assert only_error(forbidden)["message"] == "role 'viewer' may not query raw events; allowed roles: admin"
    bad_variable = await production.execute(
        "query($r: AnalyticsRange) { usersOverview(range: $r) { activeUsers } }",
        variable_values={"r": {"startDate": "2026-13-01"}},
        context_value=broken.context(Role.ADMIN),
    )
    assert "startDate" in only_error(bad_variable)["message"]
    unknown_field = await production.execute("{ nope }", context_value=broken.context(Role.ADMIN))
    assert only_error(unknown_field)["message"] == "Cannot query field 'nope' on type 'Query'."


@pytest.mark.parametrize("environment", ["development", "test"])
async def test_other_environments_show_the_unexpected_error(broken: FakeServices, environment: str) -> None:
    result = await build_schema(environment).execute("{ realtime { asOf } }", context_value=broken.context(Role.ADMIN))
    assert only_error(result)["message"] == SECRET


def client(services: FakeServices, environment: str) -> TestClient:
    app = create_app(Settings(environment=environment))  # type: ignore[arg-type]
    app.state.services = services  # no lifespan: the fakes stand in for Services.start
    headers = {"Authorization": f"Bearer {ROLE_KEYS[Role.ADMIN]}"}
    return TestClient(app, headers=headers, raise_server_exceptions=False)


def test_the_app_passes_its_environment_to_the_graphql_schema(broken: FakeServices) -> None:
    masked = client(broken, "production").post("/graphql", json={"query": "{ realtime { asOf } }"})
    assert masked.json()["errors"][0]["message"] == "Unexpected error."
    shown = client(broken, "test").post("/graphql", json={"query": "{ realtime { asOf } }"})
    assert shown.json()["errors"][0]["message"] == SECRET


@pytest.mark.parametrize("environment", ["development", "production"])
def test_rest_answers_an_unexpected_error_as_a_logged_500(
    broken: FakeServices, environment: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="analytics.http"):
        response = client(broken, environment).get("/api/v1/analytics/real-time")
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "an unexpected error occurred; it has been logged",
    }
    assert SECRET not in response.text
    [record] = [r for r in caplog.records if r.name == "analytics.http"]
    assert record.getMessage() == "unexpected error on GET /api/v1/analytics/real-time"
    assert record.exc_info is not None and str(record.exc_info[1]) == SECRET


def test_rest_routing_errors_use_the_error_body(broken: FakeServices) -> None:
    app = client(broken, "test")
    missing = app.get("/api/v1/analytics/no-such-thing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "Not Found"}
    wrong_method = app.patch("/api/v1/analytics/events")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "method_not_allowed", "message": "Method Not Allowed"}
    assert "POST" in wrong_method.headers["allow"]
