"""API key management (admin): create (with an expiry and a content scope), list, rotate, revoke
(the audit log's route is serve_app/routes/audit.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from core.access import Role
from core.errors import FieldError, ValidationFailed
from serve_app.deps import KeyManager, ServicesDep
from serve_app.http import json_response, read_json
from serve_app.openapi import error_responses, json_body
from serve_app.scope_input import ScopeIn

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

# A body at the scope's bounds (serve_app/scope_input.py) fits with room to spare.
_MAX_NEW_KEY_BYTES = 512 * 1024
_MAX_ROTATION_BYTES = 1024
MAX_GRACE_SECONDS = 30 * 86_400


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role
    # ISO 8601; without a UTC offset it is read as UTC. Must be in the future.
    expires_at: datetime | None = None
    scope: ScopeIn = Field(default_factory=ScopeIn)

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value <= datetime.now(UTC):
            raise PydanticCustomError("in_the_past", "must be in the future")
        return value


class ApiKeyRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # How long the previous secret keeps working; 0 = it stops at once. Unset: the configured default
    # (ANALYTICS_API_KEY_ROTATION_GRACE_SECONDS).
    grace_seconds: int | None = Field(default=None, ge=0, le=MAX_GRACE_SECONDS, strict=True)


_Body = TypeVar("_Body", bound=BaseModel)


def _validated(model: type[_Body], body: Any) -> _Body:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise ValidationFailed(
            [FieldError(field=".".join(str(p) for p in e["loc"]) or "(body)", message=e["msg"]) for e in exc.errors()]
        ) from exc


async def _optional_json(request: Request, *, max_bytes: int) -> Any:
    """The JSON body, or ``{}`` when the request has none."""
    declared = request.headers.get("content-length")
    if declared == "0" or (declared is None and "transfer-encoding" not in request.headers):
        return {}
    return await read_json(request, max_bytes=max_bytes)


def _optional_body(name: str, shape: type[BaseModel], description: str) -> dict[str, Any]:
    extra = json_body(name, shape, description)
    extra["requestBody"]["required"] = False
    return extra


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key; the key is shown only in this response",
    responses=error_responses(413, 422),
    openapi_extra=json_body("NewApiKey", NewApiKey, "The key's name and role, and optionally its expiry and scope"),
)
async def create_key(request: Request, services: ServicesDep, principal: KeyManager) -> Response:
    spec = _validated(NewApiKey, await read_json(request, max_bytes=_MAX_NEW_KEY_BYTES))
    key, plain = await services.metadata.create_api_key(
        spec.name, spec.role, expires_at=spec.expires_at, scope=spec.scope.to_scope()
    )
    details: dict[str, Any] = {"role": key.role.value}
    if key.expires_at is not None:
        details["expires_at"] = key.expires_at.isoformat()
    if not key.scope.unrestricted:
        details["scope"] = {"categories": len(key.scope.categories), "content_ids": len(key.scope.content_ids)}
    await services.metadata.audit("api_key.create", actor_key_id=principal.key_id, target=key.id, details=details)
    return json_response({**key.to_dict(), "key": plain}, status_code=201)


@router.get("/api-keys", summary="List API keys (never their secrets)", responses=error_responses())
async def list_keys(services: ServicesDep, _: KeyManager) -> Response:
    now = datetime.now(UTC)
    return json_response({"keys": [k.to_dict(now) for k in await services.metadata.list_api_keys()]})


@router.post(
    "/api-keys/{key_id}/rotate",
    summary="Give an API key a new secret; the previous one keeps working for a grace period",
    responses=error_responses(404, 409, 413, 422),
    openapi_extra=_optional_body(
        "ApiKeyRotation", ApiKeyRotation, "Optional: how long the previous secret keeps working (seconds)"
    ),
)
async def rotate_key(key_id: str, request: Request, services: ServicesDep, principal: KeyManager) -> Response:
    spec = _validated(ApiKeyRotation, await _optional_json(request, max_bytes=_MAX_ROTATION_BYTES))
    grace = services.settings.api_key_rotation_grace_seconds if spec.grace_seconds is None else spec.grace_seconds
    key, plain, retired = await services.metadata.rotate_api_key(key_id, grace_seconds=grace)
    await services.auth.forget(*retired)
    await services.metadata.audit(
        "api_key.rotate", actor_key_id=principal.key_id, target=key.id, details={"grace_seconds": grace}
    )
    return json_response({**key.to_dict(), "key": plain})


@router.delete("/api-keys/{key_id}", summary="Revoke an API key", responses=error_responses(404))
async def revoke_key(key_id: str, services: ServicesDep, principal: KeyManager) -> Response:
    key, key_hashes = await services.metadata.revoke_api_key(key_id)
    await services.auth.forget(*key_hashes)
    await services.metadata.audit("api_key.revoke", actor_key_id=principal.key_id, target=key.id)
    return json_response(key.to_dict())
