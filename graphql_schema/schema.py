"""The one schema: queries and mutations composed from one module per concept.

Two guards sit on every operation. Cost limits refuse a query before it runs: too many tokens (the
parser counts them), too deep, too many aliases, or too many fields once every fragment spread is
written out; fragments cannot hide any of these. In production, errors nobody anticipated reach
the client as a generic message, while the service's own errors (``AnalyticsError``: bad input,
forbidden, not found, ...) keep theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import strawberry
from strawberry.extensions import MaxTokensLimiter, SchemaExtension

from graphql_schema.analyses import AnalysesQueries
from graphql_schema.analytics_query import AnalyticsQueryQueries
from graphql_schema.content import ContentMetadataMutations, ContentQueries
from graphql_schema.dashboards import DashboardMutations, DashboardQueries, DashboardSubscription
from graphql_schema.database import DatabaseQueries
from graphql_schema.events import EventMutations, EventQueries
from graphql_schema.guards import MaskUnexpectedErrors, OperationLimits
from graphql_schema.imports import ImportQueries
from graphql_schema.jobs import JobMutations, JobQueries
from graphql_schema.realtime import RealtimeQueries, RealtimeSubscription
from graphql_schema.reports import ReportMutations, ReportQueries
from graphql_schema.saved_queries import SavedQueryMutations, SavedQueryQueries
from graphql_schema.search import SearchAnalyticsQueries
from graphql_schema.system import SystemQueries
from graphql_schema.users import UserQueries

MAX_DEPTH = 10
MAX_TOKENS = 5000
MAX_ALIASES = 30
# The token limit, applied to the query with its fragments written out: each field is a token at least.
MAX_EXPANDED_FIELDS = MAX_TOKENS


@strawberry.type
class Query(
    EventQueries,
    RealtimeQueries,
    ContentQueries,
    UserQueries,
    SearchAnalyticsQueries,
    ImportQueries,
    DatabaseQueries,
    SystemQueries,
    AnalyticsQueryQueries,
    AnalysesQueries,
    SavedQueryQueries,
    ReportQueries,
    DashboardQueries,
    JobQueries,
):
    pass


@strawberry.type
class Mutation(
    EventMutations, ContentMetadataMutations, SavedQueryMutations, ReportMutations, DashboardMutations, JobMutations
):
    pass


@strawberry.type
class Subscription(RealtimeSubscription, DashboardSubscription):
    pass


def build_schema(environment: str = "development") -> strawberry.Schema:
    """The schema for one environment: in production unexpected errors are masked."""
    # Factories, not instances: an extension keeps per-operation state, so each operation gets its own.
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(MaxTokensLimiter, max_token_count=MAX_TOKENS),
        partial(OperationLimits, max_depth=MAX_DEPTH, max_aliases=MAX_ALIASES, max_fields=MAX_EXPANDED_FIELDS),
    ]
    if environment == "production":
        extensions.append(MaskUnexpectedErrors)
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)


# The development schema: `make schema` exports it (the SDL is the same in every environment).
schema = build_schema()
