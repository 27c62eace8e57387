"""One event's enrichment: device, traffic source, place and the address to store, together.

``enrich`` geolocates from the *raw* address and only then anonymizes, so truncation never degrades
the country lookup. ``stored_enrichment`` is the same for the ingest path, per event.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from core.enrichment.device import parse_user_agent
from core.enrichment.geo import clean_text, country_code, locate_ip
from core.enrichment.ip import anonymize_ip, canonical_ip
from core.enrichment.traffic_source import classify_referrer, referrer_host, source_from_properties


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
    hinted = source_from_properties(properties)
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

    geo_country = country_code(country)
    geo_region = clean_text(region)
    geo_city = clean_text(city)
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
        traffic_source = classify_referrer(referrer, internal_hosts)

    return Enrichment(
        device_type=device.device_type,
        browser=device.browser,
        os=device.os,
        traffic_source=traffic_source,
        referrer_host=referrer_host(referrer),
        country=geo_country,
        region=geo_region,
        city=geo_city,
        ip_address=anonymize_ip(ip_address) if anonymize else canonical_ip(ip_address),
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
        source_from_properties(get("properties")), internal_hosts, anonymize,
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


# Bounded like the other caches here, so its memory stays bounded too.
_stored_cached = functools.lru_cache(maxsize=32_768)(_stored)
