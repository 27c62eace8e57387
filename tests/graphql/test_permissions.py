"""Both transports refuse alike (401/403 naming the role); the whole matrix is in test_permission_matrix.py."""

from __future__ import annotations

import pytest

from core.access import (
    CAN_INGEST_EVENTS,
    CAN_QUERY_RAW_EVENTS,
    CAN_READ_REALTIME_ANALYTICS,
    CAN_READ_USER_ANALYTICS,
    Permission,
    Role,
)
from graphql_schema.schema import schema
from tests.graphql.conftest import only_error, rest_client, run
from tests.graphql.fakes import FakeServices

# (GraphQL operation, REST request, the permission both declare)
OPERATIONS = [
    (
        'mutation { trackEvent(event: {eventType: "content_view"}) { id } }',
        ("POST", "/api/v1/analytics/events", {"event_type": "content_view"}),
        CAN_INGEST_EVENTS,
    ),
    ("{ events { nextCursor } }", ("GET", "/api/v1/analytics/events", None), CAN_QUERY_RAW_EVENTS),
    ("{ usersOverview { activeUsers } }", ("GET", "/api/v1/analytics/users", None), CAN_READ_USER_ANALYTICS),
    ("{ realtime { source } }", ("GET", "/api/v1/analytics/real-time", None), CAN_READ_REALTIME_ANALYTICS),
]


@pytest.mark.parametrize(("query", "request_", "permission"), OPERATIONS)
@pytest.mark.parametrize("role", list(Role))
async def test_refusals_are_the_same_on_both_transports(
    services: FakeServices, query: str, request_: tuple, permission: Permission, role: Role
) -> None:
    method, path, body = request_
    response = rest_client(services, role).request(method, path, json=body)
    result = await run(services, role, query)
    if role in permission.roles:
        assert response.status_code in (200, 201), response.text
        assert result.errors is None, result.errors
        return
    allowed = ", ".join(sorted(r.value for r in permission.roles))
    message = f"role '{role.value}' may not {permission.action}; allowed roles: {allowed}"
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "message": message}
    error = only_error(result)
    assert error["message"] == message
    assert error["extensions"] == {"code": "forbidden", "status": 403}
    assert error["path"] == [query.split("{")[1].split("(")[0].split()[0]]
    assert services.events.writes == 0 and services.realtime.calls == []


@pytest.mark.parametrize(("query", "request_", "permission"), OPERATIONS)
async def test_no_key_is_unauthenticated(
    services: FakeServices, query: str, request_: tuple, permission: Permission
) -> None:
    method, path, body = request_
    response = rest_client(services, None).request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthenticated"
    error = only_error(await run(services, None, query))
    assert error["extensions"] == {"code": "unauthenticated", "status": 401}
    assert "missing Authorization header" in error["message"]


async def test_an_unknown_key_is_unauthenticated_before_any_role_check(services: FakeServices) -> None:
    response = rest_client(services, None, key="ak_nope").get("/api/v1/analytics/events")
    assert response.status_code == 401
    assert response.json()["message"] == "API key is not valid or has been revoked"


async def test_the_service_role_may_not_subscribe(services: FakeServices) -> None:
    subscription = await schema.subscribe(
        "subscription { realtimeMetrics { source } }", context_value=services.context(Role.SERVICE)
    )
    results = [r async for r in subscription] if not hasattr(subscription, "errors") else [subscription]
    error = results[0].errors[0].formatted
    assert error["extensions"]["code"] == "forbidden"
    assert "role 'service' may not read real-time analytics" in error["message"]
    assert services.realtime.updates.streams == []
