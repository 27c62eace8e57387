"""IP addresses: parsing, the public-address check, and anonymization.

``anonymize_ip`` truncates IPv4 to /24 and IPv6 to /48 (an IPv4-mapped IPv6 address such as
``::ffff:1.2.3.4`` counts as IPv4).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import socket
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPv4_KEEP = 0xFFFFFF00  # /24
_IPv6_KEEP = ((1 << 48) - 1) << 80  # /48


def ipv4_int(ip: Any) -> int | None:
    """A dotted-quad IPv4 address as an integer, else None (IPv6 and odd forms take ``parse_ip``).

    ``inet_pton`` takes only the canonical form (no leading zeros, four parts), as ``ipaddress``
    does, so the stripped text is also what ``str(IPv4Address)`` would print. It is much cheaper than
    ``ip_address``, and every new client address pays it (the caches are keyed on text).
    """
    if not isinstance(ip, str):
        return None
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, ip.strip()), "big")
    except (OSError, ValueError):  # not IPv4 text; ValueError for an embedded NUL or non-ASCII
        return None


def ipv4_text(address: int) -> str:
    return socket.inet_ntop(socket.AF_INET, address.to_bytes(4, "big"))


def parse_ip(ip: str | None) -> IPAddress | None:
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
def is_ip_address(ip: str) -> bool:
    """Whether ``ip`` is an IPv4 or IPv6 address as text (an IPv6 "%zone" suffix allowed).

    Cached like ``anonymize_ip``: ingest asks it of every event that names an address, and the
    events of one client repeat it.
    """
    return ipv4_int(ip) is not None or parse_ip(ip) is not None


@functools.lru_cache(maxsize=65_536)
def anonymize_ip(ip: str | None) -> str | None:
    """IPv4 → /24 (last octet zeroed), IPv6 → /48 compressed; invalid → None."""
    v4 = ipv4_int(ip)
    if v4 is not None:
        return ipv4_text(v4 & _IPv4_KEEP)
    addr = parse_ip(ip)
    if addr is None:
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(addr) & _IPv4_KEEP))
    # Rebuilding from the integer also drops any "%zone" suffix.
    return str(ipaddress.IPv6Address(int(addr) & _IPv6_KEEP))


def ip_text(addr: IPAddress) -> str:
    """The canonical text of an address, without any "%zone" suffix."""
    if isinstance(addr, ipaddress.IPv6Address):
        addr = ipaddress.IPv6Address(int(addr))
    return str(addr)


def canonical_ip(ip: str | None) -> str | None:
    """The canonical text of an IP given as text, or None if it is not one."""
    if isinstance(ip, str) and ipv4_int(ip) is not None:
        return ip.strip()
    addr = parse_ip(ip)
    return ip_text(addr) if addr is not None else None


def is_public(addr: IPAddress) -> bool:
    # is_global alone lets multicast (224/4, ff00::/8) through.
    return addr.is_global and not (addr.is_multicast or addr.is_reserved)


def _ipv4_public_ranges() -> tuple[list[int], list[bool]] | None:
    """Where ``is_public`` changes over the IPv4 space: (range starts, public or not), or None.

    ``ipaddress`` answers is_global and the rest by testing membership in each of the networks its
    ``_IPv4Constants`` holds, which is slow per address; between two edges of those networks every
    answer is the same, so one answer per range is exact for the Python running here. Without
    that class (another Python), None: every address takes ``is_public``.
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
    return starts, [is_public(ipaddress.IPv4Address(start)) for start in starts]


IPV4_PUBLIC_RANGES = _ipv4_public_ranges()


def ipv4_is_public(address: int) -> bool:
    """``is_public`` of an IPv4 address given as an integer."""
    if IPV4_PUBLIC_RANGES is None:
        return is_public(ipaddress.IPv4Address(address))
    starts, public = IPV4_PUBLIC_RANGES
    return public[bisect.bisect_right(starts, address) - 1]
