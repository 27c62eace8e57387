"""Reports end to end: definitions, generation on the session's Ray cluster, files in every format read
back with real readers, sharing, signed links and content scopes, through the running service.

The dataset is this module's own: contents of a module-unique category viewed by a few users on two
days about 500 days ago. Every expected number is computed here from the events sent, and compared with
the file and with POST /api/v1/analytics/query's answer to the same question.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import json
import secrets
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import nats
import openpyxl
import pytest
from pypdf import PdfReader

from serve_app import runtime
from tests.conftest import NATS_URL
from tests.e2e.conftest import WEBHOOK_SECRET
from tests.e2e.principals import make_principals
from tests.mail import Mailbox

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"
REPORTS = f"{API}/reports"
START = datetime.now(UTC).date() - timedelta(days=500)
END = START + timedelta(days=6)


@dataclass
class World:
    p: str
    events: list[dict[str, Any]] = field(default_factory=list)
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    @property
    def category(self) -> str:
        return f"{self.p}-news"

    def c(self, name: str) -> str:
        return f"{self.p}-{name}"

    def views(self, *, contents: set[str] | None = None) -> Counter[str]:
        return Counter(
            e["content_id"]
            for e in self.events
            if e["event_type"] == "content_view" and (contents is None or e["content_id"] in contents)
        )


def build_world(p: str) -> World:
    world = World(p)
    # c1 viewed 5 times, c2 3 times, c3 twice, over two days, by three users.
    plan = [("c1", 5), ("c2", 3), ("c3", 2)]
    n = 0
    for name, count in plan:
        for i in range(count):
            day = START + timedelta(days=i % 2)
            world.events.append(
                {
                    "id": f"{p}-e{n}",
                    "event_type": "content_view",
                    "timestamp": datetime.combine(day, datetime.min.time(), UTC).replace(hour=9, minute=n).isoformat(),
                    "user_id": f"{p}-u{i % 3}",
                    "session_id": f"{p}-s{i % 3}-{day}",
                    "content_id": world.c(name),
                }
            )
            n += 1
    return world


@pytest.fixture(scope="module")
def world(client_for: Any, admin: httpx.Client, service: runtime.RunningService) -> Iterator[World]:
    w = build_world(f"rp{secrets.token_hex(4)}")
    ingest = client_for("service")
    response = ingest.post(f"{API}/events/batch", json={"events": w.events})
    assert response.status_code == 200 and response.json()["accepted"] == len(w.events), response.text
    titles = {"c1": "أخبار الصباح", "c2": "Evening sports", "c3": "Science hour"}
    for name, title in titles.items():
        put = ingest.put(f"{API}/content-metadata/{w.c(name)}", json={"title": title, "category": w.category})
        assert put.status_code == 200, put.text
    w.keys, w.clients = make_principals(
        admin,
        service.base_url,
        w.p,
        (
            ("owner", "analyst", None),
            ("other analyst", "analyst", None),
            ("viewer", "viewer", None),
            ("manager", "content_manager", None),
            ("scoped manager", "content_manager", {"content_ids": [w.c("c2")]}),
        ),
    )
    service.settle_rollups()
    yield w
    for client in w.clients.values():
        client.close()


def definition(world: World, report_format: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"{world.p} weekly {report_format}",
        "description": "Views of the module's contents",
        "report_type": "content_performance",
        "report_format": report_format,
        "date_range": {"start_date": START.isoformat(), "end_date": END.isoformat(), "period_type": "daily"},
        "filters": {"category": world.category},
        **extra,
    }


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(REPORTS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def generate(client: httpx.Client, report_id: str, *, deadline: float = 120) -> dict[str, Any]:
    """Generate and wait for the run to finish; the run as the status route answers it."""
    started = client.post(f"{REPORTS}/{report_id}/generate")
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "generating" and run["run_id"].startswith("run_")
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        status = client.get(f"{REPORTS}/{report_id}/status", params={"run_id": run["run_id"]})
        assert status.status_code == 200, status.text
        current = status.json()["run"]
        if current["status"] != "generating":
            return current
        time.sleep(0.3)
    raise AssertionError(f"run {run['run_id']} still generating after {deadline} s")


def download(client: httpx.Client, report_id: str, **params: str) -> httpx.Response:
    response = client.get(f"{REPORTS}/{report_id}/download", params=params)
    assert response.status_code == 200, response.text
    return response


def query_views_by_content(client: httpx.Client, world: World) -> dict[str, int]:
    body = {
        "metrics": ["views"],
        "dimensions": ["content_id"],
        "filters": [{"dimension": "category", "op": "in", "values": [world.category]}],
        "date_range": {"start_date": START.isoformat(), "end_date": END.isoformat()},
    }
    response = client.post(f"{API}/query", json=body)
    assert response.status_code == 200, response.text
    return {row["content_id"]: row["views"] for row in response.json()["rows"]}


def test_a_json_report_has_the_numbers_of_the_events_and_of_the_query_api(world: World) -> None:
    owner = world.clients["owner"]
    report = create(owner, definition(world, "json"))
    assert report["status"] == "draft" and report["owner_key_id"] == world.keys["owner"]["id"]
    run = generate(owner, report["id"])
    assert run["status"] == "completed", run
    response = download(owner, report["id"])
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["content-length"]) == run["file_size"] == len(response.content)
    assert hashlib.sha256(response.content).hexdigest() == run["sha256"]
    document = response.json()
    expected = world.views()
    assert document["version"] == "1" and document["run_id"] == run["run_id"]
    assert document["as_of"] is not None and document["period"]["start_date"] == START.isoformat()
    kpis = {k["name"]: k for k in document["kpis"]}
    assert kpis["views"]["value"] == sum(expected.values())
    assert kpis["unique_viewers"]["value"] == len({e["user_id"] for e in world.events})
    top = next(t for t in document["tables"] if t["name"] == "top_content")
    names = [c["name"] for c in top["columns"]]
    rows = {row[names.index("content_id")]: row for row in top["rows"]}
    assert {cid: row[names.index("views")] for cid, row in rows.items()} == dict(expected)
    assert {cid: row[names.index("views")] for cid, row in rows.items()} == query_views_by_content(owner, world)
    assert rows[world.c("c1")][names.index("title")] == "أخبار الصباح"
    series = next(t for t in document["tables"] if t["name"] == "series")
    per_day = Counter(e["timestamp"][:10] for e in world.events)
    assert {row[0]: row[1] for row in series["rows"] if row[1]} == dict(per_day)
    status = owner.get(f"{REPORTS}/{report['id']}").json()
    assert status["status"] == "completed" and status["file_size"] == run["file_size"]


def test_csv_excel_and_pdf_files_open_with_real_readers_and_agree(world: World) -> None:
    owner = world.clients["owner"]
    expected = world.views()
    csv_report = create(owner, definition(world, "csv"))
    assert generate(owner, csv_report["id"])["status"] == "completed"
    archive = zipfile.ZipFile(io.BytesIO(download(owner, csv_report["id"]).content))
    with archive.open("top_content.csv") as handle:
        rows = list(csv.DictReader(io.TextIOWrapper(handle, encoding="utf-8-sig")))
    assert {row["content_id"]: int(row["views"]) for row in rows} == dict(expected)

    excel_report = create(owner, definition(world, "excel"))
    assert generate(owner, excel_report["id"])["status"] == "completed"
    workbook = openpyxl.load_workbook(io.BytesIO(download(owner, excel_report["id"]).content))
    sheet = next(ws for ws in workbook.worksheets if ws.title == "Top content")
    header = [cell.value for cell in sheet[1]]
    found = {
        row[header.index("Content")]: row[header.index("Views")]
        for row in sheet.iter_rows(min_row=2, values_only=True)
        if row[0] is not None
    }
    assert found == dict(expected)

    pdf_report = create(owner, definition(world, "pdf"))
    assert generate(owner, pdf_report["id"])["status"] == "completed"
    reader = PdfReader(io.BytesIO(download(owner, pdf_report["id"]).content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert pdf_report["name"] in text
    for content_id in expected:
        assert content_id in text


def test_a_report_not_shared_with_a_principal_is_invisible_to_it_until_shared(world: World) -> None:
    owner, viewer = world.clients["owner"], world.clients["viewer"]
    report = create(owner, definition(world, "json"))
    assert generate(owner, report["id"])["status"] == "completed"
    missing = {
        "error": "not_found",
        "message": f"report {report['id']!r} does not exist",
        "details": {"field": "report_id"},
    }
    for response in (
        viewer.get(f"{REPORTS}/{report['id']}"),
        viewer.post(f"{REPORTS}/{report['id']}/generate"),
        viewer.get(f"{REPORTS}/{report['id']}/download"),
        viewer.get(f"{REPORTS}/{report['id']}/runs"),
        world.clients["other analyst"].put(f"{REPORTS}/{report['id']}", json={"name": "mine now"}),
    ):
        assert response.status_code == 404, response.text
        assert response.json() == missing
    assert report["id"] not in {r["id"] for r in viewer.get(REPORTS).json()["items"]}

    shared = owner.post(f"{REPORTS}/{report['id']}/share", json={"shared_with": [world.keys["viewer"]["id"]]})
    assert shared.status_code == 200, shared.text
    assert viewer.get(f"{REPORTS}/{report['id']}").status_code == 200
    shared_list = viewer.get(f"{REPORTS}/shared")
    assert shared_list.status_code == 200, shared_list.text
    assert report["id"] in {r["id"] for r in shared_list.json()["items"]}
    assert report["id"] not in {r["id"] for r in owner.get(f"{REPORTS}/shared").json()["items"]}
    assert download(viewer, report["id"]).json()["kpis"][0]["value"] == sum(world.views().values())
    # A viewer manages no report; a content manager it is shared with does not own it: both refused, saying why.
    refused = viewer.delete(f"{REPORTS}/{report['id']}")
    assert refused.status_code == 403 and "may not manage reports" in refused.json()["message"]
    manager = world.clients["manager"]
    assert owner.post(f"{REPORTS}/{report['id']}/share", json={"shared_with_roles": ["content_manager"]}).is_success
    assert manager.get(f"{REPORTS}/{report['id']}").status_code == 200
    refused = manager.delete(f"{REPORTS}/{report['id']}")
    assert refused.status_code == 403 and "only its owner or an admin" in refused.json()["message"]
    # Taking the share back hides it again.
    permissions = owner.put(f"{REPORTS}/{report['id']}/permissions", json={"shared_with": []})
    assert permissions.status_code == 200, permissions.text
    assert permissions.json()["shared_with_roles"] == [] and permissions.json()["shared_with"] == []
    assert viewer.get(f"{REPORTS}/{report['id']}").status_code == 404
    assert manager.get(f"{REPORTS}/{report['id']}").status_code == 404


def test_a_signed_link_downloads_without_credentials_until_it_expires(
    world: World, service: runtime.RunningService, base_url: str, admin: httpx.Client
) -> None:
    owner = world.clients["owner"]
    report = create(owner, definition(world, "json"))
    run = generate(owner, report["id"])
    minted = owner.post(f"{REPORTS}/{report['id']}/share", json={"link_expires_in_seconds": 600})
    assert minted.status_code == 200, minted.text
    link = minted.json()["link"]
    assert link["url"].startswith(f"{REPORTS}/{report['id']}/download?") and run["run_id"] in link["url"]
    with httpx.Client(base_url=base_url, timeout=60) as anonymous:
        fetched = anonymous.get(link["url"])
        assert fetched.status_code == 200, fetched.text
        assert fetched.content == download(owner, report["id"]).content
        tampered = anonymous.get(link["url"].replace("signature=", "signature=0"))
        assert tampered.status_code == 403
        # A link signed with the service's key but already expired (the key is read as the service keeps it).
        secret = _link_secret(service)
        expired_at = int(time.time()) - 1
        signature = hmac.new(
            secret, f"{report['id']}\n{run['run_id']}\n{expired_at}".encode(), hashlib.sha256
        ).hexdigest()
        expired = anonymous.get(
            f"{REPORTS}/{report['id']}/download",
            params={"run_id": run["run_id"], "expires": expired_at, "signature": signature},
        )
        assert expired.status_code == 403 and "expired" in expired.json()["message"], expired.text
        assert anonymous.get(f"{REPORTS}/{report['id']}/download").status_code == 401
    # Every download is in the audit trail, the signed ones (no principal) included.
    entries = _audit(admin, target=report["id"], operation="DOWNLOAD_REPORTS")
    signed = [e for e in entries if e.get("actor_key_id") is None]
    assert {e["outcome"] for e in signed} >= {"started", "ok", "denied"}
    assert any(e["status"] == 403 for e in signed)
    assert any(e.get("actor_key_id") == world.keys["owner"]["id"] and e["status"] == 200 for e in entries)


def _audit(admin: httpx.Client, **filters: str) -> list[dict[str, Any]]:
    until = time.monotonic() + 20
    entries: list[dict[str, Any]] = []
    while time.monotonic() < until:
        response = admin.get("/api/v1/admin/audit", params={**filters, "limit": 1000})
        assert response.status_code == 200, response.text
        entries = response.json()["entries"]
        if any(e["outcome"] != "started" for e in entries):
            return entries
        time.sleep(0.3)
    return entries


def _link_secret(service: runtime.RunningService) -> bytes:
    import asyncio

    async def read() -> str:
        connection = await asyncpg.connect(service.settings.postgres_dsn)
        try:
            return await connection.fetchval("SELECT value FROM service_secrets WHERE name = 'link_signing'")
        finally:
            await connection.close()

    return bytes.fromhex(asyncio.run(read()))


def test_definitions_are_checked_against_the_report_type_on_save(world: World) -> None:
    owner = world.clients["owner"]
    cases = [
        ({"filters": {"colour": "red"}}, "filters.colour"),
        ({"filters": {"metrics": ["views", "bogus"]}}, "filters.metrics[1]"),
        ({"visualization_config": {"size": 3}}, "visualization_config.size"),
        ({"data_source": "saved_query:sq_x"}, "data_source"),
    ]
    for change, field_name in cases:
        response = owner.post(REPORTS, json={**definition(world, "json"), **change})
        assert response.status_code == 400, response.text
        assert response.json()["details"]["field"] == field_name, response.text
    bad_type = owner.post(REPORTS, json={**definition(world, "json"), "report_type": "astrology"})
    assert bad_type.status_code == 422 and bad_type.json()["details"][0]["field"] == "report_type"
    # A viewer may not manage reports; a content manager may not make a user engagement report.
    refused = world.clients["viewer"].post(REPORTS, json=definition(world, "json"))
    assert refused.status_code == 403 and "may not manage reports" in refused.json()["message"]
    users = world.clients["manager"].post(
        REPORTS, json={**definition(world, "json"), "report_type": "user_engagement", "filters": {}}
    )
    assert users.status_code == 403 and "may not read user analytics" in users.json()["message"], users.text


def test_a_scoped_principal_gets_only_its_content_and_not_files_made_for_wider_scopes(world: World) -> None:
    owner, scoped = world.clients["owner"], world.clients["scoped manager"]
    report = create(owner, {**definition(world, "json"), "shared_with": [world.keys["scoped manager"]["id"]]})
    assert generate(owner, report["id"])["status"] == "completed"
    # The owner's file holds content outside the scoped principal's scope: it is not theirs to read.
    refused = scoped.get(f"{REPORTS}/{report['id']}/download")
    assert refused.status_code == 404 and "no completed run the caller may read" in refused.json()["message"]
    mine = generate(scoped, report["id"])
    assert mine["status"] == "completed"
    document = download(scoped, report["id"]).json()
    assert document["scope"] == f"content ids {world.c('c2')!r}"
    top = next(t for t in document["tables"] if t["name"] == "top_content")
    assert [row[0] for row in top["rows"]] == [world.c("c2")]
    assert document["kpis"][0]["value"] == world.views()[world.c("c2")]
    by_run = scoped.get(
        f"{REPORTS}/{report['id']}/download",
        params={"run_id": owner_run_id(owner, report["id"], world.keys["owner"]["id"])},
    )
    assert by_run.status_code == 403 and "does not cover" in by_run.json()["message"]


def owner_run_id(owner: httpx.Client, report_id: str, owner_key_id: str) -> str:
    runs = owner.get(f"{REPORTS}/{report_id}/runs").json()["items"]
    return next(r["run_id"] for r in runs if r["requested_by"] == owner_key_id and r["status"] == "completed")


def test_a_run_that_cannot_be_computed_fails_with_its_error_kept(world: World, admin: httpx.Client) -> None:
    owner = world.clients["owner"]
    saved = owner.post(
        f"{API}/saved-queries",
        json={"name": f"{world.p} q", "kind": "query", "definition": {"metrics": ["views"], "dimensions": ["day"]}},
    )
    assert saved.status_code == 201, saved.text
    report = create(
        owner,
        {
            **definition(world, "json"),
            "report_type": "custom",
            "filters": {},
            "data_source": f"saved_query:{saved.json()['id']}",
        },
    )
    assert owner.delete(f"{API}/saved-queries/{saved.json()['id']}").status_code == 204
    run = generate(owner, report["id"])
    assert run["status"] == "failed"
    assert saved.json()["id"] in run["error"] and "does not exist" in run["error"]
    assert owner.get(f"{REPORTS}/{report['id']}").json()["status"] == "failed"


class _Hooks(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - the http.server hook's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k: v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Hooks", (_Hooks,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_a_finished_run_is_announced_by_e_mail_with_the_file_and_by_a_signed_webhook(
    world: World, mailbox: Mailbox, webhook_receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    owner = world.clients["owner"]
    url, hooks = webhook_receiver
    address = f"{world.p}@news.example.com"
    report = create(
        owner,
        {
            **definition(world, "html"),
            "notifications": [{"channel": "email", "target": address}, {"channel": "webhook", "target": url}],
        },
    )
    run = generate(owner, report["id"])
    assert run["status"] == "completed", run
    file = download(owner, report["id"]).content
    until = time.monotonic() + 30
    while time.monotonic() < until and not (hooks and any(address in to for _, to, _ in mailbox.received)):
        time.sleep(0.2)
    mails = [message for _, to, message in mailbox.received if address in to]
    assert len(mails) == 1
    mail = mails[0]
    assert mail["Subject"] == f"Report '{report['name']}' is ready"
    attachments = list(mail.iter_attachments())
    assert len(attachments) == 1 and attachments[0].get_content() in (file, file.decode())
    assert (
        f"/api/v1/analytics/reports/{report['id']}/download?run_id={run['run_id']}"
        in mail.get_body(("plain",)).get_content()
    )

    assert len(hooks) == 1
    headers, body = hooks[0]
    assert headers["X-Analytics-Event"] == "analytics.report_generated"
    timestamp = headers["X-Analytics-Timestamp"]
    expected = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["X-Analytics-Signature"] == f"sha256={expected}"
    event = json.loads(body)
    assert (event["report_id"], event["run_id"], event["sha256"]) == (report["id"], run["run_id"], run["sha256"])
    # The signed link in the event downloads the same file without credentials.
    with httpx.Client(timeout=60) as anonymous:
        assert anonymous.get(event["download_url"]).content == file

    status = owner.get(f"{REPORTS}/{report['id']}/status", params={"run_id": run["run_id"]}).json()
    deliveries = {d["channel"]: d for d in status["run"]["deliveries"]}
    assert deliveries["email"]["target"] == address and deliveries["email"]["status"] == "delivered"
    assert deliveries["webhook"]["status"] == "delivered" and deliveries["webhook"]["attempts"] == 1
    # A webhook's path is often its secret: the delivery shows the origin only.
    assert deliveries["webhook"]["target"] == url.removesuffix("/hook") + "/…"

    # The page itself: one self-contained HTML file whose top-content table has the events' numbers.
    parser = _Cells()
    parser.feed(file.decode())
    expected_views = world.views()
    for content_id, views in expected_views.items():
        assert [content_id, f"{views:,}"] in [[row[0], row[2]] for row in parser.rows if row and row[0] == content_id]


class _Cells(HTMLParser):
    """The text of every table row's cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


async def test_a_finished_run_is_published_on_the_bus(world: World) -> None:
    owner = world.clients["owner"]
    report = create(owner, definition(world, "json"))
    connection = await nats.connect(NATS_URL)
    received: list[dict[str, Any]] = []

    async def handler(message: Any) -> None:
        body = json.loads(message.data)
        if body["report_id"] == report["id"]:
            received.append(body)

    try:
        await connection.subscribe("analytics.report_generated", cb=handler)
        await connection.flush()
        run = await asyncio.to_thread(generate, owner, report["id"])
        deadline = time.monotonic() + 20
        while not received and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    assert len(received) == 1
    event = received[0]
    assert (event["event"], event["run_id"], event["status"]) == (
        "analytics.report_generated",
        run["run_id"],
        "completed",
    )
    assert (event["file_size"], event["sha256"]) == (run["file_size"], run["sha256"])


def test_a_custom_report_of_a_saved_funnel_has_its_steps(world: World) -> None:
    owner = world.clients["owner"]
    mine = [{"dimension": "content_id", "op": "in", "values": [world.c(n) for n in ("c1", "c2", "c3")]}]
    funnel = {
        "steps": [{"event_type": "content_view", "filters": mine}, {"event_type": "content_like", "filters": mine}],
        "date_range": {"start_date": START.isoformat(), "end_date": END.isoformat()},
    }
    direct = owner.post(f"{API}/funnels", json=funnel)
    assert direct.status_code == 200, direct.text
    saved = owner.post(
        f"{API}/saved-queries", json={"name": f"{world.p} funnel", "kind": "funnel", "definition": funnel}
    )
    assert saved.status_code == 201, saved.text
    report = create(
        owner,
        {
            **definition(world, "json"),
            "report_type": "custom",
            "filters": {},
            "data_source": f"saved_query:{saved.json()['id']}",
        },
    )
    run = generate(owner, report["id"])
    assert run["status"] == "completed", run
    document = download(owner, report["id"]).json()
    steps = next(t for t in document["tables"] if t["name"] == "steps")
    names = [c["name"] for c in steps["columns"]]
    counts = [row[names.index("count")] for row in steps["rows"]]
    # A funnel counts actors: the module's three users viewed, none liked.
    assert counts == [s["count"] for s in direct.json()["steps"]] == [len({e["user_id"] for e in world.events}), 0]


@pytest.mark.parametrize(
    "report_type", ["content_performance", "user_engagement", "system_health", "import_summary", "search_analytics"]
)
def test_every_report_type_has_the_query_apis_totals_and_a_table_per_template_table(
    world: World, admin: httpx.Client, report_type: str
) -> None:
    from semantic.report_templates import TEMPLATES

    template = TEMPLATES[report_type]
    report = create(
        admin,
        {**definition(world, "json"), "report_type": report_type, "filters": {}, "name": f"{world.p} {report_type}"},
    )
    run = generate(admin, report["id"])
    assert run["status"] == "completed", run
    document = download(admin, report["id"]).json()
    assert [t["name"] for t in document["tables"]] == [spec.name for spec in template.tables]
    query = {
        "metrics": list(template.default_metrics),
        "date_range": {"start_date": START.isoformat(), "end_date": END.isoformat()},
        "compare_to": "previous_period",
    }
    answer = admin.post(f"{API}/query", json=query)
    assert answer.status_code == 200, answer.text
    totals = answer.json()["totals"]
    assert {k["name"]: k["value"] for k in document["kpis"]} == {
        name: totals[name] if totals[name] is not None else 0 for name in template.default_metrics
    }
