import pytest

from core.access import (
    CAN_INGEST_EVENTS,
    CAN_READ_CONTENT_ANALYTICS,
    CAN_READ_CONTENT_METADATA,
    CAN_WRITE_CONTENT_METADATA,
    PERMISSION_MATRIX,
    Operation,
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
        CAN_READ_CONTENT_ANALYTICS.check(None)


def test_check_names_the_role_and_the_allowed_roles():
    with pytest.raises(Forbidden) as exc:
        CAN_INGEST_EVENTS.check(_principal(Role.VIEWER))
    assert exc.value.message == "role 'viewer' may not ingest events; allowed roles: admin, service"
    assert exc.value.status == 403


def test_check_returns_the_principal_when_allowed():
    principal = _principal(Role.SERVICE)
    assert CAN_INGEST_EVENTS.check(principal) is principal


def test_service_may_only_ingest_and_touch_content_metadata():
    service_operations = {op for op, roles in PERMISSION_MATRIX.items() if Role.SERVICE in roles}
    assert service_operations == {
        Operation.INGEST_EVENTS,
        Operation.WRITE_CONTENT_METADATA,
        Operation.READ_CONTENT_METADATA,
    }


def test_admin_may_do_everything_and_every_operation_has_a_permission():
    assert all(Role.ADMIN in roles for roles in PERMISSION_MATRIX.values())
    assert set(PERMISSION_MATRIX) == set(Operation)


def test_content_metadata_is_read_by_readers_and_writers():
    assert {Role.SERVICE, Role.VIEWER} <= CAN_READ_CONTENT_METADATA.roles
    with pytest.raises(Forbidden) as refused:
        CAN_WRITE_CONTENT_METADATA.check(_principal(Role.ANALYST))
    assert refused.value.message == "role 'analyst' may not write content metadata; allowed roles: admin, service"
