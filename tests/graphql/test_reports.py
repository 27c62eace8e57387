"""Reports over GraphQL (graphql_schema/reports.py) on the real PostgreSQL, in the service's schema.

The ReportService is the real one over a migrated database; only its ``launch`` (which starts a run's
task on the cluster) records the run ids it is given: runs themselves are tested end to end elsewhere.
Refusals are compared with the REST routes' answers for the same body (serve_app/routes/reports.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from strawberry.types import ExecutionResult

from core.access import Principal, Role
from core.errors import AnalyticsError
from core.settings import Settings
from graphql_schema.context import GraphQLContext
from graphql_schema.errors import to_camel
from graphql_schema.schema import schema
from semantic.reports import LinkSigner, ReportService, report_to_dict
from semantic.saved_queries import SavedQueryService
from serve_app.auth import Authenticator
from serve_app.http import error_response, request_validation_response
from serve_app.routes.reports import router
from storage.blobs import BlobStore, open_blob_store
from storage.cache import InProcessCache
from storage.metadata import MetadataStore
from storage.reports import CompletedFile, ReportRepository
from tests.graphql.fakes import FakeServices

OWNER = Principal(key_id="key_owner", name="owner", role=Role.ANALYST)
ADMIN = Principal(key_id="key_admin", name="admin", role=Role.ADMIN)
VIEWER = Principal(key_id="key_viewer", name="viewer", role=Role.VIEWER)
STRANGER = Principal(key_id="key_stranger", name="stranger", role=Role.ANALYST)
SERVICE = Principal(key_id="key_service", name="service", role=Role.SERVICE)

PATH = "/api/v1/analytics/reports"

REPORT_FIELDS = (
    "id name description reportType reportFormat dataSource "
    "dateRange { startDate endDate relative periodType timezone } filters chartType visualizationConfig "
    "isScheduled scheduleConfig notifications createdBy ownerKeyId sharedWith sharedWithRoles isPublic status "
    "lastGenerated outputUrl fileSize createdAt updatedAt version downloadPath"
)
RUN_FIELDS = (
    "runId reportId status trigger slotAt reportFormat requestedBy period { startDate endDate } asOf attempts "
    "createdAt startedAt finishedAt error fileName contentType fileSize sha256 downloadPath"
)
CREATE = f"mutation($input: ReportInput!) {{ createReport(input: $input) {{ {REPORT_FIELDS} }} }}"
UPDATE = f"""mutation($id: String!, $input: ReportUpdateInput!) {{
  updateReport(id: $id, input: $input) {{ {REPORT_FIELDS} }} }}"""
DELETE = "mutation($id: String!, $version: Int) { deleteReport(id: $id, version: $version) }"
ONE = f"query($id: String!) {{ report(id: $id) {{ {REPORT_FIELDS} }} }}"
LIST = """query($limit: Int! = 50, $offset: Int! = 0) {
  reports(limit: $limit, offset: $offset) { total limit offset items { id name } } }"""
SHARED = "{ sharedReports { total items { id } } }"
GENERATE = f"mutation($id: String!) {{ generateReport(id: $id) {{ {RUN_FIELDS} }} }}"
STATUS = f"""query($reportId: String!, $runId: String) {{
  reportStatus(reportId: $reportId, runId: $runId) {{ reportId status lastGenerated run {{ {RUN_FIELDS} }} }} }}"""
RUNS = """query($reportId: String!) { reportRuns(reportId: $reportId) { total limit offset items { runId status } } }"""
SCHEDULE = """mutation($id: String!, $isScheduled: Boolean, $config: JSON) {
  scheduleReport(id: $id, isScheduled: $isScheduled, scheduleConfig: $config) {
    isScheduled scheduleConfig version } }"""
SHARE = """mutation($id: String!, $with: [String!], $roles: [String!], $ttl: Int, $runId: String) {
  shareReport(id: $id, sharedWith: $with, sharedWithRoles: $roles, linkExpiresInSeconds: $ttl, runId: $runId) {
    report { id sharedWith sharedWithRoles isPublic } link { url expiresAt } } }"""
PERMISSIONS = """mutation($id: String!, $with: [String!]!, $roles: [String!], $public: Boolean) {
  setReportPermissions(id: $id, sharedWith: $with, sharedWithRoles: $roles, isPublic: $public) {
    sharedWith sharedWithRoles isPublic } }"""

DEFINITION = {
    "name": "Weekly content",
    "reportType": "content_performance",
    "reportFormat": "pdf",
    "dateRange": {
        "startDate": "2026-03-01",
        "endDate": "2026-03-07",
        "periodType": "daily",
        "timezone": "Europe/Berlin",
    },
}


class RecordingLaunch:
    """Stands in for the cluster launcher: notes the run ids it is asked to start."""

    def __init__(self) -> None:
        self.launched: list[str] = []

    async def __call__(self, run_id: str) -> None:
        self.launched.append(run_id)


@pytest.fixture
async def metadata(migrated: MetadataStore) -> MetadataStore:
    # audit_log refuses TRUNCATE (append-only); the replica role of the test's superuser skips that trigger.
    await migrated.pool.execute(
        "SET session_replication_role = replica; "
        "TRUNCATE reports, report_runs, saved_queries, audit_log, api_keys CASCADE; RESET session_replication_role"
    )
    return migrated


@pytest.fixture
def launch() -> RecordingLaunch:
    return RecordingLaunch()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return open_blob_store(Settings(environment="test", data_dir=tmp_path))


@pytest.fixture
def service(metadata: MetadataStore, launch: RecordingLaunch, blobs: BlobStore) -> ReportService:
    return ReportService(
        ReportRepository(metadata.pool),
        launch=launch,
        saved_query_check=SavedQueryService.build(metadata, {}).get,
        links=LinkSigner(b"a test signing secret"),
        blobs=blobs,
    )


@dataclass
class Caller:
    """Runs documents in the service's schema as one principal, against one ReportService."""

    service: ReportService | None
    blobs: BlobStore | None = None

    async def run(self, principal: Principal | None, document: str, /, **variables: Any) -> ExecutionResult:
        context = GraphQLContext.build(principal, FakeServices.build())
        context.reports = self.service
        return await schema.execute(document, variable_values=variables, context_value=context)

    async def data(self, principal: Principal | None, document: str, /, **variables: Any) -> Any:
        result = await self.run(principal, document, **variables)
        assert result.errors is None, result.errors
        return result.data

    async def error(self, principal: Principal | None, document: str, /, **variables: Any) -> dict[str, Any]:
        result = await self.run(principal, document, **variables)
        assert result.errors is not None and len(result.errors) == 1, result.errors
        return result.errors[0].formatted

    async def create(self, principal: Principal = OWNER, **fields: Any) -> dict[str, Any]:
        return (await self.data(principal, CREATE, input={**DEFINITION, **fields}))["createReport"]


@pytest.fixture
def gql(service: ReportService, blobs: BlobStore) -> Caller:
    return Caller(service, blobs)


def camel(document: dict[str, Any]) -> dict[str, Any]:
    """A REST answer with the GraphQL field names; nested JSON values keep theirs."""
    renamed = {to_camel(k): v for k, v in document.items()}
    if isinstance(renamed.get("dateRange"), dict):
        renamed["dateRange"] = {to_camel(k): v for k, v in renamed["dateRange"].items()}
    if isinstance(renamed.get("period"), dict):
        renamed["period"] = {to_camel(k): v for k, v in renamed["period"].items()}
    return renamed


def test_the_fields_and_their_arguments() -> None:
    sdl = schema.as_str()
    for line in (
        "reports(limit: Int! = 50, offset: Int! = 0): ReportPage!",
        "sharedReports(limit: Int! = 50, offset: Int! = 0): ReportPage!",
        "report(id: String!): Report",
        "reportRuns(reportId: String!, limit: Int! = 50, offset: Int! = 0): ReportRunPage!",
        "reportStatus(reportId: String!, runId: String = null): ReportStatus",
        "createReport(input: ReportInput!): Report!",
        "updateReport(id: String!, input: ReportUpdateInput!): Report!",
        "deleteReport(id: String!, version: Int = null): Boolean!",
        "generateReport(id: String!): ReportRun!",
        "scheduleReport(id: String!, isScheduled: Boolean, scheduleConfig: JSON): Report!",
        "shareReport(id: String!, sharedWith: [String!], sharedWithRoles: [String!], "
        "linkExpiresInSeconds: Int, runId: String): ReportShareResult!",
        "setReportPermissions(id: String!, sharedWith: [String!]!, sharedWithRoles: [String!], "
        "isPublic: Boolean): Report!",
    ):
        assert line in sdl, line


async def test_create_read_list_update_delete(gql: Caller, service: ReportService, blobs: BlobStore) -> None:
    created = await gql.create(
        description="Mondays",
        filters={"category": ["news", "sport"], "metrics": ["views", "plays"]},
        chartType="bar",
        visualizationConfig={"title": "Views", "top_n": 5},
        sharedWithRoles=["viewer"],
    )
    report_id = created["id"]
    assert report_id.startswith("rep_")
    assert {k: v for k, v in created.items() if k not in ("id", "createdAt", "updatedAt")} == {
        "name": "Weekly content",
        "description": "Mondays",
        "reportType": "content_performance",
        "reportFormat": "pdf",
        "dataSource": "events",
        "dateRange": {
            "startDate": "2026-03-01",
            "endDate": "2026-03-07",
            "relative": None,
            "periodType": "daily",
            "timezone": "Europe/Berlin",
        },
        "filters": {"category": ["news", "sport"], "metrics": ["views", "plays"]},
        "chartType": "bar",
        "visualizationConfig": {"title": "Views", "top_n": 5},
        "isScheduled": False,
        "scheduleConfig": None,
        "notifications": [],
        "createdBy": "owner",
        "ownerKeyId": "key_owner",
        "sharedWith": [],
        "sharedWithRoles": ["viewer"],
        "isPublic": False,
        "status": "draft",
        "lastGenerated": None,
        "outputUrl": None,
        "fileSize": None,
        "version": 1,
        "downloadPath": f"{PATH}/{report_id}/download",
    }
    # Every field REST answers, with the same value (the date range's absent relative is null here).
    rest = camel(report_to_dict(await service.get(report_id, OWNER)))
    rest["dateRange"] = {"relative": None, **rest["dateRange"]}
    assert {**rest, "downloadPath": created["downloadPath"]} == created
    assert (await gql.data(VIEWER, ONE, id=report_id))["report"] == created

    relative = await gql.create(name="Last week", dateRange={"relative": "last_week"})
    assert relative["dateRange"] == {
        "startDate": None,
        "endDate": None,
        "relative": "last_week",
        "periodType": "daily",
        "timezone": "UTC",
    }
    page = (await gql.data(OWNER, LIST))["reports"]
    assert page == {
        "total": 2,
        "limit": 50,
        "offset": 0,
        "items": [{"id": relative["id"], "name": "Last week"}, {"id": report_id, "name": "Weekly content"}],
    }
    second = (await gql.data(OWNER, LIST, limit=1, offset=1))["reports"]
    assert (second["total"], second["items"]) == (2, [{"id": report_id, "name": "Weekly content"}])
    assert (await gql.data(VIEWER, LIST))["reports"]["items"] == [{"id": report_id, "name": "Weekly content"}]

    changes = {"version": 1, "name": "Renamed", "filters": None, "dateRange": {"relative": "last_30_days"}}
    updated = (await gql.data(OWNER, UPDATE, id=report_id, input=changes))["updateReport"]
    assert (updated["name"], updated["version"], updated["filters"], updated["description"]) == (
        "Renamed",
        2,
        {},
        "Mondays",
    )
    assert updated["dateRange"]["relative"] == "last_30_days" and updated["dateRange"]["timezone"] == "UTC"
    stale = await gql.error(OWNER, UPDATE, id=report_id, input={"version": 1, "name": "Late"})
    assert stale["extensions"] == {
        "code": "conflict",
        "status": 409,
        "details": {"field": "version", "current_version": 2},
    }

    # Its files go with it; another report's stay.
    await blobs.put(f"reports/{report_id}/run_a.pdf", b"%PDF-1", content_type="application/pdf")
    await blobs.put(f"reports/{relative['id']}/run_b.pdf", b"%PDF-2", content_type="application/pdf")
    assert (await gql.error(OWNER, DELETE, id=report_id, version=1))["extensions"]["status"] == 409
    assert (await gql.data(OWNER, DELETE, id=report_id, version=2)) == {"deleteReport": True}
    assert await blobs.keys("reports/") == [f"reports/{relative['id']}/run_b.pdf"]
    gone = await gql.error(OWNER, ONE, id=report_id)
    assert gone["message"] == f"report {report_id!r} does not exist"
    assert gone["extensions"] == {"code": "not_found", "status": 404, "details": {"field": "report_id"}}
    assert (await gql.data(OWNER, LIST))["reports"]["total"] == 1


async def test_sharing_decides_who_sees_and_who_changes(gql: Caller) -> None:
    report_id = (await gql.create())["id"]
    missing = await gql.error(STRANGER, ONE, id=report_id)
    # The same answer as for an id that does not exist.
    assert missing["message"] == f"report {report_id!r} does not exist"
    assert missing["extensions"] == {"code": "not_found", "status": 404, "details": {"field": "report_id"}}
    assert (await gql.error(STRANGER, ONE, id="rep_nope"))["message"] == "report 'rep_nope' does not exist"
    assert (await gql.data(STRANGER, LIST))["reports"] == {"total": 0, "limit": 50, "offset": 0, "items": []}
    assert (await gql.error(STRANGER, UPDATE, id=report_id, input={"name": "x"}))["extensions"]["status"] == 404
    assert (await gql.error(STRANGER, GENERATE, id=report_id))["extensions"]["status"] == 404

    shared = (await gql.data(OWNER, SHARE, id=report_id, **{"with": ["key_stranger"]}))["shareReport"]
    assert shared == {
        "report": {"id": report_id, "sharedWith": ["key_stranger"], "sharedWithRoles": [], "isPublic": False},
        "link": None,
    }
    assert (await gql.data(STRANGER, ONE, id=report_id))["report"]["id"] == report_id
    assert (await gql.data(STRANGER, SHARED))["sharedReports"] == {"total": 1, "items": [{"id": report_id}]}
    assert (await gql.data(OWNER, SHARED))["sharedReports"] == {"total": 0, "items": []}

    for document, variables in (
        (UPDATE, {"id": report_id, "input": {"name": "Mine now"}}),
        (DELETE, {"id": report_id}),
        (SCHEDULE, {"id": report_id, "isScheduled": False}),
        (SHARE, {"id": report_id, "roles": ["viewer"]}),
        (PERMISSIONS, {"id": report_id, "with": ["key_stranger", "key_friend"]}),
    ):
        forbidden = await gql.error(STRANGER, document, **variables)
        assert forbidden["message"] == (
            f"report {report_id!r} is shared with the caller, not owned by it: only its owner or an admin "
            "may change, schedule, share or delete it"
        )
        assert forbidden["extensions"] == {"code": "forbidden", "status": 403}

    # Roles: the viewer reads once viewers are added; an admin changes what it does not own.
    assert (await gql.error(VIEWER, ONE, id=report_id))["extensions"]["code"] == "not_found"
    by_role = (await gql.data(OWNER, SHARE, id=report_id, roles=["viewer"]))["shareReport"]["report"]
    assert (by_role["sharedWith"], by_role["sharedWithRoles"]) == (["key_stranger"], ["viewer"])
    assert (await gql.data(VIEWER, ONE, id=report_id))["report"]["id"] == report_id
    replaced = await gql.data(ADMIN, PERMISSIONS, id=report_id, **{"with": []}, public=False)
    assert replaced["setReportPermissions"] == {"sharedWith": [], "sharedWithRoles": [], "isPublic": False}
    assert (await gql.error(STRANGER, ONE, id=report_id))["extensions"]["code"] == "not_found"
    assert (await gql.error(VIEWER, ONE, id=report_id))["extensions"]["code"] == "not_found"
    public = await gql.data(OWNER, PERMISSIONS, id=report_id, **{"with": []}, public=True)
    assert public["setReportPermissions"]["isPublic"] is True
    assert (await gql.data(VIEWER, SHARED))["sharedReports"] == {"total": 1, "items": [{"id": report_id}]}
    nothing = await gql.error(OWNER, SHARE, id=report_id)
    assert (nothing["extensions"]["code"], nothing["extensions"]["details"]) == ("invalid_request", {"field": "(body)"})


async def test_generate_answers_the_run_at_once_and_status_follows_it(
    gql: Caller, service: ReportService, launch: RecordingLaunch
) -> None:
    report_id = (await gql.create(sharedWithRoles=["viewer"]))["id"]
    assert (await gql.data(VIEWER, STATUS, reportId=report_id))["reportStatus"] == {
        "reportId": report_id,
        "status": "draft",
        "lastGenerated": None,
        "run": None,
    }
    run = (await gql.data(VIEWER, GENERATE, id=report_id))["generateReport"]
    assert launch.launched == [run["runId"]]
    assert run["runId"].startswith("run_")
    assert {k: v for k, v in run.items() if k not in ("runId", "createdAt")} == {
        "reportId": report_id,
        "status": "generating",
        "trigger": "manual",
        "slotAt": None,
        "reportFormat": "pdf",
        "requestedBy": "key_viewer",
        "period": None,
        "asOf": None,
        "attempts": 0,
        "startedAt": None,
        "finishedAt": None,
        "error": None,
        "fileName": None,
        "contentType": None,
        "fileSize": None,
        "sha256": None,
        "downloadPath": None,
    }
    stored = await service.reports.get_run(run["runId"])
    assert stored is not None
    assert {**camel(stored.to_dict()), "downloadPath": None} == run

    status = (await gql.data(OWNER, STATUS, reportId=report_id))["reportStatus"]
    assert (status["status"], status["run"]) == ("generating", run)
    assert (await gql.data(OWNER, STATUS, reportId=report_id, runId=run["runId"]))["reportStatus"]["run"] == run
    other = await gql.error(OWNER, STATUS, reportId=report_id, runId="run_other")
    assert (other["message"], other["extensions"]["details"]) == (
        f"report {report_id!r} has no run 'run_other'",
        {"field": "run_id"},
    )
    second = (await gql.data(OWNER, GENERATE, id=report_id))["generateReport"]
    assert launch.launched == [run["runId"], second["runId"]]
    assert (await gql.data(OWNER, RUNS, reportId=report_id))["reportRuns"] == {
        "total": 2,
        "limit": 50,
        "offset": 0,
        "items": [
            {"runId": second["runId"], "status": "generating"},
            {"runId": run["runId"], "status": "generating"},
        ],
    }

    # Once a run has its file: the run's download path, and a signed link to it.
    await service.reports.start_run(run["runId"])
    await service.reports.complete_run(
        run["runId"],
        CompletedFile(
            blob_key=f"reports/{report_id}/{run['runId']}.pdf",
            content_type="application/pdf",
            file_name="weekly-content.pdf",
            file_size=1234,
            sha256="ab" * 32,
            as_of=datetime(2026, 3, 8, 6, 0, tzinfo=UTC),
            period_start=date(2026, 3, 1),
            period_end=date(2026, 3, 7),
        ),
        output_url=f"{PATH}/{report_id}/download?run_id={run['runId']}",
    )
    done = (await gql.data(OWNER, STATUS, reportId=report_id, runId=run["runId"]))["reportStatus"]
    assert done["status"] == "completed" and done["lastGenerated"] is not None
    assert (done["run"]["status"], done["run"]["fileSize"], done["run"]["period"], done["run"]["downloadPath"]) == (
        "completed",
        1234,
        {"startDate": "2026-03-01", "endDate": "2026-03-07"},
        f"{PATH}/{report_id}/download?run_id={run['runId']}",
    )
    before = int(datetime.now(UTC).timestamp())
    link = (await gql.data(OWNER, SHARE, id=report_id, ttl=3600))["shareReport"]["link"]
    url = urlsplit(link["url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == f"{PATH}/{report_id}/download" and query["run_id"] == run["runId"]
    expires = int(query["expires"])
    assert before + 3600 <= expires <= int(datetime.now(UTC).timestamp()) + 3600
    assert link["expiresAt"] == datetime.fromtimestamp(expires, UTC).isoformat()
    service.links.check(report_id, run["runId"], expires, query["signature"])
    not_done = await gql.error(OWNER, SHARE, id=report_id, ttl=3600, runId=second["runId"])
    assert not_done["extensions"]["details"] == {"field": "run_id"}


async def test_schedule_on_and_off(gql: Caller) -> None:
    report_id = (await gql.create())["id"]
    missing = await gql.error(OWNER, SCHEDULE, id=report_id, isScheduled=True)
    assert missing["extensions"] == {"code": "invalid_request", "status": 400, "details": {"field": "schedule_config"}}
    config = {"cron": "0 8 * * 1", "timezone": "Europe/Berlin"}
    on = (await gql.data(OWNER, SCHEDULE, id=report_id, config=config))["scheduleReport"]
    assert on == {"isScheduled": True, "scheduleConfig": config, "version": 2}
    off = (await gql.data(OWNER, SCHEDULE, id=report_id, isScheduled=False))["scheduleReport"]
    assert off == {"isScheduled": False, "scheduleConfig": config, "version": 3}


async def test_roles_that_may_not_are_refused_naming_the_role(gql: Caller) -> None:
    viewer = await gql.error(VIEWER, CREATE, input=DEFINITION)
    assert viewer["message"] == "role 'viewer' may not manage reports; allowed roles: admin, analyst, content_manager"
    assert viewer["extensions"] == {"code": "forbidden", "status": 403}
    service_key = await gql.error(SERVICE, LIST)
    assert service_key["message"] == (
        "role 'service' may not read reports; allowed roles: admin, analyst, content_manager, viewer"
    )
    assert (await gql.error(None, LIST))["extensions"]["code"] == "unauthenticated"
    # Managing reports is not enough for a type the role may not read (user analytics for a content manager).
    manager = Principal(key_id="key_cm", name="cm", role=Role.CONTENT_MANAGER)
    users = await gql.error(manager, CREATE, input={**DEFINITION, "reportType": "user_engagement"})
    assert users["message"].startswith("role 'content_manager' may not read user analytics")
    assert (await gql.data(ADMIN, LIST))["reports"]["total"] == 0


async def test_a_replica_without_reports_says_so() -> None:
    error = await Caller(None).error(OWNER, LIST)
    assert (error["message"], error["extensions"]) == (
        "reports are not available on this replica",
        {"code": "internal_error", "status": 500},
    )


# ---- the same refusals as REST -------------------------------------------------------------------


@dataclass
class RouteServices:
    """The part of serve_app.services.Services the report routes use."""

    auth: Authenticator
    reports: ReportService
    blobs: BlobStore


@pytest.fixture
async def rest(metadata: MetadataStore, service: ReportService, blobs: BlobStore) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()

    @app.exception_handler(AnalyticsError)
    async def _domain_error(_: Request, exc: AnalyticsError) -> Any:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _parameter_error(_: Request, exc: RequestValidationError) -> Any:
        return request_validation_response(exc)

    app.include_router(router)
    app.state.services = RouteServices(Authenticator(metadata, InProcessCache(), cache_seconds=0), service, blobs)
    _, plain = await metadata.create_api_key("owner", Role.ANALYST)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test", headers={"Authorization": f"Bearer {plain}"}
    ) as client:
        yield client


REST_DEFINITION = {
    "name": "Weekly content",
    "report_type": "content_performance",
    "report_format": "pdf",
    "date_range": {"start_date": "2026-03-01", "end_date": "2026-03-07"},
}


@pytest.mark.parametrize(
    ("graphql_fields", "rest_fields", "field"),
    [
        ({"filters": {"colour": "red"}}, {"filters": {"colour": "red"}}, "filters.colour"),
        (
            {"filters": {"metrics": ["views", "hype"]}},
            {"filters": {"metrics": ["views", "hype"]}},
            "filters.metrics[1]",
        ),
        ({"visualizationConfig": {"top_n": 0}}, {"visualization_config": {"top_n": 0}}, "visualization_config.top_n"),
        ({"dataSource": "saved_query:sq_x"}, {"data_source": "saved_query:sq_x"}, "data_source"),
        ({"reportFormat": "docx"}, {"report_format": "docx"}, "report_format"),
        ({"chartType": "radar"}, {"chart_type": "radar"}, "chart_type"),
        ({"sharedWithRoles": ["everyone"]}, {"shared_with_roles": ["everyone"]}, "shared_with_roles.0"),
        (
            {"dateRange": {"startDate": "2026-03-07", "endDate": "2026-03-01"}},
            {"date_range": {"start_date": "2026-03-07", "end_date": "2026-03-01"}},
            "date_range",
        ),
        (
            {"dateRange": {"relative": "last_7_days", "timezone": "Mars/Olympus"}},
            {"date_range": {"relative": "last_7_days", "timezone": "Mars/Olympus"}},
            "timezone",
        ),
        ({"isScheduled": True}, {"is_scheduled": True}, "schedule_config"),
    ],
)
async def test_a_refused_definition_names_the_same_field_as_rest(
    gql: Caller, rest: httpx.AsyncClient, graphql_fields: dict[str, Any], rest_fields: dict[str, Any], field: str
) -> None:
    refused = await rest.post(PATH, json={**REST_DEFINITION, **rest_fields})
    assert refused.status_code in (400, 422), refused.text
    answer = refused.json()
    error = await gql.error(OWNER, CREATE, input={**DEFINITION, **graphql_fields})
    assert error["message"] == answer["message"]
    assert error["extensions"] == {
        "code": answer["error"],
        "status": refused.status_code,
        **({"details": answer["details"]} if "details" in answer else {}),
    }
    details = answer["details"]
    assert (details[0]["field"] if isinstance(details, list) else details["field"]) == field
    assert (await gql.data(OWNER, LIST))["reports"]["total"] == 0


async def test_page_bounds_name_the_argument(gql: Caller) -> None:
    for variables, field in (({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"offset": -1}, "offset")):
        error = await gql.error(OWNER, LIST, **variables)
        assert error["extensions"]["details"] == {"field": field}, variables
        assert error["extensions"]["code"] == "invalid_request"
    assert (await gql.error(OWNER, DELETE, id="rep_x", version=0))["extensions"]["details"] == {"field": "version"}
