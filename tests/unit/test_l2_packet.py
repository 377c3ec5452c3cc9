"""ARP and NDP frames (spinelb.l2.packet): kernel-captured vectors both ways, refusals, garbage.

The vectors were captured with tcpdump on a veth pair between two network
namespaces on Linux 6.18: host A 02:00:00:00:00:0a (10.250.9.1, fd00:250:9::1),
host B 02:00:00:00:00:0b (10.250.9.2, fd00:250:9::2), with ``arp_notify`` and
``ndisc_notify`` set so that B's kernel announced itself when its link came up,
then A sent a UDP datagram to each of B's addresses.  tcpdump reported every
ICMPv6 checksum as "sum ok"; the kernel computed them, so they check ours
independently, and so does the second checksum routine below (RFC 1071's
fold written another way).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spinelb.l2.packet import (
    ALL_NODES,
    ARP_REPLY,
    ARP_REQUEST,
    Address,
    ArpPacket,
    MacAddress,
    NeighborAdvertisement,
    NeighborSolicitation,
    announcement,
    decode_arp,
    decode_ethernet,
    decode_neighbor_advertisement,
    decode_neighbor_solicitation,
    gratuitous_arp,
    icmpv6_checksum,
    multicast_mac,
    reply,
    solicited_node,
    unsolicited_advertisement,
)

MAC_A = MacAddress.parse("02:00:00:00:00:0a")
MAC_B = MacAddress.parse("02:00:00:00:00:0b")
A4, B4 = IPv4Address("10.250.9.1"), IPv4Address("10.250.9.2")
A6, B6 = IPv6Address("fd00:250:9::1"), IPv6Address("fd00:250:9::2")
OWNED: frozenset[Address] = frozenset({B4, B6})

# B's kernel on link up (arp_notify): ARP request, sender IP = target IP = 10.250.9.2, target MAC 0.
GARP = bytes.fromhex(
    "ffffffffffff 02000000000b 0806"  # to broadcast, from B, ARP
    "0001 0800 06 04 0001"  # Ethernet, IPv4, lengths 6 and 4, request
    "02000000000b 0afa0902"  # sender B, 10.250.9.2
    "000000000000 0afa0902"  # target MAC zero, 10.250.9.2
)
# A asks for 10.250.9.2; B's kernel replies to A.
ARP_WHO_HAS = bytes.fromhex(
    "ffffffffffff 02000000000a 0806 0001 0800 06 04 0001"
    "02000000000a 0afa0901 000000000000 0afa0902"
)
ARP_IS_AT = bytes.fromhex(
    "02000000000a 02000000000b 0806 0001 0800 06 04 0002"
    "02000000000b 0afa0902 02000000000a 0afa0901"
)
# A's NS for fd00:250:9::2 to its solicited-node group, with A's Source Link-Layer Address.
NS = bytes.fromhex(
    "3333ff000002 02000000000a 86dd"
    "60000000 0020 3a ff"  # version 6, payload 32, ICMPv6, hop limit 255
    "fd000250000900000000000000000001"  # fd00:250:9::1
    "ff0200000000000000000001ff000002"  # ff02::1:ff00:2
    "87 00 78dc 00000000"  # NS, code 0, checksum 0x78dc, reserved
    "fd000250000900000000000000000002"  # target fd00:250:9::2
    "0101 02000000000a"  # option 1 (source link-layer), 1 unit, A's MAC
)
# B's kernel answers A: solicited NA, S and O set (0x60), Target Link-Layer Address B.
NA_SOLICITED = bytes.fromhex(
    "02000000000a 02000000000b 86dd"
    "60000000 0020 3a ff"
    "fd000250000900000000000000000002"
    "fd000250000900000000000000000001"
    "88 00 1586 60000000"
    "fd000250000900000000000000000002"
    "0201 02000000000b"
)
# B's kernel on link up (ndisc_notify): unsolicited NA to ff02::1, O set only (0x20).
NA_UNSOLICITED = bytes.fromhex(
    "333300000001 02000000000b 86dd"
    "60000000 0020 3a ff"
    "fd000250000900000000000000000002"
    "ff020000000000000000000000000001"
    "88 00 55dd 20000000"
    "fd000250000900000000000000000002"
    "0201 02000000000b"
)
# B's kernel doing duplicate address detection: from ::, no SLLA, a Nonce option (14, RFC 7527).
NS_DAD = bytes.fromhex(
    "3333ff000002 02000000000b 86dd"
    "60000000 0020 3a ff"
    "00000000000000000000000000000000"
    "ff0200000000000000000001ff000002"
    "87 00 93b2 00000000"
    "fd000250000900000000000000000002"
    "0e01 83d9802cd588"
)
ETHERNET = 14


def rfc1071_checksum(source: IPv6Address, destination: IPv6Address, message: bytes) -> int:
    """An independent RFC 1071 checksum: one big integer, folded at the end."""
    data = source.packed + destination.packed + len(message).to_bytes(4, "big") + bytes([0, 0, 0, 58])
    data += message + (b"\0" if len(message) % 2 else b"")
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total >> 16) + (total & 0xFFFF)
    return 0xFFFF - total


def zero_checksum(frame: bytes) -> bytes:
    message = frame[ETHERNET + 40 :]
    return message[:2] + b"\0\0" + message[4:]


def ipv6(frame: bytes) -> bytes:
    return frame[ETHERNET:]


# --- vectors both ways ---------------------------------------------------------------------


def test_gratuitous_arp_is_the_kernels_announcement_octet_for_octet() -> None:
    assert gratuitous_arp(B4, MAC_B) == GARP
    assert announcement(B4, MAC_B) == GARP
    frame = decode_ethernet(GARP)
    assert frame is not None and frame.destination == MacAddress(b"\xff" * 6)
    packet = decode_arp(frame.payload)
    assert packet == ArpPacket(ARP_REQUEST, MAC_B, B4, MacAddress(bytes(6)), B4)
    assert packet.is_announcement


def test_arp_request_and_reply_decode_and_encode() -> None:
    request = decode_ethernet(ARP_WHO_HAS)
    assert request is not None
    assert decode_arp(request.payload) == ArpPacket(ARP_REQUEST, MAC_A, A4, MacAddress(bytes(6)), B4)
    answer = ArpPacket(ARP_REPLY, MAC_B, B4, MAC_A, A4)
    assert answer.frame(MAC_A) == ARP_IS_AT


def test_the_owner_replies_to_an_arp_request_as_the_kernel_does() -> None:
    assert reply(ARP_WHO_HAS, OWNED, MAC_B) == ARP_IS_AT


def test_arp_decoding_ignores_ethernet_padding() -> None:
    frame = decode_ethernet(ARP_WHO_HAS + bytes(18))  # padded to 60 octets by a NIC
    assert frame is not None and decode_arp(frame.payload) is not None
    assert reply(ARP_WHO_HAS + bytes(18), OWNED, MAC_B) == ARP_IS_AT


def test_neighbor_solicitation_decodes_and_encodes() -> None:
    solicitation = decode_neighbor_solicitation(ipv6(NS))
    assert solicitation == NeighborSolicitation(A6, solicited_node(B6), B6, MAC_A)
    assert not solicitation.is_duplicate_address_detection
    assert solicitation.encode() == ipv6(NS)


def test_the_owner_answers_a_solicitation_as_the_kernel_does() -> None:
    assert reply(NS, OWNED, MAC_B) == NA_SOLICITED
    advert = decode_neighbor_advertisement(ipv6(NA_SOLICITED))
    assert advert == NeighborAdvertisement(B6, A6, B6, MAC_B, router=False, solicited=True,
                                           override=True)


def test_unsolicited_advertisement_is_the_kernels_octet_for_octet() -> None:
    assert unsolicited_advertisement(B6, MAC_B) == NA_UNSOLICITED
    assert announcement(B6, MAC_B) == NA_UNSOLICITED
    advert = decode_neighbor_advertisement(ipv6(NA_UNSOLICITED))
    assert advert == NeighborAdvertisement(B6, ALL_NODES, B6, MAC_B, solicited=False, override=True)


def test_duplicate_address_detection_is_answered_to_all_nodes_with_solicited_clear() -> None:
    solicitation = decode_neighbor_solicitation(ipv6(NS_DAD))
    assert solicitation is not None and solicitation.is_duplicate_address_detection
    assert solicitation.source_mac is None  # the Nonce option is skipped, not mistaken for one
    answer = reply(NS_DAD, OWNED, MAC_A)  # A owns the address B is trying to take
    assert answer is not None
    frame = decode_ethernet(answer)
    assert frame is not None and frame.destination == MacAddress.parse("33:33:00:00:00:01")
    advert = decode_neighbor_advertisement(frame.payload)
    assert advert == NeighborAdvertisement(B6, ALL_NODES, B6, MAC_A, solicited=False, override=True)


@pytest.mark.parametrize("frame", [NS, NA_SOLICITED, NA_UNSOLICITED, NS_DAD])
def test_checksums_match_the_kernels_and_an_independent_routine(frame: bytes) -> None:
    source = IPv6Address(frame[ETHERNET + 8 : ETHERNET + 24])
    destination = IPv6Address(frame[ETHERNET + 24 : ETHERNET + 40])
    message = zero_checksum(frame)
    kernel = int.from_bytes(frame[ETHERNET + 42 : ETHERNET + 44], "big")
    assert icmpv6_checksum(source, destination, message) == kernel
    assert rfc1071_checksum(source, destination, message) == kernel


def test_solicited_node_group_and_its_mac() -> None:
    assert solicited_node(B6) == IPv6Address("ff02::1:ff00:2")
    assert multicast_mac(solicited_node(B6)) == MacAddress.parse("33:33:ff:00:00:02")  # NS's dst
    # RFC 4291 2.7.1's example
    assert solicited_node(IPv6Address("4037::01:800:200E:8C6C")) == IPv6Address("ff02::1:ff0e:8c6c")


def test_mac_address_text() -> None:
    assert str(MacAddress.parse("02-00-00-00-00-0A")) == "02:00:00:00:00:0a"
    assert repr(MAC_B) == "MacAddress('02:00:00:00:00:0b')"
    for bad in ("02:00:00:00:00", "02:00:00:00:00:0g", "0200.0000.000b"):
        with pytest.raises(ValueError):
            MacAddress.parse(bad)
    with pytest.raises(ValueError):
        MacAddress(b"\0" * 5)


# --- refusals (RFC 4861 7.1, RFC 826) and what is not answered -------------------------------


def with_octets(data: bytes, index: int, value: bytes) -> bytes:
    return data[:index] + value + data[index + len(value) :]


def reencode(packet: bytes) -> bytes:
    """``packet`` (an IPv6 ND packet) with a correct checksum again after an edit."""
    source, destination = IPv6Address(packet[8:24]), IPv6Address(packet[24:40])
    message = packet[40:42] + b"\0\0" + packet[44:]
    return packet[:42] + icmpv6_checksum(source, destination, message).to_bytes(2, "big") + packet[44:]


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (with_octets(ipv6(NS), 7, b"\xfe"), "hop limit 254: not from the link"),
        (with_octets(ipv6(NS), 42, b"\x00\x00"), "checksum wrong"),
        (reencode(with_octets(ipv6(NS), 41, b"\x01")), "code 1"),
        (reencode(with_octets(ipv6(NS), 65, b"\x00")), "option of length 0"),
        (reencode(with_octets(ipv6(NS), 48, bytes.fromhex("ff02") + bytes(13) + b"\x01")),
         "multicast target"),
        (with_octets(ipv6(NS), 6, b"\x00"), "next header 0 (extension headers)"),
        (with_octets(ipv6(NS), 0, b"\x40"), "version 4"),
        (with_octets(ipv6(NS), 4, b"\x00\x28"), "payload longer than the packet"),
        (with_octets(ipv6(NS), 4, b"\x00\x10"), "payload shorter than a solicitation"),
        (ipv6(NS)[:63], "truncated"),
        (reencode(with_octets(ipv6(NS), 8, bytes(16))), "DAD with a source link-layer option"),
        (reencode(with_octets(ipv6(NS_DAD), 24, ALL_NODES.packed)), "DAD not to solicited-node"),
        (ipv6(NA_UNSOLICITED), "an advertisement is not a solicitation"),
    ],
)
def test_invalid_solicitations_are_refused(packet: bytes, why: str) -> None:
    assert decode_neighbor_solicitation(packet) is None, why


def test_a_multicast_advertisement_with_solicited_set_is_refused() -> None:
    solicited_to_all = reencode(with_octets(ipv6(NA_UNSOLICITED), 44, b"\x60"))
    assert decode_neighbor_advertisement(solicited_to_all) is None
    assert decode_neighbor_advertisement(ipv6(NS)) is None


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (with_octets(GARP[ETHERNET:], 0, b"\x00\x06"), "hardware type IEEE 802"),
        (with_octets(GARP[ETHERNET:], 2, b"\x86\xdd"), "protocol IPv6"),
        (with_octets(GARP[ETHERNET:], 4, b"\x08"), "hardware length 8"),
        (with_octets(GARP[ETHERNET:], 6, b"\x00\x03"), "operation 3 (RARP)"),
        (GARP[ETHERNET:-1], "truncated"),
    ],
)
def test_invalid_arp_is_refused(payload: bytes, why: str) -> None:
    assert decode_arp(payload) is None, why


@pytest.mark.parametrize(
    ("frame", "owned", "why"),
    [
        (ARP_WHO_HAS, {A4, B6}, "not an owned address"),
        (GARP, {B4}, "someone else's gratuitous ARP is not a question"),
        (ARP_IS_AT, {A4, B4}, "a reply is not a question"),
        (with_octets(ARP_WHO_HAS, 6, MAC_B.octets), {B4}, "our own frame"),
        (with_octets(ARP_WHO_HAS, ETHERNET + 8, b"\x01" + bytes(5)), {B4}, "multicast sender"),
        (NS, {B4, A6}, "not an owned address (and the v4 twin does not count)"),
        (NA_UNSOLICITED, {B6}, "advertisements are not answered"),
        (ETHERNET * b"\xff", {B4}, "a bare header"),
        (b"\x01\x02", {B4}, "shorter than a header"),
    ],
)
def test_what_is_not_answered(frame: bytes, owned: set[IPv4Address | IPv6Address], why: str) -> None:
    assert reply(frame, owned, MAC_B) is None, why


def test_a_solicitation_to_an_unrelated_group_is_not_answered() -> None:
    other = NeighborSolicitation(A6, IPv6Address("ff02::1:ff99:9999"), B6, MAC_A).encode()
    frame = NS[:ETHERNET] + other
    assert reply(frame, OWNED, MAC_B) is None


def test_a_unicast_solicitation_without_an_option_is_answered_to_its_ethernet_source() -> None:
    # what a kernel sends to confirm reachability (PROBE): to the target itself, no SLLA
    probe = NeighborSolicitation(A6, B6, B6).encode()
    answer = reply(MAC_B.octets + MAC_A.octets + b"\x86\xdd" + probe, OWNED, MAC_B)
    assert answer == NA_SOLICITED


# --- round trips and garbage ----------------------------------------------------------------

macs = st.binary(min_size=6, max_size=6).map(MacAddress)
v6 = st.integers(0, 2**128 - 1).map(IPv6Address)
unicast_v6 = v6.filter(lambda address: not address.is_multicast)


@given(source=unicast_v6.filter(lambda a: a != IPv6Address("::")), destination=v6,
       target=unicast_v6, mac=st.none() | macs)
def test_solicitations_round_trip(source: IPv6Address, destination: IPv6Address,
                                  target: IPv6Address, mac: MacAddress | None) -> None:
    solicitation = NeighborSolicitation(source, destination, target, mac)
    assert decode_neighbor_solicitation(solicitation.encode()) == solicitation


@given(source=v6, destination=unicast_v6, target=unicast_v6, mac=st.none() | macs,
       flags=st.tuples(st.booleans(), st.booleans(), st.booleans()))
def test_advertisements_round_trip(source: IPv6Address, destination: IPv6Address,
                                   target: IPv6Address, mac: MacAddress | None,
                                   flags: tuple[bool, bool, bool]) -> None:
    router, solicited, override = flags
    advert = NeighborAdvertisement(source, destination, target, mac, router=router,
                                   solicited=solicited, override=override)
    assert decode_neighbor_advertisement(advert.encode()) == advert


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    decode_ethernet(data)
    decode_arp(data)
    decode_neighbor_solicitation(data)
    decode_neighbor_advertisement(data)
    reply(data, OWNED, MAC_B)
    reply(ARP_WHO_HAS[:12] + b"\x08\x06" + data, OWNED, MAC_B)
    reply(NS[:12] + b"\x86\xdd" + data, OWNED, MAC_B)


@given(st.sampled_from([NS, NS_DAD, ARP_WHO_HAS, NA_SOLICITED]), st.data())
def test_mangled_frames_never_raise(frame: bytes, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(frame) - 1))
    replacement = data.draw(st.binary(min_size=1, max_size=8))
    cut = data.draw(st.integers(index, len(frame)))
    mangled = frame[:index] + replacement + frame[cut:]
    answer = reply(mangled, OWNED, MAC_B)
    if answer is not None:  # whatever we do answer is itself well formed
        decoded = decode_ethernet(answer)
        assert decoded is not None
        assert decode_arp(decoded.payload) or decode_neighbor_advertisement(decoded.payload)
