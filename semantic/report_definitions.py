"""Report definitions: the bodies REST and GraphQL send, and what each report type accepts.

A definition is checked against its type when it is saved, so a scheduled report never fails on a
typo weeks later: an unknown filter, metric, chart type or visualization key is a 400 naming it.

- ``date_range``: fixed dates (``start_date``, ``end_date``) or a ``relative`` range (``last_7_days``,
  ``last_30_days``, ``last_week``, ``last_month``, ``month_to_date``, ``today``, ``yesterday``) resolved
  when a run starts, in the report's ``timezone``; ``period_type`` (hourly, daily, weekly, monthly) is
  the grain of the report's series.
- ``filters``: dimension -> value or list of values, among the dimensions the type allows; ``metrics``
  (a list) chooses which of the type's metrics the KPIs and series show.
- ``data_source``: ``events`` for the built-in types; ``saved_query:<id>`` for ``custom``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, ValidationError, model_validator

from core.access import Role
from core.errors import FieldError, InvalidRequest, ValidationFailed
from core.models import ReportFormat, ReportType
from semantic.analytics_query import RelativeRange, check_timezone, relative_dates
from semantic.report_document import ChartType
from semantic.report_templates import TEMPLATES
from semantic.saved_queries import Description, KeyId, Name, NoNul, field_errors

MAX_SHARED = 100
MAX_NOTIFICATIONS = 20
MAX_FILTER_VALUES = 1_000
MAX_VERSION = 2**31 - 1
PERIOD_TYPES = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}
SAVED_QUERY_SOURCE = "saved_query:"
VISUALIZATION_KEYS = frozenset({"colors", "title", "x_label", "y_label", "top_n"})
MAX_TOP_N = 1_000
_UPDATABLE = (
    "name",
    "description",
    "report_type",
    "report_format",
    "data_source",
    "date_range",
    "filters",
    "chart_type",
    "visualization_config",
    "notifications",
)


class ReportDateRange(BaseModel):
    """The spec's DateRange, with a relative form and a time zone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_date: date | None = None
    end_date: date | None = None
    relative: RelativeRange | None = None
    period_type: Literal["hourly", "daily", "weekly", "monthly"] = "daily"
    timezone: Annotated[str, StringConstraints(max_length=64)] = "UTC"

    @model_validator(mode="after")
    def _dates_or_relative(self) -> ReportDateRange:
        dates = (self.start_date, self.end_date)
        if self.relative is not None and any(d is not None for d in dates):
            raise ValueError("give either relative or start_date and end_date, not both")
        if self.relative is None and None in dates:
            raise ValueError("give both start_date and end_date, or relative")
        if self.start_date is not None and self.end_date is not None and self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self

    def dates(self, today: date) -> tuple[date, date]:
        """The first and last day, both included, for ``today`` in the report's time zone."""
        if self.relative is not None:
            return relative_dates(self.relative, today)
        assert self.start_date is not None and self.end_date is not None
        return self.start_date, self.end_date

    @property
    def granularity(self) -> str:
        return PERIOD_TYPES[self.period_type]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @classmethod
    def parse(cls, body: Any) -> Any:
        if not isinstance(body, dict):
            raise ValidationFailed([FieldError(field="(body)", message="must be a JSON object", code="not_an_object")])
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            raise ValidationFailed(field_errors(exc)) from exc


class ReportCreate(_Body):
    name: Name
    description: Description | None = None
    report_type: ReportType
    report_format: ReportFormat
    data_source: Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul] = "events"
    date_range: ReportDateRange
    filters: dict[str, Any] = Field(default_factory=dict)
    chart_type: ChartType | None = None
    visualization_config: dict[str, Any] = Field(default_factory=dict)
    is_scheduled: bool = False
    schedule_config: dict[str, Any] | None = None
    notifications: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_NOTIFICATIONS)
    shared_with: list[KeyId] = Field(default_factory=list, max_length=MAX_SHARED)
    shared_with_roles: list[Role] = Field(default_factory=list, max_length=len(Role))
    is_public: bool = False


class ReportUpdate(_Body):
    """Any of the definition's fields; those left out keep their value. ``version``, when given, is the
    one read: the change applies only to that version."""

    version: StrictInt | None = Field(None, ge=1, le=MAX_VERSION)
    name: Name | None = None
    description: Description | None = None
    report_type: ReportType | None = None
    report_format: ReportFormat | None = None
    data_source: Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul] | None = None
    date_range: ReportDateRange | None = None
    filters: dict[str, Any] | None = None
    chart_type: ChartType | None = None
    visualization_config: dict[str, Any] | None = None
    notifications: list[dict[str, Any]] | None = Field(None, max_length=MAX_NOTIFICATIONS)

    @classmethod
    def parse(cls, body: Any) -> ReportUpdate:
        update: ReportUpdate = super().parse(body)
        if not update.model_fields_set & set(_UPDATABLE):
            raise ValidationFailed(
                [
                    FieldError(
                        field="(body)", message="give at least one of " + ", ".join(_UPDATABLE), code="missing_field"
                    )
                ]
            )
        return update

    def changes(self) -> dict[str, Any]:
        """The fields the body set, JSON-ready."""
        return {name: _plain(getattr(self, name)) for name in _UPDATABLE if name in self.model_fields_set}


class ReportShare(_Body):
    """POST /reports/{id}/share: add principals (and roles) to the report's readers; with
    ``link_expires_in_seconds``, also mint a signed download link of the latest run."""

    shared_with: list[KeyId] = Field(default_factory=list, max_length=MAX_SHARED)
    shared_with_roles: list[Role] = Field(default_factory=list, max_length=len(Role))
    link_expires_in_seconds: StrictInt | None = Field(None, ge=60, le=30 * 24 * 3600)
    run_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None


class ReportPermissions(_Body):
    """PUT /reports/{id}/permissions: the readers, replaced as a whole."""

    shared_with: list[KeyId] = Field(max_length=MAX_SHARED)
    shared_with_roles: list[Role] = Field(default_factory=list, max_length=len(Role))
    is_public: bool = False


class ReportScheduleBody(_Body):
    """POST /reports/{id}/schedule: the schedule (``schedule_config``) on, or ``is_scheduled: false`` off."""

    is_scheduled: bool = True
    schedule_config: dict[str, Any] | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, str):
        return value.value
    return value


def normalized_date_range(date_range: ReportDateRange) -> dict[str, Any]:
    check_timezone(date_range.timezone)
    return date_range.model_dump(mode="json", exclude_none=True)


def check_definition(
    report_type: str, data_source: str, filters: dict[str, Any], chart_type: str | None, visualization: dict[str, Any]
) -> None:
    """InvalidRequest (400) naming the first filter, metric, data source or visualization key the type
    does not accept."""
    template = TEMPLATES.get(report_type)
    if report_type == ReportType.CUSTOM.value:
        if not data_source.startswith(SAVED_QUERY_SOURCE) or len(data_source) == len(SAVED_QUERY_SOURCE):
            raise InvalidRequest(
                "a custom report reads a saved query: data_source must be 'saved_query:<saved query id>'",
                details={"field": "data_source"},
            )
        if filters:
            name = next(iter(filters))
            raise InvalidRequest(
                f"unknown filter {name!r}: a custom report is filtered by its saved query's own definition",
                details={"field": f"filters.{name}"},
            )
    else:
        assert template is not None
        if data_source != "events":
            raise InvalidRequest(
                f"a {report_type} report reads data_source 'events' (only custom reports read a saved query)",
                details={"field": "data_source"},
            )
        for name, value in filters.items():
            if name == "metrics":
                _check_metrics(value, template.metrics, report_type)
                continue
            if name not in template.filters:
                raise InvalidRequest(
                    f"unknown filter {name!r} for a {report_type} report; it accepts "
                    + ", ".join(sorted(template.filters)),
                    details={"field": f"filters.{name}"},
                )
            values = value if isinstance(value, list) else [value]
            if not values or len(values) > MAX_FILTER_VALUES:
                raise InvalidRequest(
                    f"filter {name!r} needs 1 to {MAX_FILTER_VALUES} values", details={"field": f"filters.{name}"}
                )
            for index, item in enumerate(values):
                if not isinstance(item, str | int) or isinstance(item, bool) or (isinstance(item, str) and not item):
                    raise InvalidRequest(
                        f"filter {name!r} takes non-empty strings or integers",
                        details={"field": f"filters.{name}" + (f"[{index}]" if isinstance(value, list) else "")},
                    )
    _check_visualization(visualization)
    del chart_type  # every ChartType applies to every type: the primary chart is drawn as it


def _check_metrics(value: Any, allowed: tuple[str, ...], report_type: str) -> None:
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            "filters.metrics is a non-empty list of metric names", details={"field": "filters.metrics"}
        )
    for index, name in enumerate(value):
        if name not in allowed:
            raise InvalidRequest(
                f"unknown metric {name!r} for a {report_type} report; it shows " + ", ".join(allowed),
                details={"field": f"filters.metrics[{index}]"},
            )


def _colours(value: Any) -> bool:
    return isinstance(value, list) and len(value) <= 20 and all(isinstance(c, str) and 0 < len(c) <= 40 for c in value)


def _check_visualization(config: dict[str, Any]) -> None:
    for key, value in config.items():
        field = f"visualization_config.{key}"
        if key not in VISUALIZATION_KEYS:
            raise InvalidRequest(
                f"unknown visualization setting {key!r}; known: " + ", ".join(sorted(VISUALIZATION_KEYS)),
                details={"field": field},
            )
        if key == "top_n" and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TOP_N):
            raise InvalidRequest(f"top_n is an integer from 1 to {MAX_TOP_N}", details={"field": field})
        if key == "colors" and (
            not isinstance(value, list)
            or len(value) > 20
            or not all(isinstance(c, str) and 0 < len(c) <= 40 for c in value)
        ):
            raise InvalidRequest("colors is a list of up to 20 CSS colours", details={"field": field})
        if key in {"title", "x_label", "y_label"} and (not isinstance(value, str) or len(value) > 200):
            raise InvalidRequest(f"{key} is a text of up to 200 characters", details={"field": field})
