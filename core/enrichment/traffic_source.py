"""Referrer -> traffic source, and the referrer's host.

``classify_traffic_source``: the first matching rule wins.
    1. ``properties["traffic_source"]`` if it is one of ``TRAFFIC_SOURCES``
       (case-insensitive): an explicit client decision beats any heuristic.
    2. ``properties["source"] == "recommendation"`` or a non-empty
       ``properties["recommendation_id"]`` -> "recommendation".
    3. No / blank referrer -> "direct".
    4. The referrer's query has ``utm_source``, ``utm_medium`` or ``ref``
       equal to "recommendation", "recommended" or "rec" -> "recommendation".
    5. Referrer host is a web search engine -> "search": google.<tld>
       (bare or www only: mail./docs.google.com are not searches),
       yahoo.<tld> and yandex.<tld> (any subdomain, e.g. search.yahoo.com),
       and bing.com, duckduckgo.com, baidu.com, ecosia.org,
       search.brave.com, startpage.com, naver.com (or a subdomain).
    6. Referrer host is one of ``internal_hosts`` (exact or a subdomain):
       path ``/search`` (or ``/search/…``, ``/search-…``) or a ``q`` /
       ``query`` parameter -> "search"; path containing ``/recommend`` or
       ``/for-you`` -> "recommendation"; otherwise "internal".
    7. Any other host -> "external"; a referrer without a parsable host is
       also "external" (something referred the visit, we just can't say
       what).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

TRAFFIC_SOURCES = ("direct", "search", "recommendation", "internal", "external")

_RECOMMENDATION_MARKERS = frozenset({"recommendation", "recommended", "rec"})
_RECOMMENDATION_PARAMS = frozenset({"utm_source", "utm_medium", "ref"})
_INTERNAL_SEARCH_PARAMS = frozenset({"q", "query"})

# "<tld>" = one label (com, de) or a second-level ccTLD (co.uk, com.au).
_TLD = r"(?:[a-z]{2,6}|(?:co|com|ne|or|org|net)\.[a-z]{2})"
_SEARCH_ENGINE_RE = re.compile(rf"^(?:google\.{_TLD}|(?:[a-z0-9-]+\.)*(?:yahoo|yandex)\.{_TLD})$")
_SEARCH_ENGINE_DOMAINS = (
    "bing.com",
    "duckduckgo.com",
    "baidu.com",
    "ecosia.org",
    "search.brave.com",
    "startpage.com",
    "naver.com",
)
_INTERNAL_SEARCH_PATH_RE = re.compile(r"^/search(?![a-z0-9])", re.IGNORECASE)
_INTERNAL_RECOMMEND_PATH_RE = re.compile(r"/recommend|/for-you", re.IGNORECASE)

_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
# Clients sometimes send a bare "example.com/path"; anything else without a
# scheme (about:blank, free text) has no host.
_SCHEMELESS_RE = re.compile(r"^[\w.-]+(?::\d+)?(?:[/?#].*)?$", re.DOTALL)
_HOST_RE = re.compile(r"^[\w.-]+$")


def _split_referrer(referrer: str | None) -> SplitResult | None:
    if not isinstance(referrer, str):
        return None
    value = referrer.strip()
    if not value:
        return None
    if not _SCHEME_RE.match(value) and not value.startswith("//"):
        if not _SCHEMELESS_RE.match(value):
            return None
        value = "//" + value
    try:
        return urlsplit(value)
    except ValueError:  # e.g. an unbalanced "[" in an IPv6 literal
        return None


def _host_of(parts: SplitResult) -> str | None:
    try:
        host = parts.hostname  # already lower-cased, port and brackets removed
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    if ":" in host:  # IPv6 literal
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            return None
    if not _HOST_RE.match(host) or host.startswith(".") or ".." in host:
        return None
    if host.startswith("www.") and len(host) > 4:
        host = host[4:]
    return host


@functools.lru_cache(maxsize=65_536)
def referrer_host(referrer: str | None) -> str | None:
    """Lower-cased referrer host without "www.", or None if absent/unparsable."""
    parts = _split_referrer(referrer)
    return _host_of(parts) if parts is not None else None


def _is_search_engine(host: str) -> bool:
    if _SEARCH_ENGINE_RE.match(host):
        return True
    return any(host == d or host.endswith("." + d) for d in _SEARCH_ENGINE_DOMAINS)


@functools.lru_cache(maxsize=1024)
def _normalize_internal_host(entry: str) -> str | None:
    if not entry.strip():
        return None
    # Accept "example.com", "www.example.com:8443" or a full URL alike.
    return referrer_host(entry) or entry.strip().lower()


def _is_internal(host: str, internal_hosts: Collection[str]) -> bool:
    for entry in internal_hosts:
        internal = _normalize_internal_host(entry) if isinstance(entry, str) else None
        if internal and (host == internal or host.endswith("." + internal)):
            return True
    return False


def _query_params(parts: SplitResult) -> list[tuple[str, str]]:
    try:
        return parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:  # too many fields / bad encoding
        return []


def _lower_str(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def classify_traffic_source(
    referrer: str | None,
    properties: Mapping[str, Any] | None,
    internal_hosts: Collection[str],
) -> str:
    """One of ``TRAFFIC_SOURCES``; the rules are listed in the module docstring."""
    hinted = source_from_properties(properties)
    if hinted is not None:
        return hinted
    if not isinstance(referrer, str) or not referrer.strip():
        return "direct"
    hosts = internal_hosts if isinstance(internal_hosts, frozenset) else frozenset(internal_hosts)
    return classify_referrer(referrer, hosts)


def source_from_properties(properties: Mapping[str, Any] | None) -> str | None:
    """Rules 1 and 2: the traffic source the properties decide, or None to look at the referrer."""
    # Runs for every event: a plain dict skips the Mapping ABC check, and absent keys skip _lower_str.
    if type(properties) is not dict and not isinstance(properties, Mapping):
        return None
    explicit = properties.get("traffic_source")
    if explicit is not None and (explicit := _lower_str(explicit)) in TRAFFIC_SOURCES:
        return explicit
    source = properties.get("source")
    if source is not None and _lower_str(source) == "recommendation":
        return "recommendation"
    if properties.get("recommendation_id") not in (None, ""):
        return "recommendation"
    return None


# Referrers repeat heavily (a few sites, a few internal pages): parse each once.
@functools.lru_cache(maxsize=65_536)
def classify_referrer(referrer: str, internal_hosts: frozenset[str]) -> str:
    """Rules 4 to 7, for a non-blank referrer."""
    parts = _split_referrer(referrer)
    if parts is None:
        return "external"

    params = _query_params(parts)
    if any(
        key.lower() in _RECOMMENDATION_PARAMS and value.strip().lower() in _RECOMMENDATION_MARKERS
        for key, value in params
    ):
        return "recommendation"

    host = _host_of(parts)
    if host is None:
        return "external"
    if _is_search_engine(host):
        return "search"

    if _is_internal(host, internal_hosts):
        if _INTERNAL_SEARCH_PATH_RE.match(parts.path) or any(
            key.lower() in _INTERNAL_SEARCH_PARAMS for key, _ in params
        ):
            return "search"
        if _INTERNAL_RECOMMEND_PATH_RE.search(parts.path):
            return "recommendation"
        return "internal"

    return "external"
