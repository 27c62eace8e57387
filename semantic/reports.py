"""Reports: the rules REST and GraphQL both apply to definitions, runs, files and sharing.

Who may do what:

- whoever may manage reports (content_manager, analyst, admin) creates them, if they may also read
  what the report type shows (content, user, system, import or search analytics; a custom report's
  saved query must be visible to them); the caller owns what it creates;
- the owner and admins change, schedule, share and delete a report;
- principals and roles it is shared with (or everyone, when it is public) see it, its runs and its
  status, and may generate it — computed for them, with their own role and content scope;
- a run's file is readable by those who see the report, hold the report type's operation, and whose
  content scope covers the scope the run was computed for (a scoped principal never receives numbers
  of content outside its scope, whoever made the file);
- everyone else gets 404, the same answer as for an id that does not exist.

A scheduled run is computed for the owner, with the role and scope the owner had when saving it.
Signed links (``POST /reports/{id}/share`` with ``link_expires_in_seconds``) download one run's file
without credentials until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from core.access import Permission, Principal
from core.errors import Forbidden, InvalidRequest, NotFound
from core.models import ReportType
from semantic.content_scope import ScopeNotApplicable, describe
from semantic.report_definitions import (
    SAVED_QUERY_SOURCE,
    ReportCreate,
    ReportDateRange,
    ReportPermissions,
    ReportScheduleBody,
    ReportShare,
    ReportUpdate,
    check_definition,
    normalized_date_range,
)
from semantic.report_schedule import Schedule
from semantic.report_templates import TEMPLATES, required_operation
from storage.blobs import BlobStore
from storage.notifier import parse_targets
from storage.report_deliveries import ReportDeliveries
from storage.reports import NewReport, ReportRepository, ReportRun, StoredReport, report_not_found

REPORTS_PREFIX = "/api/v1/analytics/reports"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 1_000_000

# Starts a run's task (pipelines/report_runs.py); the service only records the run.
Launch = Callable[[str], Awaitable[None]]
# Whether a saved query exists and ``principal`` may read it (NotFound otherwise).
SavedQueryCheck = Callable[[str, Principal], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SignedLink:
    url: str
    expires_at: int


class LinkSigner:
    """Signs and checks download links: HMAC-SHA256 over the report, the run and the expiry."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def sign(self, report_id: str, run_id: str, expires_at: int) -> str:
        text = f"{report_id}\n{run_id}\n{expires_at}".encode()
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()

    def link(self, report_id: str, run_id: str, ttl_seconds: int, *, now: float | None = None) -> SignedLink:
        expires = int((now if now is not None else time.time()) + ttl_seconds)
        query = urlencode({"run_id": run_id, "expires": expires, "signature": self.sign(report_id, run_id, expires)})
        return SignedLink(url=f"{REPORTS_PREFIX}/{report_id}/download?{query}", expires_at=expires)

    def check(self, report_id: str, run_id: str, expires_at: int, signature: str, *, now: float | None = None) -> None:
        """Forbidden for a link that was not signed here, or that has expired."""
        # As bytes: compare_digest refuses text with non-ASCII characters (TypeError), which a link may hold.
        if not hmac.compare_digest(self.sign(report_id, run_id, expires_at).encode(), signature.encode()):
            raise Forbidden("the download link's signature is not valid for this report and run")
        if (now if now is not None else time.time()) > expires_at:
            raise Forbidden("the download link has expired; ask for a new one (POST /reports/{id}/share)")


class ReportService:
    def __init__(
        self,
        reports: ReportRepository,
        *,
        launch: Launch,
        saved_query_check: SavedQueryCheck,
        links: LinkSigner,
        blobs: BlobStore | None = None,
        deliveries: ReportDeliveries | None = None,
    ) -> None:
        self.reports = reports
        self._blobs = blobs
        self._deliveries = deliveries
        self._launch = launch
        self._saved_query_check = saved_query_check
        self.links = links

    # --- definitions --------------------------------------------------------------------------------

    async def create(self, body: Any, principal: Principal) -> StoredReport:
        create = ReportCreate.parse(body)
        definition = {
            "report_type": create.report_type.value,
            "data_source": create.data_source,
            "filters": create.filters,
            "chart_type": create.chart_type.value if create.chart_type else None,
            "visualization_config": create.visualization_config,
        }
        await self._check_definition(definition, principal)
        date_range = normalized_date_range(create.date_range)
        schedule_config = self._schedule(create.is_scheduled, create.schedule_config)
        notifications = [t.to_dict() for t in parse_targets(create.notifications)]
        return await self.reports.create(
            principal,
            NewReport(
                name=create.name,
                description=create.description,
                report_type=create.report_type.value,
                report_format=create.report_format.value,
                data_source=create.data_source,
                date_range=date_range,
                filters=create.filters,
                chart_type=definition["chart_type"],
                visualization_config=create.visualization_config,
                is_scheduled=create.is_scheduled,
                schedule_config=schedule_config,
                notifications=notifications,
                shared_with=tuple(dict.fromkeys(create.shared_with)),
                shared_with_roles=tuple(dict.fromkeys(create.shared_with_roles)),
                is_public=create.is_public,
            ),
        )

    async def list_reports(
        self, principal: Principal, *, shared_only: bool = False, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> tuple[list[StoredReport], int]:
        return await self.reports.list_visible(principal, shared_only=shared_only, limit=limit, offset=offset)

    async def get(self, report_id: str, principal: Principal) -> StoredReport:
        report = await self.reports.get(report_id)
        if report is None or not report.visible_to(principal):
            raise report_not_found(report_id)
        return report

    async def update(self, report_id: str, body: Any, principal: Principal) -> StoredReport:
        update = ReportUpdate.parse(body)
        report = await self._managed(report_id, principal)
        changes = update.changes()
        merged = {
            "report_type": changes.get("report_type", report.report_type),
            "data_source": changes.get("data_source", report.data_source),
            "filters": changes.get("filters", report.filters),
            "chart_type": changes.get("chart_type", report.chart_type),
            "visualization_config": changes.get("visualization_config", report.visualization_config),
        }
        await self._check_definition(merged, principal)
        if update.date_range is not None:
            changes["date_range"] = normalized_date_range(update.date_range)
        if "notifications" in changes:
            changes["notifications"] = [t.to_dict() for t in parse_targets(changes["notifications"] or [])]
        if "filters" in changes and changes["filters"] is None:
            changes["filters"] = {}
        if "visualization_config" in changes and changes["visualization_config"] is None:
            changes["visualization_config"] = {}
        return await self.reports.update(report_id, changes, expected_version=update.version)

    async def delete(self, report_id: str, principal: Principal, *, version: int | None = None) -> StoredReport:
        """Delete the report, its runs (and slot history, by cascade) and its files."""
        await self._managed(report_id, principal)
        report = await self.reports.delete(report_id, expected_version=version)
        if self._blobs is not None:
            for key in await self._blobs.keys(f"{report_files(report.id)}/"):
                await self._blobs.delete(key)
        return report

    async def schedule(self, report_id: str, body: Any, principal: Principal) -> StoredReport:
        request = ReportScheduleBody.parse(body)
        report = await self._managed(report_id, principal)
        config = request.schedule_config if request.schedule_config is not None else report.schedule_config
        config = self._schedule(request.is_scheduled, config) if request.is_scheduled else config
        return await self.reports.update(report_id, {"is_scheduled": request.is_scheduled, "schedule_config": config})

    async def share(self, report_id: str, body: Any, principal: Principal) -> tuple[StoredReport, SignedLink | None]:
        request = ReportShare.parse(body)
        report = await self._managed(report_id, principal)
        if request.shared_with or request.shared_with_roles:
            report = await self.reports.update(
                report_id,
                {
                    "shared_with": list(dict.fromkeys([*report.shared_with, *request.shared_with])),
                    "shared_with_roles": list(dict.fromkeys([*report.shared_with_roles, *request.shared_with_roles])),
                },
            )
        link = None
        if request.link_expires_in_seconds is not None:
            run = await self._run_for_link(report, request.run_id)
            link = self.links.link(report.id, run.id, request.link_expires_in_seconds)
        elif request.run_id is not None:
            raise InvalidRequest(
                "run_id names the run a signed link downloads: give link_expires_in_seconds with it",
                details={"field": "link_expires_in_seconds"},
            )
        if not (request.shared_with or request.shared_with_roles or link):
            raise InvalidRequest(
                "give shared_with or shared_with_roles to share, or link_expires_in_seconds for a signed link",
                details={"field": "(body)"},
            )
        return report, link

    async def set_permissions(self, report_id: str, body: Any, principal: Principal) -> StoredReport:
        request = ReportPermissions.parse(body)
        await self._managed(report_id, principal)
        return await self.reports.update(
            report_id,
            {
                "shared_with": list(dict.fromkeys(request.shared_with)),
                "shared_with_roles": list(dict.fromkeys(request.shared_with_roles)),
                "is_public": request.is_public,
            },
        )

    # --- runs ---------------------------------------------------------------------------------------

    async def generate(self, report_id: str, principal: Principal) -> ReportRun:
        """Record a run for ``principal`` and start its task; the run id comes back at once."""
        report = await self.get(report_id, principal)
        self._require_type_access(report, principal)
        run = await self.reports.create_run(report, principal)
        await self._launch(run.id)
        return run

    async def runs(
        self, report_id: str, principal: Principal, *, limit: int = DEFAULT_PAGE_SIZE, offset: int = 0
    ) -> tuple[list[ReportRun], int]:
        await self.get(report_id, principal)
        return await self.reports.runs_of(report_id, limit=limit, offset=offset)

    async def status(
        self, report_id: str, principal: Principal, run_id: str | None = None
    ) -> tuple[StoredReport, ReportRun | None]:
        """The report and its latest run, or the run ``run_id``."""
        report = await self.get(report_id, principal)
        if run_id is not None:
            return report, await self._run_of(report, run_id)
        runs, _ = await self.reports.runs_of(report_id, limit=1)
        return report, runs[0] if runs else None

    async def deliveries(self, report_id: str, run_id: str, principal: Principal) -> list[dict[str, Any]]:
        """The notifications of a run, oldest first; a webhook's target shown as its scheme and host only,
        since its path is often its secret (Slack and Teams URLs are)."""
        report = await self.get(report_id, principal)
        await self._run_of(report, run_id)
        if self._deliveries is None:
            return []
        return [
            {
                "channel": row["channel"],
                "target": row["target"] if row["channel"] == "email" else _origin(row["target"]),
                "status": row["status"],
                "attempts": row["attempts"],
                "last_error": row["last_error"],
                "created_at": row["created_at"].isoformat(),
                "delivered_at": row["delivered_at"].isoformat() if row["delivered_at"] else None,
            }
            for row in await self._deliveries.of_run(run_id)
        ]

    async def downloadable(self, report_id: str, principal: Principal, run_id: str | None = None) -> ReportRun:
        """The run whose file ``principal`` may download: ``run_id``, or the latest completed run it may read."""
        report = await self.get(report_id, principal)
        self._require_type_access(report, principal)
        if run_id is not None:
            run = await self._run_of(report, run_id)
            if run.status != "completed":
                raise NotFound(
                    f"run {run_id!r} has no file: it is {run.status}" + (f" ({run.error})" if run.error else ""),
                    details={"field": "run_id", "status": run.status},
                )
            if not principal.scope.covers(run.requested_scope):
                raise Forbidden(
                    f"run {run_id!r} was computed for {describe(run.requested_scope)}, which the caller's content "
                    f"scope ({describe(principal.scope)}) does not cover; generate the report to get your own run",
                    details={"field": "run_id"},
                )
            return run
        for run in await self.reports.completed_runs(report.id):
            if principal.scope.covers(run.requested_scope):
                return run
        raise NotFound(
            f"report {report_id!r} has no completed run the caller may read; generate it first",
            details={"field": "report_id"},
        )

    async def signed_download(self, report_id: str, run_id: str, expires_at: int, signature: str) -> ReportRun:
        self.links.check(report_id, run_id, expires_at, signature)
        report = await self.reports.get(report_id)
        if report is None:
            raise report_not_found(report_id)
        run = await self._run_of(report, run_id)
        if run.status != "completed":
            raise NotFound(f"run {run_id!r} has no file: it is {run.status}", details={"field": "run_id"})
        return run

    # --- rules --------------------------------------------------------------------------------------

    async def _managed(self, report_id: str, principal: Principal) -> StoredReport:
        report = await self.get(report_id, principal)
        if not report.managed_by(principal):
            raise Forbidden(
                f"report {report_id!r} is shared with the caller, not owned by it: only its owner or an admin "
                "may change, schedule, share or delete it"
            )
        return report

    async def _run_of(self, report: StoredReport, run_id: str) -> ReportRun:
        run = await self.reports.get_run(run_id)
        if run is None or run.report_id != report.id:
            raise NotFound(f"report {report.id!r} has no run {run_id!r}", details={"field": "run_id"})
        return run

    async def _run_for_link(self, report: StoredReport, run_id: str | None) -> ReportRun:
        if run_id is not None:
            run = await self._run_of(report, run_id)
            if run.status != "completed":
                raise InvalidRequest(
                    f"run {run_id!r} is {run.status}: only a completed run has a file to link to",
                    details={"field": "run_id"},
                )
            return run
        runs = await self.reports.completed_runs(report.id, limit=1)
        if not runs:
            raise InvalidRequest(
                "the report has no completed run to link to; generate it first", details={"field": "run_id"}
            )
        return runs[0]

    def _require_type_access(self, report: StoredReport, principal: Principal) -> None:
        Permission(required_operation(report.report_type)).check(principal)

    async def _check_definition(self, definition: dict[str, Any], principal: Principal) -> None:
        report_type = definition["report_type"]
        check_definition(
            report_type,
            definition["data_source"],
            definition["filters"] or {},
            definition["chart_type"],
            definition["visualization_config"] or {},
        )
        Permission(required_operation(report_type)).check(principal)
        if report_type == ReportType.CUSTOM.value:
            saved_query_id = definition["data_source"].removeprefix(SAVED_QUERY_SOURCE)
            try:
                await self._saved_query_check(saved_query_id, principal)
            except NotFound as exc:
                raise InvalidRequest(
                    f"data_source names saved query {saved_query_id!r}, which does not exist or is not visible "
                    "to the caller",
                    details={"field": "data_source"},
                ) from exc
        elif report_type != ReportType.CONTENT_PERFORMANCE.value and not principal.scope.unrestricted:
            template = TEMPLATES[report_type]
            raise ScopeNotApplicable(f"{template.title.lower()} reports", principal.scope)

    @staticmethod
    def _schedule(is_scheduled: bool, config: dict[str, Any] | None) -> dict[str, Any] | None:
        if config is None:
            if is_scheduled:
                raise InvalidRequest(
                    'a scheduled report needs schedule_config, e.g. {"cron": "0 8 * * 1", "timezone": "UTC"}',
                    details={"field": "schedule_config"},
                )
            return None
        return dict(Schedule.parse(config).to_config())


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def report_files(report_id: str) -> str:
    """The folder of the file store that holds a report's files (one folder per run inside)."""
    return f"reports/{report_id}"


def report_to_dict(report: StoredReport) -> dict[str, Any]:
    """A report as both transports answer it: the spec's Report fields, and who owns and reads it."""
    return {
        "id": report.id,
        "name": report.name,
        "description": report.description,
        "report_type": report.report_type,
        "report_format": report.report_format,
        "data_source": report.data_source,
        "date_range": ReportDateRange.model_validate(report.date_range).model_dump(mode="json", exclude_none=True),
        "filters": report.filters,
        "chart_type": report.chart_type,
        "visualization_config": report.visualization_config,
        "is_scheduled": report.is_scheduled,
        "schedule_config": report.schedule_config,
        "notifications": report.notifications,
        "created_by": report.created_by,
        "owner_key_id": report.owner_key_id,
        "shared_with": list(report.shared_with),
        "shared_with_roles": [r.value for r in report.shared_with_roles],
        "is_public": report.is_public,
        "status": report.status,
        "last_generated": report.last_generated.isoformat() if report.last_generated else None,
        "output_url": report.output_url,
        "file_size": report.file_size,
        "created_at": report.created_at.isoformat(),
        "updated_at": report.updated_at.isoformat(),
        "version": report.version,
    }
