"""The GraphQL schema run directly (``schema.execute``) over in-process fakes (tests/graphql/fakes.py)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from strawberry.types import ExecutionResult

from core.access import Role
from core.settings import Settings
from graphql_schema.schema import schema
from serve_app.factory import create_app
from tests.graphql.fakes import ROLE_KEYS, FakeServices


@pytest.fixture
def services() -> FakeServices:
    return FakeServices.build()


async def run(
    services: FakeServices, role: Role | None, query: str, variables: dict[str, Any] | None = None
) -> ExecutionResult:
    return await schema.execute(query, variable_values=variables, context_value=services.context(role))


def only_error(result: ExecutionResult) -> Any:
    """The one error of a result, as a GraphQL client sees it."""
    assert result.errors is not None and len(result.errors) == 1, result.errors
    return result.errors[0].formatted


def rest_client(services: FakeServices, role: Role | None, *, key: str | None = None) -> TestClient:
    """The REST app over the same fakes, calling as ``role`` (or with ``key``)."""
    app = create_app(Settings(environment="test"))
    app.state.services = services  # no lifespan: the fakes stand in for Services.start
    key = key or (ROLE_KEYS[role] if role is not None else None)
    return TestClient(app, headers={"Authorization": f"Bearer {key}"} if key else {})
