"""Data exports end to end: raw events, analytics queries and saved queries written by tasks on the
session's Ray cluster, downloaded and read back with real readers, through the running service.

The dataset is this module's own: events of module-unique contents and users on one day about 455
days ago (no other module writes that day), and a few on the next day. Every expected value is computed
here from the events sent, or is the answer of POST /api/v1/analytics/query to the same body.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serve_app import runtime
from tests.e2e.principals import make_principals

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"
EXPORTS = f"{API}/exports"
DAY = datetime.now(UTC).date() - timedelta(days=455)
NEXT_DAY = DAY + timedelta(days=1)


@dataclass
class World:
    p: str
    events: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    def c(self, name: str) -> str:
        return f"{self.p}-{name}"

    def ids_of(self, day: date, **match: str) -> list[str]:
        """The ids of the events of ``day`` matching ``match``, in the export's order (timestamp, id)."""
        chosen = [
            e
            for e in self.events
            if e["timestamp"].startswith(day.isoformat()) and all(e.get(k) == v for k, v in match.items())
        ]
        return [e["id"] for e in sorted(chosen, key=lambda e: (e["timestamp"], e["id"]))]


def build_world(p: str) -> World:
    world = World(p)
    for i in range(24):
        at = datetime.combine(DAY, datetime.min.time(), UTC) + timedelta(minutes=37 * i, milliseconds=i)
        world.events.append(
            {
                "id": f"{p}-e{i:02d}",
                "event_type": "content_view",
                "timestamp": at.isoformat(),
                "user_id": f"{p}-u{i % 4}",
                "session_id": f"{p}-s{i % 5}",
                "content_id": world.c(f"c{i % 3}"),
                "country": "DE" if i % 2 else "FR",
                "properties": {"position": i, "autoplay": i % 3 == 0},
            }
        )
    for i in range(3):
        at = datetime.combine(NEXT_DAY, datetime.min.time(), UTC) + timedelta(hours=i + 1)
        world.events.append(
            {
                "id": f"{p}-n{i}",
                "event_type": "content_view",
                "timestamp": at.isoformat(),
                "user_id": f"{p}-u{i}",
                "content_id": world.c("c0"),
                "country": "FR",
            }
        )
    return world


@pytest.fixture(scope="module")
def world(client_for: Any, admin: httpx.Client, service: runtime.RunningService) -> Iterator[World]:
    w = build_world(f"ex{secrets.token_hex(4)}")
    response = client_for("service").post(f"{API}/events/batch", json={"events": w.events})
    assert response.status_code == 200 and response.json()["accepted"] == len(w.events), response.text
    w.keys, w.clients = make_principals(
        admin,
        service.base_url,
        w.p,
        (
            ("analyst", "analyst", None),
            ("other analyst", "analyst", None),
            ("scoped analyst", "analyst", {"content_ids": [w.c("c1")]}),
            ("scoped admin", "admin", {"content_ids": [w.c("c1")]}),
        ),
    )
    service.settle_rollups()
    yield w
    for client in w.clients.values():
        client.close()


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(EXPORTS, json=body)
    assert response.status_code == 202, response.text
    export = response.json()
    assert response.headers["location"] == f"{EXPORTS}/{export['id']}"
    return export


def finish(client: httpx.Client, export: dict[str, Any], *, deadline: float = 120) -> dict[str, Any]:
    """Poll the export's status until it is no longer running; the statuses seen on the way end it."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        response = client.get(f"{EXPORTS}/{export['id']}")
        assert response.status_code == 200, response.text
        current = response.json()
        if current["status"] != "running":
            return current
        time.sleep(0.25)
    raise AssertionError(f"export {export['id']} still running after {deadline} s")


def export_and_download(client: httpx.Client, body: dict[str, Any]) -> tuple[dict[str, Any], httpx.Response]:
    started = create(client, body)
    assert started["status"] == "running" and started["download_url"] is None
    done = finish(client, started)
    assert done["status"] == "completed", done
    response = client.get(done["download_url"])
    assert response.status_code == 200, response.text
    assert int(response.headers["content-length"]) == done["file_size"] == len(response.content)
    assert hashlib.sha256(response.content).hexdigest() == done["sha256"]
    assert response.headers["content-type"].startswith(done["content_type"])
    assert done["file_name"] in response.headers["content-disposition"]
    return done, response


def rows_of(export_format: str, data: bytes) -> list[dict[str, Any]]:
    if export_format == "csv":
        return list(csv.DictReader(io.StringIO(data.decode())))
    if export_format == "ndjson":
        return [orjson.loads(line) for line in data.splitlines()]
    return pq.read_table(io.BytesIO(data)).to_pylist()


def one_day(export_format: str, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": "events",
        "format": export_format,
        "date_range": {"start_date": DAY.isoformat(), "end_date": DAY.isoformat()},
        **extra,
    }


@pytest.mark.parametrize("export_format", ["csv", "ndjson", "parquet"])
def test_an_events_export_of_one_day_has_exactly_the_events_sent(
    world: World, admin: httpx.Client, export_format: str
) -> None:
    done, response = export_and_download(admin, one_day(export_format))
    expected = world.ids_of(DAY)
    assert len(expected) == 24
    rows = rows_of(export_format, response.content)
    assert [r["id"] for r in rows] == expected
    assert done["row_count"] == 24 and done["as_of"] is not None and done["error"] is None
    assert done["file_name"] == f"events-{DAY.isoformat()}-{DAY.isoformat()}.{export_format}"
    assert done["dataset"] == "events" and done["format"] == export_format
    sent = {e["id"]: e for e in world.events}
    first = rows[0]
    assert first["content_id"] == sent[first["id"]]["content_id"] and first["user_id"] == sent[first["id"]]["user_id"]
    if export_format == "ndjson":
        assert [r["properties"] for r in rows] == [sent[i]["properties"] for i in expected]
    if export_format == "parquet":
        table = pq.read_table(io.BytesIO(response.content))
        assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
        assert [t.isoformat() for t in table.column("timestamp").to_pylist()] == [
            sent[i]["timestamp"] for i in expected
        ]


def test_an_events_export_keeps_to_its_filters_and_days(world: World, admin: httpx.Client) -> None:
    _, response = export_and_download(
        admin, one_day("ndjson", filters={"content_id": world.c("c1"), "user_id": world.c("u1")})
    )
    expected = world.ids_of(DAY, content_id=world.c("c1"), user_id=world.c("u1"))
    assert len(expected) == 2 and [r["id"] for r in rows_of("ndjson", response.content)] == expected
    two_days = {"start_date": DAY.isoformat(), "end_date": NEXT_DAY.isoformat()}
    _, both = export_and_download(admin, one_day("csv", date_range=two_days, filters={"content_id": world.c("c0")}))
    assert [r["id"] for r in rows_of("csv", both.content)] == world.ids_of(
        DAY, content_id=world.c("c0")
    ) + world.ids_of(NEXT_DAY)


def query_body(world: World) -> dict[str, Any]:
    return {
        "metrics": ["views", "unique_viewers"],
        "dimensions": ["content_id", "country"],
        "filters": [{"dimension": "content_id", "op": "in", "values": [world.c(f"c{i}") for i in range(3)]}],
        "date_range": {"start_date": DAY.isoformat(), "end_date": NEXT_DAY.isoformat()},
        "order_by": [{"field": "views", "direction": "desc"}],
    }


def query_rows(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post(f"{API}/query", json=body)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


@pytest.mark.parametrize("export_format", ["ndjson", "parquet", "csv"])
def test_a_query_export_has_the_rows_of_the_query_api(world: World, export_format: str) -> None:
    analyst = world.clients["analyst"]
    body = query_body(world)
    done, response = export_and_download(analyst, {"dataset": "query", "format": export_format, "query": body})
    expected = query_rows(analyst, body)
    # Three contents in two countries (c0 also viewed the next day).
    assert len(expected) == 6 and sum(r["views"] for r in expected) == 27
    rows = rows_of(export_format, response.content)
    if export_format == "csv":
        expected = [{k: str(v) for k, v in row.items()} for row in expected]
    assert rows == expected
    assert done["row_count"] == 6
    assert done["file_name"] == f"query-{DAY.isoformat()}-{NEXT_DAY.isoformat()}.{export_format}"
    assert done["definition"]["query"]["metrics"] == ["views", "unique_viewers"]


def test_a_saved_query_export_has_its_rows_over_the_range_given(world: World) -> None:
    analyst = world.clients["analyst"]
    saved = analyst.post(
        f"{API}/saved-queries",
        json={"name": f"{world.p} Views by country", "kind": "query", "definition": query_body(world)},
    )
    assert saved.status_code == 201, saved.text
    one = {"start_date": DAY.isoformat(), "end_date": DAY.isoformat()}
    done, response = export_and_download(
        analyst, {"dataset": "saved_query", "format": "ndjson", "saved_query_id": saved.json()["id"], "date_range": one}
    )
    expected = query_rows(analyst, {**query_body(world), "date_range": one})
    assert sum(r["views"] for r in expected) == 24
    assert rows_of("ndjson", response.content) == expected
    assert done["file_name"] == f"{world.p}-views-by-country-{DAY.isoformat()}-{DAY.isoformat()}.ndjson"
    # Another analyst cannot see the saved query, so cannot export it.
    refused = world.clients["other analyst"].post(
        EXPORTS, json={"dataset": "saved_query", "format": "csv", "saved_query_id": saved.json()["id"]}
    )
    assert refused.status_code == 400 and refused.json()["details"]["field"] == "saved_query_id"


def test_a_scoped_analysts_query_export_holds_only_its_content(world: World) -> None:
    scoped = world.clients["scoped analyst"]
    body = query_body(world)
    _, response = export_and_download(scoped, {"dataset": "query", "format": "ndjson", "query": body})
    rows = rows_of("ndjson", response.content)
    assert {r["content_id"] for r in rows} == {world.c("c1")}
    assert sum(r["views"] for r in rows) == 8
    assert rows == query_rows(scoped, body)


def test_who_may_export_what(world: World, client_for: Any) -> None:
    viewer = client_for("viewer").post(EXPORTS, json=one_day("csv"))
    assert viewer.status_code == 403
    assert viewer.json()["message"] == "role 'viewer' may not export data; allowed roles: admin, analyst"
    assert client_for("content_manager").get(EXPORTS).status_code == 403
    analyst = world.clients["analyst"].post(EXPORTS, json=one_day("csv"))
    assert analyst.status_code == 403
    assert analyst.json()["message"] == "role 'analyst' may not query raw events; allowed roles: admin"
    scoped = world.clients["scoped admin"].post(EXPORTS, json=one_day("csv"))
    assert scoped.status_code == 403 and "cannot be applied to raw events" in scoped.json()["message"]


def test_an_export_is_its_owners_alone(world: World, admin: httpx.Client) -> None:
    owner, other = world.clients["analyst"], world.clients["other analyst"]
    export = finish(owner, create(owner, {"dataset": "query", "format": "csv", "query": query_body(world)}))
    for path in (f"{EXPORTS}/{export['id']}", f"{EXPORTS}/{export['id']}/download"):
        response = other.get(path)
        assert response.status_code == 404, response.text
        assert response.json()["message"] == f"export {export['id']!r} does not exist"
    assert other.get(f"{EXPORTS}/exp_{'0' * 24}").status_code == 404
    mine = owner.get(EXPORTS, params={"limit": 200}).json()
    assert export["id"] in {e["id"] for e in mine["items"]} and mine["total"] >= 1
    assert all(e["owner_key_id"] == world.keys["analyst"]["id"] for e in mine["items"])
    assert export["id"] not in {e["id"] for e in other.get(EXPORTS).json()["items"]}
    assert admin.get(f"{EXPORTS}/{export['id']}").json()["status"] == "completed"


def test_creating_and_downloading_an_export_are_in_the_audit_log(world: World, admin: httpx.Client) -> None:
    owner = world.clients["analyst"]
    done, _ = export_and_download(owner, {"dataset": "query", "format": "csv", "query": query_body(world)})
    key_id = world.keys["analyst"]["id"]
    wanted = {
        ("POST /api/v1/analytics/exports", None, "ok"),
        ("GET /api/v1/analytics/exports/{export_id}/download", done["id"], "started"),
        ("GET /api/v1/analytics/exports/{export_id}/download", done["id"], "ok"),
    }
    until = time.monotonic() + 30
    found: set[tuple[str, str | None, str]] = set()
    while time.monotonic() < until:
        entries = admin.get(
            "/api/v1/admin/audit", params={"actor_key_id": key_id, "operation": "export data", "limit": 200}
        ).json()["entries"]
        found = {(e["action"], e["target"], e["outcome"]) for e in entries}
        if wanted <= found:
            break
        time.sleep(0.3)
    assert wanted <= found, found


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataset": "events", "format": "csv"}, "date_range"),
        ({"dataset": "events", "format": "xlsx", "date_range": {"relative": "yesterday"}}, "format"),
        ({"dataset": "files", "format": "csv"}, "dataset"),
        (
            {
                "dataset": "events",
                "format": "csv",
                "date_range": {"start_date": "2025-01-01", "end_date": "2025-06-01"},
            },
            "date_range",
        ),
        (
            {
                "dataset": "events",
                "format": "csv",
                "date_range": {"start_date": "2025-01-02", "end_date": "2025-01-01"},
            },
            "date_range.end_date",
        ),
        (
            {"dataset": "events", "format": "csv", "date_range": {"relative": "today"}, "filters": {"country": "DE"}},
            "filters.country",
        ),
        (
            {
                "dataset": "events",
                "format": "csv",
                "date_range": {"start_date": "1969-12-31", "end_date": "1970-01-01"},
            },
            "date_range.start_date",
        ),
        ({"dataset": "query", "format": "csv"}, "query"),
        ({"dataset": "query", "format": "csv", "query": {"metrics": ["nope"]}}, "query.metrics[0]"),
        ({"dataset": "query", "format": "csv", "query": {"metrics": ["views"], "cursor": "abc"}}, "query.cursor"),
        ({"dataset": "query", "format": "csv", "query": {"metrics": ["views"]}, "filters": {}}, "filters"),
        (
            {"dataset": "query", "format": "csv", "query": {"metrics": ["views"], "compare_to": "previous_period"}},
            "query.compare_to",
        ),
        (
            {
                "dataset": "query",
                "format": "csv",
                "query": {"metrics": ["views"]},
                "date_range": {"start_date": "2023-01-01", "end_date": "2025-01-01"},
            },
            "date_range",
        ),
        ({"dataset": "saved_query", "format": "csv", "saved_query_id": "sq_missing"}, "saved_query_id"),
        ({"dataset": "query", "format": "csv", "query": {"metrics": ["views"]}, "extra": 1}, "extra"),
    ],
)
def test_a_bad_body_is_a_400_naming_the_field(admin: httpx.Client, body: dict[str, Any], field: str) -> None:
    response = admin.post(EXPORTS, json=body)
    assert response.status_code == 400, response.text
    assert response.json()["details"]["field"] == field, response.json()
