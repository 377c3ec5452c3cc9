"""The asyncio side of Layer 2 mode: raw packet sockets on one interface, answering and announcing.

A :class:`Responder` answers ARP requests and neighbor solicitations for the
addresses it currently owns with the interface's MAC, and announces each
address it is given (gratuitous ARP, unsolicited NA) a few times, so that
clients switch to this node at once instead of waiting for their neighbor
cache to expire.  The addresses are never configured on the interface: the
node's kernel ignores traffic for them at Layer 3 and its service proxy
takes what arrives.

Two ``AF_PACKET`` sockets are bound to the interface, one for ARP and one for
IPv6; each gets a classic BPF filter before it is bound, so the kernel hands
us only ARP requests and ICMPv6 neighbor solicitations, never the node's IPv6
traffic.  For each owned IPv6 address the solicited-node multicast group is
joined on an ordinary IPv6 socket: that programs the NIC's multicast filter
and makes the kernel send MLD reports, so snooping switches forward the
solicitations to us.  Everything needs ``CAP_NET_RAW`` and nothing more.
What to answer is decided by :func:`spinelb.l2.packet.reply`, which is pure.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from spinelb.l2.packet import (
    ETH_P_ARP,
    ETH_P_IPV6,
    Address,
    MacAddress,
    announcement,
    reply,
    solicited_node,
)

__all__ = ["ANNOUNCE_DELAYS", "L2Counters", "Responder"]

log = logging.getLogger("spinelb.l2")

#: Seconds after taking an address at which it is announced: three times, like MetalLB and keepalived.
ANNOUNCE_DELAYS = (0.0, 0.2, 0.5)
FRAMES_PER_WAKE = 64  # frames read per readable event before the loop moves on
RECEIVE_BUFFER = 4096  # larger than any ARP request or solicitation worth answering
ARPHRD_ETHER = 1
PACKET_OUTGOING = 4
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)  # asm-generic/socket.h

# Classic BPF (linux/filter.h): opcodes and the two filters, offsets from the Ethernet header.
_LDH_ABS, _LDB_ABS, _JEQ_K, _RET_K = 0x28, 0x30, 0x15, 0x06
_ACCEPT, _DROP = 0xFFFF, 0
BpfProgram = Sequence[tuple[int, int, int, int]]
#: ethertype ARP and operation request
ARP_REQUEST_FILTER: BpfProgram = (
    (_LDH_ABS, 0, 0, 12),
    (_JEQ_K, 0, 3, ETH_P_ARP),
    (_LDH_ABS, 0, 0, 20),
    (_JEQ_K, 0, 1, 1),
    (_RET_K, 0, 0, _ACCEPT),
    (_RET_K, 0, 0, _DROP),
)
#: ethertype IPv6, next header ICMPv6, ICMPv6 type 135 (neighbor solicitation)
NEIGHBOR_SOLICITATION_FILTER: BpfProgram = (
    (_LDH_ABS, 0, 0, 12),
    (_JEQ_K, 0, 5, ETH_P_IPV6),
    (_LDB_ABS, 0, 0, 20),
    (_JEQ_K, 0, 3, 58),
    (_LDB_ABS, 0, 0, 54),
    (_JEQ_K, 0, 1, 135),
    (_RET_K, 0, 0, _ACCEPT),
    (_RET_K, 0, 0, _DROP),
)


@dataclass
class L2Counters:
    """What the responder did, for metrics and tests."""

    received: int = 0  # frames that passed the filters
    arp_answered: int = 0
    ndp_answered: int = 0
    announcements_sent: int = 0
    send_errors: int = 0  # send failed (link down): the next announcement or request retries
    group_errors: int = 0  # a solicited-node group could not be joined (IPv6 off on the link?)

    @property
    def requests_answered(self) -> int:
        return self.arp_answered + self.ndp_answered


def _attach_filter(sock: socket.socket, program: BpfProgram) -> None:
    """SO_ATTACH_FILTER: the kernel copies ``struct sock_fprog`` and its instructions."""
    code = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    instructions = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(program), ctypes.addressof(instructions))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _packet_socket(interface: str, protocol: int, program: BpfProgram) -> socket.socket:
    """A raw packet socket on ``interface`` for ``protocol``, filtered before it sees a frame."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: nothing until bind
    try:
        sock.setblocking(False)
        _attach_filter(sock, program)
        sock.bind((interface, protocol))
    except BaseException:
        sock.close()
        raise
    return sock


class Responder:
    """ARP and NDP for the owned addresses on one interface, on the running event loop.

    ``announce_delays`` are the seconds after an address is added at which it
    is announced.  Raises OSError when the interface does not exist or the
    process lacks ``CAP_NET_RAW``, ValueError when it is not Ethernet.
    """

    def __init__(self, interface: str, *, announce_delays: Sequence[float] = ANNOUNCE_DELAYS) -> None:
        if any(delay < 0 for delay in announce_delays):
            raise ValueError(f"announce delays must not be negative: {list(announce_delays)}")
        self.interface = interface
        self.announce_delays = tuple(announce_delays)
        self.counters = L2Counters()
        self._loop = asyncio.get_running_loop()
        self._addresses: frozenset[Address] = frozenset()
        self._announcing: dict[Address, list[asyncio.TimerHandle]] = {}
        self._groups: Counter[IPv6Address] = Counter()
        self._joined: set[IPv6Address] = set()
        self._closed = False
        self._ifindex = socket.if_nametoindex(interface)
        self._arp = _packet_socket(interface, ETH_P_ARP, ARP_REQUEST_FILTER)
        try:
            self._ndp = _packet_socket(interface, ETH_P_IPV6, NEIGHBOR_SOLICITATION_FILTER)
            try:
                self._mld = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            except BaseException:
                self._ndp.close()
                raise
        except BaseException:
            self._arp.close()
            raise
        _name, _proto, _pkttype, hatype, octets = self._arp.getsockname()
        if hatype != ARPHRD_ETHER or len(octets) != 6:
            self.close()
            raise ValueError(f"{interface} is not an Ethernet interface (hardware type {hatype})")
        self.mac = MacAddress(bytes(octets))
        self._loop.add_reader(self._arp.fileno(), self._on_readable, self._arp)
        self._loop.add_reader(self._ndp.fileno(), self._on_readable, self._ndp)

    @property
    def addresses(self) -> frozenset[Address]:
        """The addresses answered for now."""
        return self._addresses

    def set_addresses(self, addresses: Iterable[Address]) -> None:
        """Answer for exactly ``addresses`` from now on; announce the ones that are new."""
        if self._closed:
            raise RuntimeError(f"the responder on {self.interface} is closed")
        wanted = frozenset(addresses)
        for address in wanted:
            if not isinstance(address, (IPv4Address, IPv6Address)):
                raise TypeError(f"not an IP address: {address!r}")
        removed, added = self._addresses - wanted, wanted - self._addresses
        self._addresses = wanted
        for address in removed:
            self._cancel_announcements(address)
            if isinstance(address, IPv6Address):
                self._leave(solicited_node(address))
        for address in sorted(added, key=lambda a: (a.version, a)):
            if isinstance(address, IPv6Address):
                self._join(solicited_node(address))
            log.debug("l2: %s answers for %s with %s", self.interface, address, self.mac)
        self.announce(added)

    def announce(self, addresses: Iterable[Address] | None = None) -> None:
        """Announce owned ``addresses`` (all of them by default) at each of the announce delays.

        Call it again when the link comes back up: clients may have missed the first round.
        """
        chosen = self._addresses if addresses is None else frozenset(addresses) & self._addresses
        for address in chosen:
            self._cancel_announcements(address)
            self._announcing[address] = [
                self._loop.call_later(delay, self._announce_once, address)
                for delay in self.announce_delays
            ]

    def close(self) -> None:
        """Stop answering, cancel pending announcements and close the sockets (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for address in list(self._announcing):
            self._cancel_announcements(address)
        for sock in (self._arp, self._ndp):
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._mld.close()  # leaves every group it joined
        self._addresses = frozenset()

    # --- internals ---------------------------------------------------------------------

    def _cancel_announcements(self, address: Address) -> None:
        """Cancel what is pending for ``address`` (its handles stay until then: one list per address)."""
        for handle in self._announcing.pop(address, []):
            handle.cancel()

    def _join(self, group: IPv6Address) -> None:
        self._groups[group] += 1
        if group in self._joined:
            return
        try:
            self._mld.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                                 group.packed + struct.pack("@I", self._ifindex))
        except OSError as err:
            self.counters.group_errors += 1
            log.warning("l2: cannot join %s on %s: %s", group, self.interface, err)
        else:
            self._joined.add(group)

    def _leave(self, group: IPv6Address) -> None:
        self._groups[group] -= 1
        if self._groups[group] > 0:
            return
        del self._groups[group]
        if group in self._joined:
            self._joined.discard(group)
            try:
                self._mld.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_LEAVE_GROUP,
                                     group.packed + struct.pack("@I", self._ifindex))
            except OSError as err:
                log.debug("l2: cannot leave %s on %s: %s", group, self.interface, err)

    def _announce_once(self, address: Address) -> None:
        if self._closed or address not in self._addresses:
            return
        sock = self._arp if isinstance(address, IPv4Address) else self._ndp
        if self._send(sock, announcement(address, self.mac)):
            self.counters.announcements_sent += 1

    def _on_readable(self, sock: socket.socket) -> None:
        for _ in range(FRAMES_PER_WAKE):
            try:
                data, source = sock.recvfrom(RECEIVE_BUFFER)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # the link went down or away: nothing to answer
                log.debug("l2: receive on %s: %s", self.interface, err)
                return
            if source[2] == PACKET_OUTGOING:
                continue
            self.counters.received += 1
            answer = reply(data, self._addresses, self.mac)
            if answer is not None and self._send(sock, answer):
                if sock is self._arp:
                    self.counters.arp_answered += 1
                else:
                    self.counters.ndp_answered += 1

    def _send(self, sock: socket.socket, frame: bytes) -> bool:
        try:
            sock.send(frame)
        except OSError as err:
            self.counters.send_errors += 1
            log.debug("l2: send on %s: %s", self.interface, err)
            return False
        return True
