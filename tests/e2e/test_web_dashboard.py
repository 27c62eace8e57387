"""The built-in web dashboard (web/, serve_app/routes/web_pages.py) in a real Chromium against the real
service: signing in, every widget kind drawn, live updates over the GraphQL subscription, creating and
editing a dashboard without JSON, the conflict of a stale save, right-to-left titles, the phone and 4K
layouts, and the wall-screen mode. Every page must load without a console error (a Content-Security-
Policy violation is one). Screenshots go to the folder printed at the start (tests/e2e/browser.py)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute

from core.access import PERMISSION_MATRIX, Operation, Role
from tests.e2e.browser import KEY_NAME, LAPTOP, PHONE, UHD, WatchedPage, open_page
from tests.e2e.realtime_support import event, send

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"
# The first computation of a dashboard's widgets reads every store once; later ones come from caches.
FIRST_DATA_MS = 90_000
# Kinds drawn on a canvas by the chart library, and how a table widget draws each chart.
CHART_KINDS = {"series", "funnel", "retention"}


def create_dashboard(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{API}/dashboards", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def widget_states(page: Page) -> list[dict[str, Any]]:
    return await page.evaluate(
        """() => [...document.querySelectorAll('#grid .widget')].map((el) => ({
            id: el.dataset.widgetId, type: el.dataset.widgetType, kind: el.dataset.kind || null,
            state: el.dataset.state, title: el.querySelector('.widget-title').textContent,
            error: el.querySelector('.widget-error').hidden ? null : el.querySelector('.widget-error').textContent,
            freshness: el.querySelector('.widget-freshness').textContent,
        }))"""
    )


async def wait_for_every_widget(page: Page, count: int) -> None:
    await page.wait_for_function(
        """(count) => {
            const widgets = document.querySelectorAll('#grid .widget');
            return widgets.length === count && [...widgets].every((w) => w.dataset.state !== 'loading');
        }""",
        arg=count,
        timeout=FIRST_DATA_MS,
    )


async def drawn(page: Page, widget_id: str) -> dict[str, Any]:
    """What a widget's body holds: a chart canvas with pixels drawn, a table, a counter's figure, badges."""
    return await page.evaluate(
        """(id) => {
            const el = document.querySelector(`.widget[data-widget-id="${id}"]`);
            const canvas = el.querySelector('.chart canvas');
            let painted = 0;
            if (canvas && canvas.width && canvas.height) {
                const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
            }
            const table = el.querySelector('table.data-table');
            return {
                painted,
                tableColumns: table ? table.querySelectorAll('thead th').length : 0,
                counter: el.querySelector('.counter-value')?.textContent ?? null,
                summary: el.querySelector('.chart-summary')?.textContent ?? '',
                badges: el.querySelectorAll('.status .badge').length,
            };
        }""",
        widget_id,
    )


def ingest_some_events(client: httpx.Client, prefix: str) -> None:
    now = datetime.now(UTC)
    kinds = ["content_view", "content_play", "content_complete", "content_view", "content_share"]
    send(
        client,
        [
            event(
                f"{prefix}-{i}",
                kinds[i % len(kinds)],
                f"{prefix}-c{i % 5}",
                f"{prefix}-u{i % 11}",
                now - timedelta(days=i % 3, minutes=i % 40),
                session_id=f"{prefix}-s{i % 13}",
                country="SA" if i % 2 else "DE",
            )
            for i in range(300)
        ],
    )


def every_kind_body(name: str) -> dict[str, Any]:
    seven_days = {"relative": "last_7_days"}
    widget = lambda kind, title, config, x, y, w, h: {  # noqa: E731 - a table of rows below
        "widget_type": kind,
        "title": title,
        "config": config,
        "layout": {"x": x, "y": y, "w": w, "h": h},
    }
    return {
        "name": name,
        "refresh_interval_seconds": 5,
        "shared_with_roles": ["viewer"],
        "widgets": [
            widget("real_time_counter", "Views (1h)", {"metric": "views", "window": "1h"}, 0, 0, 3, 2),
            widget(
                "custom_metric",
                "Views, 7 days",
                {"query": {"metrics": ["views"], "date_range": seven_days}},
                3,
                0,
                3,
                2,
            ),
            widget("trending_content", "Trending", {"window": "24h", "chart": "bar"}, 6, 0, 6, 4),
            widget("user_activity", "User activity", {"range": "last_7_days"}, 0, 2, 6, 4),
            widget(
                "time_series",
                "Views by day",
                {"metrics": ["views", "plays"], "range": "last_7_days", "chart": "area"},
                0,
                6,
                6,
                4,
            ),
            widget(
                "table", "By country", {"metrics": ["views"], "dimensions": ["country"], "chart": "table"}, 6, 4, 6, 4
            ),
            widget(
                "table", "Devices", {"metrics": ["views"], "dimensions": ["device_type"], "chart": "pie"}, 6, 8, 3, 4
            ),
            widget("top_content", "Top content", {"metric": "views", "chart": "bar"}, 9, 8, 3, 4),
            widget(
                "funnel",
                "View to complete",
                {
                    "funnel": {
                        "steps": [
                            {"event_type": "content_view"},
                            {"event_type": "content_play"},
                            {"event_type": "content_complete"},
                        ],
                        "date_range": seven_days,
                    }
                },
                0,
                10,
                6,
                4,
            ),
            widget(
                "retention",
                "Returning viewers",
                {
                    "retention": {
                        "start_event": {"event_type": "content_view"},
                        "return_event": {"event_type": "content_view"},
                        "bucket": "day",
                        "periods": 4,
                    }
                },
                6,
                12,
                6,
                5,
            ),
            widget("system_health", "Health", {"range": "today"}, 0, 14, 6, 4),
            widget("import_status", "Imports", {"range": "last_7_days"}, 0, 18, 12, 3),
        ],
    }


async def test_signing_in_lists_the_dashboards_and_keeps_the_key_in_the_tab_only(
    browser: Browser, base_url: str, admin: httpx.Client, service: Any, unique: str, screenshots: Path
) -> None:
    made = create_dashboard(admin, {"name": f"Listed {unique}", "description": "shown on the front page"})
    watched = await open_page(browser, base_url, "/")
    try:
        page = watched.page
        await page.wait_for_selector("#api-key")
        assert await page.is_hidden("#dashboards")
        await page.fill("#api-key", service.admin_key)
        await page.click("#signin-submit")
        link = page.locator(f'.dashboard-item[data-dashboard-id="{made["id"]}"] a.dashboard-link')
        await link.wait_for()
        assert await link.text_content() == f"Listed {unique}"
        assert await link.get_attribute("href") == f"/dashboards/{made['id']}"
        await watched.screenshot(screenshots, "front-page")
        storage = await page.evaluate(
            "(name) => ({session: sessionStorage.getItem(name), local: localStorage.length, cookie: document.cookie})",
            KEY_NAME,
        )
        assert storage == {"session": service.admin_key, "local": 0, "cookie": ""}
        assert await watched.context.cookies() == []
        assert watched.console_errors() == []
    finally:
        await watched.close()


async def test_a_bad_key_is_refused_with_the_services_message(
    browser: Browser, base_url: str, unique: str, screenshots: Path
) -> None:
    bad_key = f"ak_not_a_key_{unique}"
    refused = httpx.get(f"{base_url}{API}/dashboards", headers={"Authorization": f"Bearer {bad_key}"})
    assert refused.status_code == 401
    watched = await open_page(browser, base_url, "/")
    try:
        page = watched.page
        await page.fill("#api-key", bad_key)
        await page.click("#signin-submit")
        await page.wait_for_selector("#signin-error:not([hidden])")
        message = await page.text_content("#signin-error") or ""
        assert "This API key was not accepted" in message
        assert refused.json()["message"] in message
        assert await page.evaluate("(name) => sessionStorage.getItem(name)", KEY_NAME) is None
        assert await page.is_hidden("#dashboards")
        await watched.screenshot(screenshots, "bad-key")
        # The browser itself logs the refused call; nothing else may fail.
        assert watched.console_errors(allowed=r"status of 401") == []
    finally:
        await watched.close()


async def test_a_bad_key_on_a_dashboard_page_asks_to_sign_in_again(
    browser: Browser, base_url: str, admin: httpx.Client, unique: str
) -> None:
    made = create_dashboard(admin, {"name": f"Guarded {unique}"})
    watched = await open_page(browser, base_url, f"/dashboards/{made['id']}", key=f"ak_revoked_{unique}")
    try:
        await watched.page.wait_for_selector("#signin-error:not([hidden])")
        assert "This API key was not accepted" in (await watched.page.text_content("#signin-error") or "")
        assert await watched.page.locator("#grid .widget").count() == 0
    finally:
        await watched.close()


def widget_kinds(admin: httpx.Client) -> dict[str, dict[str, Any]]:
    response = admin.get(f"{API}/widget-types")
    assert response.status_code == 200, response.text
    return {t["type"]: t for t in response.json()["widget_types"]}


async def assert_drawn(page: Page, widget: dict[str, Any], expected_kind: str, chart: str | None) -> None:
    body = await drawn(page, widget["id"])
    assert widget["kind"] == expected_kind, widget
    if expected_kind in CHART_KINDS or (expected_kind == "table" and chart in ("bar", "pie")):
        # Axes alone when the period has no data yet (said above the chart); marks too when it has.
        assert body["painted"] > (100 if body["summary"] == "No data for this period yet" else 1000), (widget, body)
    elif expected_kind == "table":
        assert body["tableColumns"] > 0, (widget, body)
    elif expected_kind == "counter":
        assert body["counter"] and any(c.isdigit() for c in body["counter"]), (widget, body)
    elif expected_kind == "status":
        assert body["badges"] >= 1, (widget, body)


async def test_every_widget_kind_is_drawn_and_a_refused_one_shows_its_error(
    browser: Browser,
    base_url: str,
    admin: httpx.Client,
    role_keys: dict[str, str],
    unique: str,
    screenshots: Path,
) -> None:
    ingest_some_events(admin, f"kinds-{unique}")
    body = every_kind_body(f"Every kind {unique}")
    made = create_dashboard(admin, body)
    types = widget_kinds(admin)
    assert {w["widget_type"] for w in body["widgets"]} == set(types), "a widget type is missing from the test"
    charts = {w["id"]: w["config"].get("chart") for w in made["widgets"]}

    watched = await open_page(browser, base_url, f"/dashboards/{made['id']}", key=role_keys["admin"])
    try:
        await wait_for_every_widget(watched.page, len(body["widgets"]))
        await watched.screenshot(screenshots, "every-kind-admin")
        for widget in await widget_states(watched.page):
            assert widget["state"] == "ok" and widget["error"] is None, widget
            assert widget["freshness"].startswith("updated "), widget
            await assert_drawn(watched.page, widget, types[widget["type"]]["kind"], charts[widget["id"]])
        assert watched.console_errors() == []
    finally:
        await watched.close()

    # A viewer sees the dashboard too; a widget whose data its role may not read shows why, the rest draw.
    watched = await open_page(browser, base_url, f"/dashboards/{made['id']}", key=role_keys["viewer"])
    try:
        await wait_for_every_widget(watched.page, len(body["widgets"]))
        await watched.screenshot(screenshots, "every-kind-viewer")
        refused = 0
        for widget in await widget_states(watched.page):
            operation = types[widget["type"]]["operation"]
            if operation is not None and Role.VIEWER not in PERMISSION_MATRIX[Operation(operation)]:
                refused += 1
                assert widget["state"] == "error", widget
                assert "may not" in (widget["error"] or ""), widget
                assert "forbidden" in (widget["error"] or ""), widget
            else:
                assert widget["state"] == "ok" and widget["error"] is None, widget
                await assert_drawn(watched.page, widget, types[widget["type"]]["kind"], charts[widget["id"]])
        assert refused >= 1
        assert watched.console_errors() == []
    finally:
        await watched.close()


async def test_a_live_counter_shows_new_events_within_two_seconds(
    browser: Browser, base_url: str, admin: httpx.Client, service: Any, unique: str, screenshots: Path
) -> None:
    content_id = f"live-{unique}"
    made = create_dashboard(
        admin,
        {
            "name": f"Live {unique}",
            "refresh_interval_seconds": 1,
            "widgets": [
                {
                    "widget_type": "real_time_counter",
                    "title": "Views of one item",
                    "config": {"metric": "views", "window": "5m", "content_id": content_id},
                }
            ],
        },
    )
    watched = await open_page(browser, base_url, f"/dashboards/{made['id']}", key=service.admin_key)
    try:
        page = watched.page
        await page.wait_for_selector('#live-status[data-state="live"]', timeout=FIRST_DATA_MS)
        await page.wait_for_function(
            "() => document.querySelector('.counter-value')?.textContent === '0'", timeout=FIRST_DATA_MS
        )
        now = datetime.now(UTC)
        send(admin, [event(f"{content_id}-{i}", "content_view", content_id, f"u{i}", now) for i in range(3)])
        sent = time.monotonic()
        await page.wait_for_function(
            "() => document.querySelector('.counter-value')?.textContent === '3'", timeout=10_000, polling=50
        )
        elapsed = time.monotonic() - sent
        await watched.screenshot(screenshots, "live-counter")
        assert elapsed <= 2.0, f"the counter changed {elapsed:.2f} s after the events were stored"
        assert (await widget_states(page))[0]["freshness"] in ("updated 0 s ago", "updated 1 s ago", "updated 2 s ago")
        assert watched.console_errors() == []
    finally:
        await watched.close()


async def test_the_live_connection_comes_back_after_it_drops(
    browser: Browser, base_url: str, admin: httpx.Client, service: Any, unique: str
) -> None:
    content_id = f"again-{unique}"
    made = create_dashboard(
        admin,
        {
            "name": f"Reconnecting {unique}",
            "refresh_interval_seconds": 1,
            "widgets": [
                {
                    "widget_type": "real_time_counter",
                    "config": {"metric": "views", "window": "5m", "content_id": content_id},
                }
            ],
        },
    )
    sockets: list[WebSocketRoute] = []

    def through_to_the_service(socket: WebSocketRoute) -> None:
        # Each connection the page opens goes on to the real service; the test can cut it from the page's side.
        socket.connect_to_server()
        sockets.append(socket)

    watched = await open_page(browser, base_url, None, key=service.admin_key)
    try:
        page = watched.page
        await page.route_web_socket(re.compile(r"/graphql$"), through_to_the_service)
        await page.goto(f"/dashboards/{made['id']}")
        await page.wait_for_selector('#live-status[data-state="live"]', timeout=FIRST_DATA_MS)
        assert len(sockets) == 1
        await sockets[0].close(code=1011, reason="cut by the test")
        await page.wait_for_selector('#live-status[data-state="reconnecting"]')
        await page.wait_for_selector('#live-status[data-state="live"]', timeout=30_000)
        assert len(sockets) == 2
        # The new subscription carries updates: the counter follows events sent after the cut.
        send(
            admin,
            [event(f"{content_id}-{i}", "content_view", content_id, f"u{i}", datetime.now(UTC)) for i in range(2)],
        )
        await page.wait_for_function(
            "() => document.querySelector('.counter-value')?.textContent === '2'", timeout=10_000
        )
        assert watched.console_errors() == []
    finally:
        await watched.close()


async def test_a_dashboard_made_in_the_page_is_saved_through_the_api(
    browser: Browser, base_url: str, admin: httpx.Client, service: Any, unique: str, screenshots: Path
) -> None:
    name = f"Made in the page {unique}"
    default_width = widget_kinds(admin)["real_time_counter"]["default_layout"]["w"]
    watched = await open_page(browser, base_url, "/", key=service.admin_key)
    try:
        page = watched.page
        await page.click("#new-dashboard")
        await page.fill("#create-name", name)
        await page.fill("#create-description", "two widgets, no JSON written")
        await page.fill("#create-refresh", "7")
        await page.click("#create-submit")
        await page.wait_for_url("**/dashboards/dsh_*")
        await page.wait_for_selector("#edit-bar:not([hidden])")
        dashboard_id = page.url.rsplit("/", 1)[1].split("?")[0]

        await page.click("#add-widget")
        await page.click('.type-option[data-type="real_time_counter"]')
        await page.select_option("#field-metric", "events_last_60s")
        await page.fill("#field-title", "Events, last minute")
        await page.click('button[data-action="apply-widget"]')
        await page.click("#add-widget")
        await page.click('.type-option[data-type="table"]')
        await page.check('#field-metrics input[value="plays"]')
        await page.select_option("#field-chart", "pie")
        await page.click('button[data-action="apply-widget"]')
        counter = page.locator('.widget[data-widget-type="real_time_counter"]')
        await counter.locator('button[data-action="wider"]').click()
        await watched.screenshot(screenshots, "editing-new-dashboard")
        await page.click("#edit-save")
        await page.wait_for_selector('#banner[data-kind="success"]')

        saved = admin.get(f"{API}/dashboards/{dashboard_id}")
        assert saved.status_code == 200, saved.text
        dashboard = saved.json()
        assert (dashboard["name"], dashboard["description"], dashboard["refresh_interval_seconds"]) == (
            name,
            "two widgets, no JSON written",
            7,
        )
        assert dashboard["version"] == 2
        by_type = {w["widget_type"]: w for w in dashboard["widgets"]}
        assert set(by_type) == {"real_time_counter", "table"}
        assert by_type["real_time_counter"]["title"] == "Events, last minute"
        assert by_type["real_time_counter"]["config"]["metric"] == "events_last_60s"
        assert by_type["real_time_counter"]["layout"]["w"] == default_width + 1
        assert by_type["table"]["config"]["metrics"] == ["views", "plays"]
        assert by_type["table"]["config"]["chart"] == "pie"
        # The page now shows the saved widgets with their data.
        await wait_for_every_widget(page, 2)
        assert {w["id"] for w in await widget_states(page)} == {w["id"] for w in dashboard["widgets"]}
        assert await page.is_hidden("#edit-bar")
        assert watched.console_errors() == []
    finally:
        await watched.close()


async def test_a_stale_save_shows_the_conflict_and_can_overwrite(
    browser: Browser, base_url: str, admin: httpx.Client, service: Any, unique: str, screenshots: Path
) -> None:
    made = create_dashboard(
        admin,
        {
            "name": f"Contested {unique}",
            "widgets": [
                {
                    "widget_type": "real_time_counter",
                    "config": {"metric": "events_last_60s"},
                    "layout": {"x": 0, "y": 0, "w": 3, "h": 2},
                }
            ],
        },
    )
    watched = await open_page(browser, base_url, f"/dashboards/{made['id']}", key=service.admin_key)
    try:
        page = watched.page
        await page.click("#edit-toggle")
        await page.click('.widget button[data-action="move-right"]')
        elsewhere = admin.put(
            f"{API}/dashboards/{made['id']}", json={"name": f"Renamed elsewhere {unique}", "version": 1}
        )
        assert elsewhere.status_code == 200, elsewhere.text
        await page.click("#edit-save")
        await page.wait_for_selector('#banner[data-kind="conflict"]')
        text = await page.text_content("#banner") or ""
        assert "someone else saved this dashboard" in text
        assert "version 1" in text
        await watched.screenshot(screenshots, "save-conflict", full_page=False)
        assert await page.is_visible("#edit-bar"), "the edits stay for the person to decide"
        assert admin.get(f"{API}/dashboards/{made['id']}").json()["widgets"][0]["layout"]["x"] == 0

        await page.click('#banner button[data-action="overwrite"]')
        await page.wait_for_selector('#banner[data-kind="success"]')
        after = admin.get(f"{API}/dashboards/{made['id']}").json()
        assert after["version"] == 3
        assert after["name"] == f"Contested {unique}"
        assert after["widgets"][0]["layout"]["x"] == 1
        assert watched.console_errors(allowed=r"status of 409") == []
    finally:
        await watched.close()


async def test_arabic_titles_read_right_to_left(
    browser: Browser, base_url: str, admin: httpx.Client, service: Any, unique: str, screenshots: Path
) -> None:
    made = create_dashboard(
        admin,
        {
            "name": f"لوحة المحتوى {unique}",
            "description": "أرقام المشاهدة لهذا الأسبوع",
            "widgets": [
                {
                    "widget_type": "real_time_counter",
                    "title": "المشاهدات الآن",
                    "config": {"metric": "views"},
                    "layout": {"x": 0, "y": 0, "w": 4, "h": 2},
                },
                {
                    "widget_type": "real_time_counter",
                    "title": "Events now",
                    "config": {"metric": "events_last_60s"},
                    "layout": {"x": 4, "y": 0, "w": 4, "h": 2},
                },
            ],
        },
    )
    watched = await open_page(browser, base_url, f"/dashboards/{made['id']}", key=service.admin_key)
    try:
        page = watched.page
        await wait_for_every_widget(page, 2)
        direction = "(selector) => getComputedStyle(document.querySelector(selector)).direction"
        assert await page.evaluate(direction, "#dashboard-title") == "rtl"
        assert await page.evaluate(direction, "#dashboard-description") == "rtl"
        titles = await page.evaluate(
            "() => [...document.querySelectorAll('.widget-title')]"
            ".map((t) => [t.textContent, getComputedStyle(t).direction])"
        )
        assert sorted(titles) == sorted([["المشاهدات الآن", "rtl"], ["Events now", "ltr"]])
        # The page itself stays left to right: only the Arabic text turns.
        assert await page.evaluate("() => getComputedStyle(document.body).direction") == "ltr"
        await watched.screenshot(screenshots, "arabic-titles", full_page=False)
        assert watched.console_errors() == []
    finally:
        await watched.close()


async def boxes(page: Page) -> list[dict[str, float]]:
    return await page.evaluate(
        """() => [...document.querySelectorAll('#grid .widget')].map((el) => {
            const r = el.getBoundingClientRect();
            return {id: el.dataset.widgetId, left: r.left, top: r.top, width: r.width};
        })"""
    )


async def test_a_phone_shows_one_column_in_layout_order(
    browser: Browser, base_url: str, admin: httpx.Client, service: Any, unique: str, screenshots: Path
) -> None:
    counter = {"widget_type": "real_time_counter", "config": {"metric": "events_last_60s"}}
    made = create_dashboard(
        admin,
        {
            "name": f"Pocket {unique}",
            "widgets": [
                {**counter, "title": "third", "layout": {"x": 0, "y": 4, "w": 12, "h": 2}},
                {**counter, "title": "second", "layout": {"x": 6, "y": 0, "w": 6, "h": 2}},
                {**counter, "title": "first", "layout": {"x": 0, "y": 0, "w": 6, "h": 2}},
            ],
        },
    )
    titles_by_id = {w["id"]: w["title"] for w in made["widgets"]}
    for viewport, name in ((LAPTOP, "laptop"), (PHONE, "phone")):
        watched = await open_page(
            browser, base_url, f"/dashboards/{made['id']}", key=service.admin_key, viewport=viewport
        )
        try:
            await wait_for_every_widget(watched.page, 3)
            await watched.screenshot(screenshots, f"layout-{name}")
            placed = sorted(await boxes(watched.page), key=lambda b: b["top"])
            grid_width = await watched.page.evaluate(
                "() => document.querySelector('#grid').getBoundingClientRect().width"
            )
            if name == "phone":
                assert [titles_by_id[b["id"]] for b in placed] == ["first", "second", "third"]
                assert len({round(b["left"]) for b in placed}) == 1
                assert all(abs(b["width"] - grid_width) < 2 for b in placed), (placed, grid_width)
                assert await watched.page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
            else:
                first, second = placed[0], placed[1]
                assert first["top"] == second["top"] and first["left"] != second["left"], placed
            assert watched.console_errors() == []
        finally:
            await watched.close()


async def root_font_size(page: Page) -> float:
    return float(await page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)"))


async def test_the_wall_screen_mode_fills_a_4k_screen_without_chrome(
    browser: Browser, base_url: str, admin: httpx.Client, service: Any, unique: str, screenshots: Path
) -> None:
    made = create_dashboard(
        admin,
        {
            "name": f"Wall {unique}",
            "widgets": [
                {
                    "widget_type": "real_time_counter",
                    "title": "Events",
                    "config": {"metric": "events_last_60s"},
                    "layout": {"x": 0, "y": 0, "w": 4, "h": 2},
                },
                {
                    "widget_type": "time_series",
                    "title": "Views",
                    "config": {"metrics": ["views"]},
                    "layout": {"x": 4, "y": 0, "w": 8, "h": 4},
                },
            ],
        },
    )
    laptop = await open_page(browser, base_url, f"/dashboards/{made['id']}", key=service.admin_key)
    try:
        laptop_font = await root_font_size(laptop.page)
        await wait_for_every_widget(laptop.page, 2)
        await laptop.page.click("#wall-toggle")
        assert await laptop.page.evaluate("() => document.documentElement.classList.contains('wall')")
        assert "wall=1" in laptop.page.url
        assert await laptop.page.is_hidden("header.chrome")
        await laptop.page.keyboard.press("Escape")
        await laptop.page.wait_for_selector("header.chrome", state="visible")
        assert "wall=1" not in laptop.page.url
        assert laptop.console_errors() == []
    finally:
        await laptop.close()

    wall: WatchedPage = await open_page(
        browser, base_url, f"/dashboards/{made['id']}?wall=1", key=service.admin_key, viewport=UHD
    )
    try:
        page = wall.page
        await wait_for_every_widget(page, 2)
        assert await page.is_hidden("header.chrome")
        assert await page.evaluate("() => document.documentElement.dataset.theme") == "dark"
        assert await root_font_size(page) >= 2 * laptop_font
        grid = await page.evaluate("() => document.querySelector('#grid').getBoundingClientRect().toJSON()")
        assert grid["height"] >= 0.9 * UHD["height"] and grid["width"] >= 0.95 * UHD["width"], grid
        series = await page.locator('.widget[data-widget-type="time_series"]').bounding_box()
        assert series is not None and series["height"] >= 0.8 * UHD["height"], series
        await wall.screenshot(screenshots, "wall-4k", full_page=False)
        assert wall.console_errors() == []
    finally:
        await wall.close()
