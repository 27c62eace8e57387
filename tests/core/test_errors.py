import pytest

from core.access import (
    CAN_INGEST_EVENTS,
    CAN_MANAGE_API_KEYS,
    CAN_QUERY_RAW_EVENTS,
    CAN_READ_ANALYTICS,
    CAN_READ_AUDIT_LOG,
    CAN_READ_CONTENT_METADATA,
    CAN_READ_RAW_EVENTS,
    CAN_WRITE_CONTENT_METADATA,
    INGEST,
    MANAGE_KEYS,
    READ_ANALYTICS,
    READ_RAW_EVENTS,
    WRITE_CONTENT_METADATA,
    Permission,
    Principal,
    Role,
)
from core.errors import (
    AnalyticsError,
    Conflict,
    FieldError,
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    StoreUnavailable,
    Unauthenticated,
    ValidationFailed,
)

# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (AnalyticsError, 500, "internal_error"),
        (InvalidRequest, 400, "invalid_request"),
        (PayloadTooLarge, 413, "payload_too_large"),
        (Unauthenticated, 401, "unauthenticated"),
        (Forbidden, 403, "forbidden"),
        (NotFound, 404, "not_found"),
        (Conflict, 409, "conflict"),
        (StoreUnavailable, 503, "store_unavailable"),
    ],
)
def test_status_and_code(cls, status, code):
    err = cls("went wrong")
    assert isinstance(err, AnalyticsError)
    assert (err.status, err.code) == (status, code)
    assert str(err) == "went wrong"
    assert err.to_dict() == {"error": code, "message": "went wrong"}


def test_to_dict_includes_details_only_when_given():
    assert NotFound("gone", details={"id": "k1"}).to_dict() == {
        "error": "not_found",
        "message": "gone",
        "details": {"id": "k1"},
    }
    # Falsy details are still details.
    assert InvalidRequest("bad", details=[]).to_dict() == {"error": "invalid_request", "message": "bad", "details": []}


def test_field_error_to_dict_with_and_without_index():
    assert FieldError(field="user_id", message="too long").to_dict() == {
        "field": "user_id",
        "code": "invalid_value",
        "message": "too long",
    }
    with_index = FieldError(field="timestamp", message="old", index=0, code="timestamp_out_of_range").to_dict()
    assert with_index == {"index": 0, "field": "timestamp", "code": "timestamp_out_of_range", "message": "old"}
    assert list(with_index) == ["index", "field", "code", "message"]


def test_validation_failed_message_and_details():
    errors = [
        FieldError(field="a", message="is required", index=2, code="missing_field"),
        FieldError(field="b", message="bad"),
    ]
    err = ValidationFailed(errors)
    assert (err.status, err.code) == (422, "validation_failed")
    assert err.errors == errors
    assert err.message == "a: is required"
    assert err.to_dict() == {
        "error": "validation_failed",
        "message": "a: is required",
        "details": [
            {"index": 2, "field": "a", "code": "missing_field", "message": "is required"},
            {"field": "b", "code": "invalid_value", "message": "bad"},
        ],
    }


def test_validation_failed_explicit_message_and_empty_list():
    assert ValidationFailed([FieldError(field="a", message="x")], "custom text").message == "custom text"
    empty = ValidationFailed([])
    assert empty.message == "invalid input"
    assert empty.to_dict() == {"error": "validation_failed", "message": "invalid input", "details": []}


# --- access -------------------------------------------------------------------------------


def _principal(role: Role) -> Principal:
    return Principal(key_id="key_1", name="test", role=role)


def test_check_without_principal_is_unauthenticated():
    with pytest.raises(Unauthenticated, match="missing Authorization header"):
        Permission(READ_ANALYTICS, "read analytics").check(None)


def test_check_names_the_role_and_the_allowed_roles():
    with pytest.raises(Forbidden) as exc:
        Permission(INGEST, "ingest events").check(_principal(Role.VIEWER))
    assert exc.value.message == "role 'viewer' may not ingest events; allowed roles: admin, service"
    assert exc.value.status == 403


def test_check_returns_the_principal_when_allowed():
    principal = _principal(Role.SERVICE)
    assert Permission(INGEST, "ingest events").check(principal) is principal


ALL_ROLES = set(Role)


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        (INGEST, {Role.ADMIN, Role.SERVICE}),
        (READ_RAW_EVENTS, {Role.ADMIN}),
        (MANAGE_KEYS, {Role.ADMIN}),
        (READ_ANALYTICS, {Role.ADMIN, Role.ANALYST, Role.CONTENT_MANAGER, Role.VIEWER}),
    ],
)
def test_role_sets(allowed, expected):
    assert set(allowed) == expected
    passed = set()
    for role in ALL_ROLES:
        try:
            Permission(allowed, "act").check(_principal(role))
        except Forbidden:
            continue
        passed.add(role)
    assert passed == expected


def test_service_may_only_ingest():
    sets = {"ingest": INGEST, "read_raw": READ_RAW_EVENTS, "manage_keys": MANAGE_KEYS, "read_analytics": READ_ANALYTICS}
    assert {name for name, roles in sets.items() if Role.SERVICE in roles} == {"ingest"}


# --- permissions: what REST routes and GraphQL fields declare ------------------------------------


@pytest.mark.parametrize(
    ("permission", "roles", "action"),
    [
        (CAN_INGEST_EVENTS, INGEST, "ingest events"),
        (CAN_QUERY_RAW_EVENTS, READ_RAW_EVENTS, "query raw events"),
        (CAN_READ_RAW_EVENTS, READ_RAW_EVENTS, "read raw events"),
        (CAN_MANAGE_API_KEYS, MANAGE_KEYS, "manage API keys"),
        (CAN_READ_AUDIT_LOG, MANAGE_KEYS, "read the audit log"),
        (CAN_READ_ANALYTICS, READ_ANALYTICS, "read analytics"),
        (CAN_READ_CONTENT_METADATA, READ_ANALYTICS | WRITE_CONTENT_METADATA, "read content metadata"),
        (CAN_WRITE_CONTENT_METADATA, WRITE_CONTENT_METADATA, "write content metadata"),
    ],
)
def test_permissions_check_as_declared(permission, roles, action):
    assert (permission.roles, permission.action) == (roles, action)
    for role in ALL_ROLES:
        principal = _principal(role)
        if role in roles:
            assert role in permission.roles
            assert permission.check(principal) is principal
            continue
        assert role not in permission.roles
        with pytest.raises(Forbidden) as refused:
            permission.check(principal)
        with pytest.raises(Forbidden) as required:
            Permission(roles, action).check(principal)
        assert refused.value.message == required.value.message
        assert refused.value.message.startswith(f"role '{role.value}' may not {action}; allowed roles: ")
    with pytest.raises(Unauthenticated, match="missing Authorization header"):
        permission.check(None)


def test_content_metadata_is_read_by_readers_and_writers():
    assert {Role.SERVICE, Role.VIEWER} <= CAN_READ_CONTENT_METADATA.roles
    with pytest.raises(Forbidden) as refused:
        CAN_WRITE_CONTENT_METADATA.check(_principal(Role.ANALYST))
    assert refused.value.message == "role 'analyst' may not write content metadata; allowed roles: admin, service"
