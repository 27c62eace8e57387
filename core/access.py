"""Roles, the authenticated principal, and the permission matrix: which roles may do what.

The matrix below is the one table of who may perform each operation. Every REST route and GraphQL
field declares the ``Permission`` of its operation (serve_app/deps.py turns them into FastAPI
dependencies, graphql_schema/permissions.py into Strawberry permission classes), so both transports
refuse the same callers with the same 401/403 messages. docs/security.md prints the same matrix; a
test holds the two equal and sends every role to every route and field.

A principal may also be limited to part of the content (``ContentScope``): some categories and/or
some content ids. The analytics layer applies the scope to every answer it gives that principal
(semantic/content_scope.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from core.errors import Forbidden, Unauthenticated


class Role(StrEnum):
    ADMIN = "admin"
    ANALYST = "analyst"
    CONTENT_MANAGER = "content_manager"
    VIEWER = "viewer"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class ContentScope:
    """The content a principal may see: content in any of ``categories``, or any of ``content_ids``.

    Both empty means all content (no restriction). A scope never widens a role's permissions: it
    narrows what the permitted operations return.
    """

    categories: frozenset[str] = frozenset()
    content_ids: frozenset[str] = frozenset()

    @classmethod
    def of(cls, categories: Iterable[str] = (), content_ids: Iterable[str] = ()) -> ContentScope:
        return cls(frozenset(categories), frozenset(content_ids))

    @property
    def unrestricted(self) -> bool:
        return not self.categories and not self.content_ids

    def admits(self, content_id: str | None, category: str | None) -> bool:
        """Whether content with this id and category is inside the scope."""
        if self.unrestricted:
            return True
        return (content_id is not None and content_id in self.content_ids) or (
            category is not None and category in self.categories
        )

    def covers(self, other: ContentScope) -> bool:
        """Whether everything ``other`` admits is admitted here: a file computed for ``other`` (a report
        run, an export) shows nothing outside this scope."""
        if self.unrestricted:
            return True
        if other.unrestricted:
            return False
        return other.categories <= self.categories and other.content_ids <= self.content_ids

    def to_dict(self) -> dict[str, list[str]]:
        return {"categories": sorted(self.categories), "content_ids": sorted(self.content_ids)}


ALL_CONTENT = ContentScope()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: an API key (``key_id`` is the key's id) or a JWT bearer token (``key_id`` is
    ``jwt:<subject>``), with its role and content scope."""

    key_id: str
    name: str
    role: Role
    scope: ContentScope = field(default=ALL_CONTENT)


class Operation(StrEnum):
    """The operations of the API; each value is how a refusal names it ("role 'viewer' may not ...")."""

    INGEST_EVENTS = "ingest events"
    WRITE_CONTENT_METADATA = "write content metadata"
    READ_CONTENT_METADATA = "read content metadata"
    READ_CONTENT_ANALYTICS = "read content analytics"
    READ_REALTIME_ANALYTICS = "read real-time analytics"
    READ_SEARCH_ANALYTICS = "read search analytics"
    READ_USER_ANALYTICS = "read user analytics"
    RUN_ANALYTICAL_QUERIES = "run analytical queries"
    READ_SAVED_QUERIES = "read saved queries"
    MANAGE_SAVED_QUERIES = "manage saved queries"
    READ_SYSTEM_ANALYTICS = "read system analytics"
    READ_IMPORT_ANALYTICS = "read import analytics"
    QUERY_RAW_EVENTS = "query raw events"
    READ_RAW_EVENTS = "read raw events"
    MANAGE_API_KEYS = "manage API keys"
    READ_AUDIT_LOG = "read the audit log"
    READ_RETENTION = "read the data retention"
    ERASE_USER_DATA = "erase a user's data"
    EXPORT_USER_DATA = "export a user's data"
    READ_REPORTS = "read reports"
    DOWNLOAD_REPORTS = "download report files"
    MANAGE_REPORTS = "manage reports"
    EXPORT_DATA = "export data"
    READ_DASHBOARDS = "read dashboards"
    MANAGE_DASHBOARDS = "manage dashboards"
    RUN_BATCH_JOBS = "run batch jobs"


_A, _N, _C, _V, _S = Role.ADMIN, Role.ANALYST, Role.CONTENT_MANAGER, Role.VIEWER, Role.SERVICE

# The permission matrix: operation -> the roles that may perform it. `viewer` reads the content
# analytics of their scope and what is shared with them; `content_manager` adds search analytics;
# `analyst` adds user analytics, analytical queries, saved queries and system/import analytics;
# `admin` may do everything, including keys, audit, retention and the data subject's rights;
# `service` (the platform's other services) ingests events and writes content metadata only.
PERMISSION_MATRIX: Mapping[Operation, frozenset[Role]] = MappingProxyType(
    {
        Operation.INGEST_EVENTS: frozenset({_A, _S}),
        Operation.WRITE_CONTENT_METADATA: frozenset({_A, _S}),
        Operation.READ_CONTENT_METADATA: frozenset({_A, _N, _C, _V, _S}),
        Operation.READ_CONTENT_ANALYTICS: frozenset({_A, _N, _C, _V}),
        Operation.READ_REALTIME_ANALYTICS: frozenset({_A, _N, _C, _V}),
        Operation.READ_SEARCH_ANALYTICS: frozenset({_A, _N, _C}),
        Operation.READ_USER_ANALYTICS: frozenset({_A, _N}),
        Operation.RUN_ANALYTICAL_QUERIES: frozenset({_A, _N}),
        Operation.READ_SAVED_QUERIES: frozenset({_A, _N, _C, _V}),
        Operation.MANAGE_SAVED_QUERIES: frozenset({_A, _N}),
        Operation.READ_SYSTEM_ANALYTICS: frozenset({_A, _N}),
        Operation.READ_IMPORT_ANALYTICS: frozenset({_A, _N}),
        Operation.QUERY_RAW_EVENTS: frozenset({_A}),
        Operation.READ_RAW_EVENTS: frozenset({_A}),
        Operation.MANAGE_API_KEYS: frozenset({_A}),
        Operation.READ_AUDIT_LOG: frozenset({_A}),
        Operation.READ_RETENTION: frozenset({_A}),
        Operation.ERASE_USER_DATA: frozenset({_A}),
        Operation.EXPORT_USER_DATA: frozenset({_A}),
        # Reading a report (its definition, its runs, its files) is open to whoever it is shared with;
        # what a run may contain is still limited by the report type's own operation and the scope.
        Operation.READ_REPORTS: frozenset({_A, _N, _C, _V}),
        Operation.DOWNLOAD_REPORTS: frozenset({_A, _N, _C, _V}),
        Operation.MANAGE_REPORTS: frozenset({_A, _N, _C}),
        Operation.EXPORT_DATA: frozenset({_A, _N}),
        # As reports: a dashboard is read by whoever it is shared with; each widget's data still needs
        # the operation of what it shows, and is computed for the reader's scope.
        Operation.READ_DASHBOARDS: frozenset({_A, _N, _C, _V}),
        Operation.MANAGE_DASHBOARDS: frozenset({_A, _N, _C}),
        # The batch aggregation runs: seeing them and starting one (a day recomputed now).
        Operation.RUN_BATCH_JOBS: frozenset({_A}),
    }
)


# The reads the audit trail records as well as every mutation: who looked at raw events, at a person's
# data, at the keys and at the audit log itself.
AUDITED_READS: frozenset[Operation] = frozenset(
    {
        Operation.QUERY_RAW_EVENTS,
        Operation.READ_RAW_EVENTS,
        Operation.READ_USER_ANALYTICS,
        Operation.MANAGE_API_KEYS,
        Operation.READ_AUDIT_LOG,
        Operation.ERASE_USER_DATA,
        Operation.EXPORT_USER_DATA,
        Operation.EXPORT_DATA,
        Operation.DOWNLOAD_REPORTS,
    }
)


@dataclass(frozen=True, slots=True)
class Permission:
    """What one operation needs: the roles the matrix allows it."""

    operation: Operation

    @property
    def roles(self) -> frozenset[Role]:
        return PERMISSION_MATRIX[self.operation]

    @property
    def action(self) -> str:
        return self.operation.value

    def check(self, principal: Principal | None) -> Principal:
        """Raise Unauthenticated without a principal, Forbidden unless its role is one of ``roles``."""
        if principal is None:
            raise Unauthenticated("missing Authorization header; send 'Authorization: Bearer <api key>'")
        roles = self.roles
        if principal.role not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise Forbidden(f"role '{principal.role.value}' may not {self.action}; allowed roles: {allowed}")
        return principal


# The operations' permissions, each declared on its routes and on its GraphQL fields.
CAN_INGEST_EVENTS = Permission(Operation.INGEST_EVENTS)
CAN_WRITE_CONTENT_METADATA = Permission(Operation.WRITE_CONTENT_METADATA)
CAN_READ_CONTENT_METADATA = Permission(Operation.READ_CONTENT_METADATA)
CAN_READ_CONTENT_ANALYTICS = Permission(Operation.READ_CONTENT_ANALYTICS)
CAN_READ_REALTIME_ANALYTICS = Permission(Operation.READ_REALTIME_ANALYTICS)
CAN_READ_SEARCH_ANALYTICS = Permission(Operation.READ_SEARCH_ANALYTICS)
CAN_READ_USER_ANALYTICS = Permission(Operation.READ_USER_ANALYTICS)
CAN_RUN_ANALYTICAL_QUERIES = Permission(Operation.RUN_ANALYTICAL_QUERIES)
CAN_READ_SAVED_QUERIES = Permission(Operation.READ_SAVED_QUERIES)
CAN_MANAGE_SAVED_QUERIES = Permission(Operation.MANAGE_SAVED_QUERIES)
CAN_READ_SYSTEM_ANALYTICS = Permission(Operation.READ_SYSTEM_ANALYTICS)
CAN_READ_IMPORT_ANALYTICS = Permission(Operation.READ_IMPORT_ANALYTICS)
CAN_QUERY_RAW_EVENTS = Permission(Operation.QUERY_RAW_EVENTS)
CAN_READ_RAW_EVENTS = Permission(Operation.READ_RAW_EVENTS)
CAN_MANAGE_API_KEYS = Permission(Operation.MANAGE_API_KEYS)
CAN_READ_AUDIT_LOG = Permission(Operation.READ_AUDIT_LOG)
CAN_READ_RETENTION = Permission(Operation.READ_RETENTION)
CAN_ERASE_USER_DATA = Permission(Operation.ERASE_USER_DATA)
CAN_EXPORT_USER_DATA = Permission(Operation.EXPORT_USER_DATA)
CAN_READ_REPORTS = Permission(Operation.READ_REPORTS)
CAN_DOWNLOAD_REPORTS = Permission(Operation.DOWNLOAD_REPORTS)
CAN_MANAGE_REPORTS = Permission(Operation.MANAGE_REPORTS)
CAN_EXPORT_DATA = Permission(Operation.EXPORT_DATA)
CAN_READ_DASHBOARDS = Permission(Operation.READ_DASHBOARDS)
CAN_MANAGE_DASHBOARDS = Permission(Operation.MANAGE_DASHBOARDS)
CAN_RUN_BATCH_JOBS = Permission(Operation.RUN_BATCH_JOBS)
