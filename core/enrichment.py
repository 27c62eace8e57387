"""Ingest-time enrichment of analytics events.

Everything here is a pure function of its inputs (plus two read-only,
lazily loaded lookup tables: the ua-parser regexes and the geoip2fast
country database), so it can run on the hot ingest path and be tested
without a database or network.

Device detection (``parse_user_agent``)
    ua-parser gives browser / OS / device *families*; the coarse device
    type is derived from those plus a few UA tokens, checked in this order:
    bot (ua-parser device family "Spider" or a common bot token) →
    TV / console ("unknown": none of the five types fits) → tablet (iPad,
    Kindle/Silk, "Tablet") → mobile (iPhone/iPod, Windows Phone, "Mobi")
    → tablet (Android without "Mobile") → desktop (Windows, macOS, Linux,
    ChromeOS, BSD) → "unknown".

Traffic source (``classify_traffic_source``), first matching rule wins:
    1. ``properties["traffic_source"]`` if it is one of ``TRAFFIC_SOURCES``
       (case-insensitive): an explicit client decision beats any heuristic.
    2. ``properties["source"] == "recommendation"`` or a non-empty
       ``properties["recommendation_id"]`` → "recommendation".
    3. No / blank referrer → "direct".
    4. The referrer's query has ``utm_source``, ``utm_medium`` or ``ref``
       equal to "recommendation", "recommended" or "rec" → "recommendation".
    5. Referrer host is a web search engine → "search": google.<tld>
       (bare or www only: mail./docs.google.com are not searches),
       yahoo.<tld> and yandex.<tld> (any subdomain, e.g. search.yahoo.com),
       and bing.com, duckduckgo.com, baidu.com, ecosia.org,
       search.brave.com, startpage.com, naver.com (or a subdomain).
    6. Referrer host is one of ``internal_hosts`` (exact or a subdomain):
       path ``/search`` (or ``/search/…``, ``/search-…``) or a ``q`` /
       ``query`` parameter → "search"; path containing ``/recommend`` or
       ``/for-you`` → "recommendation"; otherwise "internal".
    7. Any other host → "external"; a referrer without a parsable host is
       also "external" (something referred the visit, we just can't say
       what).

Privacy: ``anonymize_ip`` truncates IPv4 to /24 and IPv6 to /48 (an
IPv4-mapped IPv6 address such as ``::ffff:1.2.3.4`` counts as IPv4).
``enrich`` geolocates from the *raw* address and only then anonymizes,
so truncation never degrades the country lookup.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import logging
import os
import re
import socket
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

__all__ = [
    "STORED_FIELDS",
    "TRAFFIC_SOURCES",
    "DeviceInfo",
    "Enrichment",
    "GeoLocation",
    "anonymize_ip",
    "classify_traffic_source",
    "enrich",
    "locate_ip",
    "parse_user_agent",
    "referrer_host",
    "stored_enrichment",
]

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"

# ---------------------------------------------------------------------------
# User agent
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device_type: str  # "desktop" | "mobile" | "tablet" | "bot" | "unknown"
    browser: str  # ua-parser family, "unknown" when absent
    os: str  # ua-parser family, "unknown" when absent


_UNKNOWN_DEVICE = DeviceInfo(UNKNOWN, UNKNOWN, UNKNOWN)

# Real UAs stay well under this; the cap bounds regex work and cache memory
# when a client sends a huge header.
_MAX_UA_LENGTH = 1024

# "cubot" is an Android phone brand, not a crawler; it is removed before the
# token check so that `bot\b` stays simple.
_BOT_RE = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|scrap|headless|phantomjs|lighthouse"
    r"|facebookexternalhit|mediapartners|feedfetcher|pingdom|uptimerobot"
    r"|python-requests|python-urllib|aiohttp|httpx|go-http-client|curl/|wget/"
    r"|libwww|java/|httpclient|node-fetch|axios/"
)
_TV_RE = re.compile(
    r"smart-?tv|hbbtv|googletv|android tv|crkey|appletv|web0s|bravia"
    r"|xbox|playstation|nintendo|; aft[a-z0-9]+ build"
)
# "Tablet PC" is a Windows desktop feature token, not a tablet.
_TABLET_RE = re.compile(r"ipad|kindle|silk/|playbook|tablet(?! pc)")
_MOBILE_RE = re.compile(r"iphone|ipod|windows phone|mobi|opera mini|blackberry")
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "SUSE",
        "openSUSE",
        "Linux Mint",
        "Arch Linux",
        "Gentoo",
        "Chrome OS",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
_DESKTOP_RE = re.compile(r"windows nt|macintosh|x11|cros ")


def _device_type(ua_lower: str, device_family: str, os_family: str) -> str:
    if device_family == "Spider" or _BOT_RE.search(ua_lower.replace("cubot", "")):
        return "bot"
    if _TV_RE.search(ua_lower):
        return UNKNOWN
    if _TABLET_RE.search(ua_lower):
        return "tablet"
    if _MOBILE_RE.search(ua_lower):
        return "mobile"
    if os_family == "Android" or "android" in ua_lower:
        # Android browsers put "Mobile" in phone UAs only.
        return "tablet"
    if os_family in _DESKTOP_OS or _DESKTOP_RE.search(ua_lower):
        return "desktop"
    return UNKNOWN


def _family(value: Any) -> str:
    # ua-parser reports a failed match as None or the family "Other".
    family = getattr(value, "family", None)
    return family if family and family != "Other" else UNKNOWN


@functools.lru_cache(maxsize=50_000)
def _parse_normalized(ua: str) -> DeviceInfo:
    # UA strings repeat heavily and the pure-Python resolver costs ~1.5 ms
    # per miss, so the cache is what makes per-event parsing affordable.
    # Imported here: it costs ~70 ms, and most importers of this leaf
    # package never parse a user agent.
    import ua_parser

    try:
        result = ua_parser.parse(ua)
    except Exception:  # a parser bug must not drop the event
        logger.exception("user agent parsing failed")
        return _UNKNOWN_DEVICE
    browser = _family(result.user_agent)
    os_family = _family(result.os)
    device_family = _family(result.device)
    return DeviceInfo(
        device_type=_device_type(ua.lower(), device_family, os_family),
        browser=browser,
        os=os_family,
    )


def parse_user_agent(user_agent: str | None) -> DeviceInfo:
    """Browser / OS family and coarse device type for a User-Agent header.

    Results are cached (``_parse_normalized``) on the stripped, length-capped
    string, so oversized headers cannot bloat the cache.
    """
    if not isinstance(user_agent, str):
        return _UNKNOWN_DEVICE
    ua = user_agent.strip()[:_MAX_UA_LENGTH]
    if not ua:
        return _UNKNOWN_DEVICE
    return _parse_normalized(ua)


# ---------------------------------------------------------------------------
# Referrer / traffic source
# ---------------------------------------------------------------------------

TRAFFIC_SOURCES = ("direct", "search", "recommendation", "internal", "external")

_RECOMMENDATION_MARKERS = frozenset({"recommendation", "recommended", "rec"})
_RECOMMENDATION_PARAMS = frozenset({"utm_source", "utm_medium", "ref"})
_INTERNAL_SEARCH_PARAMS = frozenset({"q", "query"})

# "<tld>" = one label (com, de) or a second-level ccTLD (co.uk, com.au).
_TLD = r"(?:[a-z]{2,6}|(?:co|com|ne|or|org|net)\.[a-z]{2})"
_SEARCH_ENGINE_RE = re.compile(
    rf"^(?:google\.{_TLD}|(?:[a-z0-9-]+\.)*(?:yahoo|yandex)\.{_TLD})$"
)
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
    hinted = _source_from_properties(properties)
    if hinted is not None:
        return hinted
    if not isinstance(referrer, str) or not referrer.strip():
        return "direct"
    hosts = internal_hosts if isinstance(internal_hosts, frozenset) else frozenset(internal_hosts)
    return _classify_referrer(referrer, hosts)


def _source_from_properties(properties: Mapping[str, Any] | None) -> str | None:
    """Rules 1 and 2: the traffic source the properties decide, or None to look at the referrer."""
    # Runs for every event: a plain dict skips the Mapping ABC check, and absent keys skip _lower_str.
    if type(properties) is not dict and not isinstance(properties, Mapping):
        return None
    explicit = properties.get("traffic_source")
    if explicit is not None and (explicit := _lower_str(explicit)) in TRAFFIC_SOURCES:
        return explicit
    source = properties.get("source")
    if (source is not None and _lower_str(source) == "recommendation") or properties.get(
        "recommendation_id"
    ) not in (None, ""):
        return "recommendation"
    return None


# Referrers repeat heavily (a few sites, a few internal pages): parse each once.
@functools.lru_cache(maxsize=65_536)
def _classify_referrer(referrer: str, internal_hosts: frozenset[str]) -> str:
    parts = _split_referrer(referrer)
    if parts is None:
        return "external"

    params = _query_params(parts)
    if any(
        key.lower() in _RECOMMENDATION_PARAMS
        and value.strip().lower() in _RECOMMENDATION_MARKERS
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


# ---------------------------------------------------------------------------
# IP addresses
# ---------------------------------------------------------------------------

_IPv4_KEEP = 0xFFFFFF00  # /24
_IPv6_KEEP = ((1 << 48) - 1) << 80  # /48


def _ipv4_int(ip: Any) -> int | None:
    """A dotted-quad IPv4 address as an integer, else None (IPv6 and odd forms take ``_parse_ip``).

    ``inet_pton`` takes only the canonical form (no leading zeros, four parts), as ``ipaddress``
    does, so the stripped text is also what ``str(IPv4Address)`` would print. About 0.2 us against
    1.6 for ``ip_address``, paid by every new client address (the caches below are keyed on text).
    """
    if not isinstance(ip, str):
        return None
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip.strip()), "big")
    except (OSError, ValueError):  # not IPv4 text; ValueError for an embedded NUL or non-ASCII
        return None


def _ipv4_text(address: int) -> str:
    return socket.inet_ntop(socket.AF_INET, address.to_bytes(4, "big"))


def _parse_ip(ip: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not isinstance(ip, str):  # ip_address() would also accept ints
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    # "::ffff:1.2.3.4" is an IPv4 client seen through a dual-stack socket;
    # treat it as IPv4 so it is truncated and located like one.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@functools.lru_cache(maxsize=65_536)
def anonymize_ip(ip: str | None) -> str | None:
    """IPv4 → /24 (last octet zeroed), IPv6 → /48 compressed; invalid → None."""
    v4 = _ipv4_int(ip)
    if v4 is not None:
        return _ipv4_text(v4 & _IPv4_KEEP)
    addr = _parse_ip(ip)
    if addr is None:
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(addr) & _IPv4_KEEP))
    # Rebuilding from the integer also drops any "%zone" suffix.
    return str(ipaddress.IPv6Address(int(addr) & _IPv6_KEEP))


def _ip_str(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(addr, ipaddress.IPv6Address):
        addr = ipaddress.IPv6Address(int(addr))  # drop any "%zone" suffix
    return str(addr)


def _canonical_ip(ip: str | None) -> str | None:
    if _ipv4_int(ip) is not None:
        return ip.strip()  # type: ignore[union-attr] - a string, or _ipv4_int gives None
    addr = _parse_ip(ip)
    return _ip_str(addr) if addr is not None else None


def _is_public(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # is_global alone lets multicast (224/4, ff00::/8) through.
    return addr.is_global and not (addr.is_multicast or addr.is_reserved)


def _ipv4_public_ranges() -> tuple[list[int], list[bool]] | None:
    """Where ``_is_public`` changes over the IPv4 space: (range starts, public or not), or None.

    ``ipaddress`` answers is_global and the rest by testing membership in the networks its
    ``_IPv4Constants`` holds (about 3 us an address); between two edges of those networks every
    answer is the same, so one answer per range is exact for the Python running here. Without
    that class (another Python), None: every address takes ``_is_public``.
    """
    constants = getattr(ipaddress, "_IPv4Constants", None)
    if constants is None:
        return None
    edges = {0}
    for value in vars(constants).values():
        for item in value if isinstance(value, list | tuple | set | frozenset) else (value,):
            if isinstance(item, ipaddress.IPv4Network):
                edges.update((int(item.network_address), int(item.broadcast_address) + 1))
            elif isinstance(item, ipaddress.IPv4Address):
                edges.update((int(item), int(item) + 1))
    starts = sorted(edge for edge in edges if edge < 1 << 32)
    return starts, [_is_public(ipaddress.IPv4Address(start)) for start in starts]


_IPV4_PUBLIC_RANGES = _ipv4_public_ranges()


def _ipv4_is_public(address: int) -> bool:
    if _IPV4_PUBLIC_RANGES is None:
        return _is_public(ipaddress.IPv4Address(address))
    starts, public = _IPV4_PUBLIC_RANGES
    return public[bisect.bisect_right(starts, address) - 1]


# ---------------------------------------------------------------------------
# Geolocation
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GeoLocation:
    country: str | None  # ISO 3166-1 alpha-2, upper case
    region: str | None
    city: str | None


_NO_LOCATION = GeoLocation(None, None, None)

# The IPv4+IPv6 country file ships in the geoip2fast wheel next to the
# IPv4-only default; the default answers "not found" for every IPv6 client.
_GEOIP_DATA_FILES = ("geoip2fast-ipv6.dat.gz", "geoip2fast.dat.gz")

_geoip_lock = threading.Lock()
_geoip: Any = None
_geoip_failed = False


def _load_geoip() -> Any:
    """The process-wide GeoIP2Fast instance, or None if it cannot be loaded.

    Loading takes ~0.2 s and ~tens of MiB, hence lazy and once per process.
    geoip2fast keeps its tables in module globals, so a second GeoIP2Fast
    created elsewhere in the process would replace this one's data.
    """
    global _geoip, _geoip_failed
    if _geoip is not None or _geoip_failed:
        return _geoip
    with _geoip_lock:
        if _geoip is not None or _geoip_failed:
            return _geoip
        # Importing geoip2fast overwrites these two variables process-wide
        # (inherited by subprocesses); put them back.
        saved_env = {k: os.environ.get(k) for k in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
        module: Any = None
        saved_mem_usage: Any = None
        try:
            from geoip2fast import geoip2fast as module

            # The loader only uses this for its banner, and it runs `ps` in a
            # subprocess to get it; not something to do inside a server.
            saved_mem_usage = module.get_mem_usage
            module.get_mem_usage = lambda: 0.0

            package_dir = os.path.dirname(module.__file__)
            data_file = next(
                (
                    path
                    for name in _GEOIP_DATA_FILES
                    if os.path.isfile(path := os.path.join(package_dir, name))
                ),
                None,
            )
            if data_file is None:
                raise FileNotFoundError(f"none of {_GEOIP_DATA_FILES} in {package_dir}")
            # An absolute path stops geoip2fast from first looking for (and
            # unpickling) a file of the same name in the working directory.
            _geoip = module.GeoIP2Fast(verbose=False, geoip2fast_data_file=data_file)
        except Exception:
            _geoip_failed = True  # don't retry a 0.2 s load on every event
            logger.exception("geoip2fast could not be loaded; geolocation disabled")
        finally:
            if saved_mem_usage is not None:
                module.get_mem_usage = saved_mem_usage
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return _geoip


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _country_code(value: Any) -> str | None:
    code = _clean(value)
    if code is None or len(code) != 2 or not code.isascii() or not code.isalpha():
        return None  # also rejects geoip2fast's "--" (private / not found)
    return code.upper()


def _lookup(geoip: Any, ip: str) -> GeoLocation:
    result = geoip.lookup(ip)
    country = _country_code(result.country_code)
    if country is None:
        return _NO_LOCATION
    # Only the city databases fill these; the bundled country ones don't.
    city_detail = getattr(result, "city", None)
    return GeoLocation(
        country=country,
        region=_clean(getattr(city_detail, "subdivision_name", None)),
        city=_clean(getattr(city_detail, "name", None)),
    )


# Longest textual IP is an IPv4-mapped IPv6 (45 chars) plus a zone id;
# longer input can't be valid and must not become a cache key.
_MAX_IP_LENGTH = 64


@functools.lru_cache(maxsize=100_000)
def _locate_cached(ip: str) -> GeoLocation:
    # Cached on the raw string: a hit skips the parsing, the public check and
    # the database lookup (~2.8 us of geoip2fast's own per address).
    v4 = _ipv4_int(ip)
    if v4 is not None:
        if not _ipv4_is_public(v4):
            return _NO_LOCATION
        text = ip.strip()
    else:
        addr = _parse_ip(ip)
        if addr is None or not _is_public(addr):
            return _NO_LOCATION
        text = _ip_str(addr)
    geoip = _load_geoip()
    if geoip is None:
        return _NO_LOCATION
    try:
        return _lookup(geoip, text)
    except Exception:
        logger.exception("geoip lookup failed for %s", ip)
        return _NO_LOCATION


def locate_ip(ip: str | None) -> GeoLocation:
    """Offline country (and region/city when the database has them) for an IP.

    Non-public and invalid addresses give all-None without touching the
    database. Never raises. Results are cached (``_locate_cached``).
    """
    if not isinstance(ip, str) or len(ip) > _MAX_IP_LENGTH:
        return _NO_LOCATION
    try:
        return _locate_cached(ip)
    except Exception:
        logger.exception("geolocation failed")
        return _NO_LOCATION


# ---------------------------------------------------------------------------
# Event enrichment
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enrichment:
    device_type: str
    browser: str
    os: str
    traffic_source: str
    referrer_host: str | None
    country: str | None
    region: str | None
    city: str | None
    ip_address: str | None  # what to store: anonymized when anonymize=True


def enrich(
    *,
    user_agent: str | None,
    referrer: str | None,
    ip_address: str | None,
    country: str | None,
    region: str | None,
    city: str | None,
    properties: Mapping[str, Any] | None,
    internal_hosts: Collection[str] = (),
    anonymize: bool = True,
) -> Enrichment:
    """Derive the stored dimensions of one event.

    A client-supplied country (two ASCII letters; anything else is treated
    as absent) wins over the lookup, as do client region/city. The lookup
    runs only when the country is missing and always on the raw address,
    before anonymization. The stored address is anonymized unless
    ``anonymize`` is False, and is None when it isn't a valid IP either way.
    """
    hosts = internal_hosts if isinstance(internal_hosts, frozenset) else frozenset(internal_hosts)
    hinted = _source_from_properties(properties)
    return _enrich(user_agent, referrer, ip_address, country, region, city, hinted, hosts, anonymize)


def _enrich(
    user_agent: Any,
    referrer: Any,
    ip_address: Any,
    country: Any,
    region: Any,
    city: Any,
    hinted_source: str | None,
    internal_hosts: frozenset[str],
    anonymize: bool,
) -> Enrichment:
    device = parse_user_agent(user_agent)

    geo_country = _country_code(country)
    geo_region = _clean(region)
    geo_city = _clean(city)
    if geo_country is None:
        located = locate_ip(ip_address)
        geo_country = located.country
        geo_region = geo_region or located.region
        geo_city = geo_city or located.city

    if hinted_source is not None:
        traffic_source = hinted_source
    elif not isinstance(referrer, str) or not referrer.strip():
        traffic_source = "direct"
    else:
        traffic_source = _classify_referrer(referrer, internal_hosts)

    return Enrichment(
        device_type=device.device_type,
        browser=device.browser,
        os=device.os,
        traffic_source=traffic_source,
        referrer_host=referrer_host(referrer),
        country=geo_country,
        region=geo_region,
        city=geo_city,
        ip_address=anonymize_ip(ip_address) if anonymize else _canonical_ip(ip_address),
    )


# What the ingest path stores of an event's enrichment, in this order; "" where the address, place or
# referrer host is absent, as the events table holds them.
STORED_FIELDS = (
    "ip_address", "country", "region", "city", "device_type", "browser", "os", "traffic_source", "referrer_host",
)  # fmt: skip


def stored_enrichment(event: Mapping[str, Any], internal_hosts: frozenset[str], anonymize: bool) -> tuple[Any, ...]:
    """``enrich`` of one validated event as the values of ``STORED_FIELDS``.

    The ingest path calls this for every event: it reads the event's fields itself and its result is a
    tuple, so a batch's columns come from one ``zip`` instead of a pass over the results per column.
    """
    get = event.get
    args = (
        get("user_agent"), get("referrer"), get("ip_address"), get("country"), get("region"), get("city"),
        _source_from_properties(get("properties")), internal_hosts, anonymize,
    )  # fmt: skip
    try:
        # Events of one session repeat the same agent, referrer and address: one lookup instead of
        # five cached calls and a new result each time.
        return _stored_cached(*args)
    except TypeError:  # an unhashable argument (not a string): compute it uncached
        return _stored(*args)


def _stored(*args: Any) -> tuple[Any, ...]:
    e = _enrich(*args)
    return (
        e.ip_address or "", e.country or "", e.region or "", e.city or "",
        e.device_type, e.browser, e.os, e.traffic_source, e.referrer_host or "",
    )  # fmt: skip


# Bounded like the other caches here: at most ~10 MiB of results.
_stored_cached = functools.lru_cache(maxsize=32_768)(_stored)
