"""The one schema: queries and mutations composed from one module per concept."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from graphql_schema.events import EventMutations, EventQueries


@strawberry.type
class Query(EventQueries):
    pass


@strawberry.type
class Mutation(EventMutations):
    pass


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        # Cost limits: deep or aliased-flood queries are refused before they run.
        extensions=[QueryDepthLimiter(max_depth=10), MaxTokensLimiter(max_token_count=5000), MaxAliasesLimiter(max_alias_count=30)],
    )


schema = build_schema()
