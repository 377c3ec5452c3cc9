"""Ethernet, ARP (RFC 826/5227) and NDP (RFC 4861) frames, encoded and decoded without I/O.

What a Layer 2 responder needs and nothing more:

- :class:`EthernetFrame`: Ethernet II, untagged (the kernel hands packet
  sockets frames with the VLAN tag already stripped).
- :class:`ArpPacket`: Ethernet/IPv4 ARP; :func:`gratuitous_arp` is RFC 5227's
  announcement (an ARP request whose sender and target IP are the address,
  target MAC zero, broadcast).
- :class:`NeighborSolicitation` and :class:`NeighborAdvertisement`: whole IPv6
  packets carrying the ICMPv6 message (hop limit 255, checksum over the
  pseudo-header, RFC 4443 2.3), validated on receipt as RFC 4861 7.1.1/7.1.2
  say; :func:`unsolicited_advertisement` is 7.2.6's announcement (to ff02::1,
  Override set, Solicited clear).
- :func:`reply`: the answer, if any, that the owner of some addresses gives to
  a received frame (RFC 826 for ARP; RFC 4861 7.2.4 for a solicitation,
  including duplicate address detection's from ``::``).

Decoders return None for anything malformed or not of their kind: they never
raise, whatever the bytes.  IPv6 packets with extension headers before ICMPv6
are not decoded (neighbor discovery never needs them).
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

__all__ = [
    "ALL_NODES",
    "ARP_REPLY",
    "ARP_REQUEST",
    "BROADCAST",
    "ETH_P_ARP",
    "ETH_P_IPV6",
    "HOP_LIMIT",
    "UNSPECIFIED",
    "Address",
    "ArpPacket",
    "EthernetFrame",
    "MacAddress",
    "NeighborAdvertisement",
    "NeighborSolicitation",
    "announcement",
    "decode_arp",
    "decode_ethernet",
    "decode_neighbor_advertisement",
    "decode_neighbor_solicitation",
    "gratuitous_arp",
    "icmpv6_checksum",
    "multicast_mac",
    "reply",
    "solicited_node",
    "unsolicited_advertisement",
]

Address = IPv4Address | IPv6Address

ETH_P_ARP = 0x0806
ETH_P_IPV4 = 0x0800
ETH_P_IPV6 = 0x86DD
ETHERNET_HEADER = 14

ARP_REQUEST = 1
ARP_REPLY = 2
ARP_HTYPE_ETHERNET = 1
ARP_LENGTH = 28
_ARP = struct.Struct("!HHBBH6s4s6s4s")

IPV6_HEADER = 40
NEXT_HEADER_ICMPV6 = 58
HOP_LIMIT = 255  # RFC 4861: sent with, and required on receipt of, every ND message
ICMPV6_NEIGHBOR_SOLICITATION = 135
ICMPV6_NEIGHBOR_ADVERTISEMENT = 136
ND_MESSAGE = 24  # type, code, checksum, 4 flag/reserved octets, 16-octet target
OPTION_SOURCE_LINK_LAYER = 1
OPTION_TARGET_LINK_LAYER = 2
_IPV6 = struct.Struct("!IHBB16s16s")

NA_ROUTER = 0x80
NA_SOLICITED = 0x40
NA_OVERRIDE = 0x20

UNSPECIFIED = IPv6Address("::")
ALL_NODES = IPv6Address("ff02::1")
_SOLICITED_NODE_PREFIX = bytes.fromhex("ff02" "0000000000000000" "0001ff")  # ff02::1:ff00:0/104


@dataclass(frozen=True, slots=True)
class MacAddress:
    """A 48-bit Ethernet address; ``str()`` gives ``02:00:00:00:00:0a``."""

    octets: bytes

    def __post_init__(self) -> None:
        if len(self.octets) != 6:
            raise ValueError(f"a MAC address has 6 octets, not {len(self.octets)}")

    @classmethod
    def parse(cls, text: str) -> MacAddress:
        """``"02:00:00:00:00:0a"`` (or with dashes) as a MacAddress; ValueError otherwise."""
        parts = text.replace("-", ":").split(":")
        if len(parts) != 6 or not all(len(part) == 2 for part in parts):
            raise ValueError(f"not a MAC address: {text!r}")
        return cls(bytes.fromhex("".join(parts)))

    @property
    def is_multicast(self) -> bool:
        """Group bit set: broadcast and multicast addresses, never a sender's."""
        return bool(self.octets[0] & 1)

    @property
    def is_zero(self) -> bool:
        return self.octets == bytes(6)

    def __str__(self) -> str:
        return ":".join(f"{octet:02x}" for octet in self.octets)

    def __repr__(self) -> str:
        return f"MacAddress('{self}')"


BROADCAST = MacAddress(b"\xff" * 6)
ZERO_MAC = MacAddress(bytes(6))


def solicited_node(address: IPv6Address) -> IPv6Address:
    """The solicited-node multicast address of ``address`` (RFC 4291 2.7.1): ff02::1:ffXX:XXXX."""
    return IPv6Address(_SOLICITED_NODE_PREFIX + address.packed[13:])


def multicast_mac(group: IPv6Address) -> MacAddress:
    """The Ethernet address of an IPv6 multicast group (RFC 2464 7): 33:33 and its last 32 bits."""
    return MacAddress(b"\x33\x33" + group.packed[12:])


# --- Ethernet -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EthernetFrame:
    """An Ethernet II frame; ``payload`` may carry the padding of a short frame."""

    destination: MacAddress
    source: MacAddress
    ethertype: int
    payload: bytes

    def encode(self) -> bytes:
        return self.destination.octets + self.source.octets + struct.pack("!H", self.ethertype) + self.payload


def decode_ethernet(data: bytes) -> EthernetFrame | None:
    """The frame in ``data`` (no FCS), or None when it is shorter than a header."""
    if len(data) < ETHERNET_HEADER:
        return None
    (ethertype,) = struct.unpack_from("!H", data, 12)
    return EthernetFrame(MacAddress(bytes(data[0:6])), MacAddress(bytes(data[6:12])), ethertype,
                         bytes(data[ETHERNET_HEADER:]))


# --- ARP ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """An Ethernet/IPv4 ARP packet (RFC 826): ``operation`` is ARP_REQUEST or ARP_REPLY."""

    operation: int
    sender_mac: MacAddress
    sender_ip: IPv4Address
    target_mac: MacAddress
    target_ip: IPv4Address

    @property
    def is_announcement(self) -> bool:
        """Sender and target IP equal: a gratuitous ARP (RFC 5227 2.3), not a question."""
        return self.sender_ip == self.target_ip

    def encode(self) -> bytes:
        """The 28 octets of the packet."""
        return _ARP.pack(ARP_HTYPE_ETHERNET, ETH_P_IPV4, 6, 4, self.operation,
                         self.sender_mac.octets, self.sender_ip.packed,
                         self.target_mac.octets, self.target_ip.packed)

    def frame(self, destination: MacAddress) -> bytes:
        """The packet in an Ethernet frame from its sender MAC to ``destination``."""
        return EthernetFrame(destination, self.sender_mac, ETH_P_ARP, self.encode()).encode()


def decode_arp(payload: bytes) -> ArpPacket | None:
    """An Ethernet/IPv4 request or reply, or None (other hardware or protocol, operation, length)."""
    if len(payload) < ARP_LENGTH:
        return None
    htype, ptype, hlen, plen, operation, sha, spa, tha, tpa = _ARP.unpack_from(payload)
    if (htype, ptype, hlen, plen) != (ARP_HTYPE_ETHERNET, ETH_P_IPV4, 6, 4):
        return None
    if operation not in (ARP_REQUEST, ARP_REPLY):
        return None
    return ArpPacket(operation, MacAddress(sha), IPv4Address(spa), MacAddress(tha), IPv4Address(tpa))


def gratuitous_arp(address: IPv4Address, mac: MacAddress) -> bytes:
    """RFC 5227 2.3's announcement of ``address`` at ``mac``, broadcast."""
    return ArpPacket(ARP_REQUEST, mac, address, ZERO_MAC, address).frame(BROADCAST)


# --- IPv6 and ICMPv6 neighbor discovery -----------------------------------------------------


def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int(word) for word in struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def icmpv6_checksum(source: IPv6Address, destination: IPv6Address, message: bytes) -> int:
    """RFC 4443 2.3: the checksum of ``message`` (its checksum field zero) and the pseudo-header."""
    pseudo = source.packed + destination.packed + struct.pack("!I3xB", len(message), NEXT_HEADER_ICMPV6)
    return ~_ones_complement_sum(pseudo + message) & 0xFFFF


def _ipv6_packet(source: IPv6Address, destination: IPv6Address, message: bytearray) -> bytes:
    struct.pack_into("!H", message, 2, icmpv6_checksum(source, destination, bytes(message)))
    header = _IPV6.pack(6 << 28, len(message), NEXT_HEADER_ICMPV6, HOP_LIMIT,
                        source.packed, destination.packed)
    return header + bytes(message)


def _link_layer_option(kind: int, mac: MacAddress | None) -> bytes:
    return b"" if mac is None else bytes([kind, 1]) + mac.octets


@dataclass(frozen=True, slots=True)
class _Message:
    """An ICMPv6 ND message received in an IPv6 packet that passed RFC 4861 7.1's checks."""

    source: IPv6Address
    destination: IPv6Address
    flags: int
    target: IPv6Address
    link_layer: dict[int, MacAddress]  # option type -> the address of its first such option


def _decode_nd(packet: bytes, icmp_type: int) -> _Message | None:
    """RFC 4861 7.1's checks common to NS and NA; None when any fails."""
    if len(packet) < IPV6_HEADER + ND_MESSAGE:
        return None
    first, length, next_header, hop_limit, source, destination = _IPV6.unpack_from(packet)
    if first >> 28 != 6 or next_header != NEXT_HEADER_ICMPV6 or hop_limit != HOP_LIMIT:
        return None
    if length < ND_MESSAGE or IPV6_HEADER + length > len(packet):
        return None
    message = packet[IPV6_HEADER : IPV6_HEADER + length]
    if message[0] != icmp_type or message[1] != 0:
        return None
    src, dst = IPv6Address(source), IPv6Address(destination)
    if _ones_complement_sum(src.packed + dst.packed + struct.pack("!I3xB", length, NEXT_HEADER_ICMPV6)
                            + message) != 0xFFFF:
        return None
    target = IPv6Address(message[8:24])
    if target.is_multicast:
        return None
    link_layer: dict[int, MacAddress] = {}
    offset = ND_MESSAGE
    while offset < length:
        if offset + 2 > length:
            return None
        kind, units = message[offset], message[offset + 1]
        if units == 0 or offset + units * 8 > length:
            return None
        if kind in (OPTION_SOURCE_LINK_LAYER, OPTION_TARGET_LINK_LAYER) and units == 1:
            link_layer.setdefault(kind, MacAddress(bytes(message[offset + 2 : offset + 8])))
        offset += units * 8
    return _Message(src, dst, message[4], target, link_layer)


@dataclass(frozen=True, slots=True)
class NeighborSolicitation:
    """An NS (RFC 4861 4.3): who has ``target``?  From ``::`` it is duplicate address detection."""

    source: IPv6Address
    destination: IPv6Address
    target: IPv6Address
    source_mac: MacAddress | None = None  # the Source Link-Layer Address option

    @property
    def is_duplicate_address_detection(self) -> bool:
        return self.source == UNSPECIFIED

    def encode(self) -> bytes:
        """The IPv6 packet (header, ICMPv6 message with its checksum, the option if any)."""
        message = bytearray(struct.pack("!BBH4x16s", ICMPV6_NEIGHBOR_SOLICITATION, 0, 0, self.target.packed))
        message += _link_layer_option(OPTION_SOURCE_LINK_LAYER, self.source_mac)
        return _ipv6_packet(self.source, self.destination, message)


def decode_neighbor_solicitation(packet: bytes) -> NeighborSolicitation | None:
    """The NS in an IPv6 packet, or None when it is not one or fails RFC 4861 7.1.1."""
    message = _decode_nd(packet, ICMPV6_NEIGHBOR_SOLICITATION)
    if message is None:
        return None
    source_mac = message.link_layer.get(OPTION_SOURCE_LINK_LAYER)
    if message.source == UNSPECIFIED and (
        message.destination != solicited_node(message.target) or source_mac is not None
    ):
        return None
    return NeighborSolicitation(message.source, message.destination, message.target, source_mac)


@dataclass(frozen=True, slots=True)
class NeighborAdvertisement:
    """An NA (RFC 4861 4.4): ``target`` is at ``target_mac``, with the R, S and O flags."""

    source: IPv6Address
    destination: IPv6Address
    target: IPv6Address
    target_mac: MacAddress | None = None  # the Target Link-Layer Address option
    router: bool = False
    solicited: bool = False
    override: bool = True

    def encode(self) -> bytes:
        """The IPv6 packet (header, ICMPv6 message with its checksum, the option if any)."""
        flags = ((NA_ROUTER if self.router else 0) | (NA_SOLICITED if self.solicited else 0)
                 | (NA_OVERRIDE if self.override else 0))
        message = bytearray(struct.pack("!BBHB3x16s", ICMPV6_NEIGHBOR_ADVERTISEMENT, 0, 0, flags,
                                        self.target.packed))
        message += _link_layer_option(OPTION_TARGET_LINK_LAYER, self.target_mac)
        return _ipv6_packet(self.source, self.destination, message)

    def frame(self, source: MacAddress, destination: MacAddress) -> bytes:
        return EthernetFrame(destination, source, ETH_P_IPV6, self.encode()).encode()


def decode_neighbor_advertisement(packet: bytes) -> NeighborAdvertisement | None:
    """The NA in an IPv6 packet, or None when it is not one or fails RFC 4861 7.1.2."""
    message = _decode_nd(packet, ICMPV6_NEIGHBOR_ADVERTISEMENT)
    if message is None:
        return None
    solicited = bool(message.flags & NA_SOLICITED)
    if message.destination.is_multicast and solicited:
        return None
    return NeighborAdvertisement(
        message.source, message.destination, message.target,
        message.link_layer.get(OPTION_TARGET_LINK_LAYER),
        router=bool(message.flags & NA_ROUTER), solicited=solicited,
        override=bool(message.flags & NA_OVERRIDE),
    )


def unsolicited_advertisement(address: IPv6Address, mac: MacAddress) -> bytes:
    """RFC 4861 7.2.6's announcement of ``address`` at ``mac``: to all nodes, O=1, S=0."""
    advert = NeighborAdvertisement(address, ALL_NODES, address, mac, solicited=False, override=True)
    return advert.frame(mac, multicast_mac(ALL_NODES))


def announcement(address: Address, mac: MacAddress) -> bytes:
    """The frame announcing that ``address`` is now at ``mac``: gratuitous ARP or unsolicited NA."""
    if isinstance(address, IPv4Address):
        return gratuitous_arp(address, mac)
    return unsolicited_advertisement(address, mac)


# --- answering -------------------------------------------------------------------------------


def _reply_arp(frame: EthernetFrame, owned: Collection[Address], mac: MacAddress) -> bytes | None:
    request = decode_arp(frame.payload)
    if (request is None or request.operation != ARP_REQUEST or request.target_ip not in owned
            or request.is_announcement or request.sender_mac.is_multicast or request.sender_mac.is_zero):
        return None
    # RFC 826: swap sender and target, put in our hardware address, send to the requester.
    answer = ArpPacket(ARP_REPLY, mac, request.target_ip, request.sender_mac, request.sender_ip)
    return answer.frame(request.sender_mac)


def _reply_ndp(frame: EthernetFrame, owned: Collection[Address], mac: MacAddress) -> bytes | None:
    solicitation = decode_neighbor_solicitation(frame.payload)
    if solicitation is None or solicitation.target not in owned:
        return None
    if solicitation.destination not in (solicitation.target, solicited_node(solicitation.target)):
        return None
    if solicitation.is_duplicate_address_detection:
        # RFC 4861 7.2.4: to all nodes, Solicited clear (someone is trying to take the address).
        return NeighborAdvertisement(solicitation.target, ALL_NODES, solicitation.target, mac,
                                     solicited=False).frame(mac, multicast_mac(ALL_NODES))
    to_mac = solicitation.source_mac or frame.source
    if to_mac.is_multicast or to_mac.is_zero:
        return None
    answer = NeighborAdvertisement(solicitation.target, solicitation.source, solicitation.target,
                                   mac, solicited=True)
    return answer.frame(mac, to_mac)


def reply(data: bytes, owned: Collection[Address], mac: MacAddress) -> bytes | None:
    """The frame answering ``data`` for the owner of ``owned`` at ``mac``, or None.

    An ARP request for an owned address gets a unicast reply (a gratuitous ARP
    from someone else does not); a valid NS for an owned address gets a
    solicited NA with Override set, or, for duplicate address detection, an
    NA to all nodes.  Frames we sent ourselves are not answered.
    """
    frame = decode_ethernet(data)
    if frame is None or frame.source == mac:
        return None
    if frame.ethertype == ETH_P_ARP:
        return _reply_arp(frame, owned, mac)
    if frame.ethertype == ETH_P_IPV6:
        return _reply_ndp(frame, owned, mac)
    return None
