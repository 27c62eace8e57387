"""Roles, the authenticated principal, and which roles may do what.

Every REST route and GraphQL field declares one ``Permission`` below (serve_app/deps.py turns
them into FastAPI dependencies, graphql_schema/permissions.py into Strawberry permission
classes), so both transports refuse the same callers with the same 401/403 messages.
"""

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


@dataclass(frozen=True, slots=True)
class Permission:
    """What one operation needs: the roles allowed, and the action a refusal names."""

    roles: frozenset[Role]
    action: str

    def check(self, principal: Principal | None) -> Principal:
        """Raise Unauthenticated without a principal, Forbidden unless its role is one of ``roles``."""
        if principal is None:
            raise Unauthenticated("missing Authorization header; send 'Authorization: Bearer <api key>'")
        if principal.role not in self.roles:
            allowed = ", ".join(sorted(r.value for r in self.roles))
            raise Forbidden(f"role '{principal.role.value}' may not {self.action}; allowed roles: {allowed}")
        return principal


# The operations of the API, each declared once on its route and on its GraphQL field.
CAN_INGEST_EVENTS = Permission(INGEST, "ingest events")
CAN_QUERY_RAW_EVENTS = Permission(READ_RAW_EVENTS, "query raw events")
CAN_READ_RAW_EVENTS = Permission(READ_RAW_EVENTS, "read raw events")
CAN_MANAGE_API_KEYS = Permission(MANAGE_KEYS, "manage API keys")
CAN_READ_AUDIT_LOG = Permission(MANAGE_KEYS, "read the audit log")
CAN_READ_RETENTION = Permission(MANAGE_KEYS, "read the data retention")
CAN_READ_ANALYTICS = Permission(READ_ANALYTICS, "read analytics")
# The platform's operations: system health, database performance, import and processing jobs.
OPERATIONS_ANALYTICS = frozenset({Role.ADMIN, Role.ANALYST})
CAN_READ_SYSTEM_ANALYTICS = Permission(OPERATIONS_ANALYTICS, "read system analytics")
CAN_READ_IMPORT_ANALYTICS = Permission(OPERATIONS_ANALYTICS, "read import analytics")
CAN_READ_CONTENT_METADATA = Permission(READ_ANALYTICS | WRITE_CONTENT_METADATA, "read content metadata")
CAN_WRITE_CONTENT_METADATA = Permission(WRITE_CONTENT_METADATA, "write content metadata")
