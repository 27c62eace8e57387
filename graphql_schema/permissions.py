"""The permissions of core/access.py as Strawberry permission classes, one per operation.

A field declares its class (``permission_classes=[ReadContentAnalytics]``); the check runs before
the resolver and refuses with the same error as REST: ``unauthenticated`` (401) or ``forbidden``
(403, naming the role and the allowed roles) in ``extensions``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission
from strawberry.types import Info

from core.access import (
    CAN_ERASE_USER_DATA,
    CAN_EXPORT_USER_DATA,
    CAN_INGEST_EVENTS,
    CAN_MANAGE_API_KEYS,
    CAN_MANAGE_DASHBOARDS,
    CAN_MANAGE_REPORTS,
    CAN_MANAGE_SAVED_QUERIES,
    CAN_QUERY_RAW_EVENTS,
    CAN_READ_AUDIT_LOG,
    CAN_READ_CONTENT_ANALYTICS,
    CAN_READ_CONTENT_METADATA,
    CAN_READ_DASHBOARDS,
    CAN_READ_IMPORT_ANALYTICS,
    CAN_READ_RAW_EVENTS,
    CAN_READ_REALTIME_ANALYTICS,
    CAN_READ_REPORTS,
    CAN_READ_RETENTION,
    CAN_READ_SAVED_QUERIES,
    CAN_READ_SEARCH_ANALYTICS,
    CAN_READ_SYSTEM_ANALYTICS,
    CAN_READ_USER_ANALYTICS,
    CAN_RUN_ANALYTICAL_QUERIES,
    CAN_RUN_BATCH_JOBS,
    CAN_WRITE_CONTENT_METADATA,
    Permission,
)
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import graphql_errors
from semantic.content_scope import CURRENT_SCOPE


class RolePermission(BasePermission):
    permission: ClassVar[Permission]

    def has_permission(self, source: Any, info: Info[GraphQLContext, None], **kwargs: Any) -> bool:
        # Raised rather than returning False: the error names the caller's role.
        with graphql_errors():
            principal = self.permission.check(info.context.principal)
        CURRENT_SCOPE.set(principal.scope)
        return True


class IngestEvents(RolePermission):
    permission = CAN_INGEST_EVENTS


class WriteContentMetadata(RolePermission):
    permission = CAN_WRITE_CONTENT_METADATA


class ReadContentMetadata(RolePermission):
    permission = CAN_READ_CONTENT_METADATA


class ReadContentAnalytics(RolePermission):
    permission = CAN_READ_CONTENT_ANALYTICS


class ReadRealtimeAnalytics(RolePermission):
    permission = CAN_READ_REALTIME_ANALYTICS


class ReadSearchAnalytics(RolePermission):
    permission = CAN_READ_SEARCH_ANALYTICS


class ReadUserAnalytics(RolePermission):
    permission = CAN_READ_USER_ANALYTICS


class RunAnalyticalQueries(RolePermission):
    permission = CAN_RUN_ANALYTICAL_QUERIES


class ReadSavedQueries(RolePermission):
    permission = CAN_READ_SAVED_QUERIES


class ManageSavedQueries(RolePermission):
    permission = CAN_MANAGE_SAVED_QUERIES


class ReadSystemAnalytics(RolePermission):
    permission = CAN_READ_SYSTEM_ANALYTICS


class ReadImportAnalytics(RolePermission):
    permission = CAN_READ_IMPORT_ANALYTICS


class QueryRawEvents(RolePermission):
    permission = CAN_QUERY_RAW_EVENTS


class ReadRawEvents(RolePermission):
    permission = CAN_READ_RAW_EVENTS


class ManageApiKeys(RolePermission):
    permission = CAN_MANAGE_API_KEYS


class ReadAuditLog(RolePermission):
    permission = CAN_READ_AUDIT_LOG


class ReadRetention(RolePermission):
    permission = CAN_READ_RETENTION


class EraseUserData(RolePermission):
    permission = CAN_ERASE_USER_DATA


class ExportUserData(RolePermission):
    permission = CAN_EXPORT_USER_DATA


class ReadReports(RolePermission):
    permission = CAN_READ_REPORTS


class ManageReports(RolePermission):
    permission = CAN_MANAGE_REPORTS


class ReadDashboards(RolePermission):
    permission = CAN_READ_DASHBOARDS


class ManageDashboards(RolePermission):
    permission = CAN_MANAGE_DASHBOARDS


class RunBatchJobs(RolePermission):
    permission = CAN_RUN_BATCH_JOBS
