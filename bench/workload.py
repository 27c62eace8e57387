"""A seeded, realistic platform workload at any size (1k to 100M events), generated in chunks.

What it models:
- content: a catalogue with metadata (title, category, content type, language, author,
  published_at, duration); popularity is Zipf-distributed and decays with age since publish,
  and a few items are published inside the window (with a ``content_published`` event);
- users with sessions: entry referrer (direct, search engines, social, news, the platform),
  then units of activity: view → play → pause/resume → complete or abandon, shares, bookmarks,
  likes; searches with result clicks, searches nobody clicks and zero-result queries;
  recommendation impressions and clicks; logins, logouts and registrations; anonymous visitors;
  user agents (desktop/mobile/tablet/TV/bots) and IP addresses from real-looking mixes;
- ``api_request`` and ``error_occurred`` from several services with per-endpoint latency
  distributions, status codes, DB, cache and external-call figures (the properties of docs/system.md);
- ``resource_usage`` samples per service instance (CPU following the day's traffic, memory and disk
  growing over the window) and ``health_check`` results (up, now and then degraded or down);
- import jobs with stages that may fail (``import_started`` → ``import_stage_completed``… →
  ``import_completed`` or ``import_failed``), each event reporting the job's records and data
  quality figures so far (docs/imports.md), and media processing jobs (``processing_started`` →
  ``processing_completed`` or ``processing_failed``);
- optionally, a bot slice (``bot_session_share``, off by default): that share of the sessions are
  crawlers and scrapers with 1,000 to 5,000 events each, nearly all content_views of many items a
  few seconds apart, under a bot user agent, some signed in as a user. Sessions that size are what
  per-session statements (journeys, transitions) must stay bounded on.

Time follows a diurnal and weekly curve. Chunk ``i`` of ``n`` holds the sessions whose start falls
in the ``i``-th equal share of that curve, so the stream is roughly chronological and 100M events
never sit in memory. Everything is vectorized (numpy/pyarrow); per-event Python runs only in
:meth:`Workload.raw_events`, meant for small samples.

Two shapes of the same events:
- :meth:`Workload.tables`: ``storage.events.EVENT_SCHEMA`` tables with the enrichment the service
  would compute (device, browser, OS, country, traffic source, referrer host, anonymized IP), for
  bulk loads. The enrichment is computed with ``core.enrichment`` on the small pools of user
  agents, IPs and referrers, so it equals what ingest derives for the same raw events;
- :meth:`Workload.api_lines`: the raw events as clients send them (JSON objects), for ingest
  through the public API.

CLI::

    python -m bench.workload --events 1000000 --days 30 --seed 7 --out data.parquet
    python -m bench.workload --events 100000 --out events.ndjson          # API-shaped, one per line
    python -m bench.workload --events 200000 --load api --url http://127.0.0.1:8000 --key "$KEY"
    python -m bench.workload --events 10000000 --load bulk                 # service stopped: straight into the store
    python -m bench.workload --events 2000000 --bot-session-share 0.01 --out bots.parquet
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from bench.common import Progress
from core.taxonomy import default_category
from storage.events import EVENT_SCHEMA

PLATFORM_HOST = "platform.example"
DEFAULT_CHUNK_EVENTS = 250_000
MAX_INSERT_ROWS = 200_000

# ---------------------------------------------------------------------------
# Vocabularies (plain ASCII without quotes or backslashes: they go into JSON unescaped)
# ---------------------------------------------------------------------------

EVENT_TYPES = (
    "content_view",
    "content_play",
    "content_pause",
    "content_resume",
    "content_complete",
    "content_share",
    "content_bookmark",
    "content_like",
    "search_query",
    "search_result_click",
    "recommendation_impression",
    "recommendation_click",
    "user_register",
    "user_login",
    "user_logout",
    "page_view",
    "api_request",
    "error_occurred",
    "import_started",
    "import_stage_completed",
    "import_completed",
    "import_failed",
    "content_published",
    "resource_usage",
    "health_check",
    "processing_started",
    "processing_completed",
    "processing_failed",
)
T = {name: code for code, name in enumerate(EVENT_TYPES)}
CATEGORY_OF_TYPE = pa.array([default_category(name) for name in EVENT_TYPES])

# fmt: off
CATEGORIES = (
    "news", "sports", "music", "comedy", "documentary", "kids", "education", "technology", "cooking", "travel",
)
CATEGORY_WEIGHTS = (0.16, 0.14, 0.13, 0.1, 0.08, 0.08, 0.08, 0.09, 0.07, 0.07)
CONTENT_TYPES = ("video", "article", "podcast", "live")
CONTENT_TYPE_WEIGHTS = (0.62, 0.2, 0.13, 0.05)
# Typical length in seconds (lognormal median) per content type; articles are read, not played.
CONTENT_MEDIAN_SECONDS = (420.0, 240.0, 1800.0, 3600.0)
LANGUAGES = ("en", "es", "de", "fr", "pt", "hi", "ja")
LANGUAGE_WEIGHTS = (0.52, 0.14, 0.09, 0.08, 0.08, 0.05, 0.04)
TITLE_ADJECTIVES = (
    "Silent", "Hidden", "Golden", "Wild", "Lost", "Bright", "Secret", "Endless", "Broken", "Rising",
    "Last", "Ultimate", "Quiet", "Electric", "Frozen", "Little", "Great", "Modern", "Ancient", "Open",
)
TITLE_NOUNS = (
    "River", "City", "Kitchen", "Season", "Match", "Planet", "Story", "Journey", "Garden", "Code",
    "Island", "Market", "Signal", "Forest", "Record", "Studio", "Voyage", "Harbor", "Engine", "Chorus",
)
TITLE_SUFFIXES = ("", ": Part 1", ": Part 2", " Live", " Explained", " in 10 Minutes", " Uncut", " Highlights")
FIRST_NAMES = (
    "Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena", "Mo", "Nia", "Omar",
    "Priya",
)
LAST_NAMES = (
    "Silva", "Okafor", "Nguyen", "Schmidt", "Rossi", "Kim", "Haddad", "Novak", "Larsen", "Mehta", "Garcia", "Tanaka",
)

# (user agent, weight): a desktop/mobile/tablet/TV mix with a little bot and script traffic.
USER_AGENTS = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", 0.17),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 0.05),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 0.03),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", 0.06),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", 0.05),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", 0.015),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Mobile/15E148 Safari/604.1", 0.2),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1", 0.03),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36", 0.19),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", 0.04),
    ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.6 Mobile/15E148 Safari/604.1", 0.05),
    ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36", 0.02),
    ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36", 0.02),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 0.012),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 0.005),
    ("python-requests/2.32.3", 0.003),
)
# (entry referrer, weight) of a session; "" is a direct visit.
ENTRY_REFERRERS = (
    ("", 0.34),
    ("https://www.google.com/", 0.2),
    ("https://www.google.co.uk/", 0.02),
    ("https://www.google.de/", 0.02),
    ("https://www.bing.com/search?q=watch+online", 0.03),
    ("https://duckduckgo.com/", 0.015),
    ("https://search.yahoo.com/", 0.008),
    ("https://www.facebook.com/", 0.06),
    ("https://t.co/xK2pQ9", 0.035),
    ("https://www.reddit.com/r/videos/", 0.03),
    ("https://www.instagram.com/", 0.025),
    ("https://news.ycombinator.com/", 0.007),
    ("https://www.youtube.com/", 0.02),
    ("https://newsletter.example.net/weekly?utm_source=newsletter", 0.03),
    ("https://partner-blog.example.org/top-picks", 0.02),
    (f"https://{PLATFORM_HOST}/", 0.06),
    (f"https://{PLATFORM_HOST}/for-you", 0.03),
    (f"https://{PLATFORM_HOST}/home?ref=rec", 0.015),
    ("android-app://com.google.android.gm/", 0.01),
)
SEARCH_TOPICS = (
    "cooking", "football", "jazz", "space", "history", "python", "travel", "kids", "news", "comedy",
    "yoga", "cars", "chess", "guitar", "climate", "movies", "gaming", "science", "art", "finance",
)
SEARCH_MODIFIERS = (
    "", "live", "tutorial", "highlights", "2024", "best", "for beginners", "documentary", "podcast", "explained",
)
# Queries that find nothing: typos and things the catalogue does not have.
ZERO_RESULT_QUERIES = (
    "cookng", "footbal highlits", "jaz", "qwerty", "asdf lkj", "spce", "knitting podcast", "marimba tutorial",
)
REC_MODELS = ("collab-v3", "trending-v2", "similar-items-v1", "new-releases")
SHARE_CHANNELS = ("whatsapp", "copy_link", "facebook", "x", "email", "telegram")
LOGIN_METHODS = ("password", "google", "apple", "magic_link")
PLANS = ("free", "free", "free", "premium", "family")

# service -> (endpoint, method, median latency ms, status profile) ; profile: error share of 5xx
SERVICES = {
    "content-service": (
        ("/api/v1/content/{id}", "GET", 18.0), ("/api/v1/content", "GET", 45.0), ("/api/v1/content", "POST", 90.0),
    ),
    "user-service": (
        ("/api/v1/users/me", "GET", 12.0), ("/api/v1/auth/login", "POST", 120.0),
        ("/api/v1/users/{id}/preferences", "PUT", 35.0),
    ),
    "search-service": (("/api/v1/search", "GET", 60.0), ("/api/v1/search/suggest", "GET", 15.0)),
    "recommendation-service": (
        ("/api/v1/recommendations", "GET", 80.0), ("/api/v1/recommendations/similar", "GET", 55.0),
    ),
    "media-service": (("/api/v1/media/{id}/manifest", "GET", 25.0), ("/api/v1/media/transcode", "POST", 400.0)),
    "import-service": (("/api/v1/imports", "POST", 150.0), ("/api/v1/imports/{id}", "GET", 20.0)),
}
SERVICE_WEIGHTS = (0.3, 0.2, 0.18, 0.14, 0.13, 0.05)
SERVICE_5XX_RATE = (0.004, 0.003, 0.008, 0.012, 0.006, 0.02)
ERROR_TYPES = (
    "TimeoutError", "ConnectionResetError", "DatabaseError", "ValidationError", "UpstreamUnavailable", "OutOfMemory",
)
ERROR_TYPE_WEIGHTS = (0.3, 0.15, 0.15, 0.25, 0.12, 0.03)
ERROR_MESSAGES = (
    "upstream request timed out", "connection reset by peer", "could not serialize access",
    "payload failed schema validation", "upstream returned 503", "worker exceeded memory limit",
)
# Services that call others (recommendation models, the search index, the CDN) report external calls.
SERVICE_EXTERNAL_CALLS = (0.6, 0.2, 1.5, 2.5, 1.2, 0.8)
IMPORT_SOURCES = ("rss", "partner-ftp", "youtube-sync", "csv-upload", "cms-webhook")
IMPORT_STAGES = ("fetch", "parse", "validate", "store")
IMPORT_ERRORS = ("source unreachable", "malformed feed", "schema mismatch", "duplicate key in batch")
# Instances per service (resource_usage), and each resource's level at the start of the window.
SERVICE_INSTANCES = (4, 3, 3, 3, 4, 2)
HEALTH_STATUSES = ("up", "degraded", "down")
PROCESSING_KINDS = ("transcode", "thumbnail", "audio_normalize", "subtitles")
PROCESSING_KIND_WEIGHTS = (0.45, 0.3, 0.15, 0.1)
PROCESSING_MEDIAN_MS = (90_000.0, 2_000.0, 20_000.0, 30_000.0)
PROCESSING_ERRORS = ("codec not supported", "source file missing", "worker out of memory", "timed out")

# Share of hours of the day (UTC) and days of the week (Monday first).
DIURNAL = np.array([
    2.0, 1.4, 1.0, 0.8, 0.7, 0.8, 1.2, 2.0, 2.8, 3.2, 3.4, 3.6,  # 00:00-11:00
    3.9, 3.8, 3.6, 3.6, 3.8, 4.2, 5.0, 5.8, 6.2, 5.6, 4.4, 3.0,  # 12:00-23:00
])
WEEKLY = np.array([0.95, 0.92, 0.93, 0.95, 1.02, 1.15, 1.1])
# fmt: on

# The crawlers and scripts among the user agents.
_BOT_AGENTS = np.array([i for i, (a, _) in enumerate(USER_AGENTS) if "bot" in a.lower() or "python" in a.lower()])
# The bot slice: events per bot session (inclusive bounds), how many ordinary sessions are sampled
# to learn their mean size (to size the slice as a share of sessions), and how a bot moves on.
BOT_SESSION_EVENTS = (1_000, 5_000)
_SESSION_SAMPLE = 2_000
_BOT_GAP_SECONDS = 2.0
_BOT_PAGE_VIEW_SHARE = 0.08
_BOT_RELOAD_SHARE = 0.1  # the same item again: a repeat, not a move to another item
_BOT_SIGNED_IN_SHARE = 0.3

# Event slots of one unit of activity, in the order they happen.
_PRE1, _PRE2, _VIEW, _PLAY, _PAUSES, _COMPLETE, _SHARE, _BOOKMARK, _LIKE = range(9)
# Unit kinds.
_BROWSE, _SEARCH, _REC, _SEARCH_ONLY, _REC_ONLY, _PAGE, _LOGIN, _LOGOUT, _REGISTER = range(9)
_KIND_WEIGHTS = (0.43, 0.2, 0.15, 0.08, 0.08, 0.06)  # the first six kinds
_SLOT_TYPE = np.full((9, 9), -1, dtype=np.int16)
for _kind in (_BROWSE, _SEARCH, _REC):
    _SLOT_TYPE[_kind, _VIEW] = T["content_view"]
    _SLOT_TYPE[_kind, _PLAY] = T["content_play"]
    _SLOT_TYPE[_kind, _COMPLETE] = T["content_complete"]
    _SLOT_TYPE[_kind, _SHARE] = T["content_share"]
    _SLOT_TYPE[_kind, _BOOKMARK] = T["content_bookmark"]
    _SLOT_TYPE[_kind, _LIKE] = T["content_like"]
_SLOT_TYPE[[_SEARCH, _SEARCH_ONLY], _PRE1] = T["search_query"]
_SLOT_TYPE[_SEARCH, _PRE2] = T["search_result_click"]
_SLOT_TYPE[[_REC, _REC_ONLY], _PRE1] = T["recommendation_impression"]
_SLOT_TYPE[_REC, _PRE2] = T["recommendation_click"]
_SLOT_TYPE[_PAGE, _PRE1] = T["page_view"]
_SLOT_TYPE[_LOGIN, _PRE1] = T["user_login"]
_SLOT_TYPE[_LOGOUT, _PRE1] = T["user_logout"]
_SLOT_TYPE[_REGISTER, _PRE1] = T["user_register"]
# Mean seconds since the previous event of the session, by event type.
_GAP_SECONDS = np.zeros(len(EVENT_TYPES))
for _name, _gap in {
    "content_view": 25.0,
    "content_play": 4.0,
    "content_share": 12.0,
    "content_bookmark": 8.0,
    "content_like": 6.0,
    "search_query": 15.0,
    "search_result_click": 7.0,
    "recommendation_impression": 10.0,
    "recommendation_click": 5.0,
    "user_logout": 30.0,
    "page_view": 12.0,
    "content_resume": 20.0,
}.items():
    _GAP_SECONDS[T[_name]] = _gap


def _check_json_safe(values: Any) -> None:
    for value in values:
        text = value[0] if isinstance(value, tuple) else value
        if any(c in text for c in '"\\') or not text.isascii() or not text.isprintable():
            raise ValueError(f"vocabulary entry {text!r} would need JSON escaping")


for _vocabulary in (
    USER_AGENTS,
    ENTRY_REFERRERS,
    SEARCH_TOPICS,
    SEARCH_MODIFIERS,
    ZERO_RESULT_QUERIES,
    TITLE_ADJECTIVES,
    TITLE_NOUNS,
    TITLE_SUFFIXES,
    ERROR_MESSAGES,
    IMPORT_ERRORS,
    PROCESSING_ERRORS,
):
    _check_json_safe(_vocabulary)

# ---------------------------------------------------------------------------
# Properties: one nullable column per key, rendered to JSON objects in bulk
# ---------------------------------------------------------------------------

# fmt: off
_TEXT_KEYS = (
    "source", "query", "content_id", "recommendation_id", "model", "channel", "method", "plan", "service", "endpoint",
    "error_type", "severity", "message", "job_id", "stage", "failure_reason", "title", "category", "content_type",
    "language", "author", "instance", "health_status", "kind",
)
_NUMBER_KEYS = (
    "position", "results_count", "page", "slot", "duration_seconds", "watch_time_seconds", "position_seconds",
    "status", "duration_ms", "db_query_count", "db_time_ms", "external_calls", "external_errors", "external_time_ms",
    "cpu_percent", "memory_percent", "disk_percent", "latency_ms", "records_total", "records_processed",
    "records_failed", "duplicates", "invalid_rows", "missing_fields", "transform_errors",
)
# fmt: on
_BOOL_KEYS = ("cache_hit",)
_PROPERTY_KEYS = _TEXT_KEYS + _NUMBER_KEYS + _BOOL_KEYS
# Columns whose property has another name: a health check's status is text, a request's a number.
_PROPERTY_NAMES = {"health_status": "status"}
# A frame's properties once rendered: one JSON object per row.
_JSON = "_json"


def _json_objects(n: int, props: dict[str, pa.Array]) -> pa.Array:
    """``{"key": value, ...}`` per row, leaving out keys whose value is null."""
    pieces = []
    for key in _PROPERTY_KEYS:
        values = props.get(key)
        if values is None:
            continue
        name = _PROPERTY_NAMES.get(key, key)
        if key in _TEXT_KEYS:
            rendered = pc.binary_join_element_wise(f',"{name}":"', values, '"', "")
        elif key in _BOOL_KEYS:
            rendered = pc.if_else(values, f',"{name}":true', f',"{name}":false')
        else:
            rendered = pc.binary_join_element_wise(f',"{name}":', pc.cast(values, pa.string()), "")
        pieces.append(pc.fill_null(rendered, ""))
    if not pieces:
        return pa.array(["{}"] * n, pa.string())
    joined = pc.binary_join_element_wise(*pieces, "")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")


# ---------------------------------------------------------------------------
# Pools: the distinct user agents, IPs and referrers, enriched once with core.enrichment
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pool:
    raw: pa.Array  # what clients send
    columns: dict[str, pa.Array]  # the enriched columns ingest derives from it


def _user_agent_pool() -> _Pool:
    from core.enrichment import parse_user_agent

    infos = [parse_user_agent(ua) for ua, _ in USER_AGENTS]
    return _Pool(
        raw=pa.array([ua for ua, _ in USER_AGENTS]),
        columns={
            "device_type": pa.array([i.device_type for i in infos]),
            "browser": pa.array([i.browser for i in infos]),
            "os": pa.array([i.os for i in infos]),
        },
    )


def _ip_pool(rng: np.random.Generator, size: int, anonymize: bool) -> _Pool:
    """Random public addresses (mostly IPv4, some IPv6) that the offline database places in a country."""
    from core.enrichment import anonymize_ip, locate_ip

    raw: list[str] = []
    countries: list[str] = []
    while len(raw) < size:
        if rng.random() < 0.85:
            a, b, c, d = (int(x) for x in rng.integers([1, 0, 0, 1], [224, 256, 256, 255]))
            ip = f"{a}.{b}.{c}.{d}"
        else:
            groups = rng.integers(0, 0x10000, 4)
            ip = f"2{int(groups[0]) % 0x600:03x}:{groups[1]:x}:{groups[2]:x}::{int(groups[3]) or 1:x}"
        country = locate_ip(ip).country
        if country:
            raw.append(ip)
            countries.append(country)
    stored = [anonymize_ip(ip) if anonymize else ip for ip in raw]
    return _Pool(raw=pa.array(raw), columns={"ip_address": pa.array(stored), "country": pa.array(countries)})


def _referrer_pool(queries: list[str], internal_hosts: frozenset[str]) -> tuple[_Pool, dict[str, int]]:
    """Every referrer the workload uses, with its traffic source and host; and where each group starts."""
    from core.enrichment import classify_traffic_source, referrer_host

    entries = [r for r, _ in ENTRY_REFERRERS]
    internal = [f"https://{PLATFORM_HOST}/", f"https://{PLATFORM_HOST}/for-you"]
    internal += [f"https://{PLATFORM_HOST}/browse/{c}" for c in CATEGORIES]
    search = [f"https://{PLATFORM_HOST}/search?q={q.replace(' ', '+')}" for q in queries]
    everything = entries + internal + search
    starts = {
        "entry": 0,
        "internal": len(entries),
        "for_you": len(entries) + 1,
        "browse": len(entries) + 2,
        "search": len(entries) + len(internal),
    }
    return (
        _Pool(
            raw=pa.array(everything),
            columns={
                "traffic_source": pa.array([classify_traffic_source(r, {}, internal_hosts) for r in everything]),
                "referrer_host": pa.array([referrer_host(r) or "" for r in everything]),
            },
        ),
        starts,
    )


def _take(pool: pa.Array, index: np.ndarray, missing: str | None = "") -> pa.Array:
    """``pool[index]``; a negative index gives ``missing``."""
    absent = index < 0
    taken = pool.take(pa.array(np.where(absent, 0, index)))
    if not absent.any():
        return taken
    return pc.if_else(pa.array(absent), pa.scalar(missing, pa.string()), taken)


def _weighted(rng: np.random.Generator, weights: Any, size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(p.size, size=size, p=p / p.sum())


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pc.cast(pa.array(numbers), pa.string()), "")


# ---------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------


@dataclass
class _Frame:
    """Events of one family before they become columns; every array has one entry per event."""

    type_code: np.ndarray
    ts_ms: np.ndarray
    user: np.ndarray  # index into users, -1 = none
    session: pa.Array | None  # session ids ("" = none)
    content: np.ndarray  # index into the catalogue, -1 = none
    ua: np.ndarray  # index into the user-agent pool, -1 = none
    ip: np.ndarray
    referrer: np.ndarray
    rec_marker: np.ndarray  # properties name a recommendation: traffic source is "recommendation"
    resource_type: pa.Array | None = None
    resource_id: pa.Array | None = None
    props: dict[str, pa.Array] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.type_code.size)


@dataclass
class Workload:
    """``events`` events over the ``days`` before ``end`` (default: the start of the current UTC hour).

    The same arguments always give the same events. ``prefix`` namespaces every id (events,
    sessions, users, content), so several workloads can share one store. ``internal_hosts`` and
    ``anonymize_ip`` must match the service's settings for bulk rows to equal ingested ones.
    """

    events: int
    days: float = 30.0
    seed: int = 7
    end: datetime | None = None
    prefix: str = ""
    chunk_events: int = DEFAULT_CHUNK_EVENTS
    contents: int | None = None
    users: int | None = None
    internal_hosts: tuple[str, ...] = (PLATFORM_HOST,)
    anonymize_ip: bool = True
    # Share of the sessions that are bots with BOT_SESSION_EVENTS events each (0: none, the default).
    bot_session_share: float = 0.0

    def __post_init__(self) -> None:
        if self.events < 1:
            raise ValueError("events must be at least 1")
        if not 0 <= self.bot_session_share < 1:
            raise ValueError("bot_session_share must be in [0, 1)")
        if not 0 < self.days <= 700:
            raise ValueError("days must be in (0, 700]: older events are past the default retention")
        if self.end is None:
            self.end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self.end = self.end.astimezone(UTC)
        self.n_contents = self.contents or int(np.clip(self.events // 400, 20, 50_000))
        self.n_users = self.users or int(np.clip(self.events // 25, 20, 5_000_000))
        self.n_chunks = max(1, math.ceil(self.events / self.chunk_events))
        self._end_ms = int(self.end.timestamp() * 1000)
        self._start_ms = self._end_ms - int(self.days * 86_400_000)
        rng = np.random.default_rng([self.seed, 1])
        self._build_time_curve()
        self._build_catalogue(rng)
        self._build_users(rng)
        self._ua = _user_agent_pool()
        self._ip = _ip_pool(rng, int(np.clip(self.n_users // 4, 64, 4096)), self.anonymize_ip)
        self._queries = [f"{t} {m}".strip() for t in SEARCH_TOPICS for m in SEARCH_MODIFIERS]
        self._zero_queries = list(ZERO_RESULT_QUERIES)
        self._ref, self._ref_starts = _referrer_pool(self._queries + self._zero_queries, frozenset(self.internal_hosts))
        self._query_pool = pa.array(self._queries + self._zero_queries)

    # -- set-up ---------------------------------------------------------

    def _build_time_curve(self) -> None:
        hours = max(1, math.ceil(self.days * 24))
        hour_starts = self._end_ms - np.arange(hours, 0, -1, dtype=np.int64) * 3_600_000
        hour_starts[0] = max(hour_starts[0], self._start_ms)
        moments = hour_starts.astype("datetime64[ms]")
        hour_of_day = (moments.astype("datetime64[h]").astype(np.int64) % 24).astype(int)
        weekday = ((moments.astype("datetime64[D]").astype(np.int64) + 3) % 7).astype(int)  # 1970-01-01 was a Thursday
        growth = 1.0 + 0.1 * np.arange(hours) / hours
        weights = DIURNAL[hour_of_day] * WEEKLY[weekday] * growth
        lengths = np.diff(np.append(hour_starts, self._end_ms))
        weights = weights * lengths / 3_600_000
        self._hour_starts = hour_starts
        self._hour_lengths = lengths
        self._cdf = np.cumsum(weights) / weights.sum()

    def _time_at(self, u: np.ndarray) -> np.ndarray:
        """Inverse of the time curve: share ``u`` in [0, 1) of the window -> epoch milliseconds."""
        slot = np.minimum(np.searchsorted(self._cdf, u, side="right"), self._cdf.size - 1)
        before = np.where(slot > 0, self._cdf[slot - 1], 0.0)
        frac = np.clip((u - before) / np.maximum(self._cdf[slot] - before, 1e-12), 0.0, 0.999999)
        return self._hour_starts[slot] + (frac * self._hour_lengths[slot]).astype(np.int64)

    def _share_of(self, ts_ms: np.ndarray) -> np.ndarray:
        """Where in [0, 1] of the time curve ``ts_ms`` falls (the inverse of _time_at)."""
        slot = np.clip(np.searchsorted(self._hour_starts, ts_ms, side="right") - 1, 0, self._cdf.size - 1)
        before = np.where(slot > 0, self._cdf[slot - 1], 0.0)
        frac = np.clip((ts_ms - self._hour_starts[slot]) / self._hour_lengths[slot], 0.0, 1.0)
        return before + frac * (self._cdf[slot] - before)

    def _build_catalogue(self, rng: np.random.Generator) -> None:
        n = self.n_contents
        self._content_ids = _ids(f"{self.prefix}c", np.arange(n))
        self._category = _weighted(rng, CATEGORY_WEIGHTS, n)
        self._ctype = _weighted(rng, CONTENT_TYPE_WEIGHTS, n)
        self._language = _weighted(rng, LANGUAGE_WEIGHTS, n)
        medians = np.asarray(CONTENT_MEDIAN_SECONDS)[self._ctype]
        self._duration = np.maximum(30, rng.lognormal(np.log(medians), 0.5)).astype(np.int64)
        # Back catalogue over two years before the window; ~15% published inside it.
        window = self._end_ms - self._start_ms
        in_window = rng.random(n) < 0.15
        published = np.where(
            in_window,
            self._start_ms + (rng.random(n) * window).astype(np.int64),
            self._start_ms - (rng.random(n) * 730 * 86_400_000).astype(np.int64),
        )
        self._published = published
        # Zipf popularity over a random order of items, and how well each item holds its audience.
        rank = rng.permutation(n) + 1
        self._base_popularity = 1.0 / rank**1.07
        self._quality = rng.beta(4, 3, n)
        titles = pc.binary_join_element_wise(
            pa.array(TITLE_ADJECTIVES).take(pa.array(rng.integers(0, len(TITLE_ADJECTIVES), n))),
            pa.array(TITLE_NOUNS).take(pa.array(rng.integers(0, len(TITLE_NOUNS), n))),
            " ",
        )
        self._titles = pc.binary_join_element_wise(
            "The ", titles, pa.array(TITLE_SUFFIXES).take(pa.array(rng.integers(0, len(TITLE_SUFFIXES), n))), ""
        )
        self._authors = pc.binary_join_element_wise(
            pa.array(FIRST_NAMES).take(pa.array(rng.integers(0, len(FIRST_NAMES), n))),
            pa.array(LAST_NAMES).take(pa.array(rng.integers(0, len(LAST_NAMES), n))),
            " ",
        )
        # Popularity per time bucket: base weight times a decay with age since publish (0 before it).
        buckets = int(min(64, max(1, math.ceil(self.days))))
        self._bucket_ms = max(1, math.ceil(window / buckets))
        mids = self._start_ms + (np.arange(buckets) + 0.5) * self._bucket_ms
        age_days = (mids[:, None] - published[None, :]) / 86_400_000
        decay = np.where(age_days < 0, 0.0, 0.15 + 0.85 * np.exp(-np.maximum(age_days, 0) / 5.0))
        weights = self._base_popularity[None, :] * decay
        weights[weights.sum(1) == 0] = self._base_popularity  # a bucket before any release
        self._content_cdf = np.cumsum(weights, axis=1)
        self._content_cdf /= self._content_cdf[:, -1:]

    def _build_users(self, rng: np.random.Generator) -> None:
        n = self.n_users
        activity = rng.lognormal(0.0, 1.1, n)
        self._user_cdf = np.cumsum(activity) / activity.sum()
        self._user_ua = _weighted(rng, [w for _, w in USER_AGENTS], n)
        self._user_ip_seed = rng.integers(0, 1 << 30, n)

    # -- public ---------------------------------------------------------

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self._start_ms / 1000, UTC)

    def chunk_sizes(self) -> list[int]:
        base, extra = divmod(self.events, self.n_chunks)
        return [base + (1 if i < extra else 0) for i in range(self.n_chunks)]

    def content_metadata(self) -> pa.Table:
        """One row per catalogue item: what the store's ``content_metadata`` table holds."""
        return pa.table(
            {
                "content_id": self._content_ids,
                "title": self._titles,
                "category": pa.array(CATEGORIES).take(pa.array(self._category)),
                "content_type": pa.array(CONTENT_TYPES).take(pa.array(self._ctype)),
                "language": pa.array(LANGUAGES).take(pa.array(self._language)),
                "author": self._authors,
                "published_at": pa.array(self._published, pa.timestamp("ms", tz="UTC")),
                "duration_seconds": pa.array(self._duration, pa.int64()),
            }
        )

    def tables(self) -> Iterator[pa.Table]:
        """The events as stored (``EVENT_SCHEMA``, enrichment included), one table per chunk."""
        for index in range(self.n_chunks):
            yield self._table(self._chunk(index), index)

    def api_lines(self) -> Iterator[pa.Array]:
        """The events as clients send them: one JSON object (a string) per event, per chunk."""
        for index in range(self.n_chunks):
            yield self._api_lines(self._chunk(index), index)

    def both(self) -> Iterator[tuple[pa.Table, pa.Array]]:
        """Stored rows and the API form of the same events, chunk by chunk."""
        for index in range(self.n_chunks):
            frame = self._chunk(index)
            yield self._table(frame, index), self._api_lines(frame, index)

    def raw_events(self) -> Iterator[dict[str, Any]]:
        """Events as dicts, as a client would build them (per-event Python: for small samples)."""
        for lines in self.api_lines():
            for line in lines.to_pylist():
                yield orjson.loads(line)

    # -- one chunk --------------------------------------------------------

    def _chunk(self, index: int) -> _Frame:
        size = self.chunk_sizes()[index]
        rng = np.random.default_rng([self.seed, 2, index])
        lo, hi = index / self.n_chunks, (index + 1) / self.n_chunks
        # The platform's own events are a tenth of the stream; the new families draw from generators
        # of their own, so adding them left the others' draws as they were.
        frames = [
            self._published_in(lo, hi),
            self._api_requests(rng, int(size * 0.08), lo, hi),
            self._errors(rng, int(size * 0.004), lo, hi),
            self._imports(rng, int(size * 0.012), lo, hi, index),
            self._resource_usage(np.random.default_rng([self.seed, 6, index]), int(size * 0.004), lo, hi),
            self._health_checks(np.random.default_rng([self.seed, 7, index]), int(size * 0.003), lo, hi),
            self._processing(np.random.default_rng([self.seed, 8, index]), int(size * 0.003), lo, hi, index),
        ]
        room = size - sum(len(f) for f in frames)
        if self.bot_session_share > 0:
            frames.append(self._bot_sessions(room, lo, hi, index))
            room -= len(frames[-1])
        frames.append(self._sessions(rng, room, lo, hi, index))
        # Each family's properties become JSON over its own rows: rendered after the merge, every key
        # of every family would be a pass over the whole chunk.
        frame = _concat([_rendered(f) for f in frames])
        if len(frame) > size:  # more publications in this slice than the chunk holds (tiny workloads)
            frame = _slice(frame, np.arange(size))
        order = np.argsort(frame.ts_ms, kind="stable")
        return _slice(frame, order)

    def _published_in(self, lo: float, hi: float) -> _Frame:
        share = self._share_of(self._published)
        inside = (self._published >= self._start_ms) & (share >= lo) & ((share < hi) | (hi >= 1.0))
        items = np.flatnonzero(inside)
        n = items.size
        none = np.full(n, -1)
        meta = self.content_metadata().take(pa.array(items))
        props = {
            key: meta.column(key).combine_chunks()
            for key in ("title", "category", "content_type", "language", "author")
        }
        props["duration_seconds"] = pa.array(self._duration[items])
        return _Frame(
            type_code=np.full(n, T["content_published"], dtype=np.int16),
            ts_ms=self._published[items].copy(),
            user=none,
            session=None,
            content=items,
            ua=none,
            ip=none,
            referrer=none,
            rec_marker=np.zeros(n, dtype=bool),
            resource_type=pa.array(["content"] * n, pa.string()) if n else pa.array([], pa.string()),
            props=props,
        )

    def _times(self, rng: np.random.Generator, n: int, lo: float, hi: float) -> np.ndarray:
        return self._time_at(lo + rng.random(n) * (hi - lo))

    def _api_requests(self, rng: np.random.Generator, n: int, lo: float, hi: float) -> _Frame:
        names = list(SERVICES)
        service = _weighted(rng, SERVICE_WEIGHTS, n)
        endpoints = [SERVICES[s] for s in names]
        offsets = np.cumsum([0] + [len(e) for e in endpoints])
        flat = [e for group in endpoints for e in group]
        endpoint = offsets[service] + (rng.random(n) * np.array([len(e) for e in endpoints])[service]).astype(int)
        medians = np.array([e[2] for e in flat])[endpoint]
        latency = rng.lognormal(np.log(medians), 0.55)
        spike = rng.random(n) < 0.01
        latency = np.round(np.where(spike, latency * rng.uniform(5, 30, n), latency), 1)
        server_error = rng.random(n) < np.asarray(SERVICE_5XX_RATE)[service]
        methods = np.array([e[1] for e in flat])[endpoint]
        ok = np.where(methods == "POST", 201, 200)
        roll = rng.random(n)
        status = np.select(
            [server_error & (roll < 0.7), server_error, roll < 0.02, roll < 0.035, roll < 0.05],
            [500, 503, 404, 400, 304],
            ok,
        )
        latency = np.where(status == 503, np.round(latency * 0.1, 1), latency)
        db_queries = rng.poisson(3, n)
        cache_hit = rng.random(n) < 0.72
        calls = rng.poisson(np.asarray(SERVICE_EXTERNAL_CALLS)[service])
        # An upstream failure shows in the request's own 5xx more often than not.
        external_errors = rng.binomial(calls, np.where(server_error, 0.5, 0.005))
        external_ms = np.round(calls * rng.lognormal(np.log(14.0), 0.6, n), 1)
        calling = pa.array(calls > 0)
        none = np.full(n, -1)
        service_names = pa.array(names).take(pa.array(service))
        return _Frame(
            type_code=np.full(n, T["api_request"], dtype=np.int16),
            ts_ms=self._times(rng, n, lo, hi),
            user=none,
            session=None,
            content=none,
            ua=none,
            ip=none,
            referrer=none,
            rec_marker=np.zeros(n, dtype=bool),
            resource_type=pa.array(["service"] * n, pa.string()),
            resource_id=service_names,
            props={
                "service": service_names,
                "endpoint": pa.array([e[0] for e in flat]).take(pa.array(endpoint)),
                "method": pa.array(methods),
                "status": pa.array(status),
                "duration_ms": pa.array(latency),
                "db_query_count": pa.array(db_queries),
                "db_time_ms": pa.array(np.round(db_queries * rng.lognormal(np.log(1.8), 0.7, n), 1)),
                "cache_hit": pa.array(cache_hit),
                "external_calls": pc.if_else(calling, pa.array(calls), pa.scalar(None, pa.int64())),
                "external_errors": pc.if_else(calling, pa.array(external_errors), pa.scalar(None, pa.int64())),
                "external_time_ms": pc.if_else(calling, pa.array(external_ms), pa.scalar(None, pa.float64())),
            },
        )

    def _errors(self, rng: np.random.Generator, n: int, lo: float, hi: float) -> _Frame:
        names = list(SERVICES)
        rate = np.asarray(SERVICE_WEIGHTS) * np.asarray(SERVICE_5XX_RATE)
        service = _weighted(rng, rate, n)
        kind = _weighted(rng, ERROR_TYPE_WEIGHTS, n)
        severity = np.where(kind == 5, "critical", np.where(rng.random(n) < 0.8, "error", "warning"))
        endpoint = [SERVICES[names[s]][0][0] for s in range(len(names))]
        none = np.full(n, -1)
        service_names = pa.array(names).take(pa.array(service))
        return _Frame(
            type_code=np.full(n, T["error_occurred"], dtype=np.int16),
            ts_ms=self._times(rng, n, lo, hi),
            user=none,
            session=None,
            content=none,
            ua=none,
            ip=none,
            referrer=none,
            rec_marker=np.zeros(n, dtype=bool),
            resource_type=pa.array(["service"] * n, pa.string()),
            resource_id=service_names,
            props={
                "service": service_names,
                "error_type": pa.array(ERROR_TYPES).take(pa.array(kind)),
                "severity": pa.array(severity),
                "message": pa.array(ERROR_MESSAGES).take(pa.array(kind)),
                "endpoint": pa.array(endpoint).take(pa.array(service)),
            },
        )

    def _imports(self, rng: np.random.Generator, n: int, lo: float, hi: float, chunk: int) -> _Frame:
        if n == 0:
            return _empty_frame()
        jobs = max(1, n // 5)
        # The stage a job fails at (len(IMPORT_STAGES) = it does not fail).
        fail_at = np.where(rng.random(jobs) < 0.12, rng.integers(0, len(IMPORT_STAGES), jobs), len(IMPORT_STAGES))
        per_job = 1 + fail_at + 1  # started, completed stages, then completed or failed
        job = np.repeat(np.arange(jobs), per_job)
        step = np.arange(job.size) - np.repeat(np.cumsum(per_job) - per_job, per_job)
        last = step == per_job[job] - 1
        failed = last & (fail_at[job] < len(IMPORT_STAGES))
        code = np.where(
            step == 0,
            T["import_started"],
            np.where(last, np.where(failed, T["import_failed"], T["import_completed"]), T["import_stage_completed"]),
        )
        stage_index = np.clip(step - 1, 0, len(IMPORT_STAGES) - 1)
        stage_index = np.where(failed, fail_at[job], stage_index)
        records_total = rng.integers(20, 5000, jobs)
        stage_ms = rng.lognormal(np.log(2500), 0.8, job.size).astype(np.int64)
        start = self._times(rng, jobs, lo, hi)
        ts = np.minimum(start[job] + _segmented_cumsum(np.where(step == 0, 0, stage_ms), job), self._end_ms - 1)
        # What the whole job would count: failed records and the quality findings, a small share each.
        final = {
            "records_failed": records_total * rng.beta(1, 40, jobs),
            "duplicates": records_total * rng.beta(1, 60, jobs),
            "invalid_rows": records_total * rng.beta(1, 50, jobs),
            "missing_fields": records_total * rng.beta(1, 80, jobs),
            "transform_errors": records_total * rng.beta(1, 120, jobs),
        }
        # Each event reports the job's figures so far: the share of its stages done by then (a failed
        # job stops at the stage it failed in; a completed one has done them all).
        stages_done = np.where(failed, fail_at[job], np.minimum(step, len(IMPORT_STAGES)))
        done = np.where(last & ~failed, 1.0, stages_done / len(IMPORT_STAGES))
        later = pa.array(step > 0)
        no_number = pa.scalar(None, pa.int64())

        def so_far(total: np.ndarray) -> pa.Array:
            return pc.if_else(later, pa.array((total[job] * done).astype(np.int64)), no_number)

        job_ids = pc.binary_join_element_wise(
            f"{self.prefix}job-{self.seed}-{chunk}-", pc.cast(pa.array(job), pa.string()), ""
        )
        source = pa.array(IMPORT_SOURCES).take(pa.array(rng.integers(0, len(IMPORT_SOURCES), jobs)[job]))
        stage_names = pa.array(IMPORT_STAGES).take(pa.array(stage_index))
        with_stage = (code == T["import_stage_completed"]) | (code == T["import_failed"])
        total_ms = _segmented_cumsum(np.where(step == 0, 0, stage_ms), job)
        none = np.full(job.size, -1)
        frame = _Frame(
            type_code=code.astype(np.int16),
            ts_ms=ts,
            user=none,
            session=None,
            content=none,
            ua=none,
            ip=none,
            referrer=none,
            rec_marker=np.zeros(job.size, dtype=bool),
            resource_type=pa.array(["import_job"] * job.size, pa.string()),
            resource_id=job_ids,
            props={
                "job_id": job_ids,
                "source": source,
                "stage": pc.if_else(pa.array(with_stage), stage_names, pa.scalar(None, pa.string())),
                "records_total": pa.array(records_total[job]),
                "records_processed": so_far(records_total),
                **{name: so_far(total) for name, total in final.items()},
                "duration_ms": pc.if_else(later, pa.array(np.where(last, total_ms, stage_ms)), no_number),
                "failure_reason": pc.if_else(
                    pa.array(failed),
                    pa.array(IMPORT_ERRORS).take(pa.array(rng.integers(0, len(IMPORT_ERRORS), job.size))),
                    pa.scalar(None, pa.string()),
                ),
            },
        )
        return _slice(frame, np.arange(min(n, job.size)))

    def _resource_usage(self, rng: np.random.Generator, n: int, lo: float, hi: float) -> _Frame:
        """Utilization samples of the services' instances: CPU follows the day's traffic, memory and
        disk grow over the window (what capacity planning projects)."""
        if n == 0:
            return _empty_frame()
        names = list(SERVICES)
        counts = np.asarray(SERVICE_INSTANCES)
        first = np.cumsum(counts) - counts
        instance = rng.integers(0, counts.sum(), n)
        service = np.searchsorted(first, instance, side="right") - 1
        pool = pa.array([f"{name}-{k}" for name, count in zip(names, counts, strict=True) for k in range(count)])
        # Each instance's own levels, the same in every chunk.
        level = np.random.default_rng([self.seed, 9]).random((int(counts.sum()), 3))
        ts = self._times(rng, n, lo, hi)
        progress = (ts - self._start_ms) / max(1, self._end_ms - self._start_ms)
        load = DIURNAL[(ts // 3_600_000) % 24] / DIURNAL.mean()
        cpu = (15 + 25 * level[instance, 0]) * load + rng.normal(0, 4, n)
        memory = 45 + 20 * level[instance, 1] + 14 * progress + rng.normal(0, 2, n)
        disk = 40 + 25 * level[instance, 2] + 9 * progress + rng.normal(0, 0.4, n)
        none = np.full(n, -1)
        service_names = pa.array(names).take(pa.array(service))
        return _Frame(
            type_code=np.full(n, T["resource_usage"], dtype=np.int16),
            ts_ms=ts,
            user=none,
            session=None,
            content=none,
            ua=none,
            ip=none,
            referrer=none,
            rec_marker=np.zeros(n, dtype=bool),
            resource_type=pa.array(["service"] * n, pa.string()),
            resource_id=service_names,
            props={
                "service": service_names,
                "instance": pool.take(pa.array(instance)),
                "cpu_percent": pa.array(np.round(np.clip(cpu, 0.5, 100), 1)),
                "memory_percent": pa.array(np.round(np.clip(memory, 1, 100), 1)),
                "disk_percent": pa.array(np.round(np.clip(disk, 1, 100), 1)),
            },
        )

    def _health_checks(self, rng: np.random.Generator, n: int, lo: float, hi: float) -> _Frame:
        """Health check results: up nearly always; degraded, and rarely down, where a service fails more."""
        if n == 0:
            return _empty_frame()
        names = list(SERVICES)
        service = rng.integers(0, len(names), n)
        rate = np.asarray(SERVICE_5XX_RATE)[service]
        roll = rng.random(n)
        status = np.where(roll < rate * 0.5, 2, np.where(roll < rate * 3, 1, 0))
        answered = rng.lognormal(np.log(8.0), 0.5, n) * np.where(status == 1, 6.0, 1.0)
        # A service that is down answers no check: the checker's timeout is the latency.
        latency = np.round(np.where(status == 2, 5000.0, answered), 1)
        none = np.full(n, -1)
        service_names = pa.array(names).take(pa.array(service))
        return _Frame(
            type_code=np.full(n, T["health_check"], dtype=np.int16),
            ts_ms=self._times(rng, n, lo, hi),
            user=none,
            session=None,
            content=none,
            ua=none,
            ip=none,
            referrer=none,
            rec_marker=np.zeros(n, dtype=bool),
            resource_type=pa.array(["service"] * n, pa.string()),
            resource_id=service_names,
            props={
                "service": service_names,
                "health_status": pa.array(HEALTH_STATUSES).take(pa.array(status)),
                "latency_ms": pa.array(latency),
            },
        )

    def _processing(self, rng: np.random.Generator, n: int, lo: float, hi: float, chunk: int) -> _Frame:
        """Media processing jobs: started, then completed or (some) failed part way."""
        if n == 0:
            return _empty_frame()
        jobs = max(1, n // 2)
        kind = _weighted(rng, PROCESSING_KIND_WEIGHTS, jobs)
        duration = np.maximum(200, rng.lognormal(np.log(np.asarray(PROCESSING_MEDIAN_MS)[kind]), 0.6))
        failed = rng.random(jobs) < 0.08
        duration = np.where(failed, duration * rng.uniform(0.1, 0.9, jobs), duration).astype(np.int64)
        start = self._times(rng, jobs, lo, hi)
        job = np.repeat(np.arange(jobs), 2)
        finish = np.tile(np.array([False, True]), jobs)
        failing = finish & failed[job]
        code = np.where(
            finish, np.where(failing, T["processing_failed"], T["processing_completed"]), T["processing_started"]
        )
        job_ids = pc.binary_join_element_wise(
            f"{self.prefix}proc-{self.seed}-{chunk}-", pc.cast(pa.array(job), pa.string()), ""
        )
        none = np.full(job.size, -1)
        frame = _Frame(
            type_code=code.astype(np.int16),
            ts_ms=np.minimum(start[job] + np.where(finish, duration[job], 0), self._end_ms - 1),
            user=none,
            session=None,
            content=none,
            ua=none,
            ip=none,
            referrer=none,
            rec_marker=np.zeros(job.size, dtype=bool),
            resource_type=pa.array(["processing_job"] * job.size, pa.string()),
            resource_id=job_ids,
            props={
                "job_id": job_ids,
                "kind": pa.array(PROCESSING_KINDS).take(pa.array(kind[job])),
                "duration_ms": pc.if_else(pa.array(finish), pa.array(duration[job]), pa.scalar(None, pa.int64())),
                "failure_reason": pc.if_else(
                    pa.array(failing),
                    pa.array(PROCESSING_ERRORS).take(pa.array(rng.integers(0, len(PROCESSING_ERRORS), job.size))),
                    pa.scalar(None, pa.string()),
                ),
            },
        )
        return _slice(frame, np.arange(min(n, job.size)))

    def _sessions(self, rng: np.random.Generator, n: int, lo: float, hi: float, chunk: int) -> _Frame:
        """User sessions holding exactly ``n`` events (the last session is cut where the chunk ends)."""
        if n <= 0:
            return _empty_frame()
        sessions = max(1, int(n / 7.5) + 8)
        for attempt in range(20):
            frame = self._build_sessions(np.random.default_rng([self.seed, 3, chunk, attempt]), sessions, lo, hi, chunk)
            if len(frame) >= n:
                return _slice(frame, np.arange(n))
            sessions = int(sessions * 1.5) + 8
        raise RuntimeError("could not generate enough session events")  # pragma: no cover

    def _build_sessions(self, rng: np.random.Generator, s: int, lo: float, hi: float, chunk: int) -> _Frame:
        # Sessions: who, when, on what device, from where.
        user = np.minimum(np.searchsorted(self._user_cdf, rng.random(s)), self.n_users - 1)
        anonymous = rng.random(s) < 0.25
        start = self._times(rng, s, lo, hi)
        ua = np.where(rng.random(s) < 0.9, self._user_ua[user], _weighted(rng, [w for _, w in USER_AGENTS], s))
        ip_count = len(self._ip.raw)
        ip = np.where(rng.random(s) < 0.85, self._user_ip_seed[user] % ip_count, rng.integers(0, ip_count, s))
        entry = _weighted(rng, [w for _, w in ENTRY_REFERRERS], s)
        core_units = rng.geometric(0.38, s)
        login = ~anonymous & (rng.random(s) < 0.12)
        register = ~anonymous & ~login & (rng.random(s) < 0.006)
        logout = ~anonymous & (rng.random(s) < 0.07)
        units_per = core_units + login + register + logout

        # Units of activity.
        u_total = int(units_per.sum())
        u_session = np.repeat(np.arange(s), units_per)
        u_pos = np.arange(u_total) - np.repeat(np.cumsum(units_per) - units_per, units_per)
        kind = _weighted(rng, _KIND_WEIGHTS, u_total)
        first = u_pos == 0
        kind = np.where(first & login[u_session], _LOGIN, kind)
        kind = np.where(first & register[u_session], _REGISTER, kind)
        kind = np.where((u_pos == units_per[u_session] - 1) & logout[u_session], _LOGOUT, kind)
        # Bots only view pages and content.
        bot = np.isin(ua, _BOT_AGENTS)[u_session]
        kind = np.where(bot & (kind <= _PAGE), np.where(rng.random(u_total) < 0.5, _BROWSE, _PAGE), kind)
        is_content = (kind == _BROWSE) | (kind == _SEARCH) | (kind == _REC)
        # The first non-auth unit of a session comes in through the entry referrer.
        core_unit = kind <= _PAGE
        order = np.where(core_unit, u_pos, 1 << 30)
        first_core = np.full(s, 1 << 30)
        np.minimum.at(first_core, u_session, order)
        is_entry = core_unit & (u_pos == first_core[u_session])

        # What each content unit is about: popularity at that time.
        bucket = np.clip((start[u_session] - self._start_ms) // self._bucket_ms, 0, self._content_cdf.shape[0] - 1)
        content = np.full(u_total, -1)
        draws = rng.random(u_total)
        for b in np.unique(bucket[is_content]):
            rows = np.flatnonzero(is_content & (bucket == b))
            content[rows] = np.minimum(np.searchsorted(self._content_cdf[b], draws[rows]), self.n_contents - 1)
        ctype = np.where(content >= 0, self._ctype[np.maximum(content, 0)], 0)
        quality = np.where(content >= 0, self._quality[np.maximum(content, 0)], 0.5)
        duration = np.where(content >= 0, self._duration[np.maximum(content, 0)], 0)
        playable = is_content & (ctype != 1) & ~bot[:]
        played = playable & (rng.random(u_total) < 0.55 + 0.35 * quality)
        pauses = np.where(played, rng.poisson(0.3 + duration / 7200, u_total), 0)
        completed = played & (rng.random(u_total) < 0.15 + 0.7 * quality)
        engaged = is_content & ~bot
        counts = np.zeros((u_total, 9), dtype=np.int64)
        counts[:, _PRE1] = ~is_content | (kind == _SEARCH) | (kind == _REC)
        counts[:, _PRE2] = (kind == _SEARCH) | (kind == _REC)
        counts[:, _VIEW] = is_content
        counts[:, _PLAY] = played
        counts[:, _PAUSES] = 2 * pauses
        counts[:, _COMPLETE] = completed
        counts[:, _SHARE] = engaged & (rng.random(u_total) < 0.01 + 0.03 * quality)
        counts[:, _BOOKMARK] = engaged & (rng.random(u_total) < 0.015 + 0.03 * quality)
        counts[:, _LIKE] = engaged & (rng.random(u_total) < 0.03 + 0.08 * quality)
        # Searches: a query per search unit; zero-result queries and searches nobody clicks stay alone.
        query = np.where(
            rng.random(u_total) < 0.06,
            len(self._queries) + rng.integers(0, len(self._zero_queries), u_total),
            _zipf_index(rng, len(self._queries), u_total),
        )
        zero = query >= len(self._queries)
        counts[:, _PRE2] &= ~((kind == _SEARCH) & zero)
        search_fallthrough = (kind == _SEARCH) & zero
        for slot in (_VIEW, _PLAY, _PAUSES, _COMPLETE, _SHARE, _BOOKMARK, _LIKE):
            counts[search_fallthrough, slot] = 0

        # Events.
        per_unit = counts.sum(1)
        e_total = int(per_unit.sum())
        e_unit = np.repeat(np.arange(u_total), per_unit)
        e_pos = np.arange(e_total) - np.repeat(np.cumsum(per_unit) - per_unit, per_unit)
        bounds = np.cumsum(counts, axis=1)
        slot = (e_pos[:, None] >= bounds[e_unit]).sum(1)
        in_slot = e_pos - np.where(slot > 0, bounds[e_unit, np.maximum(slot - 1, 0)], 0)
        e_kind = kind[e_unit]
        code = np.where(
            slot == _PAUSES,
            np.where(in_slot % 2 == 0, T["content_pause"], T["content_resume"]),
            _SLOT_TYPE[e_kind, slot],
        )
        e_session = u_session[e_unit]

        # Time: a session's events follow its start with type-dependent gaps.
        gap = rng.exponential(1.0, e_total) * _GAP_SECONDS[code]
        dur = duration[e_unit]
        gap = np.where(code == T["content_pause"], rng.exponential(1.0, e_total) * dur / (2 * pauses[e_unit] + 2), gap)
        gap = np.where(code == T["content_complete"], dur * rng.uniform(0.3, 0.7, e_total), gap)
        session_first = np.r_[True, e_session[1:] != e_session[:-1]]
        gap_ms = np.where(session_first, 0, (gap * 1000).astype(np.int64))
        ts = np.minimum(start[e_session] + _segmented_cumsum(gap_ms, e_session), self._end_ms - 1)

        # Referrers: the entry one for the entry unit, the platform's own pages after that.
        ref_base = self._ref_starts
        e_query = query[e_unit]
        search_ref = ref_base["search"] + e_query
        browse_ref = ref_base["browse"] + np.where(
            content[e_unit] >= 0, self._category[np.maximum(content[e_unit], 0)], 0
        )
        referrer = np.select(
            [
                is_entry[e_unit],
                (e_kind == _SEARCH) | (e_kind == _SEARCH_ONLY),
                (e_kind == _REC) | (e_kind == _REC_ONLY),
                e_kind == _BROWSE,
                e_kind == _PAGE,
            ],
            [entry[e_session], search_ref, ref_base["for_you"], browse_ref, ref_base["internal"]],
            -1,
        )

        # Properties.
        n = e_total
        is_view = code == T["content_view"]
        is_search = code == T["search_query"]
        is_click = code == T["search_result_click"]
        is_imp = code == T["recommendation_impression"]
        is_rclick = code == T["recommendation_click"]
        rec_unit = e_kind == _REC
        rec_ids = pc.binary_join_element_wise(
            f"{self.prefix}rec-{self.seed}-{chunk}-", pc.cast(pa.array(e_unit), pa.string()), ""
        )
        slot_no = rng.integers(1, 11, n)
        results = np.where(zero[e_unit], 0, rng.integers(3, 400, n))
        position = np.minimum(rng.geometric(0.35, n), 20)
        pos_seconds = np.round(dur * (in_slot // 2 + 1) / (2 * pauses[e_unit] + 2), 1)
        content_ids = _take(self._content_ids, content[e_unit], None)
        source = np.select(
            [rec_unit, e_kind == _SEARCH, is_entry[e_unit]], ["recommendation", "search", "external"], "browse"
        )
        null_text = pa.scalar(None, pa.string())

        def only(mask: np.ndarray, values: Any) -> pa.Array:
            """``values`` where ``mask``, null elsewhere (the key is left out of those events)."""
            array = values if isinstance(values, pa.Array) else pa.array(values)
            return pc.if_else(pa.array(mask), array, pa.scalar(None, array.type))

        props = {
            "source": pc.if_else(pa.array(is_view), pa.array(source), null_text),
            "query": pc.if_else(pa.array(is_search | is_click), self._query_pool.take(pa.array(e_query)), null_text),
            "results_count": only(is_search, results[:]),
            "page": only(is_search, np.ones(n, dtype=np.int64)),
            "position": only(is_click | (is_view & (e_kind == _SEARCH)), position),
            "content_id": pc.if_else(pa.array(is_click | is_rclick), content_ids, null_text),
            "recommendation_id": pc.if_else(
                pa.array(rec_unit & (is_imp | is_rclick | is_view) | (e_kind == _REC_ONLY)), rec_ids, null_text
            ),
            "model": pc.if_else(
                pa.array(is_imp | is_rclick), pa.array(REC_MODELS).take(pa.array(e_unit % len(REC_MODELS))), null_text
            ),
            "slot": only(is_imp | is_rclick, slot_no),
            "duration_seconds": only(code == T["content_complete"], dur),
            "watch_time_seconds": only(code == T["content_complete"], np.round(dur * rng.uniform(0.85, 1.0, n), 1)),
            "position_seconds": only((code == T["content_pause"]) | (code == T["content_resume"]), pos_seconds),
            "channel": pc.if_else(
                pa.array(code == T["content_share"]),
                pa.array(SHARE_CHANNELS).take(pa.array(rng.integers(0, len(SHARE_CHANNELS), n))),
                null_text,
            ),
            "method": pc.if_else(
                pa.array(code == T["user_login"]),
                pa.array(LOGIN_METHODS).take(pa.array(rng.integers(0, len(LOGIN_METHODS), n))),
                null_text,
            ),
            "plan": pc.if_else(
                pa.array(code == T["user_register"]),
                pa.array(PLANS).take(pa.array(rng.integers(0, len(PLANS), n))),
                null_text,
            ),
        }
        rec_marker = rec_unit & (is_imp | is_rclick | is_view) | (e_kind == _REC_ONLY)
        session_ids = pc.binary_join_element_wise(
            f"{self.prefix}s{self.seed}-{chunk}-", pc.cast(pa.array(e_session), pa.string()), ""
        )
        return _Frame(
            type_code=code.astype(np.int16),
            ts_ms=ts,
            user=np.where(anonymous[e_session], -1, user[e_session]),
            session=session_ids,
            content=np.where(
                (code == T["search_query"]) | (code == T["recommendation_impression"]) | (code >= T["user_register"]),
                -1,
                content[e_unit],
            ),
            ua=ua[e_session],
            ip=ip[e_session],
            referrer=referrer,
            rec_marker=rec_marker,
            props=props,
        )

    def _bot_sessions(self, room: int, lo: float, hi: float, chunk: int) -> _Frame:
        """This chunk's bot sessions: ``bot_session_share`` of its sessions, in at most ``room`` events.

        A bot goes through the catalogue without regard to popularity, and sometimes reloads the
        item it is on or fetches a listing page (page_view) in between.
        """
        rng = np.random.default_rng([self.seed, 4, chunk])
        share = self.bot_session_share
        low, high = BOT_SESSION_EVENTS
        sample = self._build_sessions(np.random.default_rng([self.seed, 5, chunk]), _SESSION_SAMPLE, lo, hi, chunk)
        mean_events = len(sample) / _SESSION_SAMPLE
        expected = room / ((1 - share) * mean_events + share * (low + high) / 2) * share
        sizes = rng.integers(low, high + 1, int(2 * expected) + 2)
        # k bots leave room for about (room - their events) / mean_events ordinary sessions: take as
        # many as keep the bots at ``share`` of all sessions (rounded at random, so chunks average it).
        bots = np.arange(1, sizes.size + 1)
        taken = np.cumsum(sizes)
        ordinary = np.maximum(room - taken, 0) / mean_events
        fits = (taken <= room) & (bots - rng.random() < share * (bots + ordinary))
        sizes = sizes[: int(np.argmin(fits)) if not fits.all() else sizes.size]
        s = sizes.size
        if s == 0:
            return _empty_frame()
        user = np.minimum(np.searchsorted(self._user_cdf, rng.random(s)), self.n_users - 1)
        signed_in = rng.random(s) < _BOT_SIGNED_IN_SHARE
        ua = _BOT_AGENTS[rng.integers(0, _BOT_AGENTS.size, s)]
        ip = rng.integers(0, len(self._ip.raw), s)
        start = self._times(rng, s, lo, hi)

        n = int(sizes.sum())
        e_session = np.repeat(np.arange(s), sizes)
        session_first = np.r_[True, e_session[1:] != e_session[:-1]]
        gap_ms = np.where(session_first, 0, (rng.exponential(_BOT_GAP_SECONDS, n) * 1000).astype(np.int64))
        ts = np.minimum(start[e_session] + _segmented_cumsum(gap_ms, e_session), self._end_ms - 1)
        is_view = rng.random(n) >= _BOT_PAGE_VIEW_SHARE
        # A reload keeps the item of the step before it (chains of reloads keep it too).
        fresh = session_first | (rng.random(n) >= _BOT_RELOAD_SHARE)
        drawn = np.maximum.accumulate(np.where(fresh, np.arange(n), 0))
        content = rng.integers(0, self.n_contents, n)[drawn]
        code = np.where(is_view, T["content_view"], T["page_view"]).astype(np.int16)
        session_ids = pc.binary_join_element_wise(
            f"{self.prefix}b{self.seed}-{chunk}-", pc.cast(pa.array(e_session), pa.string()), ""
        )
        return _Frame(
            type_code=code,
            ts_ms=ts,
            user=np.where(signed_in, user, -1)[e_session],
            session=session_ids,
            content=np.where(is_view, content, -1),
            ua=ua[e_session],
            ip=ip[e_session],
            referrer=np.full(n, -1),
            rec_marker=np.zeros(n, dtype=bool),
            props={"source": pc.if_else(pa.array(is_view), "browse", pa.scalar(None, pa.string()))},
        )

    # -- rendering --------------------------------------------------------

    def _event_ids(self, frame: _Frame, index: int) -> pa.Array:
        first = sum(self.chunk_sizes()[:index])
        return _ids(f"{self.prefix}e{self.seed}-", np.arange(first, first + len(frame)))

    def _columns(self, frame: _Frame, index: int) -> dict[str, pa.Array]:
        n = len(frame)
        empty = pa.array([""] * n, pa.string()) if n else pa.array([], pa.string())
        users = (
            pc.if_else(pa.array(frame.user < 0), "", _ids(f"{self.prefix}u", np.maximum(frame.user, 0))) if n else empty
        )
        return {
            "id": self._event_ids(frame, index),
            "event_type": pa.array(EVENT_TYPES).take(pa.array(frame.type_code)),
            "timestamp": pa.array(frame.ts_ms, pa.timestamp("ms", tz="UTC")),
            "user_id": users,
            "session_id": frame.session if frame.session is not None else empty,
            "content_id": _take(self._content_ids, frame.content),
            "resource_type": frame.resource_type if frame.resource_type is not None else empty,
            "resource_id": frame.resource_id if frame.resource_id is not None else empty,
            "properties": frame.props[_JSON] if _JSON in frame.props else _json_objects(n, frame.props),
        }

    def _table(self, frame: _Frame, index: int) -> pa.Table:
        n = len(frame)
        base = self._columns(frame, index)
        processed = pa.array(np.full(n, self._end_ms, dtype=np.int64), pa.timestamp("ms", tz="UTC"))
        traffic = pc.if_else(
            pa.array(frame.rec_marker),
            "recommendation",
            _take(self._ref.columns["traffic_source"], frame.referrer, "direct"),
        )
        columns = {
            **base,
            "event_category": CATEGORY_OF_TYPE.take(pa.array(frame.type_code)),
            "ip_address": _take(self._ip.columns["ip_address"], frame.ip),
            "user_agent": _take(self._ua.raw, frame.ua),
            "referrer": _take(self._ref.raw, frame.referrer),
            "country": _take(self._ip.columns["country"], frame.ip),
            "region": pa.array([""] * n, pa.string()),
            "city": pa.array([""] * n, pa.string()),
            "processed_at": processed,
            "batch_id": pa.array([f"{self.prefix}bulk-{self.seed}-{index}"] * n, pa.string()),
            "device_type": _take(self._ua.columns["device_type"], frame.ua, "unknown"),
            "browser": _take(self._ua.columns["browser"], frame.ua, "unknown"),
            "os": _take(self._ua.columns["os"], frame.ua, "unknown"),
            "traffic_source": traffic,
            "referrer_host": _take(self._ref.columns["referrer_host"], frame.referrer),
        }
        return pa.table({name: columns[name] for name in EVENT_SCHEMA.names}, schema=EVENT_SCHEMA)

    def _api_lines(self, frame: _Frame, index: int) -> pa.Array:
        base = self._columns(frame, index)
        timestamps = pc.binary_join_element_wise(pc.strftime(base["timestamp"], format="%Y-%m-%dT%H:%M:%S"), "Z", "")

        def text(key: str, values: pa.Array) -> pa.Array:
            rendered = pc.binary_join_element_wise(f',"{key}":"', values, '"', "")
            return pc.if_else(pc.equal(values, ""), "", rendered)

        pieces = [
            pc.binary_join_element_wise(
                '{"id":"', base["id"], '","event_type":"', base["event_type"], '","timestamp":"', timestamps, '"', ""
            ),
            text("user_id", base["user_id"]),
            text("session_id", base["session_id"]),
            text("content_id", base["content_id"]),
            text("resource_type", base["resource_type"]),
            text("resource_id", base["resource_id"]),
            text("ip_address", _take(self._ip.raw, frame.ip)),
            text("user_agent", _take(self._ua.raw, frame.ua)),
            text("referrer", _take(self._ref.raw, frame.referrer)),
            pc.binary_join_element_wise(',"properties":', base["properties"], "}", ""),
        ]
        return pc.binary_join_element_wise(*pieces, "")


def _zipf_index(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** 1.2
    return np.minimum(np.searchsorted(np.cumsum(weights) / weights.sum(), rng.random(size)), n - 1)


def _segmented_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Running sum of ``values`` restarting where ``groups`` (sorted runs) changes."""
    if values.size == 0:
        return values.astype(np.int64)
    total = np.cumsum(values)
    starts = np.r_[True, groups[1:] != groups[:-1]]
    offsets = np.where(starts, total - values, 0)
    return total - np.maximum.accumulate(np.where(starts, offsets, 0))


def _rendered(frame: _Frame) -> _Frame:
    """``frame`` with its properties as one JSON object per row."""
    return replace(frame, props={_JSON: _json_objects(len(frame), frame.props)})


def _empty_frame() -> _Frame:
    none = np.empty(0, dtype=np.int64)
    return _Frame(np.empty(0, np.int16), none, none, None, none, none, none, none, np.empty(0, bool))


def _concat(frames: list[_Frame]) -> _Frame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty_frame()

    def strings(get: Callable[[_Frame], pa.Array | None]) -> pa.Array:
        parts = [get(f) if get(f) is not None else pa.array([""] * len(f), pa.string()) for f in frames]
        return pa.concat_arrays([p.cast(pa.string()) for p in parts])

    keys = sorted({k for f in frames for k in f.props})
    props = {}
    for key in keys:
        parts = []
        kind = next(f.props[key].type for f in frames if key in f.props)
        for f in frames:
            parts.append(f.props[key].cast(kind) if key in f.props else pa.nulls(len(f), kind))
        props[key] = pa.concat_arrays(parts)
    return _Frame(
        type_code=np.concatenate([f.type_code for f in frames]),
        ts_ms=np.concatenate([f.ts_ms for f in frames]),
        user=np.concatenate([f.user for f in frames]),
        session=strings(lambda f: f.session),
        content=np.concatenate([f.content for f in frames]),
        ua=np.concatenate([f.ua for f in frames]),
        ip=np.concatenate([f.ip for f in frames]),
        referrer=np.concatenate([f.referrer for f in frames]),
        rec_marker=np.concatenate([f.rec_marker for f in frames]),
        resource_type=strings(lambda f: f.resource_type),
        resource_id=strings(lambda f: f.resource_id),
        props=props,
    )


def _slice(frame: _Frame, rows: np.ndarray) -> _Frame:
    take = pa.array(rows)

    def pick(array: pa.Array | None) -> pa.Array | None:
        return array.take(take) if array is not None else None

    return _Frame(
        type_code=frame.type_code[rows],
        ts_ms=frame.ts_ms[rows],
        user=frame.user[rows],
        session=pick(frame.session),
        content=frame.content[rows],
        ua=frame.ua[rows],
        ip=frame.ip[rows],
        referrer=frame.referrer[rows],
        rec_marker=frame.rec_marker[rows],
        resource_type=pick(frame.resource_type),
        resource_id=pick(frame.resource_id),
        props={k: v.take(take) for k, v in frame.props.items()},
    )


# ---------------------------------------------------------------------------
# Writers and loaders
# ---------------------------------------------------------------------------


@dataclass
class LoadSummary:
    """What a write or load did, for the final summary."""

    events: int = 0
    seconds: float = 0.0
    bytes: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    first: str | None = None
    last: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self, table: pa.Table) -> None:
        self.events += table.num_rows
        for row in pc.value_counts(table.column("event_type")).to_pylist():
            self.by_type[row["values"]] = self.by_type.get(row["values"], 0) + row["counts"]
        bounds = pc.min_max(table.column("timestamp")).as_py()
        if bounds["min"] is not None:
            low, high = bounds["min"].isoformat(), bounds["max"].isoformat()
            self.first = low if self.first is None else min(self.first, low)
            self.last = high if self.last is None else max(self.last, high)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 2),
            "events_per_second": round(self.events / self.seconds) if self.seconds else None,
            "bytes": self.bytes,
            "first_event": self.first,
            "last_event": self.last,
            "by_type": dict(sorted(self.by_type.items(), key=lambda kv: -kv[1])),
            **self.extra,
        }

    def print(self, title: str) -> None:
        d = self.as_dict()
        print(
            f"{title}: {d['events']:,} events in {d['seconds']} s ({d['events_per_second'] or 0:,}/s), "
            f"{d['first_event']} .. {d['last_event']}"
        )
        for name, n in d["by_type"].items():
            print(f"  {name:<28}{n:>12,}  {n / max(1, d['events']):6.1%}")
        for key, value in self.extra.items():
            print(f"  {key}: {value}")


def write_parquet(workload: Workload, path: Path, *, progress: bool | None = None) -> LoadSummary:
    """The stored form (``EVENT_SCHEMA``), plus ``<name>.content.parquet`` with the catalogue."""
    import pyarrow.parquet as pq

    summary = LoadSummary()
    bar = Progress(workload.events, "parquet", enabled=progress)
    with pq.ParquetWriter(path, EVENT_SCHEMA, compression="zstd") as writer:
        for table in workload.tables():
            writer.write_table(table)
            summary.count(table)
            bar.advance(table.num_rows)
    summary.seconds = bar.close()
    metadata_path = path.with_name(path.name.removesuffix(".parquet") + ".content.parquet")
    pq.write_table(workload.content_metadata(), metadata_path)
    summary.bytes = path.stat().st_size
    summary.extra["content_metadata"] = str(metadata_path)
    return summary


def write_ndjson(workload: Workload, path: Path, *, progress: bool | None = None) -> LoadSummary:
    """The API form: one event per line, exactly as a client would POST it."""
    summary = LoadSummary()
    bar = Progress(workload.events, "ndjson", enabled=progress)
    with path.open("wb") as out:
        for table, lines in workload.both():
            out.write(_joined(lines, b"\n") + b"\n")
            summary.count(table)
            bar.advance(table.num_rows)
    summary.seconds = bar.close()
    summary.bytes = path.stat().st_size
    return summary


def _joined(lines: pa.Array, separator: bytes) -> bytes:
    """The strings of ``lines`` joined by ``separator``, without a Python object per line."""
    offsets = pa.array([0, len(lines)], pa.int32())
    as_list = pa.ListArray.from_arrays(offsets, lines)
    return pc.binary_join(as_list, separator.decode())[0].as_py().encode()


def batch_bodies(lines: pa.Array, batch_size: int) -> list[bytes]:
    """Request bodies for the batch endpoint, ``{"events": [...]}``, ``batch_size`` events each."""
    n = len(lines)
    starts = np.arange(0, n + batch_size, batch_size, dtype=np.int32)
    starts[-1] = n
    starts = np.unique(np.minimum(starts, n))
    as_list = pa.ListArray.from_arrays(pa.array(starts, pa.int32()), lines)
    joined = pc.binary_join(as_list, ",")
    framed = pc.binary_join_element_wise('{"events":[', joined, "]}", "")
    return [body.encode() for body in framed.to_pylist()]


def bulk_rows(table: pa.Table, rows: int = MAX_INSERT_ROWS) -> Iterator[pa.Table]:
    for offset in range(0, table.num_rows, rows):
        yield table.slice(offset, rows)


def load_into_store(
    workload: Workload, write: Callable[[pa.Table], Any], *, progress: bool | None = None
) -> LoadSummary:
    """Bulk load: every chunk through ``write`` (at most MAX_INSERT_ROWS rows a call)."""
    summary = LoadSummary()
    bar = Progress(workload.events, "bulk load", enabled=progress)
    for table in workload.tables():
        for part in bulk_rows(table):
            write(part)
        summary.count(table)
        bar.advance(table.num_rows)
    summary.seconds = bar.close()
    return summary


def load_into_actor(workload: Workload, actor: Any, *, progress: bool | None = None, in_flight: int = 2) -> LoadSummary:
    """Bulk load through a running service's event store actor (its id index stays exact); done
    when the rows are in the rollups too.

    Up to ``in_flight`` writes overlap, so generating the next chunk hides behind the insert.
    """
    import ray

    pending: list[Any] = []

    def write(part: pa.Table) -> None:
        pending.append(actor.load_events.remote(part))
        while len(pending) >= in_flight:
            ray.get(pending.pop(0))

    summary = load_into_store(workload, write, progress=progress)
    started = time.perf_counter()
    for ref in pending:
        ray.get(ref)
    # A bulk load stores faster than the rollups are fed: the load counts until they have caught up.
    ray.get(actor.settle_rollups.remote(1800.0))
    summary.seconds += time.perf_counter() - started
    return summary


def metadata_rows(workload: Workload, columns: dict[str, set[str]]) -> tuple[str, pa.Table] | None:
    """Where the catalogue goes in the store (its content metadata tables), shaped to that table's columns.

    ``columns`` maps each table of the store to its column names. The updates log
    (``content_metadata_updates``) is preferred: the ``content_metadata`` read side is a view on it.
    """
    metadata = workload.content_metadata()
    for table in ("content_metadata_updates", "content_metadata"):
        if table not in columns:
            continue
        wanted = columns[table]
        extra = {}
        if "updated_at" in wanted:
            extra["updated_at"] = metadata.column("published_at")
        if "source" in wanted:
            extra["source"] = pa.array(["bench"] * metadata.num_rows, pa.string())
        keep = [name for name in metadata.column_names if name in wanted]
        return table, pa.table({**{name: metadata.column(name) for name in keep}, **extra})
    return None


_TABLE_COLUMNS_SQL = (
    "SELECT c.table, c.name FROM system.columns AS c INNER JOIN system.tables AS t "
    "ON c.database = t.database AND c.table = t.name "
    "WHERE c.database = currentDatabase() AND t.engine NOT IN ('View', 'MaterializedView') "
    "AND c.default_kind NOT IN ('MATERIALIZED', 'ALIAS')"
)


def _columns_by_table(rows: list[tuple[Any, ...]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


def load_metadata_into_actor(workload: Workload, actor: Any) -> int:
    """Write the catalogue into the store's content metadata table when there is one; rows written."""
    import ray

    target = metadata_rows(workload, _columns_by_table(ray.get(actor.query.remote(_TABLE_COLUMNS_SQL)).rows))
    if target is None:
        return 0
    ray.get(actor.insert_table.remote(*target))
    return target[1].num_rows


def load_direct(workload: Workload, settings: Any, *, progress: bool | None = None) -> LoadSummary:
    """Bulk load straight into ClickHouse/chDB with the service stopped (chDB allows one process per directory).

    The service rebuilds its id index from the store when it starts, so retries stay deduplicated.
    """
    from storage.events import ClickHouseEvents

    store = ClickHouseEvents.open(
        settings.clickhouse_dsn,
        chdb_path=settings.chdb_path,
        database=settings.clickhouse_database,
        retention_days=settings.retention_days,
    )
    try:

        def write(part: pa.Table) -> None:
            token = hashlib.blake2b(
                f"{workload.prefix}|{workload.seed}|{part.column('id')[0]}|{part.num_rows}".encode(), digest_size=16
            ).hexdigest()
            store.insert(part, token)

        summary = load_into_store(workload, write, progress=progress)
        target = metadata_rows(workload, _columns_by_table(store.query(_TABLE_COLUMNS_SQL).rows))
        if target is not None:
            store.insert_table(*target)
            summary.extra["content_metadata_rows"] = target[1].num_rows
        return summary
    finally:
        store.close()


async def post_batches(
    base_url: str,
    api_key: str,
    bodies: list[bytes],
    *,
    concurrency: int,
    path: str = "/api/v1/analytics/events/batch",
) -> tuple[list[float], list[dict[str, Any]]]:
    """POST every body with ``concurrency`` keep-alive connections; (latencies in s, response bodies)."""
    import aiohttp

    latencies: list[float] = []
    answers: list[dict[str, Any]] = []
    queue = list(reversed(bodies))
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            body = queue.pop()
            for attempt in range(5):
                started = time.perf_counter()
                async with session.post(path, data=body, headers=headers) as response:
                    payload = await response.read()
                    if response.status == 503 and attempt < 4:  # not stored: retrying is safe
                        await asyncio.sleep(0.2 * (attempt + 1))
                        continue
                    latencies.append(time.perf_counter() - started)
                    answers.append({"status": response.status, **orjson.loads(payload)})
                    break

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return latencies, answers


def load_via_api(
    workload: Workload,
    base_url: str,
    api_key: str,
    *,
    batch_size: int = 1000,
    concurrency: int = 8,
    progress: bool | None = None,
) -> LoadSummary:
    """End-to-end load through the public batch endpoint."""
    summary = LoadSummary()
    bar = Progress(workload.events, "api load", enabled=progress)
    accepted = rejected = duplicates = 0
    failed_statuses: dict[int, int] = {}
    for table, lines in workload.both():
        _, answers = asyncio.run(
            post_batches(base_url, api_key, batch_bodies(lines, batch_size), concurrency=concurrency)
        )
        for answer in answers:
            accepted += answer.get("accepted", 0)
            rejected += answer.get("rejected", 0)
            duplicates += answer.get("duplicates", 0)
            if answer["status"] != 200:
                failed_statuses[answer["status"]] = failed_statuses.get(answer["status"], 0) + 1
        summary.count(table)
        bar.advance(table.num_rows)
    summary.seconds = bar.close()
    summary.extra.update(accepted=accepted, rejected=rejected, duplicates=duplicates, failed_requests=failed_statuses)
    return summary


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workload", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--end", type=datetime.fromisoformat, default=None, help="ISO time the window ends at (default: this UTC hour)"
    )
    parser.add_argument("--prefix", default="", help="put in front of every id (to keep workloads apart)")
    parser.add_argument(
        "--bot-session-share",
        type=float,
        default=0.0,
        help=f"share of sessions that are bots with {BOT_SESSION_EVENTS[0]:,}-{BOT_SESSION_EVENTS[1]:,} events each",
    )
    parser.add_argument("--out", type=Path, help="write .parquet (stored form) or .ndjson/.jsonl (API form)")
    parser.add_argument(
        "--load",
        choices=("api", "bulk"),
        help="api: through the batch endpoint; bulk: straight into the store (service stopped)",
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--key", help="API key for --load api (default: the data dir's admin-api-key file)")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    if not args.out and not args.load:
        parser.error("give --out and/or --load")

    from core.settings import Settings

    settings = Settings()
    started = time.perf_counter()
    workload = Workload(
        events=args.events,
        days=args.days,
        seed=args.seed,
        end=args.end if args.end is None or args.end.tzinfo else args.end.replace(tzinfo=UTC),
        prefix=args.prefix,
        bot_session_share=args.bot_session_share,
        internal_hosts=tuple(settings.internal_hosts) or (PLATFORM_HOST,),
        anonymize_ip=settings.anonymize_ip,
    )
    print(
        f"workload: {workload.events:,} events, {workload.n_contents:,} content items, {workload.n_users:,} users, "
        f"{workload.start.isoformat()} .. {workload.end.isoformat()}, seed {workload.seed} "
        f"(set-up {time.perf_counter() - started:.1f} s)",
        file=sys.stderr,
    )
    if args.out:
        suffix = args.out.suffix.lower()
        if suffix == ".parquet":
            write_parquet(workload, args.out).print(f"wrote {args.out}")
        elif suffix in (".ndjson", ".jsonl"):
            write_ndjson(workload, args.out).print(f"wrote {args.out}")
        else:
            parser.error("--out must end in .parquet, .ndjson or .jsonl")
    if args.load == "api":
        key = args.key or (settings.data_dir / "admin-api-key").read_text().strip()
        load_via_api(workload, args.url, key, batch_size=args.batch_size, concurrency=args.concurrency).print(
            f"loaded through {args.url}"
        )
    elif args.load == "bulk":
        load_direct(workload, settings).print(
            f"loaded into {_without_password(settings.clickhouse_dsn) or settings.chdb_path}"
        )
    return 0


def _without_password(dsn: str | None) -> str | None:
    """The DSN as it may be printed: a password in it shown as ***."""
    if not dsn:
        return dsn
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


if __name__ == "__main__":
    raise SystemExit(main())
