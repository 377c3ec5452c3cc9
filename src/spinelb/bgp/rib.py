"""Adj-RIB-Out: what one peer should have, what it has been told, and the UPDATEs in between.

Sans-IO.  The speaker sets the routes a peer should carry (prefix -> path
attributes); the RIB computes the difference from what was already sent and
hands out encoded UPDATE messages on demand, packing every prefix that shares
one attribute set into as few messages as RFC 4271's 4096-octet limit allows.
Only changes are sent; a ROUTE-REFRESH marks a family's whole table for
resending (RFC 2918).

The transport pulls messages with :meth:`AdjRibOut.take` a few kilobytes at a
time, so a large table never sits in a socket buffer in front of a KEEPALIVE.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from spinelb.bgp import wire
from spinelb.bgp.wire import (
    AFI_IPV4,
    AFI_IPV6,
    HEADER_LEN,
    IPV4_UNICAST,
    IPV6_UNICAST,
    MAX_MESSAGE_LEN,
    SAFI_UNICAST,
    Address,
    Family,
    MessageType,
    PathAttribute,
    Prefix,
)

# Space left for NLRI in one UPDATE after the header and the two length fields.
_BODY_ROOM = MAX_MESSAGE_LEN - HEADER_LEN - 4
# MP_REACH_NLRI overhead around its NLRI: flags, type, 2-octet length, AFI, SAFI,
# next-hop length, reserved octet (the next hop itself is added per route).
_MP_REACH_FIXED = 4 + 3 + 1 + 1
_MP_UNREACH_FIXED = 4 + 3
_BOTH = frozenset({IPV4_UNICAST, IPV6_UNICAST})


@dataclass(frozen=True, slots=True)
class PathAttributes:
    """The attributes one peer receives with a route, NLRI excluded.

    ``attributes`` hold everything but NEXT_HOP and the MP attributes;
    ``next_hop`` is put in NEXT_HOP (IPv4) or MP_REACH_NLRI (IPv6) when the
    UPDATE is built.  Hashable: routes that share one are packed together.
    """

    attributes: tuple[PathAttribute, ...]
    next_hop: Address


def family_of(prefix: Prefix) -> Family:
    return (AFI_IPV4 if prefix.version == 4 else AFI_IPV6, SAFI_UNICAST)


class AdjRibOut:
    """The Adj-RIB-Out of one established session."""

    def __init__(self, *, families: Iterable[Family], asn4: bool = True) -> None:
        self.families = frozenset(families)
        self.asn4 = asn4
        self._sent: dict[Prefix, PathAttributes] = {}
        self._wanted: dict[Prefix, PathAttributes] = {}
        self._announce: dict[Prefix, PathAttributes] = {}
        self._withdraw: set[Prefix] = set()
        self._messages: Iterator[bytes] | None = None
        self._encoded: dict[PathAttributes, bytes] = {}

    # --- what the peer should have -----------------------------------------

    def replace(self, routes: Mapping[Prefix, PathAttributes]) -> None:
        """Make ``routes`` the whole table for this peer; only the difference will be sent."""
        if self.families >= _BOTH:
            wanted = dict(routes)  # a dict copy reuses the stored hashes: no per-prefix work
        else:
            version = 4 if IPV4_UNICAST in self.families else 6
            wanted = {p: a for p, a in routes.items() if p.version == version}
        old = self._wanted
        self._wanted = wanted
        if not (old or self._sent or self._announce or self._withdraw):
            self._announce = dict(wanted)  # the initial table: everything, at C speed
            return
        for prefix, attrs in wanted.items():
            if old.get(prefix) != attrs:
                self._queue_announce(prefix, attrs)
        for prefix in old.keys() - wanted.keys():
            self._queue_withdraw(prefix)

    def put(self, prefix: Prefix, attrs: PathAttributes) -> None:
        if family_of(prefix) not in self.families:
            return
        if self._wanted.get(prefix) != attrs:
            self._wanted[prefix] = attrs
            self._queue_announce(prefix, attrs)

    def remove(self, prefix: Prefix) -> None:
        if self._wanted.pop(prefix, None) is not None:
            self._queue_withdraw(prefix)

    def withdraw_all(self) -> None:
        """Withdraw every route (before an administrative shutdown)."""
        self.replace({})

    def refresh(self, family: Family) -> None:
        """Resend this family's whole table (RFC 2918 ROUTE-REFRESH)."""
        for prefix, attrs in self._wanted.items():
            if family_of(prefix) == family:
                self._announce[prefix] = attrs
                self._sent.pop(prefix, None)

    def _queue_announce(self, prefix: Prefix, attrs: PathAttributes) -> None:
        self._withdraw.discard(prefix)
        if self._sent.get(prefix) == attrs:
            self._announce.pop(prefix, None)
        else:
            self._announce[prefix] = attrs

    def _queue_withdraw(self, prefix: Prefix) -> None:
        self._announce.pop(prefix, None)
        if prefix in self._sent:
            self._withdraw.add(prefix)

    # --- state -----------------------------------------------------------

    @property
    def advertised(self) -> int:
        """Prefixes the peer has been told about and not told to withdraw."""
        return len(self._sent)

    @property
    def wanted(self) -> int:
        return len(self._wanted)

    def pending(self) -> bool:
        return bool(self._announce or self._withdraw or self._messages is not None)

    def advertised_prefixes(self) -> list[Prefix]:
        return list(self._sent)

    # --- UPDATE messages ------------------------------------------------

    def take(self, max_bytes: int) -> list[bytes]:
        """Encoded UPDATE messages, at least one if any are pending, about ``max_bytes`` in all.

        What is returned counts as sent: call this only when the bytes will
        be written to the session.
        """
        out: list[bytes] = []
        size = 0
        while size < max_bytes:
            if self._messages is None:
                if not (self._announce or self._withdraw):
                    break
                self._messages = self._build()
            msg = next(self._messages, None)
            if msg is None:
                self._messages = None
                continue
            out.append(msg)
            size += len(msg)
        return out

    def _build(self) -> Iterator[bytes]:
        """Snapshot the pending changes and yield packed UPDATEs for them."""
        withdraw, self._withdraw = self._withdraw, set()
        announce, self._announce = self._announce, {}
        for prefix in withdraw:
            self._sent.pop(prefix, None)
        self._sent.update(announce)
        return self._encode(withdraw, announce)

    def _encode(
        self, withdraw: set[Prefix], announce: dict[Prefix, PathAttributes]
    ) -> Iterator[bytes]:
        v4_withdraw = [p for p in withdraw if p.version == 4]
        v6_withdraw = [p for p in withdraw if p.version == 6]
        yield from _ipv4_withdrawals(v4_withdraw)
        yield from _mp_withdrawals(v6_withdraw, self.asn4)
        # One open message per attribute set, sent as soon as it is full: the
        # work is spread over the take() calls, never done for the whole table
        # at once, so the event loop stays free between batches.  Consecutive
        # prefixes usually share one attribute object: that case skips the dict.
        open_chunks: dict[tuple[PathAttributes, int], _Chunk] = {}
        current: _Chunk | None = None
        for prefix, attrs in announce.items():
            version = prefix.version
            if current is None or attrs is not current.attrs or version != current.version:
                key = (attrs, version)
                current = open_chunks.get(key)
                if current is None:
                    current = open_chunks[key] = _Chunk(attrs, version, self._room(attrs, version))
            size = 1 + ((prefix.prefixlen + 7) >> 3)
            if current.used + size > current.room and current.prefixes:
                yield self._announcement(attrs, version, current.prefixes)
                current.prefixes = []
                current.used = 0
            current.prefixes.append(prefix)
            current.used += size
        for chunk in open_chunks.values():
            if chunk.prefixes:
                yield self._announcement(chunk.attrs, chunk.version, chunk.prefixes)

    def _ipv4_attributes(self, attrs: PathAttributes) -> bytes:
        encoded = self._encoded.get(attrs)
        if encoded is None:
            if not isinstance(attrs.next_hop, IPv4Address):
                raise ValueError(f"IPv4 route with next hop {attrs.next_hop}")
            encoded = wire.encode_path_attributes(
                (*attrs.attributes, wire.NextHop(attrs.next_hop)), asn4=self.asn4
            )
            self._encoded[attrs] = encoded
        return encoded

    def _room(self, attrs: PathAttributes, version: int) -> int:
        """Octets left for NLRI in one UPDATE carrying ``attrs``."""
        if version == 4:
            return _BODY_ROOM - len(self._ipv4_attributes(attrs))
        base = wire.encode_path_attributes(attrs.attributes, asn4=self.asn4)
        return _BODY_ROOM - len(base) - _MP_REACH_FIXED - len(attrs.next_hop.packed)

    def _announcement(self, attrs: PathAttributes, version: int, prefixes: list[Prefix]) -> bytes:
        if version == 4:
            body = wire.encode_update_body(
                b"", self._ipv4_attributes(attrs), wire.encode_nlri(prefixes)
            )
        else:
            mp = wire.MpReachNlri(AFI_IPV6, SAFI_UNICAST, (attrs.next_hop,), tuple(prefixes))
            encoded = wire.encode_path_attributes((mp, *attrs.attributes), asn4=self.asn4)
            body = wire.encode_update_body(b"", encoded, b"")
        return wire.frame(MessageType.UPDATE, body)


@dataclass(slots=True)
class _Chunk:
    """The UPDATE being filled for one attribute set and family."""

    attrs: PathAttributes
    version: int
    room: int
    used: int = 0
    prefixes: list[Prefix] = field(default_factory=list)


def _pack(prefixes: Iterable[Prefix], room: int) -> Iterator[bytes]:
    """Concatenated NLRI encodings, each chunk at most ``room`` octets."""
    chunk: list[bytes] = []
    size = 0
    for prefix in prefixes:
        enc = wire.encode_prefix(prefix)
        if size + len(enc) > room and chunk:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(enc)
        size += len(enc)
    if chunk:
        yield b"".join(chunk)


def _ipv4_withdrawals(prefixes: Sequence[Prefix]) -> Iterator[bytes]:
    for withdrawn in _pack(prefixes, _BODY_ROOM):
        yield wire.frame(MessageType.UPDATE, wire.encode_update_body(withdrawn, b"", b""))


def _mp_withdrawals(prefixes: Sequence[Prefix], asn4: bool) -> Iterator[bytes]:
    room = _BODY_ROOM - _MP_UNREACH_FIXED
    for chunk in _chunks(prefixes, room):
        attr = wire.MpUnreachNlri(AFI_IPV6, SAFI_UNICAST, tuple(chunk))
        encoded = wire.encode_path_attributes((attr,), asn4=asn4)
        yield wire.frame(MessageType.UPDATE, wire.encode_update_body(b"", encoded, b""))


def _chunks(prefixes: Sequence[Prefix], room: int) -> Iterator[list[Prefix]]:
    chunk: list[Prefix] = []
    size = 0
    for prefix in prefixes:
        n = 1 + (prefix.prefixlen + 7) // 8
        if size + n > room and chunk:
            yield chunk
            chunk, size = [], 0
        chunk.append(prefix)
        size += n
    if chunk:
        yield chunk


def end_of_rib(family: Family, *, asn4: bool = True) -> bytes:
    """The End-of-RIB marker for ``family`` (RFC 4724 section 2)."""
    return wire.encode(wire.end_of_rib(family), asn4=asn4)



class AdjRibIn:
    """Which prefixes a peer currently announces to us (RFC 4271 Adj-RIB-In, presence only).

    The speaker uses no received route, so no attributes are kept, and each
    prefix is held as one integer rather than an ``ipaddress`` object: a spine
    that sends 100,000 /32s back costs a few megabytes, not tens.
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: set[int] = set()

    @staticmethod
    def _key(prefix: Prefix) -> int:
        key = int(prefix.network_address) << 8 | prefix.prefixlen
        return key if prefix.version == 4 else key | _V6_TAG

    def announce(self, prefixes: Iterable[Prefix]) -> None:
        self._keys.update(map(self._key, prefixes))

    def withdraw(self, prefixes: Iterable[Prefix]) -> None:
        self._keys.difference_update(map(self._key, prefixes))

    def clear(self) -> None:
        self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, prefix: object) -> bool:
        return isinstance(prefix, IPv4Network | IPv6Network) and self._key(prefix) in self._keys

    def __iter__(self) -> Iterator[Prefix]:
        for key in self._keys:
            length = key & 0xFF
            if key & _V6_TAG:
                yield IPv6Network(((key ^ _V6_TAG) >> 8, length))
            else:
                yield IPv4Network((key >> 8, length))


_V6_TAG = 1 << 136  # above any IPv6 address shifted by 8: tells the families apart
