"""The web dashboard's routes (serve_app/routes/web_pages.py): the pages, the files under web/, what
is refused, and the Content-Security-Policy every answer carries."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from serve_app.factory import create_app
from serve_app.routes.web_pages import WEB_DIR, content_security_policy
from tests.graphql.fakes import FakeServices


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(Settings(environment="test"))
    app.state.services = FakeServices.build()  # no lifespan: the pages need no service
    made = TestClient(app, raise_server_exceptions=False)
    yield made
    made.close()


def policy_of(answer_headers: Mapping[str, str]) -> dict[str, list[str]]:
    directives = [part.strip().split() for part in answer_headers["content-security-policy"].split(";")]
    return {name: values for name, *values in directives}


@pytest.mark.parametrize(("path", "page"), [("/", "index.html"), ("/dashboards/dsh_x1", "dashboard.html")])
def test_the_pages_need_no_key_and_forbid_inline_script(client: TestClient, path: str, page: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.content == (WEB_DIR / page).read_bytes()
    policy = policy_of(response.headers)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy["script-src"] + policy["style-src"]
    assert response.headers["x-frame-options"] == "DENY"


def test_no_page_has_inline_script_or_style() -> None:
    for page in WEB_DIR.glob("*.html"):
        text = page.read_text()
        assert "<script>" not in text and "<script " not in text.replace('<script type="module" src=', ""), page
        assert "<style" not in text and " style=" not in text, page


def test_every_file_a_page_names_is_served(client: TestClient) -> None:
    for name in ("/web/css/app.css", "/web/js/dashboard-page.js", "/web/js/home.js", "/web/favicon.svg"):
        response = client.get(name)
        assert response.status_code == 200, name
    script = client.get("/web/js/live.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert "content-security-policy" in script.headers


def test_every_module_a_script_imports_exists() -> None:
    js = WEB_DIR / "js"
    for script in js.glob("*.js"):
        for line in script.read_text().splitlines():
            if line.startswith("import ") and " from '" in line:
                target = (js / line.split(" from '")[1].split("'")[0]).resolve()
                assert target.is_file(), (script.name, line)


def test_the_chart_library_is_vendored_with_its_licence_and_version() -> None:
    vendor = WEB_DIR / "vendor" / "echarts"
    assert (vendor / "echarts.esm.min.js").stat().st_size > 100_000
    assert "Apache License" in (vendor / "LICENSE").read_text()
    pinned = json.loads((WEB_DIR / "package.json").read_text())["dependencies"]["echarts"]
    assert (vendor / "VERSION").read_text().split() == ["echarts", pinned]


def test_a_file_is_answered_304_when_unchanged(client: TestClient) -> None:
    first = client.get("/web/css/app.css")
    again = client.get("/web/css/app.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/web/../pyproject.toml",
        "/web/%2e%2e/pyproject.toml",
        "/web/js/%2e%2e/%2e%2e/serve_app/factory.py",
        "/web/..%2f..%2fcore%2fsettings.py",
        "/web/package.json",
        "/web/update-vendor.sh",
        "/web/vendor/echarts/LICENSE",
        "/web/index.html",
        "/web/js/missing.js",
        "/web/.hidden.js",
        "/web/js/%00.js",
    ],
)
def test_only_the_pages_files_are_served(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert response.json()["error"] == "not_found"


def test_a_file_outside_web_is_not_reached_through_a_symbolic_link(tmp_path: Path) -> None:
    link = WEB_DIR / "js" / "zz-outside-link.js"
    outside = tmp_path / "secret.js"
    outside.write_text("secret")
    link.symlink_to(outside)
    try:
        app = create_app(Settings(environment="test"))
        app.state.services = FakeServices.build()
        client = TestClient(app, raise_server_exceptions=False)
        assert client.get("/web/js/zz-outside-link.js").status_code == 404
        client.close()
    finally:
        link.unlink()


def test_a_host_header_is_written_into_the_policy_only_when_plain() -> None:
    assert "ws://127.0.0.1:8000" in content_security_policy("127.0.0.1:8000")
    assert "ws://[::1]:8000" in content_security_policy("[::1]:8000")
    hostile = content_security_policy("evil.test; script-src *")
    assert "evil" not in hostile and hostile.count("script-src") == 1
