"""Import analytics over REST and GraphQL, on real chDB in this process with the hand-built jobs of
tests/semantic/import_scenario.py: every route and field gives the service's own answer (every field
of it, GraphQL selecting them all), both share one result cache entry, the static paths are not taken
for job ids, only admins and analysts may read, and errors name what is wrong."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, GraphQLOutputType, GraphQLScalarType
from pydantic import BaseModel

from core.access import Role
from graphql_schema.schema import schema
from semantic.analytics import Analytics
from semantic.imports import ImportAnalyticsService
from tests.graphql.conftest import only_error, rest_client, run
from tests.graphql.fakes import FakeServices
from tests.semantic.conftest import InProcessStore, open_store
from tests.semantic.import_scenario import NOW, PERIOD, STUCK_MINUTES, scenario, table

API = "/api/v1/analytics/imports"
DATES = {"start_date": PERIOD.start_date.isoformat(), "end_date": PERIOD.end_date.isoformat()}
RANGE = f'{{startDate: "{DATES["start_date"]}", endDate: "{DATES["end_date"]}"}}'


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[InProcessStore]:
    events = open_store(chdb_dir, f"import_transports_{secrets.token_hex(4)}")
    events.insert(table(scenario()), "scenario")
    yield InProcessStore(events)
    events.close()


@pytest.fixture
def services(store: InProcessStore) -> FakeServices:
    fakes = FakeServices.build()
    imports = ImportAnalyticsService(store, stuck_after_minutes=STUCK_MINUTES, clock=lambda: NOW)
    analytics = replace(Analytics.build(store, fakes.settings), imports=imports)  # type: ignore[arg-type]
    return replace(fakes, analytics=analytics)


@dataclass(frozen=True)
class Read:
    kind: str
    path: str
    params: dict[str, Any]
    # The GraphQL field asking the same question: its name and arguments.
    field: str
    arguments: str
    compute: Callable[[ImportAnalyticsService], Awaitable[BaseModel]]


READS = [
    Read(
        "imports.jobs",
        "/jobs",
        {"source": "beta", "status": "failed", "limit": 3, "offset": 1},
        "importJobs",
        f'range: {RANGE}, source: "beta", status: FAILED, limit: 3, offset: 1',
        lambda i: i.jobs(PERIOD, source="beta", status="failed", limit=3, offset=1),
    ),
    Read(
        "imports.jobs",
        "/jobs",
        {"kind": "processing"},
        "importJobs",
        f"range: {RANGE}, kind: PROCESSING",
        lambda i: i.jobs(PERIOD, job_kind="processing"),
    ),
    Read("imports.job", "/beta-3", {}, "importJob", 'jobId: "beta-3"', lambda i: i.job("beta-3")),
    Read("imports.job", "/4242", {}, "importJob", 'jobId: "4242"', lambda i: i.job("4242")),
    Read("imports.sources", "/sources", {}, "importSources", f"range: {RANGE}", lambda i: i.sources(PERIOD)),
    Read(
        "imports.quality",
        "/quality",
        {"source": "beta", "kind": "import"},
        "importQuality",
        f'range: {RANGE}, source: "beta", kind: IMPORT',
        lambda i: i.quality(PERIOD, source="beta", job_kind="import"),
    ),
    Read("imports.trends", "/trends", {}, "importTrends", f"range: {RANGE}", lambda i: i.trends(PERIOD)),
    Read(
        "imports.failures",
        "/failures",
        {"examples": 2},
        "importFailures",
        f"range: {RANGE}, examples: 2",
        lambda i: i.failures(PERIOD, examples=2),
    ),
    Read(
        "imports.optimization",
        "/optimization",
        {},
        "importOptimization",
        f"range: {RANGE}",
        lambda i: i.optimization(PERIOD),
    ),
]


def _named(type_: GraphQLOutputType) -> Any:
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        type_ = type_.of_type
    return type_


def _selection(type_: GraphQLOutputType) -> str:
    """Every field of a type, nested: GraphQL asked for the whole answer."""
    named = _named(type_)
    if not isinstance(named, GraphQLObjectType):
        return ""
    parts = []
    for name, field in named.fields.items():
        inner = _selection(field.type)
        parts.append(f"{name} {{ {inner} }}" if inner else name)
    return " ".join(parts)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _assert_same(graphql: Any, rest: Any, type_: GraphQLOutputType, where: str) -> None:
    """A GraphQL value equals the REST one: field by field, maps as they are, instants as instants."""
    named = _named(type_)
    if graphql is None or rest is None:
        assert graphql is None and rest is None, where
    elif isinstance(_strip(type_), GraphQLList):
        assert len(graphql) == len(rest), where
        for index, (g, r) in enumerate(zip(graphql, rest, strict=True)):
            _assert_same(g, r, _strip(type_).of_type, f"{where}[{index}]")
    elif isinstance(named, GraphQLObjectType):
        assert set(graphql) == set(named.fields), where
        assert {_snake(name) for name in named.fields} == set(rest), where
        for name, field in named.fields.items():
            _assert_same(graphql[name], rest[_snake(name)], field.type, f"{where}.{name}")
    elif isinstance(named, GraphQLScalarType) and named.name == "DateTime":
        assert datetime.fromisoformat(graphql) == datetime.fromisoformat(rest.replace("Z", "+00:00")), where
    else:
        assert graphql == rest, where


def _strip(type_: GraphQLOutputType) -> Any:
    return type_.of_type if isinstance(type_, GraphQLNonNull) else type_


@pytest.mark.parametrize("read", READS, ids=[f"{r.kind}{r.path}-{len(r.params)}" for r in READS])
async def test_rest_and_graphql_give_the_service_answer_from_one_cache_entry(
    services: FakeServices, read: Read
) -> None:
    expected = (await read.compute(services.analytics.imports)).model_dump(mode="json", exclude={"as_of"})
    client = rest_client(services, Role.ANALYST)
    params = DATES if read.kind != "imports.job" else {}
    first = client.get(f"{API}{read.path}", params={**params, **read.params})
    assert first.status_code == 200, first.text
    assert first.headers["X-Cache"] == "miss"
    body = first.json()
    assert body.pop("as_of") is not None
    assert body == expected

    field_type = schema._schema.query_type.fields[read.field].type  # type: ignore[union-attr]
    result = await run(services, Role.ADMIN, f"{{ {read.field}({read.arguments}) {{ {_selection(field_type)} }} }}")
    assert result.errors is None, result.errors
    assert result.data is not None
    answer = result.data[read.field]
    # Admin and analyst keys are two cache scopes: this one is computed again, to the same answer.
    _assert_same(answer, {**expected, "as_of": first.json()["as_of"]}, field_type, read.field)
    again = await run(services, Role.ANALYST, f"{{ {read.field}({read.arguments}) {{ asOf }} }}")
    assert again.errors is None
    assert (services.cache_count(read.kind, "miss"), services.cache_count(read.kind, "hit")) == (2, 1)


@pytest.mark.parametrize("path", ["/jobs", "/sources", "/quality", "/trends", "/failures", "/optimization"])
def test_the_static_paths_are_not_job_ids(services: FakeServices, path: str) -> None:
    response = rest_client(services, Role.ANALYST).get(f"{API}{path}", params=DATES)
    assert response.status_code == 200, response.text
    assert "job" not in response.json() or path == "/jobs"
    assert services.cache_count("imports.job", "miss") == 0


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTENT_MANAGER, Role.SERVICE])
async def test_only_admins_and_analysts_read_import_analytics(services: FakeServices, role: Role) -> None:
    response = rest_client(services, role).get(f"{API}/sources", params=DATES)
    assert response.status_code == 403
    assert "read import analytics" in response.json()["message"]
    error = only_error(await run(services, role, f"{{ importSources(range: {RANGE}) {{ asOf }} }}"))
    assert error["extensions"]["code"] == "forbidden"
    assert rest_client(services, None).get(f"{API}/sources").status_code == 401


async def test_an_unknown_job_is_404_naming_it(services: FakeServices) -> None:
    response = rest_client(services, Role.ANALYST).get(f"{API}/no-such-job")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "no-such-job" in response.json()["message"]
    error = only_error(await run(services, Role.ANALYST, '{ importJob(jobId: "no-such-job") { asOf } }'))
    assert error["extensions"]["code"] == "not_found"
    assert error["extensions"]["details"] == {"field": "job_id", "job_id": "no-such-job"}


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/jobs", {"status": "done"}, "status"),
        ("/jobs", {"kind": "export"}, "kind"),
        ("/jobs", {"limit": 0}, "limit"),
        ("/jobs", {"limit": 501}, "limit"),
        ("/jobs", {"offset": -1}, "offset"),
        ("/jobs", {"source": ""}, "source"),
        ("/failures", {"examples": 21}, "examples"),
        ("/sources", {"start_date": "2025-03-20", "end_date": "2025-03-01"}, "end_date"),
        ("/trends", {"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    services: FakeServices, path: str, params: dict[str, Any], field: str
) -> None:
    response = rest_client(services, Role.ANALYST).get(f"{API}{path}", params=params)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    named = body["details"][0]["field"] if isinstance(body["details"], list) else body["details"]["field"]
    assert named == field


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"importJobs(range: {RANGE}, limit: 0)", "limit"),
        (f"importJobs(range: {RANGE}, offset: -5)", "offset"),
        (f'importQuality(range: {RANGE}, source: "")', "source"),
        (f"importFailures(range: {RANGE}, examples: 50)", "examples"),
    ],
)
async def test_bad_graphql_arguments_name_them(services: FakeServices, query: str, field: str) -> None:
    error = only_error(await run(services, Role.ANALYST, f"{{ {query} {{ asOf }} }}"))
    assert error["extensions"]["code"] == "invalid_request"
    assert error["extensions"]["details"] == {"field": field}


def test_the_routes_document_their_answers_and_statuses(services: FakeServices) -> None:
    document = rest_client(services, Role.ANALYST).app.openapi()  # type: ignore[attr-defined]
    for path in ("/jobs", "/sources", "/quality", "/trends", "/failures", "/optimization", "/{job_id}"):
        operation = document["paths"][f"{API}{path}"]["get"]
        assert "$ref" in str(operation["responses"]["200"]), path
        assert {"400", "401", "403"} <= set(operation["responses"]), path
    assert "404" in document["paths"][f"{API}/{{job_id}}"]["get"]["responses"]
