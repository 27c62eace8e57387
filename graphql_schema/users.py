"""User analytics over GraphQL: the same answers as /api/v1/analytics/users/... (the same result cache
entries, semantic/analytics_reads.py)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from core.models import UserAnalytics
from graphql_schema.analytics_base import AnalyticsMap, AnalyticsRange, analytics_period, reads
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ReadUserAnalytics
from semantic import behavior, journeys, retention, segments, sessions, users


@strawberry.experimental.pydantic.type(model=UserAnalytics, all_fields=True, description="The spec's UserAnalytics")
class UserAnalyticsType:
    preferred_categories: AnalyticsMap
    preferred_languages: AnalyticsMap
    preferred_content_types: AnalyticsMap
    device_types: AnalyticsMap
    browser_types: AnalyticsMap


@strawberry.experimental.pydantic.type(model=users.UserAnalyticsReport, all_fields=True)
class UserAnalyticsReport:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=users.Preference, all_fields=True)
class Preference:
    pass


@strawberry.experimental.pydantic.type(model=users.UserPreferences, all_fields=True)
class UserPreferences:
    pass


@strawberry.experimental.pydantic.type(model=sessions.SessionStats, all_fields=True)
class SessionStats:
    pass


@strawberry.experimental.pydantic.type(model=users.ActiveUsersPoint, all_fields=True)
class ActiveUsersPoint:
    pass


@strawberry.experimental.pydantic.type(model=users.UsersOverview, all_fields=True)
class UsersOverview:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=segments.Segment, all_fields=True)
class UserSegment:
    pass


@strawberry.experimental.pydantic.type(model=segments.UserSegments, all_fields=True)
class UserSegments:
    rules: AnalyticsMap


@strawberry.experimental.pydantic.type(model=retention.CohortCell, all_fields=True)
class CohortCell:
    pass


@strawberry.experimental.pydantic.type(model=retention.Cohort, all_fields=True)
class Cohort:
    pass


@strawberry.experimental.pydantic.type(model=retention.CohortTable, all_fields=True)
class CohortTable:
    pass


@strawberry.experimental.pydantic.type(model=retention.RetentionPoint, all_fields=True)
class RetentionPoint:
    pass


@strawberry.experimental.pydantic.type(model=retention.RetentionReport, all_fields=True)
class RetentionReport:
    pass


@strawberry.experimental.pydantic.type(model=journeys.Transition, all_fields=True)
class ContentTransition:
    pass


@strawberry.experimental.pydantic.type(model=journeys.UserEvent, all_fields=True)
class UserJourneyEvent:
    pass


@strawberry.experimental.pydantic.type(model=journeys.UserSession, all_fields=True)
class UserJourneySession:
    pass


@strawberry.experimental.pydantic.type(model=journeys.UserJourney, all_fields=True)
class UserJourney:
    comparison: AnalyticsMap


@strawberry.experimental.pydantic.type(model=behavior.BehaviorPatterns, all_fields=True)
class BehaviorPatterns:
    views_by_hour: AnalyticsMap
    previous_views_by_hour: AnalyticsMap
    views_by_weekday: AnalyticsMap
    previous_views_by_weekday: AnalyticsMap
    session_lengths: AnalyticsMap
    previous_session_lengths: AnalyticsMap


@strawberry.type
class UserQueries:
    @strawberry.field(
        description="UserAnalytics of one user, against the previous period", permission_classes=[ReadUserAnalytics]
    )
    @maps_errors
    async def user_analytics(
        self, info: Info[GraphQLContext, None], user_id: str, range: AnalyticsRange | None = None
    ) -> UserAnalyticsReport:
        answer = await reads(info).user_report(user_id, analytics_period(info, range))
        return UserAnalyticsReport.from_pydantic(users.UserAnalyticsReport.model_validate(answer.json()))

    @strawberry.field(
        description="Active, new and returning users, DAU/WAU/MAU, stickiness and sessions",
        permission_classes=[ReadUserAnalytics],
    )
    @maps_errors
    async def users_overview(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None
    ) -> UsersOverview:
        answer = await reads(info).users_overview(analytics_period(info, range))
        return UsersOverview.from_pydantic(users.UsersOverview.model_validate(answer.json()))

    @strawberry.field(
        description="Rule-based segments: new, churning, power, regular, casual", permission_classes=[ReadUserAnalytics]
    )
    @maps_errors
    async def user_segments(
        self,
        info: Info[GraphQLContext, None],
        range: AnalyticsRange | None = None,
        power_min_share: float | None = None,
        regular_min_share: float | None = None,
        churn_inactive_days: int | None = None,
    ) -> UserSegments:
        answer = await reads(info).user_segments(
            analytics_period(info, range),
            power_min_share=power_min_share,
            regular_min_share=regular_min_share,
            churn_inactive_days=churn_inactive_days,
        )
        return UserSegments.from_pydantic(segments.UserSegments.model_validate(answer.json()))

    @strawberry.field(
        description="Cohorts by first-seen day, week or month (the range's granularity)",
        permission_classes=[ReadUserAnalytics],
    )
    @maps_errors
    async def user_cohorts(self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None) -> CohortTable:
        answer = await reads(info).user_cohorts(analytics_period(info, range))
        return CohortTable.from_pydantic(retention.CohortTable.model_validate(answer.json()))

    @strawberry.field(
        description="Retention curve over all cohorts, and churn against the previous period",
        permission_classes=[ReadUserAnalytics],
    )
    @maps_errors
    async def user_retention(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None
    ) -> RetentionReport:
        answer = await reads(info).user_retention(analytics_period(info, range))
        return RetentionReport.from_pydantic(retention.RetentionReport.model_validate(answer.json()))

    @strawberry.field(
        description="One user's sessions step by step, and content-to-content transitions",
        permission_classes=[ReadUserAnalytics],
    )
    @maps_errors
    async def user_journey(
        self, info: Info[GraphQLContext, None], user_id: str, range: AnalyticsRange | None = None, sessions: int = 20
    ) -> UserJourney:
        answer = await reads(info).user_journey(user_id, analytics_period(info, range), sessions=sessions)
        return UserJourney.from_pydantic(journeys.UserJourney.model_validate(answer.json()))

    @strawberry.field(
        description="Categories, languages and content types the user views", permission_classes=[ReadUserAnalytics]
    )
    @maps_errors
    async def user_preferences(
        self, info: Info[GraphQLContext, None], user_id: str, range: AnalyticsRange | None = None
    ) -> UserPreferences:
        answer = await reads(info).user_preferences(user_id, analytics_period(info, range))
        return UserPreferences.from_pydantic(users.UserPreferences.model_validate(answer.json()))

    @strawberry.field(
        description="Views by hour and weekday, session lengths, next-content transitions",
        permission_classes=[ReadUserAnalytics],
    )
    @maps_errors
    async def behavior_patterns(
        self, info: Info[GraphQLContext, None], range: AnalyticsRange | None = None, transitions: int = 20
    ) -> BehaviorPatterns:
        answer = await reads(info).behavior_patterns(analytics_period(info, range), transitions=transitions)
        return BehaviorPatterns.from_pydantic(behavior.BehaviorPatterns.model_validate(answer.json()))
