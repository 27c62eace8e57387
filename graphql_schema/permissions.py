"""The permissions of core/access.py as Strawberry permission classes, one per permission.

A field declares its class (``permission_classes=[ReadAnalytics]``); the check runs before the
resolver and refuses with the same error as REST: ``unauthenticated`` (401) or ``forbidden``
(403, naming the role and the allowed roles) in ``extensions``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission
from strawberry.types import Info

from core.access import (
    CAN_INGEST_EVENTS,
    CAN_QUERY_RAW_EVENTS,
    CAN_READ_ANALYTICS,
    CAN_READ_CONTENT_METADATA,
    CAN_READ_RAW_EVENTS,
    CAN_WRITE_CONTENT_METADATA,
    Permission,
)
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import graphql_errors


class RolePermission(BasePermission):
    permission: ClassVar[Permission]

    def has_permission(self, source: Any, info: Info[GraphQLContext, None], **kwargs: Any) -> bool:
        # Raised rather than returning False: the error names the caller's role.
        with graphql_errors():
            self.permission.check(info.context.principal)
        return True


class IngestEvents(RolePermission):
    permission = CAN_INGEST_EVENTS


class QueryRawEvents(RolePermission):
    permission = CAN_QUERY_RAW_EVENTS


class ReadRawEvents(RolePermission):
    permission = CAN_READ_RAW_EVENTS


class ReadAnalytics(RolePermission):
    permission = CAN_READ_ANALYTICS


class ReadContentMetadata(RolePermission):
    permission = CAN_READ_CONTENT_METADATA


class WriteContentMetadata(RolePermission):
    permission = CAN_WRITE_CONTENT_METADATA
