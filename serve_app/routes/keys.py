"""API key management (admin): create, list, revoke; and the audit trail."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.access import Role
from core.errors import FieldError, ValidationFailed
from serve_app.deps import AuditReader, KeyManager, ServicesDep
from serve_app.http import json_response, read_json
from serve_app.openapi import error_responses, json_body

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key; the key is shown only in this response",
    responses=error_responses(413, 422),
    openapi_extra=json_body("NewApiKey", NewApiKey, "The key's name and role"),
)
async def create_key(request: Request, services: ServicesDep, principal: KeyManager) -> Response:
    try:
        spec = NewApiKey.model_validate(await read_json(request, max_bytes=4096))
    except ValidationError as exc:
        raise ValidationFailed(
            [FieldError(field=".".join(str(p) for p in e["loc"]) or "(body)", message=e["msg"]) for e in exc.errors()]
        ) from exc
    key, plain = await services.metadata.create_api_key(spec.name, spec.role)
    await services.metadata.audit(
        "api_key.create", actor_key_id=principal.key_id, target=key.id, details={"role": key.role.value}
    )
    return json_response({**key.to_dict(), "key": plain}, status_code=201)


@router.get("/api-keys", summary="List API keys (never their secrets)", responses=error_responses())
async def list_keys(services: ServicesDep, _: KeyManager) -> Response:
    return json_response({"keys": [k.to_dict() for k in await services.metadata.list_api_keys()]})


@router.delete("/api-keys/{key_id}", summary="Revoke an API key", responses=error_responses(404))
async def revoke_key(key_id: str, services: ServicesDep, principal: KeyManager) -> Response:
    key, key_hash = await services.metadata.revoke_api_key(key_id)
    await services.auth.forget(key_hash)
    await services.metadata.audit("api_key.revoke", actor_key_id=principal.key_id, target=key.id)
    return json_response(key.to_dict())


@router.get("/audit", summary="Recent audit log entries", responses=error_responses())
async def audit_log(
    services: ServicesDep, _: AuditReader, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Response:
    return json_response({"entries": await services.metadata.audit_entries(limit)})
