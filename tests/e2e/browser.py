"""A real browser for the end-to-end tests: Debian's Chromium driven by Playwright, started once per
session, and the pages it opens, each watched for console errors and failed scripts.

Chromium is the system's (/usr/bin/chromium, installed by deploy/local/ensure-test-services.sh);
Playwright never downloads a browser here. Its asynchronous API runs on the session's event loop: the
synchronous one keeps an event loop running in the main thread for as long as the browser lives, which
every later ``asyncio.run`` and asynchronous test of the session would trip over.

Screenshots go to ``$ANALYTICS_TEST_ARTIFACTS/screenshots`` when that is set, else to the session's
temporary directory; the folder is printed at the start.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

CHROMIUM = os.environ.get("ANALYTICS_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
UHD = {"width": 3840, "height": 2160}
# Where the pages keep the API key (web/js/api.js).
KEY_NAME = "analytics.apiKey"


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make services` (deploy/local/ensure-test-services.sh installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        await launched.close()


@pytest.fixture(scope="package")
def screenshots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("ANALYTICS_TEST_ARTIFACTS")
    folder = Path(root) / "screenshots" if root else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"web dashboard screenshots: {folder}")
    return folder


@dataclass
class WatchedPage:
    """A page and what went wrong in it: console errors and uncaught exceptions."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)

    def console_errors(self, *, allowed: str | None = None) -> list[str]:
        """The errors so far, less those matching the regular expression ``allowed``."""
        return [e for e in self.errors if allowed is None or not re.search(allowed, e)]

    async def screenshot(self, folder: Path, name: str, *, full_page: bool = True) -> Path:
        path = folder / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path

    async def close(self) -> None:
        await self.context.close()


async def open_page(
    browser: Browser, base_url: str, path: str | None, *, key: str | None = None, viewport: dict[str, int] | None = None
) -> WatchedPage:
    """A fresh context (its own storage) at ``path`` (None: not yet anywhere); with ``key``, signed in as the
    tab would be."""
    context = await browser.new_context(viewport=viewport or LAPTOP, base_url=base_url)  # type: ignore[arg-type]
    if key is not None:
        await context.add_init_script(f"sessionStorage.setItem({json.dumps(KEY_NAME)}, {json.dumps(key)})")
    page = await context.new_page()
    watched = WatchedPage(context, page)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watched.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def on_page_error(error: Any) -> None:
        watched.errors.append(f"uncaught: {error}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    if path is not None:
        await page.goto(path)
    return watched
