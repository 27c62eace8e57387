"""Roles, the authenticated principal, and which roles may do what."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import Forbidden, Unauthenticated


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    CONTENT_MANAGER = "content_manager"
    VIEWER = "viewer"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    role: Role


# Who may do what. `service` keys may only ingest (events, and content metadata).
INGEST = frozenset({Role.ADMIN, Role.SERVICE})
READ_RAW_EVENTS = frozenset({Role.ADMIN})
MANAGE_KEYS = frozenset({Role.ADMIN})
READ_ANALYTICS = frozenset({Role.ADMIN, Role.ANALYST, Role.CONTENT_MANAGER, Role.VIEWER})
# Content metadata comes from the platform's content service (or an admin).
WRITE_CONTENT_METADATA = frozenset({Role.ADMIN, Role.SERVICE})


def require(principal: Principal | None, allowed: frozenset[Role], action: str) -> Principal:
    """Raise Unauthenticated without a principal, Forbidden unless its role is one of ``allowed``."""
    if principal is None:
        raise Unauthenticated("missing Authorization header; send 'Authorization: Bearer <api key>'")
    if principal.role not in allowed:
        roles = ", ".join(sorted(r.value for r in allowed))
        raise Forbidden(f"role '{principal.role.value}' may not {action}; allowed roles: {roles}")
    return principal
