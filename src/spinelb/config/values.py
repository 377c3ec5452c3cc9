"""Parsing of the config's scalar values: prefixes, addresses, communities, ``host:port``.

Each parser returns the value or raises :class:`ValueError` with a message fit
for a :class:`~spinelb.config.model.Problem`.  :func:`parse_prefix` is on the
hot path (100,000 announcements must load in well under a second), so host
routes (/32, /128), the common case, skip :mod:`ipaddress`'s string parsing.
"""

from __future__ import annotations

import socket
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

from spinelb.bgp.wire import Address, LargeCommunity, Prefix

MAX_ASN = 4_294_967_295
MAX_UINT32 = 4_294_967_295

#: Well-known communities by the names FRR and BIRD use (RFC 1997, 3765, 7999, 8326).
WELL_KNOWN_COMMUNITIES: dict[str, int] = {
    "graceful-shutdown": 0xFFFF0000,
    "accept-own": 0xFFFF0001,
    "blackhole": 0xFFFF029A,
    "no-export": 0xFFFFFF01,
    "no-advertise": 0xFFFFFF02,
    "no-export-subconfed": 0xFFFFFF03,
    "no-peer": 0xFFFFFF04,
}
COMMUNITY_NAMES: dict[int, str] = {value: name for name, value in WELL_KNOWN_COMMUNITIES.items()}

_V4_ALL_ONES = IPv4Address(2**32 - 1)
_V6_ALL_ONES = IPv6Address(2**128 - 1)
_new_v4_network = IPv4Network.__new__
_new_v6_network = IPv6Network.__new__
_new_v4_address = IPv4Address.__new__
_new_v6_address = IPv6Address.__new__
_inet_pton = socket.inet_pton
_from_bytes = int.from_bytes
_AF_INET = socket.AF_INET
_AF_INET6 = socket.AF_INET6


def _v4_host_route(text: str) -> IPv4Network:
    """``a.b.c.d`` as an /32 network, built without ipaddress's (slow) string parsing.

    Produces the same object as ``IPv4Network(text + "/32")`` (equal, same hash,
    same str, same repr) except that ``hosts()`` yields nothing, where
    ipaddress keeps a per-object closure yielding the address: the speaker
    never asks, and the closure would cost a third of the load time.
    ``inet_pton`` is as strict as ipaddress (no leading zeros, no short forms).
    """
    address = _new_v4_address(IPv4Address)
    address._ip = _from_bytes(_inet_pton(_AF_INET, text))  # type: ignore[attr-defined]
    network = _new_v4_network(IPv4Network)
    network.network_address = address
    network.netmask = _V4_ALL_ONES
    network._prefixlen = 32  # type: ignore[attr-defined]
    return network


def _v6_host_route(text: str) -> IPv6Network:
    """The IPv6 counterpart of :func:`_v4_host_route` (/128); scoped addresses are refused."""
    address = _new_v6_address(IPv6Address)
    address._ip = _from_bytes(_inet_pton(_AF_INET6, text))  # type: ignore[attr-defined]
    address._scope_id = None  # type: ignore[attr-defined]
    network = _new_v6_network(IPv6Network)
    network.network_address = address
    network.netmask = _V6_ALL_ONES
    network._prefixlen = 128  # type: ignore[attr-defined]
    return network


def _host_routes_agree() -> bool:
    """Whether the shortcut builds what ipaddress builds, on this Python; else it is not used."""
    try:
        for build, text, plen in (
            (_v4_host_route, "192.0.2.7", 32),
            (_v6_host_route, "2001:db8::7", 128),
        ):
            fast, slow = build(text), ip_network(f"{text}/{plen}")
            if not (
                fast == slow
                and hash(fast) == hash(slow)
                and str(fast) == str(slow)
                and fast.prefixlen == slow.prefixlen
                and fast.network_address == slow.network_address
                and fast.broadcast_address == slow.broadcast_address
                and fast.num_addresses == 1
                and fast.is_private == slow.is_private
                and repr(fast) == repr(slow)
            ):
                return False
    except Exception:  # a changed ipaddress internals: fall back to the slow path
        return False
    return True


_HOST_ROUTE_SHORTCUT = _host_routes_agree()


def parse_prefix(text: str) -> Prefix:
    """An IPv4 or IPv6 prefix ``address/length``; a bare address means /32 or /128.

    Host bits must be clear: "10.0.0.1/24" is an error that names the network meant.
    """
    address, slash, length = text.partition("/")
    if _HOST_ROUTE_SHORTCUT and (not slash or length in ("32", "128")):
        try:
            if length != "128" and "." in address and ":" not in address:
                return _v4_host_route(address)
            if length != "32" and ":" in address and "%" not in address:
                return _v6_host_route(address)
        except OSError:
            pass  # not an address: let ipaddress say why
    if "%" in address:
        raise ValueError("a prefix cannot have a zone (%...)")
    try:
        return ip_network(text, strict=True)
    except ValueError as exc:
        if "host bits set" in str(exc):
            network = ip_network(text, strict=False)
            raise ValueError(f"host bits set: the network is {network}") from None
        raise ValueError("not an IPv4 or IPv6 prefix (address/length)") from None


def parse_address(text: str) -> Address:
    """An IPv4 or IPv6 address (no prefix length, no zone)."""
    try:
        return ip_address(text)
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address") from None


def parse_community(text: str) -> int:
    """A standard community (RFC 1997) as its 32-bit value: "ASN:VALUE" (16:16) or a well-known name."""
    known = WELL_KNOWN_COMMUNITIES.get(text)
    if known is not None:
        return known
    high, colon, low = text.partition(":")
    if colon and high.isdigit() and low.isdigit() and high.isascii() and low.isascii():
        asn, value = int(high), int(low)
        if asn <= 0xFFFF and value <= 0xFFFF:
            return asn << 16 | value
        raise ValueError("each half of a community must be 0..65535")
    raise ValueError(
        "not a community: use ASN:VALUE (each 0..65535) or one of "
        + ", ".join(WELL_KNOWN_COMMUNITIES)
    )


def format_community(value: int) -> str:
    """The config's spelling of a community value (its well-known name when it has one)."""
    return COMMUNITY_NAMES.get(value) or f"{value >> 16}:{value & 0xFFFF}"


def parse_large_community(text: str) -> LargeCommunity:
    """A large community (RFC 8092) "GLOBAL:LOCAL1:LOCAL2", each part 0..4294967295."""
    parts = text.split(":")
    if len(parts) == 3 and all(part.isdigit() and part.isascii() for part in parts):
        numbers = [int(part) for part in parts]
        if all(number <= MAX_UINT32 for number in numbers):
            return LargeCommunity(*numbers)
        raise ValueError("each part of a large community must be 0..4294967295")
    raise ValueError("not a large community: use GLOBAL:LOCAL1:LOCAL2 (each 0..4294967295)")


def parse_host_port(text: str, default_port: int) -> tuple[Address, int]:
    """``address:port``, ``[v6-address]:port`` or a bare address (then ``default_port``)."""
    host, port_text = text, ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError("not ADDRESS:PORT (write IPv6 as [ADDRESS]:PORT)")
        port_text = rest[1:]
        if rest and not port_text:
            raise ValueError("missing port after ':'")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ip_address(host)
    except ValueError:
        raise ValueError(
            "not ADDRESS:PORT with an IP address (write IPv6 as [ADDRESS]:PORT)"
        ) from None
    if not port_text:
        return address, default_port
    if not (port_text.isdigit() and port_text.isascii() and int(port_text) <= 65535):
        raise ValueError("the port must be 0..65535")
    return address, int(port_text)
