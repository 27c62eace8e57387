"""A fast, deterministic generator of realistic event batches, inserted in bulk (no HTTP per event).

Every event type the analytics read is represented, with sessions, anonymous viewers, properties
naming content (search / recommendation events), lifecycle events carrying metadata, and the
enrichment columns (traffic source, device, country, region, browser, referrer host) filled.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pyarrow as pa

from storage.events import EVENT_SCHEMA

# (event type, weight)
_TYPES = [
    ("content_view", 30),
    ("content_play", 14),
    ("content_pause", 10),
    ("content_resume", 2),
    ("content_complete", 6),
    ("content_like", 4),
    ("content_share", 2),
    ("content_bookmark", 2),
    ("content_comment", 2),
    ("search_query", 8),
    ("search_result_click", 4),
    ("search_impression", 4),
    ("recommendation_impression", 4),
    ("recommendation_click", 2),
    ("page_view", 2),
    ("user_login", 2),
    ("content_updated", 1),
]
_SOURCES = ["direct", "search", "recommendation", "internal", "external"]
_DEVICES = ["desktop", "mobile", "tablet", "bot", "unknown"]
_COUNTRIES = ["SA", "AE", "EG", "US", "DE", ""]
_REGIONS = ["Riyadh", "Makkah", "Dubai", "Cairo", "California", ""]
_BROWSERS = ["Chrome", "Safari", "Firefox", "Edge", ""]
_HOSTS = ["", "www.google.com", "t.co", "platform.example", "news.example.org"]
_QUERIES = ["football", " Football ", "news", "recipes", "weather today", "quran", "zzz-nothing"]
_CATEGORIES = ["news", "sports", "kids", "documentary"]


def generate(
    n: int, *, start: datetime, days: int, seed: int = 7, prefix: str = "g", contents: int = 300, users: int = 3000
) -> pa.Table:
    rng = np.random.default_rng(seed)
    names = [t for t, _ in _TYPES]
    weights = np.array([w for _, w in _TYPES], dtype=float)
    types = rng.choice(len(names), size=n, p=weights / weights.sum())
    offsets_ms = np.sort(rng.integers(0, days * 86_400_000, size=n))
    content = rng.integers(0, contents, size=n)
    user = rng.integers(0, users, size=n)
    anonymous = rng.random(n) < 0.1
    no_session = rng.random(n) < 0.05
    # A session is a user's events within one 4-hour block of one day.
    block = offsets_ms // (4 * 3_600_000)
    source = rng.integers(0, len(_SOURCES), size=n)
    device = rng.integers(0, len(_DEVICES), size=n)
    country = rng.integers(0, len(_COUNTRIES), size=n)
    browser = rng.integers(0, len(_BROWSERS), size=n)
    host = rng.integers(0, len(_HOSTS), size=n)
    query = rng.integers(0, len(_QUERIES), size=n)
    position = rng.integers(0, 12, size=n)
    results = rng.integers(0, 4, size=n) * (rng.random(n) < 0.8)
    duration = rng.integers(1, 600, size=n)
    in_properties = rng.random(n) < 0.5

    base_ms = int(start.astimezone(UTC).timestamp() * 1000)
    columns: dict[str, list] = {name: [] for name in EVENT_SCHEMA.names}
    processed = start + timedelta(days=days)
    for i in range(n):
        event_type = names[types[i]]
        user_id = "" if anonymous[i] else f"{prefix}u{user[i]}"
        session_id = "" if no_session[i] else f"{prefix}s{user[i]}-{block[i]}"
        content_id = f"{prefix}c{content[i]}"
        properties: dict = {}
        if event_type == "content_view" and i % 3 == 0:
            properties["duration_seconds"] = int(duration[i])
        if event_type in ("search_query", "search_result_click"):
            properties["query"] = _QUERIES[query[i]]
            content_id = "" if event_type == "search_query" else content_id
            if event_type == "search_query":
                properties["results_count"] = 0 if _QUERIES[query[i]] == "zzz-nothing" else int(results[i])
            else:
                properties["position"] = int(position[i])
        if (
            event_type
            in ("search_impression", "recommendation_impression", "recommendation_click", "search_result_click")
            and in_properties[i]
        ):
            properties["content_id"] = content_id
            content_id = ""
        if event_type in ("page_view", "user_login"):
            content_id = ""
        if event_type == "content_updated":
            properties.update(
                title=f"Title {content[i]}",
                category=_CATEGORIES[content[i] % 4],
                language="ar" if content[i] % 2 else "en",
            )
        columns["id"].append(f"{prefix}-{i}")
        columns["event_type"].append(event_type)
        columns["event_category"].append(event_type.split("_")[0])
        columns["timestamp"].append(base_ms + int(offsets_ms[i]))
        columns["user_id"].append(user_id)
        columns["session_id"].append(session_id)
        columns["content_id"].append(content_id)
        columns["resource_type"].append("")
        columns["resource_id"].append("")
        columns["ip_address"].append("")
        columns["user_agent"].append("")
        columns["referrer"].append("")
        columns["country"].append(_COUNTRIES[country[i]])
        columns["region"].append(_REGIONS[country[i]])
        columns["city"].append("")
        columns["properties"].append(orjson.dumps(properties).decode())
        columns["processed_at"].append(processed)
        columns["batch_id"].append("")
        columns["device_type"].append(_DEVICES[device[i]])
        columns["browser"].append(_BROWSERS[browser[i]])
        columns["os"].append("")
        columns["traffic_source"].append(_SOURCES[source[i]])
        columns["referrer_host"].append(_HOSTS[host[i]])
    columns["timestamp"] = pa.array(columns["timestamp"], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return pa.Table.from_pydict(columns, schema=EVENT_SCHEMA)
