"""The built-in web dashboard: its two pages and the static files under web/.

``/`` (sign in, the dashboards, a new one) and ``/dashboards/{id}`` (one dashboard, live) are the
same static pages for everyone: they need no key, and every piece of data they show comes from the
API with the key the person signs in with (kept in the tab's sessionStorage). ``/web/...`` serves the
pages' style sheet, scripts and the vendored chart library, and nothing else of the web/ folder:
only files of the types a page loads, resolved inside web/ (no path leaves it).

Every answer carries a strict Content-Security-Policy: scripts and styles from this origin only (no
inline script at all), data from this origin and its own websocket (the live subscription), no
frames, no plugins. Charts set style attributes on their own elements, which ``style-src-attr``
allows without allowing any style sheet or script from elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from core.errors import NotFound

WEB_DIR = Path(__file__).resolve().parents[2] / "web"

# The file types the pages load; anything else under web/ (the npm recipe, licences) is not served.
SERVED_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}

# A Host header is written into the policy (the websocket's origin), so only a plain host[:port] is.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")

router = APIRouter(include_in_schema=False)
_static = StaticFiles(directory=WEB_DIR, check_dir=False)


def content_security_policy(host: str | None) -> str:
    connect = ["'self'"]
    if host and _HOST.match(host):
        # Browsers that predate CSP 3 do not count ws(s): of the page's own host as 'self'.
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self'",
            f"connect-src {' '.join(connect)}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _page_headers(request: Request) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(request.headers.get("host")),
        # Pages and scripts change with the service: the browser asks again (cheaply, by ETag) each time.
        "Cache-Control": "no-cache",
    }


def _page(name: str, request: Request) -> Response:
    return FileResponse(WEB_DIR / name, media_type="text/html; charset=utf-8", headers=_page_headers(request))


@router.get("/")
async def home_page(request: Request) -> Response:
    return _page("index.html", request)


@router.get("/dashboards/{dashboard_id}")
async def dashboard_page(dashboard_id: str, request: Request) -> Response:
    # The page reads the id from its address and asks the API; an unknown id is answered there.
    del dashboard_id
    return _page("dashboard.html", request)


@router.get("/web/{path:path}")
async def web_file(path: str, request: Request) -> Response:
    relative = PurePosixPath(path)
    media_type = SERVED_TYPES.get(relative.suffix.lower())
    if (
        media_type is None
        or relative.is_absolute()
        or any(part in ("..", "") or part.startswith(".") for part in relative.parts)
    ):
        raise NotFound(f"no web file {path!r}")
    # StaticFiles resolves the path inside web/ (symbolic links leading out are refused) and answers
    # conditional requests with 304.
    response = await _static.get_response(str(relative), request.scope)
    if response.status_code in (200, 304):
        response.headers.update(_page_headers(request))
        if response.status_code == 200:
            response.headers["Content-Type"] = media_type
    return response
