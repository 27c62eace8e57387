"""User agent -> coarse device type, browser family and OS family.

ua-parser gives browser / OS / device *families*; the coarse device type is derived from those plus a
few UA tokens, checked in this order: bot (ua-parser device family "Spider" or a common bot token) ->
TV / console ("unknown": none of the types fits) -> tablet (iPad, Kindle/Silk, "Tablet") -> mobile
(iPhone/iPod, Windows Phone, "Mobi") -> tablet (Android without "Mobile") -> desktop (Windows, macOS,
Linux, ChromeOS, BSD) -> "unknown".
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

UNKNOWN = "unknown"
DESKTOP = "desktop"
MOBILE = "mobile"
TABLET = "tablet"
BOT = "bot"
# The devices people use, each with its own view count in the analytics (bots and unknown devices aside).
DEVICE_TYPES = (DESKTOP, MOBILE, TABLET)


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    device_type: str  # one of DEVICE_TYPES, "bot" or "unknown"
    browser: str  # ua-parser family, "unknown" when absent
    os: str  # ua-parser family, "unknown" when absent


UNKNOWN_DEVICE = DeviceInfo(UNKNOWN, UNKNOWN, UNKNOWN)

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
        return BOT
    if _TV_RE.search(ua_lower):
        return UNKNOWN
    if _TABLET_RE.search(ua_lower):
        return TABLET
    if _MOBILE_RE.search(ua_lower):
        return MOBILE
    if os_family == "Android" or "android" in ua_lower:
        # Android browsers put "Mobile" in phone UAs only.
        return TABLET
    if os_family in _DESKTOP_OS or _DESKTOP_RE.search(ua_lower):
        return DESKTOP
    return UNKNOWN


def _family(value: Any) -> str:
    # ua-parser reports a failed match as None or the family "Other".
    family = getattr(value, "family", None)
    return family if family and family != "Other" else UNKNOWN


@functools.lru_cache(maxsize=50_000)
def _parse_normalized(ua: str) -> DeviceInfo:
    # UA strings repeat heavily and the pure-Python resolver is slow on a miss, so the cache is what
    # makes per-event parsing affordable. Imported here: the import is slow, and most importers of
    # this leaf package never parse a user agent.
    import ua_parser

    try:
        result = ua_parser.parse(ua)
    except Exception:  # a parser bug must not drop the event
        logger.exception("user agent parsing failed")
        return UNKNOWN_DEVICE
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
        return UNKNOWN_DEVICE
    ua = user_agent.strip()[:_MAX_UA_LENGTH]
    if not ua:
        return UNKNOWN_DEVICE
    return _parse_normalized(ua)
