"""Reports over GraphQL: the same rules, bodies and errors as /api/v1/analytics/reports.

Every input becomes the snake_case body the REST route reads and goes to the one ReportService
(semantic/reports.py), so a refusal names the same field on both transports (``filters.colour``,
``date_range.start_date``) in ``extensions.details``. A report the caller may not see is
``not_found`` (404), as an id that does not exist; one shared with the caller but not owned by it
is ``forbidden`` (403) to change. ``generateReport`` answers the run at once, still generating.
Files are not GraphQL values: a report's ``downloadPath`` is the REST route that serves them.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import UTC, date, datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from core.access import Role
from core.errors import AnalyticsError, InvalidRequest
from core.models import ReportFormat
from core.models import ReportType as ReportKind
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import maps_errors
from graphql_schema.permissions import ManageReports, ReadReports
from semantic.report_definitions import PERIOD_TYPES, ReportDateRange
from semantic.report_document import ChartType
from semantic.reports import DEFAULT_PAGE_SIZE, MAX_OFFSET, MAX_PAGE_SIZE, REPORTS_PREFIX, ReportService
from storage.reports import ReportRun, StoredReport

_ROLES = ", ".join(r.value for r in Role)


def _names(values: Any) -> str:
    return ", ".join(v.value for v in values)


def report_service(info: Info[GraphQLContext, None]) -> ReportService:
    reports = info.context.reports
    if reports is None:
        raise AnalyticsError("reports are not available on this replica")
    return reports


def download_path(report_id: str) -> str:
    """The REST route that serves the report's latest file the caller may read (``?run_id=`` for one run)."""
    return f"{REPORTS_PREFIX}/{report_id}/download"


def check_page(limit: int, offset: int) -> None:
    """The bounds REST puts on ``limit`` and ``offset``, refused naming the argument."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}", details={"field": "limit"})
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidRequest(f"offset must be between 0 and {MAX_OFFSET}", details={"field": "offset"})


def body_of(value: Any) -> Any:
    """An input (or argument) as the JSON body REST receives: snake_case names, dates as ISO text.
    Fields left out are absent; an explicit null stays null, as it would in the REST body."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: body_of(getattr(value, f.name))
            for f in fields(value)
            if getattr(value, f.name) is not strawberry.UNSET
        }
    if isinstance(value, list):
        return [body_of(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def given(**arguments: Any) -> dict[str, Any]:
    """The arguments the caller gave, as a REST body."""
    return {name: body_of(value) for name, value in arguments.items() if value is not strawberry.UNSET}


# ---- types ---------------------------------------------------------------------------------------


@strawberry.type(name="ReportDateRange", description="Fixed dates, or a relative range resolved when a run starts")
class ReportDateRangeType:
    start_date: date | None
    end_date: date | None
    relative: str | None = strawberry.field(description="last_7_days, last_30_days, last_week, last_month, ...")
    period_type: str = strawberry.field(description="The series' grain: " + ", ".join(PERIOD_TYPES))
    timezone: str

    @classmethod
    def from_domain(cls, value: dict[str, Any]) -> ReportDateRangeType:
        parsed = ReportDateRange.model_validate(value)
        return cls(
            start_date=parsed.start_date,
            end_date=parsed.end_date,
            relative=parsed.relative,
            period_type=parsed.period_type,
            timezone=parsed.timezone,
        )


@strawberry.type(name="Report", description="A report definition: what it shows, its schedule and who reads it")
class ReportType:
    id: str
    name: str
    description: str | None
    report_type: str = strawberry.field(description=_names(ReportKind))
    report_format: str = strawberry.field(description=_names(ReportFormat))
    data_source: str = strawberry.field(description="events, or saved_query:<id> for a custom report")
    date_range: ReportDateRangeType
    filters: JSON
    chart_type: str | None = strawberry.field(description=_names(ChartType))
    visualization_config: JSON
    is_scheduled: bool
    schedule_config: JSON | None = strawberry.field(description="cron, timezone, and optionally start_at, end_at")
    notifications: JSON = strawberry.field(description="Where each completed scheduled run is delivered")
    created_by: str
    owner_key_id: str
    shared_with: list[str] = strawberry.field(description="API key ids that may read the report")
    shared_with_roles: list[str] = strawberry.field(description="Roles that may read the report")
    is_public: bool = strawberry.field(description="Whether everyone who may read reports sees it")
    status: str = strawberry.field(description="The outcome of its latest run: draft, generating, completed, failed")
    last_generated: datetime | None
    output_url: str | None
    file_size: int | None = strawberry.field(description="Bytes of the latest completed file")
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(description="Goes up by one with every change; send it back to update")
    download_path: str = strawberry.field(
        description="The REST path that downloads the latest file the caller may read (add ?run_id= for one run)"
    )

    @classmethod
    def from_domain(cls, report: StoredReport) -> ReportType:
        return cls(
            id=report.id,
            name=report.name,
            description=report.description,
            report_type=report.report_type,
            report_format=report.report_format,
            data_source=report.data_source,
            date_range=ReportDateRangeType.from_domain(report.date_range),
            filters=report.filters,
            chart_type=report.chart_type,
            visualization_config=report.visualization_config,
            is_scheduled=report.is_scheduled,
            schedule_config=report.schedule_config,
            notifications=report.notifications,
            created_by=report.created_by,
            owner_key_id=report.owner_key_id,
            shared_with=list(report.shared_with),
            shared_with_roles=[r.value for r in report.shared_with_roles],
            is_public=report.is_public,
            status=report.status,
            last_generated=report.last_generated,
            output_url=report.output_url,
            file_size=report.file_size,
            created_at=report.created_at,
            updated_at=report.updated_at,
            version=report.version,
            download_path=download_path(report.id),
        )


@strawberry.type(name="ReportRunPeriod", description="The days a run covered, both included")
class ReportRunPeriod:
    start_date: date
    end_date: date | None


@strawberry.type(name="ReportRun", description="One generation of a report: its status and, once completed, its file")
class ReportRunType:
    run_id: str
    report_id: str
    status: str = strawberry.field(description="generating, completed or failed")
    trigger: str = strawberry.field(description="manual or schedule")
    slot_at: datetime | None = strawberry.field(description="The schedule's slot, for a scheduled run")
    report_format: str
    requested_by: str = strawberry.field(description="The API key id the run was computed for")
    period: ReportRunPeriod | None
    as_of: datetime | None = strawberry.field(description="The data watermark the numbers were read at")
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    file_name: str | None
    content_type: str | None
    file_size: int | None
    sha256: str | None
    download_path: str | None = strawberry.field(
        description="The REST path that downloads this run's file, once completed"
    )

    @classmethod
    def from_domain(cls, run: ReportRun) -> ReportRunType:
        return cls(
            run_id=run.id,
            report_id=run.report_id,
            status=run.status,
            trigger=run.trigger,
            slot_at=run.slot_at,
            report_format=run.report_format,
            requested_by=run.requested_by,
            period=None
            if run.period_start is None
            else ReportRunPeriod(start_date=run.period_start, end_date=run.period_end),
            as_of=run.as_of,
            attempts=run.attempts,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            error=run.error,
            file_name=run.file_name,
            content_type=run.content_type,
            file_size=run.file_size,
            sha256=run.sha256,
            download_path=f"{download_path(run.report_id)}?run_id={run.id}" if run.status == "completed" else None,
        )


@strawberry.type(name="ReportPage", description="Reports, newest first")
class ReportPage:
    items: list[ReportType]
    total: int
    limit: int
    offset: int


@strawberry.type(name="ReportRunPage", description="A report's runs, newest first")
class ReportRunPage:
    items: list[ReportRunType]
    total: int
    limit: int
    offset: int


@strawberry.type(name="ReportStatus", description="A report's status and its latest run, or the run asked for")
class ReportStatusType:
    report_id: str
    status: str
    last_generated: datetime | None
    run: ReportRunType | None


@strawberry.type(name="ReportLink", description="A signed link that downloads one run's file without credentials")
class ReportLink:
    url: str = strawberry.field(description="The path and signed query; valid until expiresAt")
    expires_at: datetime


@strawberry.type(name="ReportShareResult", description="The report as now shared, and the signed link if one was asked")
class ReportShareResult:
    report: ReportType
    link: ReportLink | None


# ---- inputs --------------------------------------------------------------------------------------


@strawberry.input(description="Fixed dates (startDate and endDate) or relative; periodType and timezone")
class ReportDateRangeInput:
    start_date: date | None = strawberry.UNSET
    end_date: date | None = strawberry.UNSET
    relative: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="last_7_days, last_30_days, last_week, last_month, month_to_date, today, yesterday",
    )
    period_type: str | None = strawberry.field(default=strawberry.UNSET, description=", ".join(PERIOD_TYPES))
    timezone: str | None = strawberry.field(default=strawberry.UNSET, description="An IANA zone; UTC if left out")


@strawberry.input(description=f"A report definition to save; the caller owns it. Roles are {_ROLES}")
class ReportInput:
    name: str
    report_type: str = strawberry.field(description=_names(ReportKind))
    report_format: str = strawberry.field(description=_names(ReportFormat))
    date_range: ReportDateRangeInput
    description: str | None = strawberry.UNSET
    data_source: str | None = strawberry.field(
        default=strawberry.UNSET, description="events (the default), or saved_query:<id> for a custom report"
    )
    filters: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="Dimension -> value or list of values; metrics: the metrics shown"
    )
    chart_type: str | None = strawberry.field(default=strawberry.UNSET, description=_names(ChartType))
    visualization_config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="colors, title, x_label, y_label, top_n"
    )
    is_scheduled: bool | None = strawberry.UNSET
    schedule_config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description='e.g. {"cron": "0 8 * * 1", "timezone": "Europe/Berlin"}'
    )
    notifications: list[JSON] | None = strawberry.UNSET
    shared_with: list[str] | None = strawberry.UNSET
    shared_with_roles: list[str] | None = strawberry.UNSET
    is_public: bool | None = strawberry.UNSET


@strawberry.input(description="The fields to change; those left out keep their value. version: the one read")
class ReportUpdateInput:
    version: int | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    report_type: str | None = strawberry.UNSET
    report_format: str | None = strawberry.UNSET
    data_source: str | None = strawberry.UNSET
    date_range: ReportDateRangeInput | None = strawberry.UNSET
    filters: JSON | None = strawberry.UNSET
    chart_type: str | None = strawberry.UNSET
    visualization_config: JSON | None = strawberry.UNSET
    notifications: list[JSON] | None = strawberry.UNSET


# ---- fields --------------------------------------------------------------------------------------


@strawberry.type
class ReportQueries:
    @strawberry.field(description="The reports the caller may see, newest first", permission_classes=[ReadReports])
    @maps_errors
    async def reports(
        self, info: Info[GraphQLContext, None], limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> ReportPage:
        check_page(limit, offset)
        items, total = await report_service(info).list_reports(info.context.principal, limit=limit, offset=offset)
        return ReportPage(items=[ReportType.from_domain(r) for r in items], total=total, limit=limit, offset=offset)

    @strawberry.field(
        description="The reports shared with the caller (by key, by role, or public) that it does not own",
        permission_classes=[ReadReports],
    )
    @maps_errors
    async def shared_reports(
        self, info: Info[GraphQLContext, None], limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> ReportPage:
        check_page(limit, offset)
        items, total = await report_service(info).list_reports(
            info.context.principal, shared_only=True, limit=limit, offset=offset
        )
        return ReportPage(items=[ReportType.from_domain(r) for r in items], total=total, limit=limit, offset=offset)

    @strawberry.field(
        description="One report; not_found if it does not exist or is not shared with the caller",
        permission_classes=[ReadReports],
    )
    @maps_errors
    async def report(self, info: Info[GraphQLContext, None], id: str) -> ReportType | None:
        return ReportType.from_domain(await report_service(info).get(id, info.context.principal))

    @strawberry.field(description="The report's runs, newest first", permission_classes=[ReadReports])
    @maps_errors
    async def report_runs(
        self, info: Info[GraphQLContext, None], report_id: str, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> ReportRunPage:
        check_page(limit, offset)
        runs, total = await report_service(info).runs(report_id, info.context.principal, limit=limit, offset=offset)
        return ReportRunPage(
            items=[ReportRunType.from_domain(r) for r in runs], total=total, limit=limit, offset=offset
        )

    @strawberry.field(
        description="The report's status and its latest run (or the run runId)", permission_classes=[ReadReports]
    )
    @maps_errors
    async def report_status(
        self, info: Info[GraphQLContext, None], report_id: str, run_id: str | None = None
    ) -> ReportStatusType | None:
        report, run = await report_service(info).status(report_id, info.context.principal, run_id)
        return ReportStatusType(
            report_id=report.id,
            status=report.status,
            last_generated=report.last_generated,
            run=ReportRunType.from_domain(run) if run is not None else None,
        )


@strawberry.type
class ReportMutations:
    @strawberry.mutation(
        description="Create a report definition; the caller owns it", permission_classes=[ManageReports]
    )
    @maps_errors
    async def create_report(self, info: Info[GraphQLContext, None], input: ReportInput) -> ReportType:
        report = await report_service(info).create(body_of(input), info.context.principal)
        return ReportType.from_domain(report)

    @strawberry.mutation(
        description="Change a report's definition (owner or admin); with version, only if it is still that version",
        permission_classes=[ManageReports],
    )
    @maps_errors
    async def update_report(self, info: Info[GraphQLContext, None], id: str, input: ReportUpdateInput) -> ReportType:
        report = await report_service(info).update(id, body_of(input), info.context.principal)
        return ReportType.from_domain(report)

    @strawberry.mutation(
        description="Delete a report, its runs and their files (owner or admin); with version, only at that version",
        permission_classes=[ManageReports],
    )
    @maps_errors
    async def delete_report(self, info: Info[GraphQLContext, None], id: str, version: int | None = None) -> bool:
        if version is not None and version < 1:
            raise InvalidRequest("version must be at least 1", details={"field": "version"})
        await report_service(info).delete(id, info.context.principal, version=version)
        return True

    @strawberry.mutation(
        description="Generate the report for the caller (its role and content scope); answers the run at once",
        permission_classes=[ReadReports],
    )
    @maps_errors
    async def generate_report(self, info: Info[GraphQLContext, None], id: str) -> ReportRunType:
        return ReportRunType.from_domain(await report_service(info).generate(id, info.context.principal))

    @strawberry.mutation(
        description="Schedule the report (cron and timezone in scheduleConfig), or stop it with isScheduled: false",
        permission_classes=[ManageReports],
    )
    @maps_errors
    async def schedule_report(
        self,
        info: Info[GraphQLContext, None],
        id: str,
        is_scheduled: bool | None = strawberry.UNSET,
        schedule_config: JSON | None = strawberry.UNSET,
    ) -> ReportType:
        body = given(is_scheduled=is_scheduled, schedule_config=schedule_config)
        return ReportType.from_domain(await report_service(info).schedule(id, body, info.context.principal))

    @strawberry.mutation(
        description="Share the report with keys and roles; with linkExpiresInSeconds, mint a signed download link",
        permission_classes=[ManageReports],
    )
    @maps_errors
    async def share_report(
        self,
        info: Info[GraphQLContext, None],
        id: str,
        shared_with: list[str] | None = strawberry.UNSET,
        shared_with_roles: list[str] | None = strawberry.UNSET,
        link_expires_in_seconds: int | None = strawberry.UNSET,
        run_id: str | None = strawberry.UNSET,
    ) -> ReportShareResult:
        body = given(
            shared_with=shared_with,
            shared_with_roles=shared_with_roles,
            link_expires_in_seconds=link_expires_in_seconds,
            run_id=run_id,
        )
        report, link = await report_service(info).share(id, body, info.context.principal)
        return ReportShareResult(
            report=ReportType.from_domain(report),
            link=None
            if link is None
            else ReportLink(url=link.url, expires_at=datetime.fromtimestamp(link.expires_at, UTC)),
        )

    @strawberry.mutation(
        description="Replace who may read the report: sharedWith, sharedWithRoles, isPublic (owner or admin)",
        permission_classes=[ManageReports],
    )
    @maps_errors
    async def set_report_permissions(
        self,
        info: Info[GraphQLContext, None],
        id: str,
        shared_with: list[str],
        shared_with_roles: list[str] | None = strawberry.UNSET,
        is_public: bool | None = strawberry.UNSET,
    ) -> ReportType:
        body = given(shared_with=shared_with, shared_with_roles=shared_with_roles, is_public=is_public)
        report = await report_service(info).set_permissions(id, body, info.context.principal)
        return ReportType.from_domain(report)
