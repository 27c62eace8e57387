"""Saved query definitions over GraphQL: the same rules and errors as /api/v1/analytics/saved-queries.

Definitions travel as JSON. ``savedQuery`` is null for an id the caller may not see, as for one
that does not exist; the mutations answer ``not_found`` (404) for both, and ``forbidden`` (403) when
the caller may see the saved query but not change it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ManageSavedQueries, ReadSavedQueries
from semantic.saved_queries import DEFAULT_PAGE_SIZE, SavedQueryService
from storage.saved_queries import SavedQuery, SavedQueryPage


def saved_query_service(info: Info[GraphQLContext, None]) -> SavedQueryService:
    return info.context.saved_queries


@strawberry.type(name="SavedQuery", description="A saved query, funnel, retention, paths or stickiness definition")
class SavedQueryType:
    id: str
    name: str
    description: str
    kind: str
    definition: JSON
    owner_key_id: str
    owner_name: str
    shared_with_roles: list[str]
    shared_with_keys: list[str]
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(description="Goes up by one with every change; send it back to update")

    @classmethod
    def from_domain(cls, saved: SavedQuery) -> SavedQueryType:
        return cls(
            id=saved.id,
            name=saved.name,
            description=saved.description,
            kind=saved.kind,
            definition=saved.definition,
            owner_key_id=saved.owner_key_id,
            owner_name=saved.owner_name,
            shared_with_roles=[r.value for r in saved.shared_with_roles],
            shared_with_keys=list(saved.shared_with_keys),
            created_at=saved.created_at,
            updated_at=saved.updated_at,
            version=saved.version,
        )


@strawberry.type(name="SavedQueryPage", description="Saved queries the caller may see, newest first")
class SavedQueryPageType:
    items: list[SavedQueryType]
    total: int
    limit: int
    offset: int

    @classmethod
    def from_domain(cls, page: SavedQueryPage) -> SavedQueryPageType:
        return cls(
            items=[SavedQueryType.from_domain(s) for s in page.items],
            total=page.total,
            limit=page.limit,
            offset=page.offset,
        )


@strawberry.input(description="A definition to save; roles are admin, analyst, content_manager, viewer, service")
class SavedQueryInput:
    name: str
    kind: str
    definition: JSON
    description: str | None = None
    shared_with_roles: list[str] | None = None
    shared_with_keys: list[str] | None = None


@strawberry.input(description="The fields to change; those left out keep their value. version: the one read")
class SavedQueryChangesInput:
    version: int
    name: str | None = None
    description: str | None = None
    definition: JSON | None = None
    shared_with_roles: list[str] | None = None
    shared_with_keys: list[str] | None = None


def _body(value: Any) -> dict[str, Any]:
    """An input as the body REST receives (snake_case names), so both transports are checked alike."""
    return {name: field for name, field in vars(value).items() if field is not None}


@strawberry.type
class SavedQueryQueries:
    @strawberry.field(
        description="One saved query; null if it does not exist or is not shared with the caller",
        permission_classes=[ReadSavedQueries],
    )
    @maps_errors
    async def saved_query(self, info: Info[GraphQLContext, None], id: str) -> SavedQueryType | None:
        saved = await saved_query_service(info).find(id, info.context.principal)
        return SavedQueryType.from_domain(saved) if saved else None

    @strawberry.field(
        description="Saved queries the caller owns or that are shared with it (all for admins), newest first",
        permission_classes=[ReadSavedQueries],
    )
    @maps_errors
    async def saved_queries(
        self,
        info: Info[GraphQLContext, None],
        kind: str | None = None,
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> SavedQueryPageType:
        page = await saved_query_service(info).list(info.context.principal, kind=kind, limit=limit, offset=offset)
        return SavedQueryPageType.from_domain(page)


@strawberry.type
class SavedQueryMutations:
    @strawberry.mutation(
        description="Save a definition; the caller's key owns it", permission_classes=[ManageSavedQueries]
    )
    @maps_errors
    async def create_saved_query(self, info: Info[GraphQLContext, None], query: SavedQueryInput) -> SavedQueryType:
        saved = await saved_query_service(info).create(_body(query), info.context.principal)
        return SavedQueryType.from_domain(saved)

    @strawberry.mutation(
        description="Change a saved query (owner or admin); conflict if its version moved on",
        permission_classes=[ManageSavedQueries],
    )
    @maps_errors
    async def update_saved_query(
        self, info: Info[GraphQLContext, None], id: str, changes: SavedQueryChangesInput
    ) -> SavedQueryType:
        saved = await saved_query_service(info).update(id, _body(changes), info.context.principal)
        return SavedQueryType.from_domain(saved)

    @strawberry.mutation(
        description="Delete a saved query (owner or admin), only if still at version when given; returns it",
        permission_classes=[ManageSavedQueries],
    )
    @maps_errors
    async def delete_saved_query(
        self, info: Info[GraphQLContext, None], id: str, version: int | None = None
    ) -> SavedQueryType:
        deleted = await saved_query_service(info).delete(id, info.context.principal, version=version)
        return SavedQueryType.from_domain(deleted)
