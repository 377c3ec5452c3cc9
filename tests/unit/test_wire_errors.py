"""Error handling: message header (RFC 4271 6.1), OPEN (6.2), UPDATE (6.3 as revised by RFC 7606).

Every case states the outcome the RFCs prescribe: a session reset with the
exact NOTIFICATION code, subcode and data; treat-as-withdraw; or attribute
discard.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network

import pytest

from spinelb.bgp.wire import (
    AsPath,
    BgpError,
    Communities,
    MessageReader,
    MpReachNlri,
    MultiExitDisc,
    NextHop,
    Notification,
    Open,
    Origin,
    UnknownAttribute,
    Update,
    decode,
    decode_message,
    encode,
    encode_update_body,
    frame,
)

HDR = "ff" * 16


def h(text: str) -> bytes:
    lines = [line.split("#", 1)[0] for line in text.splitlines()]
    return bytes.fromhex("".join(lines))


def raises(data: bytes, *, asn4: bool = True) -> BgpError:
    with pytest.raises(BgpError) as info:
        decode_message(data, asn4=asn4)
    return info.value


# --- message header ----------------------------------------------------------------------------

HEADER_CASES = [
    # (name, message hex, code, subcode, data hex)
    ("marker not all ones", "ff" * 15 + "fe" + "0013 04", 1, 1, ""),
    ("length below 19", HDR + "0012 04", 1, 2, "0012"),
    ("length above 4096", HDR + "1001 04", 1, 2, "1001"),
    ("type 0", HDR + "0013 00", 1, 3, "00"),
    ("type 6", HDR + "0013 06", 1, 3, "06"),
    ("OPEN shorter than 29", HDR + "001c 01" + "04 fde9 005a 0a000001", 1, 2, "001c"),
    ("UPDATE shorter than 23", HDR + "0016 02 000000", 1, 2, "0016"),
    ("NOTIFICATION shorter than 21", HDR + "0014 03 06", 1, 2, "0014"),
    ("KEEPALIVE with a body", HDR + "0014 04 00", 1, 2, "0014"),
    ("ROUTE-REFRESH too short for a subtype", HDR + "0015 05 0001", 1, 2, "0015"),
    ("ROUTE-REFRESH normal request too long", HDR + "0018 05 0001 00 01 00", 1, 2, "0018"),
    # RFC 7313 5: BoRR/EoRR of the wrong length: 7/1 with the whole message as data
    (
        "ROUTE-REFRESH BoRR too long",
        HDR + "0018 05 0001 01 01 00",
        7,
        1,
        HDR + "0018 05 0001 01 01 00",
    ),
    ("ROUTE-REFRESH EoRR too short", HDR + "0016 05 0001 02", 7, 1, HDR + "0016 05 0001 02"),
]


@pytest.mark.parametrize(
    ("name", "hex_", "code", "subcode", "data"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES]
)
def test_header_error(name: str, hex_: str, code: int, subcode: int, data: str) -> None:
    error = raises(h(hex_))
    assert (error.code, error.subcode, error.data) == (code, subcode, h(data))
    # the stream reader reports the same error
    reader = MessageReader()
    reader.feed(h(hex_) + bytes(64))
    with pytest.raises(BgpError) as info:
        list(reader.messages())
    assert (info.value.code, info.value.subcode, info.value.data) == (code, subcode, h(data))


def test_reader_rejects_a_bad_header_before_the_body_arrives() -> None:
    reader = MessageReader()
    reader.feed(h(HDR + "2000 02"))  # claims 8192 octets
    with pytest.raises(BgpError) as info:
        list(reader.messages())
    assert (info.value.code, info.value.subcode, info.value.data) == (1, 2, h("2000"))


def test_reader_waits_for_a_whole_header() -> None:
    reader = MessageReader()
    reader.feed(h(HDR + "00"))
    assert list(reader.messages()) == []


def test_decode_message_length_field_must_match() -> None:
    error = raises(encode(Notification(6, 2)) + b"\x00")
    assert (error.code, error.subcode, error.data) == (1, 2, h("0015"))
    error = raises(h("ffff"))
    assert (error.code, error.subcode) == (1, 2)


def test_decode_of_unknown_type() -> None:
    with pytest.raises(BgpError) as info:
        decode(9, b"")
    assert (info.value.code, info.value.subcode, info.value.data) == (1, 3, b"\x09")


def test_bgp_error_notification() -> None:
    assert BgpError(3, 1, b"x").notification() == Notification(3, 1, b"x")


# --- OPEN ------------------------------------------------------------------------------------------

OPEN_CASES = [
    # (name, OPEN body hex, code, subcode, data hex)
    ("version 3", "03 fde9 005a 0a000001 00", 2, 1, "0004"),  # data: highest version we speak
    ("version 5", "05 fde9 005a 0a000001 00", 2, 1, "0004"),
    ("peer AS 0 (RFC 7607)", "04 0000 005a 0a000001 00", 2, 2, ""),
    ("hold time 1", "04 fde9 0001 0a000001 00", 2, 6, ""),
    ("hold time 2", "04 fde9 0002 0a000001 00", 2, 6, ""),
    ("BGP identifier 0", "04 fde9 005a 00000000 00", 2, 3, ""),
    ("BGP identifier 255.255.255.255", "04 fde9 005a ffffffff 00", 2, 3, ""),
    ("optional parameter type 1 (authentication)", "04 fde9 005a 0a000001 03 01 01 00", 2, 4, ""),
    ("optional parameter type 3", "04 fde9 005a 0a000001 02 03 00", 2, 4, ""),
    ("optional parameters length too long", "04 fde9 005a 0a000001 05 02 02 02 00", 2, 0, ""),
    ("optional parameters length too short", "04 fde9 005a 0a000001 01 02 02 02 00", 2, 0, ""),
    ("parameter overruns", "04 fde9 005a 0a000001 03 02 05 02", 2, 0, ""),
    ("capability overruns its parameter", "04 fde9 005a 0a000001 04 02 02 01 04", 2, 0, ""),
    ("capability header truncated", "04 fde9 005a 0a000001 03 02 01 01", 2, 0, ""),
    # RFC 6793 gives no error for a bad capability 65; RFC 4271 6.2 makes it Unspecific
    ("4-octet AS capability of 2 octets", "04 fde9 005a 0a000001 06 02 04 41 02 fde9", 2, 0, ""),
    (
        "4-octet AS capability of 5 octets",
        "04 fde9 005a 0a000001 09 02 07 41 05 0000fde900",
        2,
        0,
        "",
    ),
    ("4-octet AS 0 (RFC 7607)", "04 5ba0 005a 0a000001 08 02 06 41 04 00000000", 2, 2, ""),
    (
        "multiprotocol capability of 3 octets",
        "04 fde9 005a 0a000001 07 02 05 01 03 000100",
        2,
        0,
        "",
    ),
    ("route refresh capability with a value", "04 fde9 005a 0a000001 05 02 03 02 01 00", 2, 0, ""),
    (
        "graceful restart capability of 3 octets",
        "04 fde9 005a 0a000001 07 02 05 40 03 007800",
        2,
        0,
        "",
    ),
    ("RFC 9072 length truncated", "04 fde9 005a 0a000001 ff ff 00", 2, 0, ""),
    ("RFC 9072 length mismatch", "04 fde9 005a 0a000001 ff ff 0009 02 0002 0200", 2, 0, ""),
]


@pytest.mark.parametrize(
    ("name", "body", "code", "subcode", "data"), OPEN_CASES, ids=[c[0] for c in OPEN_CASES]
)
def test_open_error(name: str, body: str, code: int, subcode: int, data: str) -> None:
    error = raises(frame(1, h(body)))
    assert (error.code, error.subcode, error.data) == (code, subcode, h(data))


@pytest.mark.parametrize("hold", ["0000", "0003", "ffff"])
def test_open_acceptable_hold_times(hold: str) -> None:
    decode_message(frame(1, h(f"04 fde9 {hold} 0a000001 00")))


def test_open_unknown_capabilities_are_never_an_error() -> None:
    # RFC 5492: unknown capabilities are ignored, whatever their length.
    body = h("04 fde9 005a 0a000001 0c 02 0a  ee 00  ef 06 000102030405")
    msg = decode(1, body)
    assert msg is not None


# --- UPDATE: RFC 7606 ------------------------------------------------------------------------------

ORIGIN = "40 01 01 00"
AS_PATH = "40 02 06 02 01 0000fde9"
NEXT_HOP = "40 03 04 0afc010a"
BASE = ORIGIN + AS_PATH + NEXT_HOP
NLRI = "20 0a660a81"  # 10.102.10.129/32
MP_REACH_V6 = (
    "80 0e 26 0002 01 10 20010db8000000000000000000000001 00 80 20010db8010000000000000000000001"
)


def update_body(attrs: str, nlri: str = NLRI, withdrawn: str = "") -> bytes:
    return encode_update_body(h(withdrawn), h(attrs), h(nlri))


RESET, WITHDRAW, DISCARD, OK = "reset", "treat-as-withdraw", "discard", "ok"

UPDATE_CASES: list[tuple[str, bytes, tuple[object, ...]]] = [
    # (name, UPDATE body, outcome): outcome is (RESET, code, subcode, data) | (WITHDRAW,)
    # | (DISCARD, types) | (OK,)
    # -- lengths (RFC 4271 6.3, RFC 7606 4)
    ("withdrawn routes length overruns", h("0010 20 0a660a81"), (RESET, 3, 1, b"")),
    ("total attribute length overruns", h("0000 0020") + h(BASE), (RESET, 3, 1, b"")),
    (
        "attribute length overruns the attributes field",
        h("0000 0007") + h("40 01 05 00 40 01 01") + h(NLRI),
        (WITHDRAW,),
    ),
    (
        "attribute header truncated at the end of the field",
        encode_update_body(b"", h(BASE + "40 01"), h(NLRI)),
        (WITHDRAW,),
    ),
    (
        "extended length header truncated",
        encode_update_body(b"", h(BASE + "50 01 00"), h(NLRI)),
        (WITHDRAW,),
    ),
    # -- NLRI syntax (RFC 7606 5.3)
    ("NLRI prefix length 33", update_body(BASE, "21 0a660a8100"), (RESET, 3, 10, b"")),
    ("NLRI overruns", update_body(BASE, "20 0a660a"), (RESET, 3, 10, b"")),
    ("withdrawn prefix length 33", update_body("", "", "21 0a660a8100"), (RESET, 3, 10, b"")),
    ("withdrawn overruns", update_body("", "", "18 0a66"), (RESET, 3, 10, b"")),
    # -- RFC 7606 3.c flags, 3.d missing, 3.g duplicates
    ("ORIGIN flagged optional", update_body("c0 01 01 00" + AS_PATH + NEXT_HOP), (WITHDRAW,)),
    ("ORIGIN with the partial bit", update_body("60 01 01 00" + AS_PATH + NEXT_HOP), (WITHDRAW,)),
    ("MED flagged transitive", update_body(BASE + "c0 04 04 00000001"), (WITHDRAW,)),
    ("missing ORIGIN", update_body(AS_PATH + NEXT_HOP), (WITHDRAW,)),
    ("missing AS_PATH", update_body(ORIGIN + NEXT_HOP), (WITHDRAW,)),
    ("missing NEXT_HOP with IPv4 NLRI", update_body(ORIGIN + AS_PATH), (WITHDRAW,)),
    (
        "missing NEXT_HOP with only MP_REACH is fine",
        update_body(MP_REACH_V6 + ORIGIN + AS_PATH, ""),
        (OK,),
    ),
    ("missing AS_PATH with MP_REACH", update_body(MP_REACH_V6 + ORIGIN, ""), (WITHDRAW,)),
    ("no NLRI, no attributes needed", update_body("", "", NLRI), (OK,)),
    (
        "duplicate ORIGIN: later copies discarded",
        update_body(BASE + "40 01 01 02"),
        (DISCARD, (1,)),
    ),
    (
        "duplicate unknown optional discarded",
        update_body(BASE + "c0 63 00 c0 63 00"),
        (DISCARD, (99,)),
    ),
    (
        "duplicate MP_REACH_NLRI",
        update_body(MP_REACH_V6 + MP_REACH_V6 + ORIGIN + AS_PATH, ""),
        (RESET, 3, 1, b""),
    ),
    (
        "duplicate MP_UNREACH_NLRI",
        update_body("80 0f 03 000201 80 0f 03 000201", ""),
        (RESET, 3, 1, b""),
    ),
    # -- per attribute (RFC 7606 7)
    ("ORIGIN length 2", update_body("40 01 02 0000" + AS_PATH + NEXT_HOP), (WITHDRAW,)),
    ("ORIGIN value 3", update_body("40 01 01 03" + AS_PATH + NEXT_HOP), (WITHDRAW,)),
    (
        "AS_PATH unknown segment type",
        update_body(ORIGIN + "40 02 06 05 01 0000fde9" + NEXT_HOP),
        (WITHDRAW,),
    ),
    ("AS_PATH zero-length segment", update_body(ORIGIN + "40 02 02 02 00" + NEXT_HOP), (WITHDRAW,)),
    (
        "AS_PATH segment overrun",
        update_body(ORIGIN + "40 02 06 02 02 0000fde9" + NEXT_HOP),
        (WITHDRAW,),
    ),
    (
        "AS_PATH segment underrun",
        update_body(ORIGIN + "40 02 07 02 01 0000fde9 02" + NEXT_HOP),
        (WITHDRAW,),
    ),
    (
        "AS_PATH with AS 0 (RFC 7607)",
        update_body(ORIGIN + "40 02 06 02 01 00000000" + NEXT_HOP),
        (WITHDRAW,),
    ),
    (
        "AS_PATH 2-octet on a 4-octet session",
        update_body(ORIGIN + "40 02 04 02 01 fde9" + NEXT_HOP),
        (WITHDRAW,),
    ),
    ("NEXT_HOP length 5", update_body(ORIGIN + AS_PATH + "40 03 05 0afc010a00"), (WITHDRAW,)),
    ("NEXT_HOP 0.0.0.0", update_body(ORIGIN + AS_PATH + "40 03 04 00000000"), (WITHDRAW,)),
    ("NEXT_HOP multicast", update_body(ORIGIN + AS_PATH + "40 03 04 e0000001"), (WITHDRAW,)),
    ("NEXT_HOP loopback", update_body(ORIGIN + AS_PATH + "40 03 04 7f000001"), (WITHDRAW,)),
    ("MED length 3", update_body(BASE + "80 04 03 000001"), (WITHDRAW,)),
    ("LOCAL_PREF length 2", update_body(BASE + "40 05 02 0064"), (WITHDRAW,)),
    ("ATOMIC_AGGREGATE length 1", update_body(BASE + "40 06 01 00"), (DISCARD, (6,))),
    ("ATOMIC_AGGREGATE flagged optional", update_body(BASE + "c0 06 00"), (DISCARD, (6,))),
    (
        "AGGREGATOR length 6 on a 4-octet session",
        update_body(BASE + "c0 07 06 fde9 0a000001"),
        (DISCARD, (7,)),
    ),
    ("AGGREGATOR AS 0", update_body(BASE + "c0 07 08 00000000 0a000001"), (DISCARD, (7,))),
    (
        "AGGREGATOR flagged well-known",
        update_body(BASE + "40 07 08 0000fde9 0a000001"),
        (DISCARD, (7,)),
    ),
    ("COMMUNITIES length 3", update_body(BASE + "c0 08 03 fffd00"), (WITHDRAW,)),
    ("COMMUNITIES length 0", update_body(BASE + "c0 08 00"), (WITHDRAW,)),
    ("ORIGINATOR_ID length 5", update_body(BASE + "80 09 05 0a00000200"), (WITHDRAW,)),
    ("CLUSTER_LIST length 6", update_body(BASE + "80 0a 06 0a0000030a00"), (WITHDRAW,)),
    ("EXTENDED_COMMUNITIES length 7", update_body(BASE + "c0 10 07 0002fde9000000"), (WITHDRAW,)),
    (
        "LARGE_COMMUNITIES length 10 (RFC 8092 6)",
        update_body(BASE + "c0 20 0a 0000fffd000000010000"),
        (WITHDRAW,),
    ),
    ("LARGE_COMMUNITIES length 0", update_body(BASE + "c0 20 00"), (WITHDRAW,)),
    # -- MP_REACH / MP_UNREACH (RFC 7606 7.11/7.12, RFC 4760 7): the session resets
    (
        "MP_REACH_NLRI next hop length 5",
        update_body("80 0e 0a 0002 01 05 2001 0db8 00 00" + ORIGIN + AS_PATH, ""),
        (RESET, 3, 9, h("80 0e 0a 0002 01 05 2001 0db8 00 00")),
    ),
    (
        "MP_REACH_NLRI next hop overruns",
        update_body("80 0e 06 0002 01 10 2001" + ORIGIN + AS_PATH, ""),
        (RESET, 3, 9, h("80 0e 06 0002 01 10 2001")),
    ),
    (
        "MP_REACH_NLRI shorter than 5",
        update_body("80 0e 03 0002 01" + ORIGIN + AS_PATH, ""),
        (RESET, 3, 9, h("80 0e 03 0002 01")),
    ),
    (
        "MP_REACH_NLRI flagged transitive",
        update_body("c0 0e 05 0001 01 00 00" + ORIGIN + AS_PATH, ""),
        (RESET, 3, 4, h("c0 0e 05 0001 01 00 00")),
    ),
    (
        "MP_REACH_NLRI prefix length 129",
        update_body(
            "80 0e 17 0002 01 10 20010db8000000000000000000000001 00 81 20" + ORIGIN + AS_PATH, ""
        ),
        (RESET, 3, 10, b""),
    ),
    (
        "MP_REACH_NLRI prefix overruns",
        update_body(
            "80 0e 18 0002 01 10 20010db8000000000000000000000001 00 80 2001" + ORIGIN + AS_PATH, ""
        ),
        (RESET, 3, 10, b""),
    ),
    (
        "MP_UNREACH_NLRI shorter than 3",
        update_body("80 0f 02 0002", ""),
        (RESET, 3, 9, h("80 0f 02 0002")),
    ),
    (
        "MP_UNREACH_NLRI prefix length 33",
        update_body("80 0f 05 0001 01 21 0a", ""),
        (RESET, 3, 10, b""),
    ),
    (
        "MP_REACH_NLRI of an unsupported family is ignored",
        update_body("80 0e 0a 0019 46 04 0a000001 00 00" + ORIGIN + AS_PATH, ""),
        (OK,),
    ),
    # -- unknown attributes
    (
        "unrecognised well-known attribute",
        update_body(BASE + "40 63 02 abcd"),
        (RESET, 3, 2, h("40 63 02 abcd")),
    ),
    ("unknown optional attribute kept", update_body(BASE + "c0 63 02 abcd"), (OK,)),
    # -- RFC 6793 6
    (
        "AS4_PATH between 4-octet speakers discarded",
        update_body(BASE + "c0 11 06 02 01 0000fde9"),
        (DISCARD, (17,)),
    ),
    (
        "AS4_AGGREGATOR between 4-octet speakers discarded",
        update_body(BASE + "c0 12 08 0000fde9 0a000001"),
        (DISCARD, (18,)),
    ),
    # -- RFC 7606 3.h: the strongest approach wins
    (
        "discard and treat-as-withdraw together",
        update_body("40 01 01 07" + AS_PATH + NEXT_HOP + "40 06 01 00"),
        (WITHDRAW, (6,)),
    ),
    (
        "treat-as-withdraw then a reset",
        update_body("40 01 01 07" + AS_PATH + NEXT_HOP + "40 63 00"),
        (RESET, 3, 2, h("40 63 00")),
    ),
]


@pytest.mark.parametrize(
    ("name", "body", "outcome"), UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES]
)
def test_update_error_handling(name: str, body: bytes, outcome: tuple[object, ...]) -> None:
    message = frame(2, body)
    if outcome[0] == RESET:
        error = raises(message)
        assert (error.code, error.subcode, error.data) == outcome[1:], error.reason
        return
    update = decode_message(message)
    assert isinstance(update, Update)
    if outcome[0] == WITHDRAW:
        assert update.treat_as_withdraw, update.errors
        assert update.errors
        # the NLRI survive intact so that the caller can withdraw them
        assert update.nlri == decode_nlri_of(body)
        assert update.discarded == (outcome[1] if len(outcome) > 1 else ())
    elif outcome[0] == DISCARD:
        assert not update.treat_as_withdraw, update.errors
        assert update.discarded == outcome[1]
        assert update.errors
        assert all(
            not (isinstance(a, UnknownAttribute) and a.type in outcome[1])
            for a in update.attributes[:-1]
        )
    else:
        assert not update.treat_as_withdraw and not update.discarded, update.errors


def decode_nlri_of(body: bytes) -> tuple[IPv4Network, ...]:
    withdrawn = int.from_bytes(body[:2], "big")
    attrs = int.from_bytes(body[2 + withdrawn : 4 + withdrawn], "big")
    nlri = body[4 + withdrawn + attrs :]
    return tuple(
        IPv4Network((int.from_bytes(nlri[i + 1 : i + 5], "big"), 32))
        for i in range(0, len(nlri), 5)
    )


def test_discarded_attribute_is_gone_and_the_rest_kept() -> None:
    update = decode(2, update_body(BASE + "40 06 01 00 c0 08 04 fffd0064"))
    assert isinstance(update, Update)
    assert update.attributes == (
        Origin(),
        AsPath.sequence(65001),
        NextHop(update.attributes[2].address),  # type: ignore[union-attr]
        Communities((0xFFFD0064,)),
    )
    assert update.discarded == (6,)


def test_duplicate_keeps_the_first() -> None:
    update = decode(2, update_body(BASE + "40 01 01 02"))
    assert isinstance(update, Update)
    assert update.attribute(Origin) == Origin(0)


def test_treat_as_withdraw_keeps_mp_reach_prefixes() -> None:
    update = decode(2, update_body(MP_REACH_V6 + ORIGIN, ""))
    assert isinstance(update, Update)
    assert update.treat_as_withdraw
    mp = update.attribute(MpReachNlri)
    assert isinstance(mp, MpReachNlri) and len(mp.nlri) == 1


def test_host_bits_are_masked_and_noted() -> None:
    update = decode(2, update_body(BASE, "17 0a660b  14 0a66ff"))
    assert isinstance(update, Update)
    assert update.nlri == (IPv4Network("10.102.10.0/23"), IPv4Network("10.102.240.0/20"))
    assert not update.treat_as_withdraw
    assert any("host bits" in e for e in update.errors)


def test_ipv6_host_bits_are_masked() -> None:
    mp = "80 0e 1b 0002 01 10 20010db8000000000000000000000001 00 24 20010db8ff"
    update = decode(2, update_body(mp + ORIGIN + AS_PATH, ""))
    assert isinstance(update, Update)
    reach = update.attribute(MpReachNlri)
    assert isinstance(reach, MpReachNlri)
    assert str(reach.nlri[0]) == "2001:db8:f000::/36"
    assert any("host bits" in e for e in update.errors)


def test_as4_path_malformed_from_old_speaker_is_discarded() -> None:
    update = decode(
        2,
        update_body(ORIGIN + "40 02 04 02 01 5ba0" + NEXT_HOP + "c0 11 04 02 01 0001"),
        asn4=False,
    )
    assert isinstance(update, Update)
    assert update.discarded == (17,)
    assert update.attribute(AsPath) == AsPath.sequence(23456)
    assert not update.treat_as_withdraw


def test_as4_aggregator_malformed_from_old_speaker_is_discarded() -> None:
    body = update_body(
        BASE.replace("40 02 06 02 01 0000fde9", "40 02 04 02 01 fde9") + "c0 12 06 fde9 0a000001"
    )
    update = decode(2, body, asn4=False)
    assert isinstance(update, Update)
    assert update.discarded == (18,)


def test_update_shorter_than_length_fields() -> None:
    with pytest.raises(BgpError) as info:
        decode(2, b"\x00")
    assert (info.value.code, info.value.subcode, info.value.data) == (1, 2, h("0014"))


# --- encoder refusals ----------------------------------------------------------------------------

BAD_MESSAGES: list[tuple[str, object]] = [
    ("AS 0 in AS_PATH", Update(attributes=(AsPath.sequence(0),))),
    ("ASN above 32 bits", Update(attributes=(AsPath.sequence(2**32),))),
    ("MED above 32 bits", Update(attributes=(Origin(), MultiExitDisc(2**32)))),
    ("duplicate attribute", Update(attributes=(Origin(), Origin()))),
    ("IPv6 in the IPv4 NLRI field", Update(nlri=(IPv6Network("2001:db8::/32"),))),  # type: ignore[arg-type]
    ("too large", Update(nlri=tuple(IPv4Network((0x0A000000 + i, 32)) for i in range(1000)))),
    ("OPEN My AS above 16 bits", Open(70000, 90, IPv4Address("1.1.1.1"))),
    ("NOTIFICATION code above 255", Notification(256, 0)),
]


@pytest.mark.parametrize(("name", "msg"), BAD_MESSAGES, ids=[b[0] for b in BAD_MESSAGES])
def test_encoder_refuses(name: str, msg: object) -> None:
    with pytest.raises(ValueError):
        encode(msg)  # type: ignore[arg-type]
