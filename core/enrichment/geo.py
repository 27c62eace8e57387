"""IP -> country (and region / city when the database has them), offline, from geoip2fast's data.

Non-public and invalid addresses are never looked up. The database loads on the first lookup of a
public address (``CountryDatabase``), so importing this module touches neither geoip2fast nor the
environment.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from core.enrichment.ip import ip_text, ipv4_int, ipv4_is_public, is_public, parse_ip

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GeoLocation:
    country: str | None  # ISO 3166-1 alpha-2, upper case
    region: str | None
    city: str | None


NO_LOCATION = GeoLocation(None, None, None)

# The IPv4+IPv6 country file ships in the geoip2fast wheel next to the
# IPv4-only default; the default answers "not found" for every IPv6 client.
GEOIP_DATA_FILES = ("geoip2fast-ipv6.dat.gz", "geoip2fast.dat.gz")
# Importing geoip2fast sets these process-wide (and so for every subprocess).
_ENV_SET_BY_GEOIP2FAST = ("PYTHONWARNINGS", "PYTHONIOENCODING")


def _import_geoip2fast() -> Any:
    """The geoip2fast module, with the environment as it was before its import."""
    saved = {key: os.environ.get(key) for key in _ENV_SET_BY_GEOIP2FAST}
    try:
        from geoip2fast import geoip2fast as module
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return module


def _open_geoip2fast(data_files: tuple[str, ...]) -> Any:
    """A loaded GeoIP2Fast on the first of ``data_files`` found in the geoip2fast package."""
    module = _import_geoip2fast()
    package_dir = os.path.dirname(module.__file__)
    data_file = next(
        (path for name in data_files if os.path.isfile(path := os.path.join(package_dir, name))),
        None,
    )
    if data_file is None:
        raise FileNotFoundError(f"none of {data_files} in {package_dir}")
    # The loader measures memory only for its banner, and runs `ps` in a subprocess to do it; not
    # something to do inside a server, so it is stubbed for the duration of the load.
    measure = module.get_mem_usage
    module.get_mem_usage = lambda: 0.0
    try:
        # An absolute path stops geoip2fast from first looking for (and unpickling) a file of the
        # same name in the working directory.
        return module.GeoIP2Fast(verbose=False, geoip2fast_data_file=data_file)
    finally:
        module.get_mem_usage = measure


class CountryDatabase:
    """geoip2fast's country database, loaded on first use, once.

    Loading is slow and takes memory, hence lazy; a failed load is logged once and every lookup then
    finds nothing. geoip2fast keeps its tables in module globals, so a second GeoIP2Fast created
    elsewhere in the process would replace this one's data: one instance serves the process.
    """

    def __init__(self, data_files: tuple[str, ...] = GEOIP_DATA_FILES) -> None:
        self._data_files = data_files
        self._lock = threading.Lock()
        self._reader: Any = None
        self._failed = False

    @property
    def loaded(self) -> bool:
        return self._reader is not None

    def reader(self) -> Any:
        """The loaded GeoIP2Fast (loading it now if need be), or None if it cannot be loaded."""
        if self._reader is not None or self._failed:
            return self._reader
        with self._lock:
            if self._reader is None and not self._failed:
                try:
                    self._reader = _open_geoip2fast(self._data_files)
                except Exception:
                    self._failed = True  # don't retry a slow load on every event
                    logger.exception("geoip2fast could not be loaded; geolocation disabled")
        return self._reader

    def locate(self, ip: str) -> GeoLocation:
        """The location of a canonical public address (NO_LOCATION if the database has none)."""
        reader = self.reader()
        if reader is None:
            return NO_LOCATION
        result = reader.lookup(ip)
        country = country_code(result.country_code)
        if country is None:
            return NO_LOCATION
        # Only the city databases fill these; the bundled country ones don't.
        city_detail = getattr(result, "city", None)
        return GeoLocation(
            country=country,
            region=clean_text(getattr(city_detail, "subdivision_name", None)),
            city=clean_text(getattr(city_detail, "name", None)),
        )


DATABASE = CountryDatabase()


def clean_text(value: Any) -> str | None:
    """A stripped non-empty string, else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def country_code(value: Any) -> str | None:
    """Two ASCII letters, upper-cased, else None."""
    code = clean_text(value)
    if code is None or len(code) != 2 or not code.isascii() or not code.isalpha():
        return None  # also rejects geoip2fast's "--" (private / not found)
    return code.upper()


# Longest textual IP is an IPv4-mapped IPv6 (45 chars) plus a zone id;
# longer input can't be valid and must not become a cache key.
_MAX_IP_LENGTH = 64


@functools.lru_cache(maxsize=100_000)
def _locate_cached(ip: str) -> GeoLocation:
    # Cached on the raw string: a hit skips the parsing, the public check and the database lookup.
    v4 = ipv4_int(ip)
    if v4 is not None:
        if not ipv4_is_public(v4):
            return NO_LOCATION
        text = ip.strip()
    else:
        addr = parse_ip(ip)
        if addr is None or not is_public(addr):
            return NO_LOCATION
        text = ip_text(addr)
    try:
        return DATABASE.locate(text)
    except Exception:
        logger.exception("geoip lookup failed for %s", ip)
        return NO_LOCATION


def locate_ip(ip: str | None) -> GeoLocation:
    """Offline country (and region/city when the database has them) for an IP.

    Non-public and invalid addresses give all-None without touching the
    database. Never raises. Results are cached (``_locate_cached``).
    """
    if not isinstance(ip, str) or len(ip) > _MAX_IP_LENGTH:
        return NO_LOCATION
    try:
        return _locate_cached(ip)
    except Exception:
        logger.exception("geolocation failed")
        return NO_LOCATION
