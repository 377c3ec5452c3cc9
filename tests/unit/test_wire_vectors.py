"""Test vectors: hand-built bytes for every message, path attribute and capability.

Each vector is written from the RFC's field layout (comments name the fields),
decoded and compared with the expected object, then re-encoded and compared
with the bytes where the encoding is canonical.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import pytest

from spinelb.bgp.wire import (
    AS_CONFED_SEQUENCE,
    AS_SEQUENCE,
    AS_SET,
    AS_TRANS,
    IPV4_UNICAST,
    IPV6_UNICAST,
    MARKER,
    Aggregator,
    AsPath,
    AsPathSegment,
    AtomicAggregate,
    ClusterList,
    Communities,
    ExtendedCommunities,
    FourOctetAs,
    GracefulRestart,
    GracefulRestartFamily,
    Keepalive,
    LargeCommunities,
    LargeCommunity,
    LocalPref,
    MessageReader,
    MpReachNlri,
    MpUnreachNlri,
    MultiExitDisc,
    Multiprotocol,
    NextHop,
    Notification,
    Open,
    Origin,
    OriginatorId,
    OriginValue,
    PathAttribute,
    RouteRefresh,
    RouteRefreshCapability,
    UnknownAttribute,
    UnknownCapability,
    Update,
    decode,
    decode_message,
    encode,
    encode_nlri,
    encode_path_attributes,
    encode_prefix,
    encode_update_body,
    end_of_rib,
    end_of_rib_family,
    frame,
    shutdown_data,
    shutdown_reason,
)

HDR = "ff" * 16


def h(text: str) -> bytes:
    """Hex with spaces and comments allowed: ``"40 01 01 00  # ORIGIN"``."""
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return bytes.fromhex("".join(lines))


# --- messages ------------------------------------------------------------------------------

MESSAGES: list[tuple[str, str, object]] = [
    ("keepalive", HDR + "0013 04", Keepalive()),
    ("notification hold timer expired", HDR + "0015 03 04 00", Notification(4, 0)),
    (
        "notification cease/admin shutdown with reason",
        HDR + "0019 03 06 02 03 627965",  # length 3, "bye"
        Notification(6, 2, b"\x03bye"),
    ),
    ("route-refresh ipv6 unicast", HDR + "0017 05 0002 00 01", RouteRefresh(2, 1)),
    ("route-refresh BoRR (RFC 7313)", HDR + "0017 05 0001 01 01", RouteRefresh(1, 1, 1)),
    ("end-of-rib ipv4", HDR + "0017 02 0000 0000", Update()),
    (
        "end-of-rib ipv6",
        HDR + "001d 02 0000 0006  800f 03 0002 01",
        Update(attributes=(MpUnreachNlri(2, 1, ()),)),
    ),
    (
        "update ipv4 announce",
        HDR
        + """0034 02  0000  0018
             40 01 01 00                        # ORIGIN IGP
             40 02 0a 02 02 0000fde9 0000fde8   # AS_PATH SEQ 65001 65000
             40 03 04 0afc010a                  # NEXT_HOP 10.252.1.10
             20 0a660a81                        # 10.102.10.129/32""",
        Update(
            attributes=(
                Origin(OriginValue.IGP),
                AsPath.sequence(65001, 65000),
                NextHop(IPv4Address("10.252.1.10")),
            ),
            nlri=(IPv4Network("10.102.10.129/32"),),
        ),
    ),
    (
        "update ipv4 withdraw of /32, /24, /0",
        HDR + "0021 02 000a 20 0a660a81  18 0a6614  00  0000",
        Update(
            withdrawn=(
                IPv4Network("10.102.10.129/32"),
                IPv4Network("10.102.20.0/24"),
                IPv4Network("0.0.0.0/0"),
            )
        ),
    ),
    (
        "update ipv6 announce via MP_REACH_NLRI with global and link-local next hop",
        HDR
        + """005d 02 0000 0046
             80 0e 36 0002 01 20                 # MP_REACH: AFI 2, SAFI 1, next hop length 32
                20010db8000000000000000000000001 # 2001:db8::1
                fe800000000000000000000000000001 # fe80::1
                00                               # reserved
                80 20010db8010000000000000000000001  # 2001:db8:100::1/128
             40 01 01 00
             40 02 06 02 01 0000fde9""",
        Update(
            attributes=(
                MpReachNlri(
                    2,
                    1,
                    (IPv6Address("2001:db8::1"), IPv6Address("fe80::1")),
                    (IPv6Network("2001:db8:100::1/128"),),
                ),
                Origin(),
                AsPath.sequence(65001),
            )
        ),
    ),
]


@pytest.mark.parametrize(("name", "hex_", "expected"), MESSAGES, ids=[m[0] for m in MESSAGES])
def test_message_vector(name: str, hex_: str, expected: object) -> None:
    data = h(hex_)
    assert decode_message(data) == expected
    assert encode(expected) == data  # type: ignore[arg-type]


# --- OPEN and capabilities ---------------------------------------------------------------

OPEN_HEAD = "04 fde9 005a 0afc010a"  # version 4, AS 65001, hold 90, id 10.252.1.10

CAPABILITIES: list[tuple[str, str, object]] = [
    ("multiprotocol ipv4 unicast", "01 04 0001 00 01", Multiprotocol(1, 1)),
    ("multiprotocol ipv6 unicast", "01 04 0002 00 01", Multiprotocol(2, 1)),
    ("route refresh", "02 00", RouteRefreshCapability()),
    (
        "graceful restart R bit, 120 s, ipv4 forwarding preserved",
        "40 06 8078 0001 01 80",
        GracefulRestart(120, True, False, (GracefulRestartFamily(1, 1, True),)),
    ),
    (
        "graceful restart N bit, 4095 s, two families",
        "40 0a 4fff 0001 01 00 0002 01 00",
        GracefulRestart(
            4095, False, True, (GracefulRestartFamily(1, 1), GracefulRestartFamily(2, 1))
        ),
    ),
    ("graceful restart helper only", "40 02 0000", GracefulRestart()),
    ("4-octet AS 4200000000", "41 04 fa56ea00", FourOctetAs(4_200_000_000)),
    ("enhanced route refresh kept unknown", "46 00", UnknownCapability(70, b"")),
    ("extended message kept unknown", "06 00", UnknownCapability(6, b"")),
    ("fqdn kept unknown", "49 04 02 6877 00", UnknownCapability(73, b"\x02hw\x00")),
]


@pytest.mark.parametrize(("name", "cap_hex", "cap"), CAPABILITIES, ids=[c[0] for c in CAPABILITIES])
def test_capability_vector(name: str, cap_hex: str, cap: object) -> None:
    cap_bytes = h(cap_hex)
    param = bytes((2, len(cap_bytes))) + cap_bytes
    body = h(OPEN_HEAD) + bytes((len(param),)) + param
    expected = Open(65001, 90, IPv4Address("10.252.1.10"), (cap,))  # type: ignore[arg-type]
    assert decode(1, body) == expected
    assert encode(expected) == frame(1, body)


def test_open_without_capabilities() -> None:
    data = h(HDR + "001d 01" + OPEN_HEAD + "00")
    assert decode_message(data) == Open(65001, 90, IPv4Address("10.252.1.10"))
    assert encode(Open(65001, 90, IPv4Address("10.252.1.10"))) == data


def test_open_several_capabilities_in_one_parameter() -> None:
    # RFC 5492 allows one parameter holding many capabilities, as some routers send.
    body = h(OPEN_HEAD + "10 02 0e  01 04 0001 00 01  02 00  41 04 0000fde9")
    assert decode(1, body) == Open(
        65001,
        90,
        IPv4Address("10.252.1.10"),
        (Multiprotocol(1, 1), RouteRefreshCapability(), FourOctetAs(65001)),
    )


def test_open_rfc9072_extended_optional_parameters() -> None:
    # Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length 5,
    # then a capabilities parameter with a 2-octet length holding "route refresh".
    body = h(OPEN_HEAD + "ff ff 0005  02 0002 0200")
    assert decode(1, body) == Open(
        65001, 90, IPv4Address("10.252.1.10"), (RouteRefreshCapability(),)
    )


def test_open_encoder_uses_rfc9072_when_parameters_exceed_255_octets() -> None:
    caps = tuple(UnknownCapability(200 + i, bytes(60)) for i in range(5))
    msg = Open(65001, 90, IPv4Address("10.252.1.10"), caps)
    data = encode(msg)
    assert data[19 + 9 : 19 + 11] == b"\xff\xff"
    assert decode_message(data) == msg


# What FRR 8.4.4 (`frr defaults datacenter`, ipv4 and ipv6 unicast active) sent to
# a listener in a network namespace; captured for this test.
FRR_8_4_OPEN = (
    "ffffffffffffffffffffffffffffffff00780104fffd00090aff00015b02060104000100010206010400"
    "020001020280000202020002024600020641040000fffd02020600020a45080001010100020101020d49"
    "0b097370696e652d6361700002044002c0780210470e0001018000000000020180000000"
)


def test_open_as_frr_8_4_sends_it() -> None:
    msg = decode_message(bytes.fromhex(FRR_8_4_OPEN))
    assert isinstance(msg, Open)
    assert (msg.version, msg.my_as, msg.hold_time) == (4, 65533, 9)
    assert msg.bgp_id == IPv4Address("10.255.0.1")
    assert msg.asn == 65533
    caps = msg.capabilities
    assert Multiprotocol(1, 1) in caps and Multiprotocol(2, 1) in caps
    assert RouteRefreshCapability() in caps
    assert FourOctetAs(65533) in caps
    assert GracefulRestart(120, True, True, ()) in caps
    unknown = {c.code for c in caps if isinstance(c, UnknownCapability)}
    # old route refresh, extended message, add-path, hostname, enhanced RR, LLGR
    assert unknown == {128, 6, 69, 73, 70, 71}
    hostname = next(c for c in caps if isinstance(c, UnknownCapability) and c.code == 73)
    assert b"spine-cap" in hostname.value
    assert encode(msg) == bytes.fromhex(FRR_8_4_OPEN)  # one parameter per capability, as FRR


def test_open_asn_falls_back_to_my_as() -> None:
    assert Open(AS_TRANS, 90, IPv4Address("1.1.1.1"), (FourOctetAs(70000),)).asn == 70000
    assert Open(65001, 90, IPv4Address("1.1.1.1")).asn == 65001


# --- path attributes -------------------------------------------------------------------------

ATTRIBUTES: list[tuple[str, str, PathAttribute, bool]] = [
    # (name, attribute bytes, object, asn4)
    ("ORIGIN IGP", "40 01 01 00", Origin(OriginValue.IGP), True),
    ("ORIGIN EGP", "40 01 01 01", Origin(OriginValue.EGP), True),
    ("ORIGIN INCOMPLETE", "40 01 01 02", Origin(OriginValue.INCOMPLETE), True),
    ("AS_PATH empty (iBGP)", "40 02 00", AsPath(), True),
    (
        "AS_PATH 4-octet",
        "40 02 0a 02 02 0000fde9 fa56ea00",
        AsPath.sequence(65001, 4_200_000_000),
        True,
    ),
    ("AS_PATH 2-octet", "40 02 06 02 02 fde9 fde8", AsPath.sequence(65001, 65000), False),
    (
        "AS_PATH sequence then set",
        "40 02 10  02 01 0000fde9  01 02 0000fdea 0000fdeb",
        AsPath((AsPathSegment(AS_SEQUENCE, (65001,)), AsPathSegment(AS_SET, (65002, 65003)))),
        True,
    ),
    (
        "AS_PATH confederation sequence first",
        "40 02 0c  03 01 0000fc00  02 01 0000fde9",
        AsPath((AsPathSegment(AS_CONFED_SEQUENCE, (64512,)), AsPathSegment(AS_SEQUENCE, (65001,)))),
        True,
    ),
    ("NEXT_HOP", "40 03 04 0afc010a", NextHop(IPv4Address("10.252.1.10")), True),
    ("MULTI_EXIT_DISC", "80 04 04 00000064", MultiExitDisc(100), True),
    ("LOCAL_PREF", "40 05 04 000000c8", LocalPref(200), True),
    ("ATOMIC_AGGREGATE", "40 06 00", AtomicAggregate(), True),
    (
        "AGGREGATOR 4-octet",
        "c0 07 08 0000fde9 0a000001",
        Aggregator(65001, IPv4Address("10.0.0.1")),
        True,
    ),
    (
        "AGGREGATOR 2-octet",
        "c0 07 06 fde9 0a000001",
        Aggregator(65001, IPv4Address("10.0.0.1")),
        False,
    ),
    (
        "COMMUNITIES 65533:100 and NO_EXPORT",
        "c0 08 08 fffd0064 ffffff01",
        Communities((0xFFFD0064, 0xFFFFFF01)),
        True,
    ),
    ("ORIGINATOR_ID", "80 09 04 0a000002", OriginatorId(IPv4Address("10.0.0.2")), True),
    (
        "CLUSTER_LIST",
        "80 0a 08 0a000003 0a000004",
        ClusterList((IPv4Address("10.0.0.3"), IPv4Address("10.0.0.4"))),
        True,
    ),
    (
        "EXTENDED_COMMUNITIES route target 65001:100",
        "c0 10 08 0002fde900000064",
        ExtendedCommunities((0x0002FDE900000064,)),
        True,
    ),
    (
        "LARGE_COMMUNITIES 65533:1:1",
        "c0 20 0c 0000fffd 00000001 00000001",
        LargeCommunities((LargeCommunity(65533, 1, 1),)),
        True,
    ),
    (
        "MP_REACH_NLRI ipv6 global next hop",
        "80 0e 26 0002 01 10 20010db8000000000000000000000001 00"
        " 80 20010db8010000000000000000000001",
        MpReachNlri(2, 1, (IPv6Address("2001:db8::1"),), (IPv6Network("2001:db8:100::1/128"),)),
        True,
    ),
    (
        "MP_REACH_NLRI ipv6 /48 and /0",
        "80 0e 1d 0002 01 10 20010db8000000000000000000000001 00  30 20010db80200  00",
        MpReachNlri(
            2,
            1,
            (IPv6Address("2001:db8::1"),),
            (IPv6Network("2001:db8:200::/48"), IPv6Network("::/0")),
        ),
        True,
    ),
    (
        "MP_REACH_NLRI ipv4 unicast",
        "80 0e 0e 0001 01 04 0a000001 00 20 0a660a81",
        MpReachNlri(1, 1, (IPv4Address("10.0.0.1"),), (IPv4Network("10.102.10.129/32"),)),
        True,
    ),
    (
        "MP_UNREACH_NLRI ipv6",
        "80 0f 14 0002 01 80 20010db8010000000000000000000001",
        MpUnreachNlri(2, 1, (IPv6Network("2001:db8:100::1/128"),)),
        True,
    ),
    ("MP_UNREACH_NLRI end-of-rib", "80 0f 03 0002 01", MpUnreachNlri(2, 1, ()), True),
    ("unknown optional transitive", "c0 63 02 abcd", UnknownAttribute(0xC0, 99, b"\xab\xcd"), True),
    ("unknown optional partial", "e0 64 00", UnknownAttribute(0xE0, 100, b""), True),
    ("unknown optional non-transitive", "80 65 01 01", UnknownAttribute(0x80, 101, b"\x01"), True),
]


@pytest.mark.parametrize(
    ("name", "attr_hex", "attr", "asn4"), ATTRIBUTES, ids=[a[0] for a in ATTRIBUTES]
)
def test_attribute_vector(name: str, attr_hex: str, attr: PathAttribute, asn4: bool) -> None:
    data = h(attr_hex)
    assert encode_path_attributes([attr], asn4=asn4) == data
    # reachable NLRI need ORIGIN and AS_PATH (RFC 4760 3), else treat-as-withdraw
    mandatory: tuple[PathAttribute, ...] = (
        (Origin(), AsPath()) if isinstance(attr, MpReachNlri) else ()
    )
    data += encode_path_attributes(mandatory)
    update = decode(2, encode_update_body(b"", data, b""), asn4=asn4)
    assert isinstance(update, Update)
    assert update.attributes == (attr, *mandatory)
    assert not update.treat_as_withdraw and not update.discarded, update.errors


def test_extended_length_flag_accepted_on_any_attribute() -> None:
    # RFC 7606 3.c: Extended Length on a short attribute is fine; we re-encode minimally.
    update = decode(2, encode_update_body(b"", h("50 01 0001 00  d0 08 0004 fffd0064"), b""))
    assert isinstance(update, Update)
    assert update.attributes == (Origin(), Communities((0xFFFD0064,)))
    assert not update.errors


def test_long_attribute_uses_extended_length() -> None:
    path = AsPath.sequence(*range(1, 71))  # 2 + 70 * 4 = 282 octets
    data = encode_path_attributes([path])
    assert data[:4] == h("50 02 011a")
    update = decode(2, encode_update_body(b"", data, b""))
    assert isinstance(update, Update) and update.attributes == (path,)


def test_long_as_sequence_is_split_into_segments_of_255() -> None:
    data = encode_path_attributes([AsPath.sequence(*range(1, 301))])
    update = decode(2, encode_update_body(b"", data, b""))
    assert isinstance(update, Update)
    (path,) = update.attributes
    assert isinstance(path, AsPath)
    assert [len(s.asns) for s in path.segments] == [255, 45]
    assert [asn for s in path.segments for asn in s.asns] == list(range(1, 301))


def test_attributes_are_emitted_mp_first_then_by_type_code() -> None:
    attrs = [
        LargeCommunities((LargeCommunity(1, 2, 3),)),
        NextHop(IPv4Address("10.0.0.1")),
        Origin(),
        MpUnreachNlri(2, 1, ()),
        AsPath.sequence(65001),
    ]
    data = encode_path_attributes(attrs)
    codes = []
    pos = 0
    while pos < len(data):
        codes.append(data[pos + 1])
        pos += 3 + data[pos + 2]
    assert codes == [15, 1, 2, 3, 32]


# --- RFC 6793: 4-octet ASNs to and from a 2-octet speaker -----------------------------------


def test_as_trans_and_as4_path_towards_old_speaker() -> None:
    attrs = [
        AsPath.sequence(65001, 4_200_000_000),
        Aggregator(4_200_000_000, IPv4Address("10.0.0.1")),
    ]
    data = encode_path_attributes(attrs, asn4=False)
    assert data == h(
        """40 02 06 02 02 fde9 5ba0                 # AS_PATH 65001 AS_TRANS
           c0 07 06 5ba0 0a000001                   # AGGREGATOR AS_TRANS
           c0 11 0a 02 02 0000fde9 fa56ea00         # AS4_PATH
           c0 12 08 fa56ea00 0a000001               # AS4_AGGREGATOR"""
    )
    update = decode(2, encode_update_body(b"", data, b""), asn4=False)
    assert isinstance(update, Update)
    assert update.attributes == tuple(attrs)


def test_no_as4_path_when_every_asn_fits_two_octets() -> None:
    data = encode_path_attributes([AsPath.sequence(65001, 65002)], asn4=False)
    assert data == h("40 02 06 02 02 fde9 fdea")


def test_as4_path_from_old_speaker_is_merged_with_prepended_asns() -> None:
    # An OLD speaker (65010) prepended itself to a path whose AS4_PATH it passed on.
    data = h(
        """40 02 08 02 03 fdf2 5ba0 fde9
           c0 11 0a 02 02 fa56ea00 0000fde9"""
    )
    update = decode(2, encode_update_body(b"", data, b""), asn4=False)
    assert isinstance(update, Update)
    assert update.attributes == (AsPath.sequence(65010, 4_200_000_000, 65001),)


def test_as4_path_ignored_when_longer_than_as_path() -> None:
    data = h("40 02 04 02 01 5ba0  c0 11 0a 02 02 fa56ea00 0000fde9")
    update = decode(2, encode_update_body(b"", data, b""), asn4=False)
    assert isinstance(update, Update)
    assert update.attributes == (AsPath.sequence(AS_TRANS),)
    assert any("AS4_PATH" in e for e in update.errors)


def test_as4_attributes_ignored_when_aggregator_is_not_as_trans() -> None:
    # RFC 6793 4.2.3: a non-AS_TRANS AGGREGATOR means an OLD speaker aggregated.
    data = h(
        """40 02 04 02 01 5ba0
           c0 07 06 fde9 0a000001
           c0 11 06 02 01 fa56ea00
           c0 12 08 fa56ea00 0a000001"""
    )
    update = decode(2, encode_update_body(b"", data, b""), asn4=False)
    assert isinstance(update, Update)
    assert update.attributes == (
        AsPath.sequence(AS_TRANS),
        Aggregator(65001, IPv4Address("10.0.0.1")),
    )


def test_as4_path_confederation_segments_dropped() -> None:
    data = h("40 02 04 02 01 5ba0  c0 11 0c 03 01 0000fc00 02 01 fa56ea00")
    update = decode(2, encode_update_body(b"", data, b""), asn4=False)
    assert isinstance(update, Update)
    assert update.attributes == (AsPath.sequence(4_200_000_000),)


# --- prefixes ---------------------------------------------------------------------------------

PREFIXES = [
    ("10.102.10.129/32", "20 0a660a81"),
    ("10.102.0.0/16", "10 0a66"),
    ("10.102.0.0/17", "11 0a6600"),
    ("0.0.0.0/0", "00"),
    ("2001:db8::/32", "20 20010db8"),
    ("2001:db8:100::1/128", "80 20010db8010000000000000000000001"),
    ("::/0", "00"),
]


@pytest.mark.parametrize(("prefix", "hex_"), PREFIXES)
def test_encode_prefix(prefix: str, hex_: str) -> None:
    net = IPv4Network(prefix) if "." in prefix else IPv6Network(prefix)
    assert encode_prefix(net) == h(hex_)


def test_encode_nlri_concatenates() -> None:
    nets = [IPv4Network("10.0.0.1/32"), IPv4Network("10.1.0.0/16")]
    assert encode_nlri(nets) == h("20 0a000001 10 0a01")


def test_decoded_prefixes_behave_like_constructed_ones() -> None:
    update = decode(2, encode_update_body(h("20 0a000001 1f 0a000002 18 0a0000"), b"", b""))
    assert isinstance(update, Update)
    host, pair, net = update.withdrawn
    for got in update.withdrawn:
        ref = IPv4Network(str(got))
        assert got == ref and hash(got) == hash(ref) and repr(got) == repr(ref)
        assert list(got.hosts())[:5] == list(ref.hosts())[:5]
        assert got.broadcast_address == ref.broadcast_address
    assert list(host.hosts()) == [IPv4Address("10.0.0.1")]
    assert list(pair.hosts()) == [IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3")]
    assert net.num_addresses == 256
    assert {host, IPv4Network("10.0.0.1/32")} == {host}


# --- End-of-RIB and shutdown communication ------------------------------------------------------


def test_end_of_rib() -> None:
    assert encode(end_of_rib(IPV4_UNICAST)) == h(HDR + "0017 02 0000 0000")
    assert encode(end_of_rib(IPV6_UNICAST)) == h(HDR + "001d 02 0000 0006 800f 03 0002 01")
    for family in (IPV4_UNICAST, IPV6_UNICAST, (25, 70)):
        msg = decode_message(encode(end_of_rib(family)))
        assert isinstance(msg, Update)
        assert end_of_rib_family(msg) == family


def test_not_end_of_rib() -> None:
    assert end_of_rib_family(Update(withdrawn=(IPv4Network("10.0.0.0/8"),))) is None
    assert end_of_rib_family(Update(attributes=(Origin(),))) is None
    assert (
        end_of_rib_family(
            Update(attributes=(MpUnreachNlri(2, 1, (IPv6Network("2001:db8::/32"),)),))
        )
        is None
    )
    # an UPDATE whose only attribute was discarded is not an End-of-RIB
    discarded = decode(2, encode_update_body(b"", h("40 06 01 00"), b""))
    assert isinstance(discarded, Update)
    assert end_of_rib_family(discarded) is None


def test_shutdown_communication() -> None:
    assert shutdown_data("bye") == b"\x03bye"
    assert shutdown_reason(b"\x03bye") == "bye"
    assert shutdown_data("") == b"\x00"
    assert shutdown_reason(b"\x00") == ""
    long = "é" * 200  # 400 octets of UTF-8
    data = shutdown_data(long)
    assert data[0] == 254 and len(data) == 255  # cut on a character boundary
    assert shutdown_reason(data) == "é" * 127
    assert len(shutdown_data("a" * 300)) == 256


@pytest.mark.parametrize("data", [b"", b"\x05abc", b"\x02\xff\xfe"])
def test_shutdown_reason_malformed(data: bytes) -> None:
    assert shutdown_reason(data) is None


# --- the stream reader ----------------------------------------------------------------------------


def test_reader_splits_a_stream_fed_one_octet_at_a_time() -> None:
    stream = (
        encode(Keepalive())
        + bytes.fromhex(FRR_8_4_OPEN)
        + encode(end_of_rib(IPV6_UNICAST))
        + encode(Notification(6, 2, shutdown_data("maintenance")))
    )
    reader = MessageReader()
    got: list[tuple[int, bytes]] = []
    for octet in stream:
        reader.feed(bytes((octet,)))
        got.extend(reader.messages())
    assert [t for t, _ in got] == [4, 1, 2, 3]
    assert got[0][1] == b""
    assert decode(*got[3]) == Notification(6, 2, b"\x0bmaintenance")
    assert reader.pending == 0


def test_reader_many_messages_in_one_chunk_and_a_partial_tail() -> None:
    one = encode(Keepalive())
    reader = MessageReader()
    reader.feed(one * 100 + one[:7])
    assert len(list(reader.messages())) == 100
    assert reader.pending == 7
    reader.feed(one[7:])
    assert list(reader.messages()) == [(4, b"")]


def test_reader_resumes_after_consumer_stops_early() -> None:
    reader = MessageReader()
    reader.feed(encode(Keepalive()) * 3)
    first = next(iter(reader.messages()))
    assert first == (4, b"")
    assert len(list(reader.messages())) == 2


def test_marker_constant() -> None:
    assert MARKER == b"\xff" * 16
