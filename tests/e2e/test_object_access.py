"""Object-level authorization (BOLA) on the running service: principal A asks for principal B's objects
by id, over REST and GraphQL, and never gets them.

The objects a principal owns or is given: saved queries, reports with their runs and files, dashboards
with their widgets, data and versions (owner,
sharing by role or key), API keys (admins only) and erasure jobs (admins only, and each belongs to one
user's path). Someone else's id
answers exactly as an id that does not exist (404, or null in GraphQL), or 403 where the role may not
touch that kind of object at all; the object itself never appears in an answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

SAVED = "/api/v1/analytics/saved-queries"
KEYS = "/api/v1/admin/api-keys"
REPORTS = "/api/v1/analytics/reports"
DASHBOARDS = "/api/v1/analytics/dashboards"
WIDGETS = "/api/v1/analytics/widgets"


def _definition(unique: str) -> dict[str, Any]:
    return {
        "metrics": ["views"],
        "filters": [{"dimension": "content_id", "op": "in", "values": [f"{unique}-secret"]}],
        "date_range": {"start_date": "2026-11-01", "end_date": "2026-11-02"},
    }


@pytest.fixture(scope="module")
def analysts(admin: httpx.Client, service: Any) -> Iterator[dict[str, httpx.Client]]:
    """Two analysts: A owns the objects, B is a stranger to them."""
    clients = {}
    for who in ("a", "b"):
        made = admin.post(KEYS, json={"name": f"bola analyst {who}", "role": "analyst"})
        assert made.status_code == 201, made.text
        headers = {"Authorization": f"Bearer {made.json()['key']}"}
        clients[who] = httpx.Client(base_url=service.base_url, headers=headers, timeout=120)
    yield clients
    for client in clients.values():
        client.close()


def graphql(client: httpx.Client, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_stranger_never_gets_a_saved_query(analysts: dict[str, httpx.Client], client_for: Any, unique: str) -> None:
    owner, stranger = analysts["a"], analysts["b"]
    created = owner.post(SAVED, json={"name": f"private {unique}", "kind": "query", "definition": _definition(unique)})
    assert created.status_code == 201, created.text
    saved = created.json()
    one = f"{SAVED}/{saved['id']}"
    missing = f"{SAVED}/sq_{unique}"

    for caller in (stranger, client_for("viewer"), client_for("content_manager")):
        for method, path in (("GET", one), ("POST", f"{one}/run")):
            refused = caller.request(method, path)
            absent = caller.request(method, path.replace(one, missing))
            assert refused.status_code == absent.status_code == 404, (method, refused.text)
            # The same answer as for an id never made, word for word but the id itself.
            assert refused.text.replace(saved["id"], "ID") == absent.text.replace(f"sq_{unique}", "ID")
            assert f"private {unique}" not in refused.text and f"{unique}-secret" not in refused.text
        listed = caller.get(SAVED, params={"limit": 100}).json()
        assert all(item["id"] != saved["id"] for item in listed["items"]), listed
    for method in ("PUT", "DELETE"):
        body = {"version": saved["version"], "name": "taken over"} if method == "PUT" else None
        refused = stranger.request(method, one, json=body)
        assert refused.status_code == 404, refused.text
        assert f"private {unique}" not in refused.text
    # Viewers and content managers may not change saved queries at all: 403 before any lookup.
    assert client_for("viewer").delete(one).status_code == 403

    # GraphQL: null for the query, not_found for the mutations, the same as for an id never made.
    seen = graphql(stranger, "query($id: String!) { savedQuery(id: $id) { id name definition } }", id=saved["id"])
    assert seen == {"data": {"savedQuery": None}}
    gone = graphql(stranger, "mutation($id: String!) { deleteSavedQuery(id: $id) { id name } }", id=saved["id"])
    assert gone["errors"][0]["extensions"]["code"] == "not_found"
    listed = graphql(stranger, "{ savedQueries(limit: 100) { items { id } } }")
    assert saved["id"] not in {item["id"] for item in listed["data"]["savedQueries"]["items"]}

    # The owner still has it, untouched.
    kept = owner.get(one)
    assert kept.status_code == 200 and kept.json()["name"] == f"private {unique}"


def test_a_stranger_never_gets_a_report_its_runs_or_its_file(
    analysts: dict[str, httpx.Client], client_for: Any, unique: str
) -> None:
    owner, stranger = analysts["a"], analysts["b"]
    body = {
        "name": f"private report {unique}",
        "report_type": "content_performance",
        "report_format": "json",
        "date_range": {"start_date": "2025-01-01", "end_date": "2025-01-01"},
        "filters": {"content_id": f"{unique}-secret"},
    }
    created = owner.post(REPORTS, json=body)
    assert created.status_code == 201, created.text
    report = created.json()
    started = owner.post(f"{REPORTS}/{report['id']}/generate")
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    one = f"{REPORTS}/{report['id']}"
    missing = f"{REPORTS}/rep_{unique}"
    reads = [
        ("GET", one, None),
        ("POST", f"{one}/generate", None),
        ("GET", f"{one}/status", None),
        ("GET", f"{one}/runs", None),
        ("GET", f"{one}/download", None),
        ("GET", f"{one}/download?run_id={run_id}", None),
    ]
    changes = [
        ("PUT", one, {"name": "taken over"}),
        ("DELETE", one, None),
        ("POST", f"{one}/schedule", {"schedule_config": {"cron": "* * * * *"}}),
        ("POST", f"{one}/share", {"shared_with": ["key_someone"]}),
        ("PUT", f"{one}/permissions", {"shared_with": [], "is_public": True}),
    ]
    for caller in (stranger, client_for("viewer"), client_for("content_manager")):
        for method, path, payload in reads + (changes if caller is stranger else []):
            refused = caller.request(method, path, json=payload)
            absent = caller.request(method, path.replace(one, missing), json=payload)
            assert refused.status_code == absent.status_code == 404, (method, path, refused.text)
            assert refused.text.replace(report["id"], "ID") == absent.text.replace(f"rep_{unique}", "ID")
            assert f"private report {unique}" not in refused.text and f"{unique}-secret" not in refused.text
        listed = caller.get(REPORTS, params={"limit": 200}).json()
        assert all(item["id"] != report["id"] for item in listed["items"]), listed
        shared = caller.get(f"{REPORTS}/shared", params={"limit": 200}).json()
        assert all(item["id"] != report["id"] for item in shared["items"]), shared
    # A viewer may not change reports at all: 403 before any lookup.
    assert client_for("viewer").delete(one).status_code == 403

    seen = graphql(stranger, "query($id: String!) { report(id: $id) { id name } }", id=report["id"])
    assert seen["errors"][0]["extensions"]["code"] == "not_found" and f"private report {unique}" not in str(seen)
    gone = graphql(stranger, "mutation($id: String!) { deleteReport(id: $id) }", id=report["id"])
    assert gone["errors"][0]["extensions"]["code"] == "not_found"
    runs = graphql(stranger, "query($id: String!) { reportRuns(reportId: $id) { total } }", id=report["id"])
    assert runs["errors"][0]["extensions"]["code"] == "not_found"

    kept = owner.get(one)
    assert kept.status_code == 200 and kept.json()["name"] == f"private report {unique}"


def test_a_stranger_never_gets_a_dashboard_its_widgets_data_or_versions(
    analysts: dict[str, httpx.Client], client_for: Any, unique: str
) -> None:
    owner, stranger = analysts["a"], analysts["b"]
    widget_body = {
        "widget_type": "custom_metric",
        "title": f"secret widget {unique}",
        "config": {"query": _definition(unique)},
    }
    created = owner.post(DASHBOARDS, json={"name": f"private dashboard {unique}", "widgets": [widget_body]})
    assert created.status_code == 201, created.text
    dashboard = created.json()
    widget_id = dashboard["widgets"][0]["id"]
    one, missing = f"{DASHBOARDS}/{dashboard['id']}", f"{DASHBOARDS}/dsh_{unique}"
    widget, missing_widget = f"{WIDGETS}/{widget_id}", f"{WIDGETS}/wdg_{unique}"
    reads = [
        ("GET", one, None),
        ("GET", f"{one}/data", None),
        ("GET", f"{one}/versions", None),
        ("GET", f"{one}/versions/1", None),
        ("GET", widget, None),
    ]
    changes = [
        ("PUT", one, {"name": "taken over"}),
        ("DELETE", one, None),
        ("POST", f"{one}/versions/1/restore", None),
        ("PUT", widget, {"title": "taken over"}),
        ("DELETE", widget, None),
    ]
    for caller in (stranger, client_for("viewer"), client_for("content_manager")):
        for method, path, payload in reads + (changes if caller is stranger else []):
            refused = caller.request(method, path, json=payload)
            absent_path = path.replace(one, missing).replace(widget, missing_widget)
            absent = caller.request(method, absent_path, json=payload)
            assert refused.status_code == absent.status_code == 404, (method, path, refused.text)
            assert refused.text.replace(dashboard["id"], "ID").replace(widget_id, "WID") == absent.text.replace(
                f"dsh_{unique}", "ID"
            ).replace(f"wdg_{unique}", "WID")
            assert f"private dashboard {unique}" not in refused.text and f"{unique}-secret" not in refused.text
        listed = caller.get(DASHBOARDS, params={"limit": 200}).json()
        assert all(item["id"] != dashboard["id"] for item in listed["items"]), listed
    # Adding a widget to someone else's dashboard: the same 404 as to none.
    added = stranger.post(WIDGETS, json={"dashboard_id": dashboard["id"], "widget_type": "table"})
    none = stranger.post(WIDGETS, json={"dashboard_id": f"dsh_{unique}", "widget_type": "table"})
    assert added.status_code == none.status_code == 404
    # A viewer may not change dashboards at all: 403 before any lookup.
    assert client_for("viewer").delete(one).status_code == 403

    seen = graphql(stranger, "query($id: String!) { dashboard(id: $id) { id name } }", id=dashboard["id"])
    assert seen["errors"][0]["extensions"]["code"] == "not_found" and f"private dashboard {unique}" not in str(seen)
    data = graphql(stranger, "query($id: String!) { dashboardData(id: $id) { asOf } }", id=dashboard["id"])
    assert data["errors"][0]["extensions"]["code"] == "not_found"
    gone = graphql(stranger, "mutation($id: String!) { deleteWidget(id: $id) }", id=widget_id)
    assert gone["errors"][0]["extensions"]["code"] == "not_found"

    kept = owner.get(one)
    assert kept.status_code == 200 and kept.json()["widgets"][0]["id"] == widget_id


def test_only_admins_touch_api_keys(admin: httpx.Client, analysts: dict[str, httpx.Client], client_for: Any) -> None:
    keys = admin.get(KEYS).json()["keys"]
    target = next(k for k in keys if k["name"] == "bola analyst a")
    for caller in (analysts["b"], client_for("viewer"), client_for("content_manager"), client_for("service")):
        for method, path in (
            ("GET", KEYS),
            ("DELETE", f"{KEYS}/{target['id']}"),
            ("POST", f"{KEYS}/{target['id']}/rotate"),
        ):
            refused = caller.request(method, path)
            assert refused.status_code == 403, (method, path, refused.text)
            assert target["id"] not in refused.text and target["key_prefix"] not in refused.text
    # An admin asking for a key that does not exist gets 404, not someone else's key.
    assert admin.delete(f"{KEYS}/key_0000000000000000").status_code == 404
    assert admin.post(f"{KEYS}/key_0000000000000000/rotate").status_code == 404
    # The key still works: nobody above revoked or rotated it.
    assert analysts["a"].get(SAVED).status_code == 200


def test_an_erasure_job_is_seen_only_by_admins_and_only_on_its_users_path(
    admin: httpx.Client, analysts: dict[str, httpx.Client], client_for: Any, unique: str
) -> None:
    user = f"bola-user-{unique}"
    started = admin.delete(f"/api/v1/analytics/users/{user}/data")
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    own = f"/api/v1/analytics/users/{user}/data/erasure/{job_id}"
    assert admin.get(own).status_code == 200

    # The job under another user's path: as unknown as a job id never made.
    elsewhere = admin.get(f"/api/v1/analytics/users/other-{unique}/data/erasure/{job_id}")
    never = admin.get(f"/api/v1/analytics/users/{user}/data/erasure/ej_{unique}")
    assert elsewhere.status_code == never.status_code == 404, elsewhere.text
    assert elsewhere.text.replace(job_id, "ID") == never.text.replace(f"ej_{unique}", "ID")

    for caller in (analysts["b"], client_for("viewer"), client_for("content_manager"), client_for("service")):
        for method, path in (
            ("GET", own),
            ("GET", f"/api/v1/analytics/users/{user}/data"),
            ("DELETE", f"/api/v1/analytics/users/{user}/data"),
        ):
            refused = caller.request(method, path)
            assert refused.status_code == 403, (method, path, refused.text)
            assert job_id not in refused.text
