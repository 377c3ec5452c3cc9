"""Path attributes and the UPDATE body (RFC 4271 4.3/5, RFC 4760, RFC 6793, RFC 7606).

Decoding applies RFC 7606: a malformed attribute costs, per attribute type,
either the whole UPDATE ("treat-as-withdraw": the NLRI are returned intact and
``Update.treat_as_withdraw`` is set), only that attribute ("attribute
discard"), or the session (:class:`BgpError`).  When several errors occur the
strongest approach wins (RFC 7606 3.h): a reset is raised at once, and
treat-as-withdraw beats discard because both are reported.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address

from .model import (
    AFI_IPV4,
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    AS_TRANS,
    Address,
    Aggregator,
    AsPath,
    AsPathSegment,
    AtomicAggregate,
    AttrFlag,
    AttrType,
    BgpError,
    ClusterList,
    Communities,
    ErrorCode,
    ExtendedCommunities,
    HeaderSubcode,
    LargeCommunities,
    LargeCommunity,
    LocalPref,
    MpReachNlri,
    MpUnreachNlri,
    MultiExitDisc,
    NextHop,
    Origin,
    OriginatorId,
    OriginValue,
    PathAttribute,
    UnknownAttribute,
    Update,
    UpdateSubcode,
)
from .prefixes import decode_prefixes, decode_prefixes4, encode_nlri

_OPTIONAL = AttrFlag.OPTIONAL.value
_TRANSITIVE = AttrFlag.TRANSITIVE.value
_PARTIAL = AttrFlag.PARTIAL.value
_EXTENDED = AttrFlag.EXTENDED_LENGTH.value
_WELL_KNOWN = _TRANSITIVE  # well-known attributes are transitive, never optional
_OPTIONAL_NON_TRANSITIVE = _OPTIONAL
_OPTIONAL_TRANSITIVE = _OPTIONAL | _TRANSITIVE

_PREFIX_FAMILIES = frozenset({(1, 1), (1, 2), (2, 1), (2, 2)})  # unicast and multicast NLRI
_MAX_ASN = 0xFFFFFFFF

# --- encoding ----------------------------------------------------------------


def _attribute(flags: int, code: int, value: bytes) -> bytes:
    length = len(value)
    if length > 0xFFFF:
        raise ValueError(f"attribute {code} is {length} octets, more than 65535")
    if length > 255:
        return bytes((flags | _EXTENDED, code)) + length.to_bytes(2, "big") + value
    return bytes((flags & ~_EXTENDED & 0xFF, code, length)) + value


def _as_path_value(segments: Iterable[AsPathSegment], *, four_octet: bool) -> bytes:
    parts: list[bytes] = []
    for segment in segments:
        asns = segment.asns
        if segment.type not in (AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET):
            raise ValueError(f"unknown AS_PATH segment type {segment.type}")
        if not asns:
            raise ValueError("empty AS_PATH segment (malformed per RFC 7606 7.2)")
        if min(asns) < 1 or max(asns) > _MAX_ASN:
            raise ValueError("AS numbers must be 1..4294967295 (RFC 7607: never AS 0)")
        if not four_octet:
            asns = tuple(AS_TRANS if asn > 0xFFFF else asn for asn in asns)
        if len(asns) > 255 and segment.type in (AS_SET, AS_CONFED_SET):
            raise ValueError("an AS_SET holds at most 255 AS numbers")
        code = "I" if four_octet else "H"
        for start in range(0, len(asns), 255):  # long sequences span several segments
            chunk = asns[start : start + 255]
            parts.append(struct.pack(f"!BB{len(chunk)}{code}", segment.type, len(chunk), *chunk))
    return b"".join(parts)


def _encode_one(attr: PathAttribute, asn4: bool) -> list[tuple[int, bytes]]:
    """Encode one attribute as ``(type code, bytes)`` pairs; some need a companion AS4_* one."""
    if isinstance(attr, Origin):
        return [(1, _attribute(_WELL_KNOWN, 1, bytes((attr.value,))))]
    if isinstance(attr, AsPath):
        if asn4:
            return [(2, _attribute(_WELL_KNOWN, 2, _as_path_value(attr.segments, four_octet=True)))]
        out = [(2, _attribute(_WELL_KNOWN, 2, _as_path_value(attr.segments, four_octet=False)))]
        # RFC 6793 4.2.2: a NEW speaker tells an OLD one the real path in AS4_PATH,
        # which never carries confederation segments.
        plain = [s for s in attr.segments if s.type in (AS_SET, AS_SEQUENCE)]
        if any(asn > 0xFFFF for segment in plain for asn in segment.asns):
            value = _as_path_value(plain, four_octet=True)
            out.append((17, _attribute(_OPTIONAL_TRANSITIVE, 17, value)))
        return out
    if isinstance(attr, NextHop):
        return [(3, _attribute(_WELL_KNOWN, 3, attr.address.packed))]
    if isinstance(attr, MultiExitDisc):
        return [(4, _attribute(_OPTIONAL_NON_TRANSITIVE, 4, attr.value.to_bytes(4, "big")))]
    if isinstance(attr, LocalPref):
        return [(5, _attribute(_WELL_KNOWN, 5, attr.value.to_bytes(4, "big")))]
    if isinstance(attr, AtomicAggregate):
        return [(6, _attribute(_WELL_KNOWN, 6, b""))]
    if isinstance(attr, Aggregator):
        if not 1 <= attr.asn <= _MAX_ASN:
            raise ValueError("AGGREGATOR AS must be 1..4294967295 (RFC 7607)")
        address = attr.address.packed
        if asn4:
            return [(7, _attribute(_OPTIONAL_TRANSITIVE, 7, attr.asn.to_bytes(4, "big") + address))]
        if attr.asn <= 0xFFFF:
            return [(7, _attribute(_OPTIONAL_TRANSITIVE, 7, attr.asn.to_bytes(2, "big") + address))]
        return [  # RFC 6793 4.2.2
            (7, _attribute(_OPTIONAL_TRANSITIVE, 7, AS_TRANS.to_bytes(2, "big") + address)),
            (18, _attribute(_OPTIONAL_TRANSITIVE, 18, attr.asn.to_bytes(4, "big") + address)),
        ]
    if isinstance(attr, Communities):
        value = struct.pack(f"!{len(attr.values)}I", *attr.values)
        return [(8, _attribute(_OPTIONAL_TRANSITIVE, 8, value))]
    if isinstance(attr, OriginatorId):
        return [(9, _attribute(_OPTIONAL_NON_TRANSITIVE, 9, attr.address.packed))]
    if isinstance(attr, ClusterList):
        value = b"".join(cluster_id.packed for cluster_id in attr.cluster_ids)
        return [(10, _attribute(_OPTIONAL_NON_TRANSITIVE, 10, value))]
    if isinstance(attr, ExtendedCommunities):
        value = struct.pack(f"!{len(attr.values)}Q", *attr.values)
        return [(16, _attribute(_OPTIONAL_TRANSITIVE, 16, value))]
    if isinstance(attr, LargeCommunities):
        value = b"".join(
            struct.pack("!III", c.global_admin, c.local1, c.local2) for c in attr.values
        )
        return [(32, _attribute(_OPTIONAL_TRANSITIVE, 32, value))]
    if isinstance(attr, MpReachNlri):
        next_hop = b"".join(address.packed for address in attr.next_hops)
        value = b"".join(
            (
                struct.pack("!HBB", attr.afi, attr.safi, len(next_hop)),
                next_hop,
                b"\x00",  # reserved (formerly the SNPA count)
                encode_nlri(attr.nlri),
            )
        )
        return [(14, _attribute(_OPTIONAL_NON_TRANSITIVE, 14, value))]
    if isinstance(attr, MpUnreachNlri):
        value = struct.pack("!HB", attr.afi, attr.safi) + encode_nlri(attr.withdrawn)
        return [(15, _attribute(_OPTIONAL_NON_TRANSITIVE, 15, value))]
    if isinstance(attr, UnknownAttribute):
        return [(attr.type, _attribute(attr.flags & 0xE0, attr.type, attr.value))]
    raise TypeError(f"not a path attribute: {attr!r}")


def _order(code: int) -> int:
    # RFC 7606 5.1: MP_REACH/MP_UNREACH first; RFC 4271 5: the rest by ascending type code.
    return code - 256 if code in (14, 15) else code


def encode_path_attributes(attrs: Iterable[PathAttribute], *, asn4: bool = True) -> bytes:
    """The Path Attributes field of an UPDATE (without its length).

    Attributes are emitted MP_REACH/MP_UNREACH first, then by type code, whatever
    order they are given in.  With ``asn4=False`` (the peer lacks capability 65)
    AS numbers that do not fit two octets become AS_TRANS and AS4_PATH /
    AS4_AGGREGATOR carry the real ones (RFC 6793).  Raises ValueError for a
    duplicate attribute or a value that does not fit its field.
    """
    encoded: list[tuple[int, bytes]] = []
    try:
        for attr in attrs:
            encoded.extend(_encode_one(attr, asn4))
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"path attribute value out of range: {exc}") from exc
    codes = [code for code, _ in encoded]
    if len(set(codes)) != len(codes):
        raise ValueError(f"duplicate path attribute in {sorted(codes)}")
    encoded.sort(key=lambda item: _order(item[0]))
    return b"".join(data for _, data in encoded)


def encode_update_body(withdrawn: bytes, attributes: bytes, nlri: bytes) -> bytes:
    """An UPDATE body from its three encoded fields, adding both length fields."""
    return b"".join(
        (
            len(withdrawn).to_bytes(2, "big"),
            withdrawn,
            len(attributes).to_bytes(2, "big"),
            attributes,
            nlri,
        )
    )


def encode_update(update: Update, *, asn4: bool = True) -> bytes:
    """The body of an UPDATE message."""
    for prefix in update.withdrawn + update.nlri:
        if prefix.version != 4:
            raise ValueError(f"{prefix} is not IPv4; IPv6 travels in MP_REACH/MP_UNREACH")
    return encode_update_body(
        encode_nlri(update.withdrawn),
        encode_path_attributes(update.attributes, asn4=asn4),
        encode_nlri(update.nlri),
    )


# --- decoding ------------------------------------------------------------------


class _Malformed(Exception):
    """An attribute RFC 7606 calls malformed; the caller applies that attribute's approach."""


class _Approach:
    WITHDRAW = "treat-as-withdraw"
    DISCARD = "attribute discard"
    RESET = "session reset"


def _fixed(value: bytes, length: int) -> None:
    if len(value) != length:
        raise _Malformed(f"length {len(value)}, expected {length}")


def _multiple(value: bytes, size: int) -> None:
    if not value or len(value) % size:
        raise _Malformed(f"length {len(value)} is not a non-zero multiple of {size}")


def _decode_origin(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    _fixed(value, 1)
    if value[0] > 2:
        raise _Malformed(f"undefined value {value[0]}")
    return Origin(OriginValue(value[0]))


def _decode_segments(value: bytes, four_octet: bool) -> tuple[AsPathSegment, ...]:
    """RFC 7606 7.2: unknown segment types, zero-length segments, under- and overruns are malformed."""
    width = 4 if four_octet else 2
    code = "I" if four_octet else "H"
    segments: list[AsPathSegment] = []
    pos = 0
    end = len(value)
    while pos < end:
        if end - pos < 2:
            raise _Malformed("segment header truncated")
        kind, count = value[pos], value[pos + 1]
        if kind not in (AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET):
            raise _Malformed(f"unknown segment type {kind}")
        if count == 0:
            raise _Malformed("zero-length segment")
        nxt = pos + 2 + count * width
        if nxt > end:
            raise _Malformed("segment overruns the attribute")
        asns = struct.unpack_from(f"!{count}{code}", value, pos + 2)
        if 0 in asns:
            raise _Malformed("AS 0 in path (RFC 7607)")
        segments.append(AsPathSegment(kind, asns))
        pos = nxt
    return tuple(segments)


def _decode_as_path(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    return AsPath(_decode_segments(value, asn4))


_MARTIAN_NEXT_HOPS = (  # RFC 4271 6.3: not a valid IP host address
    (0x00000000, 0xFF000000),  # 0.0.0.0/8
    (0x7F000000, 0xFF000000),  # 127.0.0.0/8
    (0xE0000000, 0xE0000000),  # 224.0.0.0/3: multicast, class E, broadcast
)


def _decode_next_hop(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    _fixed(value, 4)
    address = int.from_bytes(value, "big")
    for network, mask in _MARTIAN_NEXT_HOPS:
        if address & mask == network:
            raise _Malformed(f"{IPv4Address(address)} is not a host address")
    return NextHop(IPv4Address(address))


def _decode_med(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    _fixed(value, 4)
    return MultiExitDisc(int.from_bytes(value, "big"))


def _decode_local_pref(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    _fixed(value, 4)
    return LocalPref(int.from_bytes(value, "big"))


def _decode_atomic_aggregate(
    flags: int, value: bytes, asn4: bool, notes: list[str]
) -> PathAttribute:
    _fixed(value, 0)
    return AtomicAggregate()


def _decode_aggregator(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    width = 4 if asn4 else 2
    _fixed(value, width + 4)
    asn = int.from_bytes(value[:width], "big")
    if asn == 0:
        raise _Malformed("AS 0 (RFC 7607)")
    return Aggregator(asn, IPv4Address(value[width:]))


def _decode_as4_aggregator(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    return _decode_aggregator(flags, value, True, notes)


def _decode_as4_path(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    if len(value) < 6 or len(value) % 2:  # RFC 6793 6
        raise _Malformed(f"length {len(value)}")
    segments = _decode_segments(value, True)
    plain = tuple(s for s in segments if s.type in (AS_SET, AS_SEQUENCE))
    if len(plain) != len(segments):
        notes.append("AS4_PATH: confederation segments dropped (RFC 6793 6)")
    return AsPath(plain)


def _decode_communities(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    _multiple(value, 4)
    return Communities(struct.unpack(f"!{len(value) // 4}I", value))


def _decode_originator_id(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    _fixed(value, 4)
    return OriginatorId(IPv4Address(value))


def _decode_cluster_list(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    _multiple(value, 4)
    return ClusterList(tuple(IPv4Address(value[i : i + 4]) for i in range(0, len(value), 4)))


def _decode_extended_communities(
    flags: int, value: bytes, asn4: bool, notes: list[str]
) -> PathAttribute:
    _multiple(value, 8)
    return ExtendedCommunities(struct.unpack(f"!{len(value) // 8}Q", value))


def _decode_large_communities(
    flags: int, value: bytes, asn4: bool, notes: list[str]
) -> PathAttribute:
    _multiple(value, 12)  # RFC 8092 6
    words = struct.unpack(f"!{len(value) // 4}I", value)
    return LargeCommunities(
        tuple(LargeCommunity(*words[i : i + 3]) for i in range(0, len(words), 3))
    )


def _next_hops(afi: int, data: bytes) -> tuple[Address, ...]:
    if afi == AFI_IPV4 and len(data) == 4:
        return (IPv4Address(data),)
    if len(data) == 16:  # IPv6, or IPv4 NLRI with an IPv6 next hop (RFC 8950)
        return (IPv6Address(data),)
    if len(data) == 32:  # global and link-local (RFC 2545 3)
        return (IPv6Address(data[:16]), IPv6Address(data[16:]))
    raise _Malformed(f"next hop length {len(data)} is wrong for AFI {afi}")


def _decode_mp_reach(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    if len(value) < 5:
        raise _Malformed(f"length {len(value)} < 5")
    afi, safi, hop_length = struct.unpack_from("!HBB", value)
    if (afi, safi) not in _PREFIX_FAMILIES:
        notes.append(f"MP_REACH_NLRI for unsupported AFI {afi} SAFI {safi} ignored")
        return UnknownAttribute(flags & 0xE0, 14, bytes(value))
    nlri_start = 4 + hop_length + 1
    if nlri_start > len(value):
        raise _Malformed(f"next hop length {hop_length} overruns the attribute")
    next_hops = _next_hops(afi, value[4 : 4 + hop_length])
    # RFC 7606 5.3: NLRI that cannot be parsed reset the session (3/10, raised inside).
    nlri = decode_prefixes(afi, value[nlri_start:], notes)
    return MpReachNlri(afi, safi, next_hops, nlri)


def _decode_mp_unreach(flags: int, value: bytes, asn4: bool, notes: list[str]) -> PathAttribute:
    if len(value) < 3:
        raise _Malformed(f"length {len(value)} < 3")
    afi, safi = struct.unpack_from("!HB", value)
    if (afi, safi) not in _PREFIX_FAMILIES:
        if len(value) == 3:  # End-of-RIB of a family we do not carry
            return MpUnreachNlri(afi, safi, ())
        notes.append(f"MP_UNREACH_NLRI for unsupported AFI {afi} SAFI {safi} ignored")
        return UnknownAttribute(flags & 0xE0, 15, bytes(value))
    return MpUnreachNlri(afi, safi, decode_prefixes(afi, value[3:], notes))


_Decoder = Callable[[int, bytes, bool, list[str]], PathAttribute]

# type code -> (name, Optional/Transitive flags, decoder, approach when malformed, RFC section)
_SPECS: dict[int, tuple[str, int, _Decoder, str, str]] = {
    1: ("ORIGIN", _WELL_KNOWN, _decode_origin, _Approach.WITHDRAW, "RFC 7606 7.1"),
    2: ("AS_PATH", _WELL_KNOWN, _decode_as_path, _Approach.WITHDRAW, "RFC 7606 7.2"),
    3: ("NEXT_HOP", _WELL_KNOWN, _decode_next_hop, _Approach.WITHDRAW, "RFC 7606 7.3"),
    4: (
        "MULTI_EXIT_DISC",
        _OPTIONAL_NON_TRANSITIVE,
        _decode_med,
        _Approach.WITHDRAW,
        "RFC 7606 7.4",
    ),
    5: ("LOCAL_PREF", _WELL_KNOWN, _decode_local_pref, _Approach.WITHDRAW, "RFC 7606 7.5"),
    6: (
        "ATOMIC_AGGREGATE",
        _WELL_KNOWN,
        _decode_atomic_aggregate,
        _Approach.DISCARD,
        "RFC 7606 7.6",
    ),
    7: ("AGGREGATOR", _OPTIONAL_TRANSITIVE, _decode_aggregator, _Approach.DISCARD, "RFC 7606 7.7"),
    8: (
        "COMMUNITIES",
        _OPTIONAL_TRANSITIVE,
        _decode_communities,
        _Approach.WITHDRAW,
        "RFC 7606 7.8",
    ),
    9: (
        "ORIGINATOR_ID",
        _OPTIONAL_NON_TRANSITIVE,
        _decode_originator_id,
        _Approach.WITHDRAW,
        "RFC 7606 7.9",
    ),
    10: (
        "CLUSTER_LIST",
        _OPTIONAL_NON_TRANSITIVE,
        _decode_cluster_list,
        _Approach.WITHDRAW,
        "RFC 7606 7.10",
    ),
    14: (
        "MP_REACH_NLRI",
        _OPTIONAL_NON_TRANSITIVE,
        _decode_mp_reach,
        _Approach.RESET,
        "RFC 7606 7.11, RFC 4760 7",
    ),
    15: (
        "MP_UNREACH_NLRI",
        _OPTIONAL_NON_TRANSITIVE,
        _decode_mp_unreach,
        _Approach.RESET,
        "RFC 7606 7.12, RFC 4760 7",
    ),
    16: (
        "EXTENDED_COMMUNITIES",
        _OPTIONAL_TRANSITIVE,
        _decode_extended_communities,
        _Approach.WITHDRAW,
        "RFC 7606 7.14",
    ),
    17: ("AS4_PATH", _OPTIONAL_TRANSITIVE, _decode_as4_path, _Approach.DISCARD, "RFC 6793 6"),
    18: (
        "AS4_AGGREGATOR",
        _OPTIONAL_TRANSITIVE,
        _decode_as4_aggregator,
        _Approach.DISCARD,
        "RFC 6793 6",
    ),
    32: (
        "LARGE_COMMUNITIES",
        _OPTIONAL_TRANSITIVE,
        _decode_large_communities,
        _Approach.WITHDRAW,
        "RFC 8092 6",
    ),
}


def _path_length(segments: Iterable[AsPathSegment]) -> int:
    """AS count as RFC 4271 9.1.2.2 and RFC 6793 4.2.3 count it: a set is one, confederations zero."""
    total = 0
    for segment in segments:
        if segment.type == AS_SEQUENCE:
            total += len(segment.asns)
        elif segment.type == AS_SET:
            total += 1
    return total


def _merge_as4_path(as_path: AsPath, as4_path: AsPath) -> AsPath:
    """RFC 6793 4.2.3: leading ASes of AS_PATH (from OLD speakers) followed by AS4_PATH."""
    needed = _path_length(as_path.segments) - _path_length(as4_path.segments)
    leading: list[AsPathSegment] = []
    for segment in as_path.segments:
        if segment.type in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
            leading.append(segment)  # kept when leading or next to what is prepended
            continue
        if needed <= 0:
            break
        if segment.type == AS_SET:
            leading.append(segment)
            needed -= 1
            continue
        take = segment.asns[:needed]
        leading.append(AsPathSegment(AS_SEQUENCE, take))
        needed -= len(take)
    tail = list(as4_path.segments)
    if (
        leading
        and tail
        and leading[-1].type == tail[0].type == AS_SEQUENCE
        and len(leading[-1].asns) + len(tail[0].asns) <= 255
    ):  # one sequence, as the path was before an OLD speaker split it
        joined = AsPathSegment(AS_SEQUENCE, leading.pop().asns + tail.pop(0).asns)
        leading.append(joined)
    return AsPath((*leading, *tail))


def _reset(subcode: int, data: bytes, reason: str) -> BgpError:
    return BgpError(ErrorCode.UPDATE_MESSAGE, subcode, data, reason)


def decode_update(body: bytes, *, asn4: bool = True) -> Update:
    """Decode an UPDATE body with RFC 7606 error handling; raise BgpError for a reset."""
    end = len(body)
    if end < 4:
        raise BgpError(
            ErrorCode.MESSAGE_HEADER,
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            (end + 19).to_bytes(2, "big"),
            "UPDATE shorter than 23 octets",
        )
    withdrawn_length = int.from_bytes(body[:2], "big")
    if withdrawn_length + 4 > end:
        raise _reset(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", "Withdrawn Routes Length too large"
        )
    attrs_start = withdrawn_length + 4
    attrs_end = attrs_start + int.from_bytes(body[attrs_start - 2 : attrs_start], "big")
    if attrs_end > end:
        raise _reset(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", "Total Path Attribute Length too large"
        )

    notes: list[str] = []
    withdrawn = decode_prefixes4(body[2 : 2 + withdrawn_length], notes)
    nlri = decode_prefixes4(body[attrs_end:], notes)

    attributes: list[PathAttribute] = []
    discarded: list[int] = []
    seen: set[int] = set()
    withdraw = False
    as4_path: AsPath | None = None
    as4_aggregator: Aggregator | None = None
    pos = attrs_start
    while pos < attrs_end:
        # RFC 7606 4: a header or value overrunning the attributes field is treat-as-withdraw,
        # and Total Path Attribute Length still locates the NLRI.
        if attrs_end - pos < 3:
            notes.append("path attribute header truncated (treat-as-withdraw, RFC 7606 4)")
            withdraw = True
            break
        flags = body[pos]
        code = body[pos + 1]
        if flags & _EXTENDED:
            if attrs_end - pos < 4:
                notes.append("path attribute header truncated (treat-as-withdraw, RFC 7606 4)")
                withdraw = True
                break
            start = pos + 4
            length = int.from_bytes(body[pos + 2 : start], "big")
        else:
            start = pos + 3
            length = body[pos + 2]
        stop = start + length
        if stop > attrs_end:
            notes.append(
                f"attribute {code} length {length} overruns the attributes (treat-as-withdraw, RFC 7606 4)"
            )
            withdraw = True
            break
        raw = body[pos:stop]
        value = body[start:stop]
        pos = stop

        spec = _SPECS.get(code)
        name = spec[0] if spec else f"attribute {code}"
        if code in seen:  # RFC 7606 3.g
            if code in (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI):
                raise _reset(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", f"{name} appears twice")
            discarded.append(code)
            notes.append(f"{name} repeated; all but the first discarded (RFC 7606 3.g)")
            continue
        seen.add(code)

        if spec is None:
            if not flags & _OPTIONAL:
                raise _reset(
                    UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    bytes(raw),
                    f"unrecognised well-known attribute {code}",
                )
            attributes.append(UnknownAttribute(flags & 0xE0, code, bytes(value)))
            continue
        if asn4 and code in (AttrType.AS4_PATH, AttrType.AS4_AGGREGATOR):
            discarded.append(code)
            notes.append(f"{name} from a 4-octet-AS speaker discarded (RFC 6793 6)")
            continue

        _, expected, decoder, approach, section = spec
        flag_error = (flags & _OPTIONAL_TRANSITIVE) != expected or bool(
            flags & _PARTIAL and expected != _OPTIONAL_TRANSITIVE
        )
        try:
            if flag_error:
                # RFC 7606 3.c: conflicting Optional/Transitive (or Partial, RFC 4271 4.3) bits
                raise _Malformed(f"flags {flags:#04x}")
            attr = decoder(flags, value, asn4, notes)
        except _Malformed as exc:
            if approach == _Approach.RESET:
                # RFC 4760 7: "UPDATE Message Error"/"Optional Attribute Error"; a flags conflict
                # keeps RFC 4271's Attribute Flags Error.  Both carry the attribute as data.
                subcode = (
                    UpdateSubcode.ATTRIBUTE_FLAGS_ERROR
                    if flag_error
                    else UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR
                )
                raise _reset(subcode, bytes(raw), f"malformed {name}: {exc}") from None
            notes.append(f"malformed {name}: {exc} ({approach}, {section})")
            if approach == _Approach.DISCARD:
                discarded.append(code)
            else:
                withdraw = True
            continue
        if code == AttrType.AS4_PATH:
            assert isinstance(attr, AsPath)
            as4_path = attr
        elif code == AttrType.AS4_AGGREGATOR:
            assert isinstance(attr, Aggregator)
            as4_aggregator = attr
        else:
            attributes.append(attr)

    if as4_path is not None or as4_aggregator is not None:
        _apply_as4(attributes, as4_path, as4_aggregator, notes)

    reachable = bool(nlri) or any(isinstance(a, MpReachNlri) for a in attributes)
    if reachable:
        # RFC 7606 3.d; RFC 4760 3: NEXT_HOP only for NLRI outside MP_REACH_NLRI.
        missing = [AttrType.ORIGIN, AttrType.AS_PATH] + ([AttrType.NEXT_HOP] if nlri else [])
        absent = [m.name for m in missing if m not in seen]
        if absent:
            notes.append(f"missing {', '.join(absent)} (treat-as-withdraw, RFC 7606 3.d)")
            withdraw = True

    return Update(
        withdrawn=tuple(withdrawn),
        attributes=tuple(attributes),
        nlri=tuple(nlri),
        treat_as_withdraw=withdraw,
        discarded=tuple(discarded),
        errors=tuple(notes),
    )


def _apply_as4(
    attributes: list[PathAttribute],
    as4_path: AsPath | None,
    as4_aggregator: Aggregator | None,
    notes: list[str],
) -> None:
    """RFC 6793 4.2.3: rebuild the real AS_PATH / AGGREGATOR an OLD speaker passed on."""
    aggregator_at = next((i for i, a in enumerate(attributes) if isinstance(a, Aggregator)), None)
    if aggregator_at is not None:
        aggregator = attributes[aggregator_at]
        assert isinstance(aggregator, Aggregator)
        if aggregator.asn != AS_TRANS:
            notes.append(
                "AGGREGATOR is not AS_TRANS: AS4_AGGREGATOR and AS4_PATH ignored (RFC 6793 4.2.3)"
            )
            return
        if as4_aggregator is not None:
            attributes[aggregator_at] = as4_aggregator
    path_at = next((i for i, a in enumerate(attributes) if isinstance(a, AsPath)), None)
    if as4_path is None or path_at is None:
        return
    as_path = attributes[path_at]
    assert isinstance(as_path, AsPath)
    if _path_length(as_path.segments) < _path_length(as4_path.segments):
        notes.append("AS4_PATH longer than AS_PATH: ignored (RFC 6793 4.2.3)")
        return
    attributes[path_at] = _merge_as4_path(as_path, as4_path)
