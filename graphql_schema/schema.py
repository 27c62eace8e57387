"""The one schema: queries and mutations composed from one module per concept."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from graphql_schema.content import ContentMetadataMutations, ContentQueries
from graphql_schema.events import EventMutations, EventQueries
from graphql_schema.realtime import RealtimeQueries, Subscription
from graphql_schema.search import SearchAnalyticsQueries
from graphql_schema.users import UserQueries


@strawberry.type
class Query(EventQueries, RealtimeQueries, ContentQueries, UserQueries, SearchAnalyticsQueries):
    pass


@strawberry.type
class Mutation(EventMutations, ContentMetadataMutations):
    pass


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        # Cost limits: deep or aliased-flood queries are refused before they run.
        extensions=[
            QueryDepthLimiter(max_depth=10),
            MaxTokensLimiter(max_token_count=5000),
            MaxAliasesLimiter(max_alias_count=30),
        ],
    )


schema = build_schema()
