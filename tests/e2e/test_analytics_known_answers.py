"""Content, user, segment, retention, journey and search analytics on a hand-built dataset, through HTTP.

The dataset (``build_dataset``) is 236 events: 76 written one by one, most over 24 days, and 160 made by a
rule in a later window, sent through the real ingest API
(so enrichment decides devices, browsers and traffic sources), plus metadata PUTs. Every expected
number below was worked out by hand from it; the comments show the arithmetic. Days are counted
from BASE, a Monday about 600 days ago: far from the "now" and June 2026 that other tests use, and
inside the 730-day retention. Ids carry the test's unique prefix.
"""

from __future__ import annotations

import math
import secrets
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from serve_app import runtime

pytestmark = pytest.mark.e2e

API = "/api/v1/analytics"
_today = datetime.now(UTC).date()
BASE = _today - timedelta(days=600 + (_today - timedelta(days=600)).weekday())
END = BASE + timedelta(days=13)
CURRENT = {"start_date": BASE.isoformat(), "end_date": END.isoformat()}

DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"


def at(day: int, clock: str) -> str:
    return datetime.combine(BASE + timedelta(days=day), time.fromisoformat(clock), UTC).isoformat()


class Dataset:
    def __init__(self, prefix: str) -> None:
        self.p = prefix
        self.events: list[dict[str, Any]] = []
        self.a, self.b, self.c, self.d, self.e, self.f = (f"{prefix}-{x}" for x in "abcdef")

    def user(self, n: int) -> str:
        return f"{self.p}-u{n}"

    def session(self, name: str, user: int | None, ua: str, country: str, region: str) -> dict[str, Any]:
        context = {"session_id": f"{self.p}-{name}", "user_agent": ua, "country": country, "region": region}
        if user is not None:
            context["user_id"] = self.user(user)
        return context

    def add(
        self,
        kind: str,
        day: int,
        clock: str,
        context: dict[str, Any] | None = None,
        content: str | None = None,
        **fields: Any,
    ) -> None:
        event = {
            "id": f"{self.p}-e{len(self.events)}",
            "event_type": kind,
            "timestamp": at(day, clock),
            **(context or {}),
            **fields,
        }
        if content:
            event["content_id"] = content
        self.events.append(event)


def build_dataset(prefix: str) -> Dataset:
    ds = Dataset(prefix)
    a, b, c, d, e = ds.a, ds.b, ds.c, ds.d, ds.e
    add = ds.add
    # --- previous period (days -14..-1) ---
    add(
        "content_published",
        -2,
        "08:00:00",
        content=a,
        properties={
            "title": "Desert Film",
            "category": "news",
            "content_type": "video",
            "language": "ar",
            "author": "Huda",
        },
    )
    s0 = ds.session("s0", 6, DESKTOP, "SA", "Riyadh")
    add("content_view", -2, "15:00:00", s0, a)
    add("content_play", -2, "15:00:10", s0, a)
    add("content_complete", -2, "15:05:10", s0, a)
    sp1 = ds.session("sp1", 1, DESKTOP, "SA", "Riyadh")
    add("content_view", -1, "09:00:00", sp1, a)
    for user, day in ((8, -10), (9, -5), (10, -3)):
        add("user_login", day, "06:00:00", {"user_id": ds.user(user), "user_agent": DESKTOP})
    # --- current period (days 0..13) ---
    s1 = ds.session("s1", 1, DESKTOP, "SA", "Riyadh")
    add("search_query", 0, "10:00:00", s1, properties={"query": "Desert Film", "results_count": 5})
    add("search_impression", 0, "10:00:30", s1, properties={"content_id": a})
    add("search_result_click", 0, "10:00:40", s1, a, properties={"query": "desert film", "position": 2})
    add("content_view", 0, "10:01:00", s1, a, referrer="https://www.google.com/search?q=desert+film")
    add("content_play", 0, "10:01:10", s1, a)
    add("content_pause", 0, "10:03:10", s1, a)
    add("content_resume", 0, "10:04:00", s1, a)
    add("content_complete", 0, "10:06:00", s1, a)
    add("content_like", 0, "10:06:30", s1, a)
    add("content_view", 0, "10:07:00", s1, b, referrer="https://platform.example/watch/a")
    add("content_play", 0, "10:07:05", s1, b)
    add("content_pause", 0, "10:08:05", s1, b)
    s2 = ds.session("s2", 2, IPHONE, "AE", "Dubai")
    add("content_view", 1, "20:00:00", s2, a)
    add("content_play", 1, "20:00:05", s2, a)
    add("content_pause", 1, "20:05:05", s2, a)
    add("content_share", 1, "20:06:00", s2, a)
    add("content_bookmark", 1, "20:06:30", s2, a)
    s3 = ds.session("s3", 3, IPAD, "SA", "Makkah")
    add("recommendation_impression", 2, "08:00:00", s3, a)
    add("recommendation_click", 2, "08:00:10", s3, a)
    add("content_view", 2, "08:00:20", s3, a, properties={"source": "recommendation"})
    add("content_play", 2, "08:00:30", s3, a)
    add("content_complete", 2, "08:10:30", s3, a)
    add("content_comment", 2, "08:11:00", s3, a)
    add("content_like", 2, "08:11:30", s3, a)
    s4 = ds.session("s4", None, FIREFOX, "EG", "Cairo")
    add("content_view", 2, "21:00:00", s4, a, referrer="https://news.example.org/story")
    add("content_play", 2, "21:00:10", s4, a)
    add("content_pause", 2, "21:01:40", s4, a)
    s7 = ds.session("s7", 6, DESKTOP, "SA", "Riyadh")
    add("content_view", 3, "14:00:00", s7, b)
    add("content_play", 3, "14:00:05", s7, b)
    add("content_complete", 3, "14:04:05", s7, b)
    for name, clock, done in (("sd1", "11", "11:03:10"), ("sd2", "12", "12:02:10")):
        sd = ds.session(name, None, DESKTOP, "SA", "Riyadh")
        add("content_view", 4, f"{clock}:00:00", sd, d)
        add("content_play", 4, f"{clock}:00:10", sd, d)
        add("content_complete", 4, done, sd, d)
    add("content_updated", 4, "09:00:00", content=a, properties={"title": "Desert Film: Director's Cut"})
    s5 = ds.session("s5", 1, DESKTOP, "SA", "Riyadh")
    add("content_view", 5, "10:00:00", s5, a)
    add("content_play", 5, "10:00:05", s5, a)
    add("content_complete", 5, "10:02:05", s5, a)
    u4 = {"user_id": ds.user(4), "user_agent": ANDROID, "country": "US", "region": "California"}  # no session
    add("content_view", 5, "12:00:00", u4, c, properties={"duration_seconds": 10})
    add("content_view", 6, "12:00:00", u4, a, properties={"duration_seconds": 45})
    se1 = ds.session("se1", None, DESKTOP, "SA", "Riyadh")
    add("content_view", 6, "15:00:00", se1, e)
    add("content_play", 6, "15:00:10", se1, e)
    add("content_complete", 6, "15:01:10", se1, e)
    s6 = ds.session("s6", 5, DESKTOP, "SA", "Riyadh")
    add("search_query", 7, "09:00:00", s6, properties={"query": "desert film", "results_count": 3})
    add("search_impression", 7, "09:00:05", s6, properties={"content_id": a})
    add("search_query", 7, "09:00:10", s6, properties={"query": "nothing here", "results_count": 0})
    add("page_view", 7, "09:00:20", s6)
    s8 = ds.session("s8", 2, IPHONE, "AE", "Dubai")
    add("content_view", 8, "19:00:00", s8, c, properties={"duration_seconds": 100})
    add("content_view", 8, "19:05:00", s8, c, properties={"duration_seconds": 50})
    s9 = ds.session("s9", 3, IPAD, "SA", "Makkah")
    add("content_view", 9, "07:00:00", s9, c, referrer="https://t.co/abc", properties={"duration_seconds": 30})
    s10 = ds.session("s10", 5, DESKTOP, "SA", "Riyadh")
    add("content_view", 10, "13:00:00", s10, c, properties={"duration_seconds": 60})
    add("content_like", 10, "13:00:30", s10, c)
    add("content_view", 11, "16:00:00", ds.session("s11", 6, DESKTOP, "SA", "Riyadh"), c)
    add(
        "content_view",
        12,
        "18:00:00",
        ds.session("s12", 7, ANDROID, "EG", "Cairo"),
        c,
        properties={"duration_seconds": 120},
    )
    add(
        "content_view",
        13,
        "18:00:00",
        ds.session("s13", 7, ANDROID, "EG", "Cairo"),
        c,
        properties={"duration_seconds": 40},
    )
    for user, days in ((8, (0, 2, 4, 6, 8, 10, 12)), (6, (5, 7)), (9, (9,))):
        for day in days:
            add("user_login", day, "06:00:00", {"user_id": ds.user(user), "user_agent": DESKTOP})
    # --- a later, busier window (days 30..43): content F and users f0..f9, by a rule ---
    # User j watches F on window day k when j + k is even (days 0..9): view at 12:j, play 10 s later; j < 5
    # completes 60 s after the play, the others pause 30 s after it. Each user likes F in their first session.
    add(
        "content_published",
        29,
        "09:00:00",
        content=ds.f,
        properties={"title": "Cartoon", "category": "kids", "content_type": "video", "language": "en"},
    )
    for k in range(10):
        for j in range(10):
            if (j + k) % 2:
                continue
            context = {
                "session_id": f"{ds.p}-f{j}-{k}",
                "user_id": f"{ds.p}-f{j}",
                "user_agent": ANDROID if j % 2 == 0 else DESKTOP,
                "country": "SA" if j < 3 else "AE",
                "region": "Riyadh" if j < 3 else "Dubai",
            }
            start = datetime.combine(BASE + timedelta(days=30 + k), time(12, j), UTC)
            for kind, seconds in (
                ("content_view", 0),
                ("content_play", 10),
                ("content_complete" if j < 5 else "content_pause", 70 if j < 5 else 40),
            ):
                ds.events.append(
                    {
                        "id": f"{ds.p}-e{len(ds.events)}",
                        "event_type": kind,
                        "content_id": ds.f,
                        "timestamp": (start + timedelta(seconds=seconds)).isoformat(),
                        **context,
                    }
                )
            if k == j % 2:
                ds.events.append(
                    {
                        "id": f"{ds.p}-e{len(ds.events)}",
                        "event_type": "content_like",
                        "content_id": ds.f,
                        "timestamp": (start + timedelta(seconds=80)).isoformat(),
                        **context,
                    }
                )
    return ds


@pytest.fixture(scope="module")
def data(client_for: Any, service: runtime.RunningService) -> Dataset:
    ds = build_dataset(f"ka{secrets.token_hex(4)}")
    ingest = client_for("service")
    response = ingest.post(f"{API}/events/batch", json={"events": ds.events})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(ds.events) and response.json()["rejected"] == 0
    metadata = {
        ds.b: {
            "title": "Dunes",
            "category": "news",
            "content_type": "video",
            "language": "en",
            "published_at": at(-1, "06:00:00"),
        },
        ds.c: {
            "title": "Match report",
            "category": "sports",
            "content_type": "article",
            "language": "en",
            "published_at": at(-20, "06:00:00"),
        },
        ds.d: {
            "title": "Oasis",
            "category": "news",
            "content_type": "video",
            "language": "ar",
            "published_at": at(3, "06:00:00"),
        },
        ds.e: {
            "title": "Old news",
            "category": "news",
            "content_type": "video",
            "language": "ar",
            "published_at": at(-40, "06:00:00"),
        },
    }
    for content_id, body in metadata.items():
        put = ingest.put(f"{API}/content-metadata/{content_id}", json=body)
        assert put.status_code == 200, put.text
    # A partial update keeps the other fields.
    assert ingest.put(f"{API}/content-metadata/{ds.c}", json={"author": "Sami"}).status_code == 200
    # The rollups trail acknowledged events by about a second.
    service.settle_rollups()
    return ds


@pytest.fixture(scope="module")
def analyst(client_for: Any) -> httpx.Client:
    return client_for("analyst")


def get(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API}{path}", params={**CURRENT, **params})
    assert response.status_code == 200, response.text
    return response.json()


def trend(daily: list[int]) -> float:
    """Least-squares slope of the daily views as a percentage of the mean day (the README's definition)."""
    n = len(daily)
    mean_x, mean_y = (n - 1) / 2, sum(daily) / n
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(daily)) / sum((x - mean_x) ** 2 for x in range(n))
    return round(100 * slope / mean_y, 2)


def hours(**counts: int) -> dict[str, int]:
    """A full 0..23 hourly distribution (JSON keys are strings)."""
    found = {int(k.removeprefix("h")): v for k, v in counts.items()}
    return {str(h): found.get(h, 0) for h in range(24)}


# --- content ---------------------------------------------------------------------------------------


def test_content_analytics_of_a_video(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, f"/content/{data.a}")
    a = body["analytics"]
    assert body["source"] == "content_daily"
    assert body["period"] == {**CURRENT, "timezone": "UTC", "granularity": "day"}
    assert body["previous_period"]["end_date"] == (BASE - timedelta(days=1)).isoformat()
    assert body["metadata"]["title"] == "Desert Film: Director's Cut"  # content_updated changed the title only
    assert body["metadata"]["category"] == "news" and body["metadata"]["author"] == "Huda"
    assert body["metadata"]["published_at"].startswith(at(-2, "08:00:00")[:19])
    expected = {
        "content_id": data.a,
        "date": END.isoformat(),
        # views: s1, s2, s3, s4, s5 and u4's session-less view
        "total_views": 6,
        # viewers: u1 (twice), u2, u3, the anonymous session s4, u4
        "unique_views": 5,
        # watch: s1 120+120 (play-pause, resume-complete), s2 300, s3 600, s4 90, s5 120, u4 45 reported = 1395 over 6 sessions
        "average_view_duration": 232.5,
        # completed sessions s1, s3, s5 of 6 playback sessions
        "completion_rate": 0.5,
        "likes": 2,
        "shares": 1,
        "bookmarks": 1,
        "comments": 1,
        # s1's impression names A in properties; so does s6's
        "search_impressions": 2,
        "search_clicks": 1,
        "recommendation_impressions": 1,
        "recommendation_clicks": 1,
        "direct_traffic": 3,  # s2, s5, u4
        "search_traffic": 1,  # google referrer
        "recommendation_traffic": 1,  # properties.source
        "external_traffic": 1,  # news.example.org
        "top_countries": {"SA": 3, "AE": 1, "EG": 1, "US": 1},
        "top_regions": {"Riyadh": 2, "Cairo": 1, "California": 1, "Dubai": 1, "Makkah": 1},
        "desktop_views": 3,
        "mobile_views": 2,
        "tablet_views": 1,
        "hourly_distribution": hours(h8=1, h10=2, h12=1, h20=1, h21=1),
        "daily_trend": trend([1, 1, 2, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]),
        # the most viewed content of the period is C with 8 views
        "popularity_score": round(100 * math.log(7) / math.log(9), 2),
        # 5 interactions / 6 views > 0.25
        "engagement_score": 100.0,
        # 0.7 * 0.5 + 0.3 * (2 likes + 1 bookmark) / 5 viewers
        "quality_score": 53.0,
    }
    assert {k: a[k] for k in expected} == expected
    assert list(a["top_countries"]) == ["SA", "AE", "EG", "US"]
    assert set(a) == set(expected) | {"calculated_at", "last_updated"}
    assert a["daily_trend"] == -23.59
    assert a["popularity_score"] == 88.56
    # previous period: s0 (completed, 300 s) and sp1 (a view alone)
    c = body["comparison"]
    assert c["total_views"] == {"current": 6.0, "previous": 2.0, "change": 4.0, "change_percent": 200.0}
    assert c["average_view_duration"]["previous"] == 150.0
    assert c["completion_rate"]["previous"] == 0.5
    assert c["likes"] == {"current": 2.0, "previous": 0.0, "change": 2.0, "change_percent": None}
    assert [p["views"] for p in body["series"]] == [1, 1, 2, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert body["series"][2] == {
        "bucket": (BASE + timedelta(days=2)).isoformat(),
        "views": 2,
        "unique_views": 2,
        "completion_rate": 0.5,
        "interactions": 2,
    }


def test_content_analytics_of_an_article_with_reported_durations(analyst: httpx.Client, data: Dataset) -> None:
    a = get(analyst, f"/content/{data.c}")["analytics"]
    # s8 100+50, s9 30, s10 60, s11 none, s12 120, s13 40, u4 10 = 410 over 7 sessions
    assert a["average_view_duration"] == round(410 / 7, 3) == 58.571
    assert (a["total_views"], a["unique_views"], a["completion_rate"], a["likes"]) == (8, 6, 0.0, 1)
    assert (a["direct_traffic"], a["external_traffic"], a["search_traffic"]) == (7, 1, 0)
    assert (a["desktop_views"], a["mobile_views"], a["tablet_views"]) == (2, 5, 1)
    assert a["top_countries"] == {"SA": 3, "AE": 2, "EG": 2, "US": 1}
    assert a["hourly_distribution"] == hours(h7=1, h12=1, h13=1, h16=1, h18=2, h19=2)
    assert a["daily_trend"] == trend([0, 0, 0, 0, 0, 1, 0, 0, 2, 1, 1, 1, 1, 1])
    # popularity 100 (the most viewed), engagement 1 like / 8 views / 0.25, quality 0.3 * 1/6
    assert (a["popularity_score"], a["engagement_score"], a["quality_score"]) == (100.0, 50.0, 5.0)


@pytest.mark.parametrize(
    ("timezone", "source", "hourly", "daily"),
    [
        # +3: s4's 21:00 UTC view is 00:00 on day 3 in Riyadh
        (
            "Asia/Riyadh",
            "content_hourly",
            hours(h0=1, h11=1, h13=2, h15=1, h23=1),
            [1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0],
        ),
        # +5:30 has no hour rollup that lines up: raw events answer. s2 (day 1, 20:00 UTC) is 01:30 on day 2 there
        ("Asia/Kolkata", "events", hours(h1=1, h2=1, h13=1, h15=2, h17=1), [1, 0, 2, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]),
    ],
)
def test_content_analytics_in_other_timezones(
    analyst: httpx.Client, data: Dataset, timezone: str, source: str, hourly: dict[str, int], daily: list[int]
) -> None:
    body = get(analyst, f"/content/{data.a}", timezone=timezone)
    assert body["source"] == source
    a = body["analytics"]
    assert a["hourly_distribution"] == hourly
    assert a["daily_trend"] == trend(daily)
    assert [p["views"] for p in body["series"]] == daily
    assert (a["total_views"], a["unique_views"], a["average_view_duration"], a["completion_rate"]) == (6, 5, 232.5, 0.5)


def test_hourly_and_weekly_series(analyst: httpx.Client, data: Dataset) -> None:
    weekly = get(analyst, f"/content/{data.c}", granularity="week")["series"]
    assert weekly == [
        {"bucket": BASE.isoformat(), "views": 1, "unique_views": 1, "completion_rate": 0.0, "interactions": 0},
        {
            "bucket": (BASE + timedelta(days=7)).isoformat(),
            "views": 7,
            "unique_views": 5,
            "completion_rate": 0.0,
            "interactions": 1,
        },
    ]
    hourly = get(analyst, f"/content/{data.a}", granularity="hour", timezone="Asia/Riyadh")["series"]
    assert len(hourly) == 14 * 24
    assert hourly[0]["bucket"] == f"{BASE.isoformat()}T00:00:00+03:00"
    assert [(p["bucket"][11:13], p["views"]) for p in hourly if p["views"]] == [
        ("13", 1),
        ("23", 1),
        ("11", 1),
        ("00", 1),
        ("13", 1),
        ("15", 1),
    ]


def test_bulk_list_sorted_and_paginated(analyst: httpx.Client, data: Dataset) -> None:
    ids = f"{data.a},{data.b},{data.c},{data.d},{data.e}"
    page = get(analyst, "/content", ids=ids, sort="views", limit=2, offset=1)
    # views: C 8, A 6, B 2, D 2, E 1 (ties by id)
    assert page["total"] == 5
    assert [i["content_id"] for i in page["items"]] == [data.a, data.b]
    assert page["items"][0]["analytics"]["average_view_duration"] == 232.5
    assert page["items"][1]["analytics"]["total_views"] == 2 and page["items"][1]["metadata"]["title"] == "Dunes"
    news = get(analyst, "/content", ids=ids, category="news", sort="completion_rate", order="asc")
    assert [(i["content_id"], i["analytics"]["completion_rate"]) for i in news["items"]] == [
        (data.a, 0.5),
        (data.b, 0.5),
        (data.d, 1.0),
        (data.e, 1.0),
    ]


def test_top_performing(analyst: httpx.Client, data: Dataset) -> None:
    top = get(analyst, "/content/top-performing", metric="views", limit=5)
    assert [(i["rank"], i["content_id"], i["value"]) for i in top["items"]] == [
        (1, data.c, 8.0),
        (2, data.a, 6.0),
        (3, data.b, 2.0),
        (4, data.d, 2.0),
        (5, data.e, 1.0),
    ]
    assert top["items"][1]["previous_value"] == 2.0 and top["items"][1]["change_percent"] == 200.0
    news = get(analyst, "/content/top-performing", metric="completion_rate", category="news", min_views=2)
    # E has one view only
    assert [(i["content_id"], i["value"]) for i in news["items"]] == [(data.d, 1.0), (data.a, 0.5), (data.b, 0.5)]
    assert news["items"][0]["metadata"]["title"] == "Oasis"


def test_audience(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, f"/content/{data.a}/audience")
    assert (body["views"], body["unique_views"]) == (6, 5)
    b = body["breakdowns"]

    def slices(name: str) -> list[tuple[str, int, int]]:
        return [(s["value"], s["views"], s["unique_views"]) for s in b[name]]

    assert slices("traffic_source") == [
        ("direct", 3, 3),
        ("external", 1, 1),
        ("recommendation", 1, 1),
        ("search", 1, 1),
    ]
    assert slices("country") == [("SA", 3, 2), ("AE", 1, 1), ("EG", 1, 1), ("US", 1, 1)]
    assert slices("device_type") == [("desktop", 3, 2), ("mobile", 2, 2), ("tablet", 1, 1)]
    assert slices("browser") == [("Chrome", 2, 1), ("Mobile Safari", 2, 2), ("Chrome Mobile", 1, 1), ("Firefox", 1, 1)]
    # the referrer host is stored without "www."
    assert slices("referrer_host") == [("", 4, 4), ("google.com", 1, 1), ("news.example.org", 1, 1)]
    assert slices("region")[0] == ("Riyadh", 2, 1)
    direct = b["traffic_source"][0]
    assert (direct["share"], direct["previous_views"], direct["previous_share"]) == (0.5, 2, 1.0)


def test_insights(analyst: httpx.Client, data: Dataset) -> None:
    insights = get(analyst, f"/content/{data.a}/insights")["insights"]
    assert [i["kind"] for i in insights] == ["completion_vs_category", "peak_hour"]
    completion, peak = insights
    # news contents with playback sessions: A 0.5, B 0.5, D 1.0, E 1.0 -> median 0.75
    assert completion["severity"] == "negative"
    assert completion["data"] == {
        "completion_rate": 0.5,
        "category": "news",
        "category_median": 0.75,
        "category_titles": 4,
        "gap": -0.25,
    }
    assert (
        completion["message"]
        == "Completion rate is 50%, 25 points below the median of 'news' content (75% over 4 titles)."
    )
    assert peak["data"] == {"hour": 10, "views": 2, "share": 0.3333, "timezone": "UTC"}
    assert peak["message"] == "Views peak at 10:00-11:00 (UTC), with 33% of the period's views."


def test_content_journey(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, f"/content/{data.a}/journey")
    # u4's view has no session: 5 of 6 views take part
    assert (body["views_in_sessions"], body["previous_views_in_sessions"]) == (5, 2)
    assert [(s["step"], s["views"], s["share"], s["previous_views"]) for s in body["before"]] == [
        ("entry", 4, 0.8, 2),
        ("search", 1, 0.2, 0),
    ]
    assert [(s["step"], s["kind"], s["title"], s["views"]) for s in body["after"]] == [
        ("exit", "exit", None, 4),
        (f"content:{data.b}", "content", "Dunes", 1),
    ]
    assert body["paths"] == [
        {"before": "entry", "after": "exit", "views": 4},
        {"before": "search", "after": f"content:{data.b}", "views": 1},
    ]


def test_comparison_with_category_lifecycle(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, "/content/comparison", ids=f"{data.a},{data.c}")
    first, second = body["items"]
    assert first["analytics"]["total_views"] == 6 and second["analytics"]["total_views"] == 8
    life = first["lifecycle"]
    assert life["category"] == "news" and life["age_days"] == 15
    # A (published day -2): views at ages 0,1,2,3,4(x2),7,8
    assert [p["cumulative_views"] for p in life["points"]] == [1, 2, 3, 4, 6, 6, 6, 7, 8, 8, 8, 8, 8, 8, 8, 8]
    # peers: A; B (published day -1, views at ages 1 and 4, reached 14); D (day 3, 2 views at age 1, reached 10);
    # E (day -40, no views within 30 days of publishing)
    assert [p["category_median"] for p in life["points"]] == [0.0, 1.5, 1.5, 1.5] + [2.0] * 11 + [4.0]
    assert [p["category_titles"] for p in life["points"]] == [4] * 11 + [3] * 4 + [2]
    assert life["vs_category_median"] == 2.0
    article = second["lifecycle"]
    assert article["age_days"] == 30 and article["points"][-1] == {
        "age_days": 30,
        "cumulative_views": 5,
        "category_median": 5.0,
        "category_titles": 1,
    }
    assert article["vs_category_median"] == 1.0


def test_content_metadata_roundtrip_and_roles(client_for: Any, data: Dataset) -> None:
    got = client_for("viewer").get(f"{API}/content-metadata/{data.c}")
    assert got.status_code == 200
    assert {k: got.json()[k] for k in ("title", "category", "content_type", "language", "author")} == {
        "title": "Match report",
        "category": "sports",
        "content_type": "article",
        "language": "en",
        "author": "Sami",
    }
    denied = client_for("viewer").put(f"{API}/content-metadata/{data.c}", json={"title": "x"})
    assert denied.status_code == 403 and "service" in denied.json()["message"]
    unknown = client_for("service").put(f"{API}/content-metadata/{data.c}", json={"titel": "x"})
    assert unknown.status_code == 422 and unknown.json()["details"][0]["field"] == "titel"
    empty = client_for("service").put(f"{API}/content-metadata/{data.c}", json={})
    assert empty.status_code == 422


# --- users -------------------------------------------------------------------------------------------


def test_user_analytics(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, f"/users/{data.user(1)}")
    u = body["analytics"]
    expected = {
        "user_id": data.user(1),
        "date": END.isoformat(),
        "sessions": 2,  # s1 (day 0), s5 (day 5)
        "total_session_duration": 610.0,  # 485 + 125
        "average_session_duration": 305.0,
        "content_views": 3,  # A, B in s1; A in s5
        "unique_content_views": 2,
        "total_watch_time": 420.0,  # A 240 + B 60 in s1, A 120 in s5
        "content_completions": 2,
        "searches_performed": 1,
        "shares_made": 0,
        "bookmarks_created": 0,
        "comments_made": 0,
        "pages_visited": 4,  # s1: a search and 2 views; s5: a view
        "bounce_rate": 0.0,
        "return_visits": 2,  # the first session ever was sp1, in the previous period
        "preferred_categories": {"news": 3},
        "preferred_languages": {"ar": 2, "en": 1},
        "preferred_content_types": {"video": 3},
        "device_types": {"desktop": 15},
        "browser_types": {"Chrome": 15},
        # 0.5 * 2/3 completions per view + 0.5 * min(1, (1 like / 3 views) / 0.25)
        "engagement_score": 83.33,
        # 0.5 * 15 days of tenure / 90 + 0.5 * 2 returns / 2 sessions
        "loyalty_score": 58.33,
        # active on 2 of 14 days
        "activity_score": 14.29,
    }
    assert {k: u[k] for k in expected} == expected
    assert set(u) == set(expected) | {"calculated_at", "last_updated"}
    assert body["first_seen"].startswith(at(-1, "09:00:00")[:19])
    c = body["comparison"]
    assert c["sessions"] == {"current": 2.0, "previous": 1.0, "change": 1.0, "change_percent": 100.0}
    assert (c["bounce_rate"]["previous"], c["return_visits"]["previous"], c["loyalty_score"]["previous"]) == (
        1.0,
        0.0,
        0.56,
    )


def test_user_without_sessions(analyst: httpx.Client, data: Dataset) -> None:
    u = get(analyst, f"/users/{data.user(4)}")["analytics"]
    assert (u["sessions"], u["total_session_duration"], u["bounce_rate"], u["return_visits"]) == (0, 0.0, 0.0, 0)
    assert (u["content_views"], u["unique_content_views"], u["total_watch_time"], u["pages_visited"]) == (2, 2, 55.0, 2)
    assert u["preferred_categories"] == {"news": 1, "sports": 1}
    assert u["preferred_content_types"] == {"article": 1, "video": 1}
    assert (u["device_types"], u["browser_types"]) == ({"mobile": 2}, {"Chrome Mobile": 2})
    # tenure 9 days (first seen on day 5): 0.5 * 9 / 90
    assert (u["engagement_score"], u["loyalty_score"], u["activity_score"]) == (0.0, 5.0, 14.29)


def test_user_preferences(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, f"/users/{data.user(1)}/preferences")
    assert body["categories"] == [{"value": "news", "views": 3, "share": 1.0, "previous_views": 1}]
    assert body["languages"] == [
        {"value": "ar", "views": 2, "share": 2 / 3, "previous_views": 1},
        {"value": "en", "views": 1, "share": 1 / 3, "previous_views": 0},
    ]
    assert body["views_without_metadata"] == 0


def test_user_journey(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, f"/users/{data.user(1)}/journey")
    assert (body["sessions_in_period"], body["events_in_period"]) == (2, 15)
    assert body["comparison"]["events"]["previous"] == 1.0
    newest, oldest = body["sessions"]
    assert newest["session_id"] == f"{data.p}-s5" and [e["event_type"] for e in newest["events"]] == [
        "content_view",
        "content_play",
        "content_complete",
    ]
    assert oldest["duration_seconds"] == 485.0 and len(oldest["events"]) == 12
    assert oldest["events"][0] == {
        "timestamp": at(0, "10:00:00").replace("+00:00", "Z"),
        "id": f"{data.p}-e8",
        "event_type": "search_query",
        "content_id": None,
        "title": None,
        "query": "desert film",
        "device_type": "desktop",
    }
    assert body["transitions"] == [
        {
            "from_content_id": data.a,
            "to_content_id": data.b,
            "from_title": "Desert Film: Director's Cut",
            "to_title": "Dunes",
            "count": 1,
            "previous_count": 0,
        }
    ]


def test_users_overview(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, "/users")
    # active: u1..u9 (u10 only in the previous period); new (first event in the period): u2, u3, u4, u5, u7
    assert (body["active_users"], body["new_users"], body["returning_users"]) == (9, 5, 4)
    daily = [2, 1, 2, 1, 1, 3, 2, 2, 2, 2, 2, 1, 2, 1]
    assert [p["active_users"] for p in body["series"]] == daily
    assert body["dau"] == round(sum(daily) / 14, 4) == 1.7143
    # last 7 days: u2, u3, u5, u6, u7, u8, u9; last 30 days: u1..u10
    assert (body["wau"], body["mau"], body["stickiness"]) == (7, 10, round(24 / 14 / 10, 4))
    sessions = body["sessions"]
    # 16 sessions started in the period (anonymous ones too); lengths sum to 2775 s; s9, s11, s12, s13 are one event
    assert sessions == {
        "sessions": 16,
        "total_duration": 2775.0,
        "average_duration": round(2775 / 16, 3),
        "bounces": 4,
        "bounce_rate": 0.25,
        "pages": 21,
        "pages_per_session": 1.3125,
    }
    c = body["comparison"]
    assert (c["active_users"]["previous"], c["new_users"]["previous"], c["wau"]["previous"], c["mau"]["previous"]) == (
        5,
        5,
        4,
        5,
    )
    assert (
        c["dau"]["previous"],
        c["sessions"]["previous"],
        c["average_session_duration"]["previous"],
        c["bounce_rate"]["previous"],
    ) == (round(5 / 14, 4), 2, 155.0, 0.5)


def test_segments(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, "/users/segments")
    assert body["total_users"] == 9
    assert body["rules"]["power_min_days"] == 7 and body["rules"]["regular_min_days"] == 4
    found = {
        s["name"]: (s["users"], s["average_active_days"], s["average_events"], s["previous_users"])
        for s in body["segments"]
    }
    assert found == {
        "new": (5, 2.0, 5.0, 5),  # u2 7 events, u3 8, u4 2, u5 6, u7 2; all 5 previous users were new then
        "churning": (1, 2.0, 15.0, 0),  # u1: last seen on day 5
        "power": (1, 7.0, 7.0, 0),  # u8: 7 login days
        "regular": (1, 4.0, 6.0, 0),  # u6: days 3, 5, 7, 11
        "casual": (1, 1.0, 1.0, 0),  # u9
    }
    assert [s["share"] for s in body["segments"]] == [5 / 9, 1 / 9, 1 / 9, 1 / 9, 1 / 9]
    relaxed = get(analyst, "/users/segments", power_min_share=0.25)
    assert {s["name"]: s["users"] for s in relaxed["segments"]} == {
        "new": 5,
        "churning": 1,
        "power": 2,
        "regular": 0,
        "casual": 1,
    }


def test_cohorts_and_retention(analyst: httpx.Client, data: Dataset) -> None:
    weeks = get(analyst, "/users/cohorts", granularity="week")
    assert weeks["cohorts"] == [
        # u2, u3, u4 first seen in week 0; u2 and u3 came back in week 1
        {
            "cohort": BASE.isoformat(),
            "size": 3,
            "cells": [{"offset": 0, "users": 3, "rate": 1.0}, {"offset": 1, "users": 2, "rate": 2 / 3}],
        },
        {
            "cohort": (BASE + timedelta(days=7)).isoformat(),
            "size": 2,
            "cells": [{"offset": 0, "users": 2, "rate": 1.0}],
        },
    ]
    days = {c["cohort"]: c for c in get(analyst, "/users/cohorts")["cohorts"]}
    assert sorted(days) == [(BASE + timedelta(days=n)).isoformat() for n in (1, 2, 5, 7, 12)]
    u2 = days[(BASE + timedelta(days=1)).isoformat()]
    assert u2["size"] == 1 and len(u2["cells"]) == 13
    assert [c["offset"] for c in u2["cells"] if c["users"]] == [0, 7]
    assert [c["offset"] for c in days[(BASE + timedelta(days=5)).isoformat()]["cells"] if c["users"]] == [0, 1]
    retention = get(analyst, "/users/retention", granularity="week")
    assert retention["curve"] == [
        {"offset": 0, "retained_users": 5, "eligible_users": 5, "rate": 1.0},
        {"offset": 1, "retained_users": 2, "eligible_users": 3, "rate": 2 / 3},
    ]
    # u10 was active in the previous period only
    assert (retention["previous_active_users"], retention["churned_users"], retention["churn_rate"]) == (5, 1, 0.2)


def test_behavior_patterns(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, "/users/behavior-patterns")
    assert body["views_by_hour"] == hours(
        h7=1, h8=1, h10=3, h11=1, h12=3, h13=1, h14=1, h15=1, h16=1, h18=2, h19=2, h20=1, h21=1
    )
    assert body["previous_views_by_hour"] == hours(h9=1, h15=1)
    assert body["views_by_weekday"] == {"1": 2, "2": 3, "3": 3, "4": 2, "5": 3, "6": 3, "7": 3}
    assert body["session_lengths"] == {"<1m": 6, "1-5m": 6, "5-15m": 4, "15-30m": 0, "30-60m": 0, "60m+": 0}
    assert body["previous_session_lengths"] == {"<1m": 1, "1-5m": 0, "5-15m": 1, "15-30m": 0, "30-60m": 0, "60m+": 0}
    # s8's C, C is a repeat, not a transition
    assert [(t["from_content_id"], t["to_content_id"], t["count"]) for t in body["transitions"]] == [
        (data.a, data.b, 1)
    ]


# --- search ------------------------------------------------------------------------------------------


def test_search_overview(analyst: httpx.Client, data: Dataset) -> None:
    body = get(analyst, "/search/overview")
    expected = {
        "searches": 3,  # "Desert Film" (s1), "desert film" and "nothing here" (s6)
        "searchers": 2,
        "zero_result_searches": 1,
        "zero_result_rate": 1 / 3,
        "average_results": 8 / 3,
        "clicks": 1,
        "click_through_rate": 1 / 3,
        "average_click_position": 2.0,
        "click_positions": {"2": 1},
        "searches_with_session": 3,
        "converted_searches": 1,  # s1's search was followed by a view a minute later
        "conversion_rate": 1 / 3,
        "conversion_minutes": 30,
        "search_impressions": 2,
        "search_clicks": 1,
        "search_impression_ctr": 0.5,
        "recommendation_impressions": 1,
        "recommendation_clicks": 1,
        "recommendation_ctr": 1.0,
    }
    assert {k: body[k] for k in expected} == expected
    assert body["comparison"]["searches"] == {"current": 3.0, "previous": 0.0, "change": 3.0, "change_percent": None}


def test_top_and_zero_result_queries(analyst: httpx.Client, data: Dataset) -> None:
    queries = get(analyst, "/search/queries")["queries"]
    assert queries == [
        {
            "query": "desert film",
            "searches": 2,
            "searchers": 2,
            "zero_result_searches": 0,
            "clicks": 1,
            "click_through_rate": 0.5,
            "average_results": 4.0,
            "previous_searches": 0,
        },
        {
            "query": "nothing here",
            "searches": 1,
            "searchers": 1,
            "zero_result_searches": 1,
            "clicks": 0,
            "click_through_rate": 0.0,
            "average_results": 0.0,
            "previous_searches": 0,
        },
    ]
    assert [q["query"] for q in get(analyst, "/search/zero-results")["queries"]] == ["nothing here"]
    recommendations = get(analyst, "/search/recommendations")
    assert (recommendations["impressions"], recommendations["clicks"], recommendations["click_through_rate"]) == (
        1,
        1,
        1.0,
    )
    assert recommendations["contents"] == [
        {
            "content_id": data.a,
            "title": "Desert Film: Director's Cut",
            "impressions": 1,
            "clicks": 1,
            "click_through_rate": 1.0,
            "previous_clicks": 0,
        }
    ]


# --- GraphQL gives the same answers ---------------------------------------------------------------------


def graphql(client: httpx.Client, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    return response.json()


RANGE = {"startDate": BASE.isoformat(), "endDate": END.isoformat()}


def test_graphql_matches_rest(analyst: httpx.Client, client_for: Any, data: Dataset) -> None:
    body = graphql(
        analyst,
        """query($id: String!, $user: String!, $range: AnalyticsRange, $week: AnalyticsRange) {
          contentAnalytics(contentId: $id, range: $range) {
            source analytics { totalViews averageViewDuration completionRate topCountries hourlyDistribution qualityScore }
            comparison series { bucket views } }
          userAnalytics(userId: $user, range: $range) { analytics { sessions totalWatchTime preferredLanguages loyaltyScore } }
          userSegments(range: $range) { totalUsers segments { name users } }
          userRetention(range: $week) { curve { offset rate } }
          searchOverview(range: $range) { searches conversionRate clickPositions }
        }""",
        {"id": data.a, "user": data.user(1), "range": RANGE, "week": {**RANGE, "granularity": "WEEK"}},
    )
    assert body.get("errors") is None, body
    d = body["data"]
    content = d["contentAnalytics"]
    assert content["source"] == "content_daily"
    assert content["analytics"] == {
        "totalViews": 6,
        "averageViewDuration": 232.5,
        "completionRate": 0.5,
        "topCountries": {"SA": 3, "AE": 1, "EG": 1, "US": 1},
        "hourlyDistribution": hours(h8=1, h10=2, h12=1, h20=1, h21=1),
        "qualityScore": 53.0,
    }
    assert content["comparison"]["total_views"]["change_percent"] == 200.0
    assert [p["views"] for p in content["series"]][:3] == [1, 1, 2]
    assert d["userAnalytics"]["analytics"] == {
        "sessions": 2,
        "totalWatchTime": 420.0,
        "preferredLanguages": {"ar": 2, "en": 1},
        "loyaltyScore": 58.33,
    }
    assert d["userSegments"]["totalUsers"] == 9
    assert [s["users"] for s in d["userSegments"]["segments"]] == [5, 1, 1, 1, 1]
    assert d["userRetention"]["curve"] == [{"offset": 0, "rate": 1.0}, {"offset": 1, "rate": 2 / 3}]
    assert d["searchOverview"] == {"searches": 3, "conversionRate": 1 / 3, "clickPositions": {"2": 1}}
    mutation = """mutation($id: String!) { upsertContentMetadata(contentId: $id, metadata: {language: "fr"}) { title language } }"""
    denied = graphql(analyst, mutation, {"id": data.e})
    assert denied["errors"][0]["extensions"]["code"] == "forbidden"
    done = graphql(client_for("service"), mutation, {"id": data.e})
    assert done["data"]["upsertContentMetadata"] == {"title": "Old news", "language": "fr"}


def test_every_graphql_analytics_query_answers_like_rest(analyst: httpx.Client, data: Dataset) -> None:
    body = graphql(
        analyst,
        """query($a: String!, $c: String!, $u: String!, $range: AnalyticsRange) {
          contentList(range: $range, ids: [$a, $c], sort: "views") { total items { contentId analytics { totalViews } } }
          topPerformingContent(range: $range, limit: 2) { items { rank contentId value } }
          contentInsights(contentId: $a, range: $range) { insights { kind severity data } }
          contentAudience(contentId: $a, range: $range) { views uniqueViews breakdowns }
          contentJourney(contentId: $a, range: $range) { viewsInSessions before { step kind views } }
          contentComparison(ids: [$a, $c], range: $range) { items { contentId lifecycle { vsCategoryMedian } } }
          contentMetadata(contentId: $c) { title author publishedAt }
          usersOverview(range: $range) { activeUsers wau mau sessions { sessions bounceRate } series { activeUsers } }
          userCohorts(range: $range) { cohorts { cohort size } }
          userJourney(userId: $u, range: $range) { sessionsInPeriod sessions { sessionId events { eventType } } transitions { count } }
          userPreferences(userId: $u, range: $range) { categories { value views } }
          behaviorPatterns(range: $range) { viewsByWeekday sessionLengths transitions { fromContentId count } }
          topSearchQueries(range: $range) { queries { query searches clickThroughRate } }
          zeroResultQueries(range: $range) { queries { query } }
          recommendationPerformance(range: $range) { clicks contents { contentId clicks } }
        }""",
        {"a": data.a, "c": data.c, "u": data.user(1), "range": RANGE},
    )
    assert body.get("errors") is None, body
    d = body["data"]
    assert d["contentList"]["total"] == 2
    assert [i["analytics"]["totalViews"] for i in d["contentList"]["items"]] == [8, 6]
    assert [(i["rank"], i["contentId"]) for i in d["topPerformingContent"]["items"]] == [(1, data.c), (2, data.a)]
    assert [i["kind"] for i in d["contentInsights"]["insights"]] == ["completion_vs_category", "peak_hour"]
    assert d["contentAudience"]["views"] == 6 and d["contentAudience"]["breakdowns"]["country"][0]["value"] == "SA"
    assert d["contentJourney"]["before"][0] == {"step": "entry", "kind": "entry", "views": 4}
    assert [i["lifecycle"]["vsCategoryMedian"] for i in d["contentComparison"]["items"]] == [2.0, 1.0]
    assert d["contentMetadata"]["author"] == "Sami"
    assert (d["usersOverview"]["activeUsers"], d["usersOverview"]["wau"], d["usersOverview"]["mau"]) == (9, 7, 10)
    assert d["usersOverview"]["sessions"] == {"sessions": 16, "bounceRate": 0.25}
    assert len(d["userCohorts"]["cohorts"]) == 5
    assert d["userJourney"]["sessionsInPeriod"] == 2 and d["userJourney"]["transitions"] == [{"count": 1}]
    assert d["userPreferences"]["categories"] == [{"value": "news", "views": 3}]
    assert d["behaviorPatterns"]["sessionLengths"]["<1m"] == 6
    assert d["topSearchQueries"]["queries"][0] == {"query": "desert film", "searches": 2, "clickThroughRate": 0.5}
    assert d["zeroResultQueries"]["queries"] == [{"query": "nothing here"}]
    assert d["recommendationPerformance"]["contents"] == [{"contentId": data.a, "clicks": 1}]


LATER = {"start_date": (BASE + timedelta(days=30)).isoformat(), "end_date": (BASE + timedelta(days=43)).isoformat()}


def test_a_busier_content_and_its_users_in_a_later_window(analyst: httpx.Client, data: Dataset) -> None:
    a = get(analyst, f"/content/{data.f}", **LATER)["analytics"]
    expected = {
        "total_views": 50,  # 5 users a day on days 0..9
        "unique_views": 10,
        "average_view_duration": 45.0,  # 25 sessions x 60 s + 25 x 30 s, over 50
        "completion_rate": 0.5,
        "likes": 10,
        "shares": 0,
        "direct_traffic": 50,
        "top_countries": {"AE": 35, "SA": 15},  # users 0..2 are in SA: 5 sessions each
        "top_regions": {"Dubai": 35, "Riyadh": 15},
        "desktop_views": 25,
        "mobile_views": 25,
        "tablet_views": 0,
        "hourly_distribution": hours(h12=50),
        "daily_trend": trend([5] * 10 + [0] * 4),
        "popularity_score": 100.0,
        "engagement_score": 80.0,  # 10 likes / 50 views / 0.25
        "quality_score": 65.0,  # 0.7 * 0.5 + 0.3 * min(1, 10 likes / 10 viewers)
    }
    assert {k: a[k] for k in expected} == expected
    u = get(analyst, f"/users/{data.p}-f0", **LATER)["analytics"]
    expected_user = {
        "sessions": 5,  # days 0, 2, 4, 6, 8
        "total_session_duration": 360.0,  # 70 s each, 80 s for the first (the like)
        "average_session_duration": 72.0,
        "content_views": 5,
        "unique_content_views": 1,
        "total_watch_time": 300.0,
        "content_completions": 5,
        "pages_visited": 5,
        "bounce_rate": 0.0,
        "return_visits": 4,
        "preferred_categories": {"kids": 5},
        "preferred_languages": {"en": 5},
        "device_types": {"mobile": 16},
        "browser_types": {"Chrome Mobile": 16},
        "engagement_score": 90.0,  # 0.5 * 5/5 + 0.5 * (1 like / 5 views / 0.25)
        "loyalty_score": 47.78,  # 0.5 * 14 / 90 + 0.5 * 4 / 5
        "activity_score": 35.71,  # 5 of 14 days
    }
    assert {k: u[k] for k in expected_user} == expected_user
    overview = get(analyst, "/users", **LATER)
    assert (overview["active_users"], overview["new_users"], overview["wau"], overview["mau"]) == (10, 10, 10, 10)
    assert (overview["dau"], overview["stickiness"]) == (round(50 / 14, 4), round(50 / 14 / 10, 4))
    # j < 5: 5 x 80 + 20 x 70; j >= 5: 5 x 80 + 20 x 40
    assert overview["sessions"] == {
        "sessions": 50,
        "total_duration": 3000.0,
        "average_duration": 60.0,
        "bounces": 0,
        "bounce_rate": 0.0,
        "pages": 50,
        "pages_per_session": 1.0,
    }
    segments = get(analyst, "/users/segments", **LATER)
    assert {s["name"]: s["users"] for s in segments["segments"]} == {
        "new": 10,
        "churning": 0,
        "power": 0,
        "regular": 0,
        "casual": 0,
    }
    cohorts = get(analyst, "/users/cohorts", granularity="week", **LATER)["cohorts"]
    # the window starts on a Wednesday: weeks of day 0-4, 5-11, 12-13
    assert [(c["size"], [cell["users"] for cell in c["cells"]]) for c in cohorts] == [(10, [10, 10, 0])]
