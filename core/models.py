"""The spec's data models as pydantic v2 models.

``EventIn`` is what a client sends; ``AnalyticsEvent`` is what is stored and returned
(the spec's model plus the fields enrichment adds).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Required

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, StrictBool, TypeAdapter, model_validator, with_config

# pydantic reads TypedDicts from typing_extensions on Python < 3.12.
from typing_extensions import TypedDict

from core.taxonomy import CATEGORY_PATTERN, CUSTOM_EVENT_TYPE_PATTERN, EventType

__all__ = [
    "EVENT_IN",
    "AnalyticsEvent",
    "ContentAnalytics",
    "DateRange",
    "EventIn",
    "EventType",
    "Report",
    "ReportFormat",
    "ReportStatus",
    "ReportType",
    "SystemAnalytics",
    "UserAnalytics",
    "utc_now",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


_ID = Field(min_length=1, max_length=128)
_TEXT = Field(min_length=1, max_length=256)
_PURPOSE = Annotated[str, Field(min_length=1, max_length=64)]


# A TypedDict, not a BaseModel: validated events stay plain dicts, which is about three times
# cheaper per event than building model instances (the ingest path validates every event).
@with_config(ConfigDict(extra="forbid", str_strip_whitespace=True))
class EventIn(TypedDict, total=False):
    """An event as a client sends it. Unknown top-level fields are refused: custom data belongs in ``properties``.

    Only ``event_type`` is required; a field the client left out is absent from the dict.
    """

    id: Annotated[str | None, _ID]
    event_type: Required[Annotated[str, Field(min_length=2, max_length=64, pattern=CUSTOM_EVENT_TYPE_PATTERN.pattern)]]
    event_category: Annotated[str | None, Field(pattern=CATEGORY_PATTERN.pattern)]
    # Left as read: the validator makes it UTC (a timestamp without an offset is UTC).
    timestamp: datetime | None
    user_id: Annotated[str | None, _TEXT]
    session_id: Annotated[str | None, _TEXT]
    content_id: Annotated[str | None, _TEXT]
    resource_type: Annotated[str | None, Field(min_length=1, max_length=64)]
    resource_id: Annotated[str | None, _TEXT]
    ip_address: Annotated[str | None, Field(min_length=2, max_length=64)]
    user_agent: Annotated[str | None, Field(max_length=2048)]
    referrer: Annotated[str | None, Field(max_length=4096)]
    country: Annotated[str | None, Field(min_length=2, max_length=2, pattern=r"^[A-Za-z]{2}$")]
    region: Annotated[str | None, Field(min_length=1, max_length=128)]
    city: Annotated[str | None, Field(min_length=1, max_length=128)]
    # Checked to be an object, not copied (JSON object keys are strings already).
    properties: InstanceOf[dict]
    # Consent by purpose (docs/security.md#consent): {"analytics": false} leaves the event to the consent
    # policy. Read at ingest, never stored.
    consent: Annotated[dict[_PURPOSE, StrictBool], Field(max_length=32)] | None


EVENT_IN = TypeAdapter(EventIn)


class AnalyticsEvent(BaseModel):
    """A stored event: the spec's AnalyticsEvent plus what enrichment derived at ingest."""

    id: str = Field(..., description="Unique event identifier")
    event_type: str = Field(..., description="Event type (view, click, search, etc.)")
    event_category: str = Field(..., description="Event category (content, user, system)")
    timestamp: datetime = Field(default_factory=utc_now, description="Event timestamp")
    user_id: str | None = None
    session_id: str | None = None
    content_id: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    referrer: str | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    processed_at: datetime | None = None
    batch_id: str | None = None
    # Derived at ingest.
    device_type: str | None = None
    browser: str | None = None
    os: str | None = None
    traffic_source: str | None = None
    referrer_host: str | None = None


class ContentAnalytics(BaseModel):
    content_id: str
    date: date
    total_views: int = 0
    unique_views: int = 0
    average_view_duration: float = 0.0
    completion_rate: float = 0.0
    likes: int = 0
    shares: int = 0
    bookmarks: int = 0
    comments: int = 0
    search_impressions: int = 0
    search_clicks: int = 0
    recommendation_impressions: int = 0
    recommendation_clicks: int = 0
    direct_traffic: int = 0
    search_traffic: int = 0
    recommendation_traffic: int = 0
    external_traffic: int = 0
    top_countries: dict[str, int] = Field(default_factory=dict)
    top_regions: dict[str, int] = Field(default_factory=dict)
    desktop_views: int = 0
    mobile_views: int = 0
    tablet_views: int = 0
    hourly_distribution: dict[int, int] = Field(default_factory=dict)
    daily_trend: float = 0.0
    popularity_score: float = 0.0
    engagement_score: float = 0.0
    quality_score: float = 0.0
    calculated_at: datetime = Field(default_factory=utc_now)
    last_updated: datetime = Field(default_factory=utc_now)


class UserAnalytics(BaseModel):
    user_id: str
    date: date
    sessions: int = 0
    total_session_duration: float = 0.0
    average_session_duration: float = 0.0
    content_views: int = 0
    unique_content_views: int = 0
    total_watch_time: float = 0.0
    content_completions: int = 0
    searches_performed: int = 0
    shares_made: int = 0
    bookmarks_created: int = 0
    comments_made: int = 0
    pages_visited: int = 0
    bounce_rate: float = 0.0
    return_visits: int = 0
    preferred_categories: dict[str, int] = Field(default_factory=dict)
    preferred_languages: dict[str, int] = Field(default_factory=dict)
    preferred_content_types: dict[str, int] = Field(default_factory=dict)
    device_types: dict[str, int] = Field(default_factory=dict)
    browser_types: dict[str, int] = Field(default_factory=dict)
    engagement_score: float = 0.0
    loyalty_score: float = 0.0
    activity_score: float = 0.0
    calculated_at: datetime = Field(default_factory=utc_now)
    last_updated: datetime = Field(default_factory=utc_now)


class SystemAnalytics(BaseModel):
    service_name: str
    date: date
    hour: int = Field(..., ge=0, le=23)
    request_count: int = 0
    success_count: int = 0
    error_count: int = 0
    average_response_time: float = 0.0
    cpu_usage_avg: float = 0.0
    memory_usage_avg: float = 0.0
    disk_usage_avg: float = 0.0
    endpoint_stats: dict[str, dict[str, Any]] = Field(default_factory=dict)
    status_code_distribution: dict[str, int] = Field(default_factory=dict)
    db_query_count: int = 0
    db_avg_query_time: float = 0.0
    db_slow_queries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_hit_rate: float = 0.0
    external_api_calls: int = 0
    external_api_errors: int = 0
    external_avg_response_time: float = 0.0
    calculated_at: datetime = Field(default_factory=utc_now)


class ReportType(StrEnum):
    CONTENT_PERFORMANCE = "content_performance"
    USER_ENGAGEMENT = "user_engagement"
    SYSTEM_HEALTH = "system_health"
    IMPORT_SUMMARY = "import_summary"
    SEARCH_ANALYTICS = "search_analytics"
    CUSTOM = "custom"


class ReportFormat(StrEnum):
    PDF = "pdf"
    EXCEL = "excel"
    CSV = "csv"
    JSON = "json"
    HTML = "html"


class ReportStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    GENERATING = "generating"
    COMPLETED = "completed"
    FAILED = "failed"


class DateRange(BaseModel):
    start_date: date
    end_date: date
    period_type: str = Field("daily", pattern=r"^(hourly|daily|weekly|monthly)$")

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class Report(BaseModel):
    id: str
    name: str = Field(..., min_length=1, max_length=200)
    description: str | None = None
    report_type: ReportType
    report_format: ReportFormat
    data_source: str
    date_range: DateRange
    filters: dict[str, Any] = Field(default_factory=dict)
    chart_type: str | None = None
    visualization_config: dict[str, Any] = Field(default_factory=dict)
    is_scheduled: bool = False
    schedule_config: dict[str, Any] | None = None
    created_by: str
    shared_with: list[str] = Field(default_factory=list)
    is_public: bool = False
    status: ReportStatus = ReportStatus.DRAFT
    last_generated: datetime | None = None
    output_url: str | None = None
    file_size: int | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
