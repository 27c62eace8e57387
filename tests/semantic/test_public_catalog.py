"""The public catalog: every name of the events family, with type, unit, topic and roles."""

from __future__ import annotations

import pytest

from core.access import PERMISSION_MATRIX, Operation, Role
from core.errors import Forbidden
from semantic.catalog import EVENTS
from semantic.event_dimensions import EVENT_DIMENSIONS
from semantic.public_catalog import DIMENSIONS, METRICS, catalog_for, require_allowed

READ_ANALYTICS = PERMISSION_MATRIX[Operation.READ_CONTENT_ANALYTICS]
ANALYSTS = {Role.ADMIN, Role.ANALYST}
REQUIRED_METRICS = {
    "events", "users", "sessions", "views", "unique_viewers", "plays", "completes", "completion_rate", "likes",
    "shares", "bookmarks", "comments", "watch_time_seconds", "searches", "zero_result_searches", "zero_result_rate",
    "search_clicks", "search_ctr", "api_requests", "errors", "error_rate", "request_error_rate", "latency_p50",
    "latency_p95", "latency_p99", "imports_started", "imports_completed", "imports_failed", "import_success_rate",
}  # fmt: skip
TIME = {"bucket", "hour", "day", "week", "month", "hour_of_day", "weekday"}


def test_the_catalog_is_the_events_family() -> None:
    assert set(METRICS) == set(EVENTS.metrics)
    assert set(METRICS) >= REQUIRED_METRICS
    assert set(DIMENSIONS) == set(EVENT_DIMENSIONS) | TIME
    assert set(EVENTS.dimensions) == set(EVENT_DIMENSIONS)
    for entry in [*METRICS.values(), *DIMENSIONS.values()]:
        assert entry.description and entry.type in ("integer", "float", "string", "date", "datetime"), entry
        assert entry.roles and entry.roles <= READ_ANALYTICS, entry


def test_roles_follow_the_topic() -> None:
    for entry in METRICS.values():
        if entry.family in ("content", "search"):
            assert entry.roles == READ_ANALYTICS, entry.name
        else:
            assert entry.family in ("users", "system", "imports"), entry.name
            assert entry.roles == ANALYSTS, entry.name
    assert {n for n, e in DIMENSIONS.items() if e.roles == ANALYSTS} == {"user_id", "session_id"}
    assert METRICS["users"].roles == METRICS["latency_p99"].roles == METRICS["import_success_rate"].roles == ANALYSTS
    assert METRICS["views"].roles == METRICS["search_ctr"].roles == READ_ANALYTICS


def test_types_and_units() -> None:
    shown = {name: (e.type, e.unit) for name, e in METRICS.items()}
    assert shown["views"] == ("integer", "events")
    assert shown["unique_viewers"] == ("integer", "viewers")
    assert shown["users"] == ("integer", "users")
    assert shown["sessions"] == ("integer", "sessions")
    assert shown["watch_time_seconds"] == ("float", "seconds")
    assert shown["latency_p50"] == ("float", "ms")
    for ratio in (
        "completion_rate",
        "zero_result_rate",
        "search_ctr",
        "error_rate",
        "request_error_rate",
        "import_success_rate",
    ):
        assert shown[ratio] == ("float", "ratio"), ratio
        assert EVENTS.metrics[ratio].derived
    assert DIMENSIONS["status"].type == "integer"
    assert DIMENSIONS["country"].type == "string"
    assert DIMENSIONS["hour"].type == "datetime" and DIMENSIONS["day"].type == "date"
    assert DIMENSIONS["category"].family == "content_metadata"


@pytest.mark.parametrize("role", list(Role))
def test_catalog_for_a_role_lists_what_it_may_use(role: Role) -> None:
    catalog = catalog_for(role)
    assert catalog.role == role.value
    listed = {e.name for e in catalog.metrics} | {e.name for e in catalog.dimensions}
    allowed = {n for n, e in {**METRICS, **DIMENSIONS}.items() if role in e.roles}
    assert listed == allowed
    for entry in [*catalog.metrics, *catalog.dimensions]:
        assert role.value in entry.roles
    if role in ANALYSTS:
        assert "users" in listed and "user_id" in listed
    elif role in READ_ANALYTICS:
        assert "views" in listed and "users" not in listed and "session_id" not in listed
    else:
        assert listed == set()


def test_a_refusal_names_the_metric_and_the_roles() -> None:
    require_allowed(METRICS["views"], Role.VIEWER, "metrics[0]")
    with pytest.raises(Forbidden) as refused:
        require_allowed(METRICS["errors"], Role.CONTENT_MANAGER, "metrics[3]")
    assert refused.value.status == 403
    assert refused.value.message == "role 'content_manager' may not use metric 'errors'; allowed roles: admin, analyst"
    assert refused.value.details == {"field": "metrics[3]", "metric": "errors", "allowed_roles": ["admin", "analyst"]}
