"""Ingest-time enrichment of analytics events.

Everything here is a pure function of its inputs (plus two read-only, lazily loaded lookup tables: the
ua-parser regexes and the geoip2fast country database), so it can run on the hot ingest path and be
tested without a database or network.

- ``device``: user agent -> device type, browser and OS families;
- ``traffic_source``: referrer (and properties) -> traffic source, referrer host;
- ``ip``: IP parsing, the public-address check, anonymization (IPv4 /24, IPv6 /48);
- ``geo``: IP -> country (region, city), loaded on first use;
- ``event``: all of them for one event (``enrich``, and ``stored_enrichment`` for the ingest path).
"""

from core.enrichment.device import DEVICE_TYPES, DeviceInfo, parse_user_agent
from core.enrichment.event import STORED_FIELDS, Enrichment, enrich, stored_enrichment
from core.enrichment.geo import GeoLocation, locate_ip
from core.enrichment.ip import anonymize_ip
from core.enrichment.traffic_source import TRAFFIC_SOURCES, classify_traffic_source, referrer_host

__all__ = [
    "DEVICE_TYPES",
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
