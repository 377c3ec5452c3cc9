"""The asyncio side of BFD (RFC 5881 single hop): UDP sockets, TTL 255 and timers.

A :class:`BfdTransport` runs any number of :class:`~spinelb.bfd.session.Session`
objects.  Per session it opens one sending socket bound to the session's local
address and a source port drawn from 49152-65535 (RFC 5881 4), sending with
TTL (hop limit) 255.  Per local address it opens one receiving socket on UDP
3784 with ``IP_RECVTTL`` (``IPV6_RECVHOPLIMIT``): a packet that arrives with a
TTL other than 255 did not come from a neighbour on the link and is dropped
(RFC 5881 5).  Packets are decoded (:func:`spinelb.bfd.packet.decode`) and
handed to the session named by Your Discriminator, or, when that is zero, to
the session of the (local, source) address pair; the source must be the
session's peer either way.  Each session has one loop timer at its next
deadline.  State changes go to the ``on_state_change`` callback: the speaker
tears the peer's BGP session down when BFD leaves Up.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address

from spinelb.bfd.packet import BfdPacketError, ControlPacket, decode
from spinelb.bfd.session import Action as SessionAction
from spinelb.bfd.session import BfdSettings, Send, Session, StateChanged

__all__ = ["BFD_PORT", "SOURCE_PORTS", "TTL", "BfdCounters", "BfdTransport"]

log = logging.getLogger("spinelb.bfd")

Address = IPv4Address | IPv6Address

BFD_PORT = 3784  # RFC 5881 4: single-hop Control packets
SOURCE_PORTS = range(49152, 65536)  # RFC 5881 4
TTL = 255  # RFC 5881 5: sent with, and required on receipt
IPTOS_PREC_INTERNETCONTROL = 0xC0
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # linux/in.h; Python 3.11 has no constant
BIND_ATTEMPTS = 64  # source ports tried before giving up
PACKETS_PER_WAKE = 64  # datagrams read per readable event before the loop moves on
RECEIVE_BUFFER = 128  # larger than any packet we accept (24 octets without authentication)

StateCallback = Callable[[Session, StateChanged], None]
TimersCallback = Callable[[Session], None]


@dataclass
class BfdCounters:
    """What the transport saw, for metrics and tests."""

    received: int = 0
    sent: int = 0
    dropped_ttl: int = 0  # TTL (hop limit) was not 255
    dropped_malformed: int = 0  # refused by the RFC 5880 6.8.6 checks
    dropped_unmatched: int = 0  # no session for its discriminator or addresses
    send_errors: int = 0  # sendto failed (link down, no route): detection will tell


@dataclass
class _Receiver:
    """The UDP 3784 socket of one local address, shared by its sessions."""

    sock: socket.socket
    users: int = 0


@dataclass
class _Entry:
    session: Session
    sock: socket.socket
    timer: asyncio.TimerHandle | None = None
    timers: tuple[int, int] = (0, 0)  # (transmit interval, detection time) last reported
    closed: bool = field(default=False)


def _receiving_socket(local: Address, port: int) -> socket.socket:
    family = socket.AF_INET if local.version == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        sock.bind((str(local), port))
    except BaseException:
        sock.close()
        raise
    return sock


def _sending_socket(local: Address, rng: random.Random) -> socket.socket:
    """A UDP socket bound to ``local`` and a free source port in 49152-65535, TTL 255."""
    family = socket.AF_INET if local.version == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, IPTOS_PREC_INTERNETCONTROL)
        for _ in range(BIND_ATTEMPTS):
            try:
                sock.bind((str(local), rng.choice(SOURCE_PORTS)))
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise
            else:
                return sock
        raise OSError(errno.EADDRINUSE, f"no free BFD source port on {local}")
    except BaseException:
        sock.close()
        raise


def _received_ttl(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancdata:
        if (level, kind) in (
            (socket.IPPROTO_IP, socket.IP_TTL),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT),
        ) and len(data) >= 4:
            return int.from_bytes(data[:4], sys.byteorder)
    return None


class BfdTransport:
    """Sockets and timers for a set of BFD sessions, on the running event loop."""

    def __init__(
        self,
        on_state_change: StateCallback,
        *,
        on_timers_change: TimersCallback | None = None,
        rng: random.Random | None = None,
        port: int = BFD_PORT,
    ) -> None:
        self.on_state_change = on_state_change
        self.on_timers_change = on_timers_change
        self.port = port  # where we listen and where peers listen
        self.counters = BfdCounters()
        self._rng = rng if rng is not None else random.SystemRandom()
        self._loop = asyncio.get_running_loop()
        self._receivers: dict[Address, _Receiver] = {}
        self._by_discr: dict[int, _Entry] = {}
        self._by_addresses: dict[tuple[Address, Address], _Entry] = {}

    @property
    def sessions(self) -> list[Session]:
        return [entry.session for entry in self._by_addresses.values()]

    def session(self, local: Address, peer: Address) -> Session | None:
        """The session from ``local`` to ``peer``, if there is one."""
        entry = self._by_addresses.get((local, peer))
        return entry.session if entry else None

    def add_session(self, local: Address, peer: Address, settings: BfdSettings) -> Session:
        """Open the sockets for a session from ``local`` to ``peer`` and start it (Down)."""
        if local.version != peer.version:
            raise ValueError(f"BFD session {local} -> {peer} mixes address families")
        if (local, peer) in self._by_addresses:
            raise ValueError(f"a BFD session {local} -> {peer} already exists")
        discriminator = self._rng.randint(1, 0xFFFFFFFF)
        while discriminator in self._by_discr:
            discriminator = self._rng.randint(1, 0xFFFFFFFF)
        session = Session(local, peer, settings, self._rng, discriminator=discriminator)
        receiver = self._receivers.get(local)
        if receiver is None:
            receiver = _Receiver(_receiving_socket(local, self.port))
            self._receivers[local] = receiver
            self._loop.add_reader(receiver.sock.fileno(), self._on_readable, local, receiver.sock)
        receiver.users += 1
        try:
            entry = _Entry(session, _sending_socket(local, self._rng))
        except BaseException:
            self._release(local)
            raise
        self._by_discr[discriminator] = entry
        self._by_addresses[(local, peer)] = entry
        self._run(entry, session.start(self._loop.time()))
        return session

    def reconfigure(self, session: Session, settings: BfdSettings) -> None:
        """New timers for a running session: a Poll sequence when Up (RFC 5880 6.8.3)."""
        entry = self._by_addresses.get((session.local_address, session.peer_address))
        if entry is None or entry.session is not session:
            return
        self._run(entry, session.reconfigure(settings, self._loop.time()))

    def remove_session(self, session: Session, *, admin_down: bool = True) -> None:
        """Stop a session and close its socket; first tell the peer AdminDown, unless asked not to."""
        entry = self._by_addresses.get((session.local_address, session.peer_address))
        if entry is None or entry.session is not session:
            return
        if admin_down:
            self._run(entry, session.admin_down(self._loop.time()))
        entry.closed = True
        if entry.timer is not None:
            entry.timer.cancel()
        entry.sock.close()
        del self._by_discr[session.local_discr]
        del self._by_addresses[(session.local_address, session.peer_address)]
        self._release(session.local_address)

    def close(self, *, admin_down: bool = True) -> None:
        """Remove every session (telling peers AdminDown) and close every socket."""
        for session in self.sessions:
            self.remove_session(session, admin_down=admin_down)

    # --- internals ---------------------------------------------------------------

    def _release(self, local: Address) -> None:
        receiver = self._receivers.get(local)
        if receiver is None:
            return
        receiver.users -= 1
        if receiver.users <= 0:
            self._loop.remove_reader(receiver.sock.fileno())
            receiver.sock.close()
            del self._receivers[local]

    def _on_readable(self, local: Address, sock: socket.socket) -> None:
        ancillary = socket.CMSG_SPACE(4)
        for _ in range(PACKETS_PER_WAKE):
            try:
                data, ancdata, _flags, source = sock.recvmsg(RECEIVE_BUFFER, ancillary)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                log.debug("bfd receive on %s: %s", local, err)
                return
            self._on_datagram(local, data, ancdata, source)

    def _on_datagram(
        self, local: Address, data: bytes, ancdata: list[tuple[int, int, bytes]], source: tuple[str, int]
    ) -> None:
        ttl = _received_ttl(ancdata)
        if ttl != TTL:
            self.counters.dropped_ttl += 1
            log.debug("bfd: dropped a packet from %s with TTL %s", source[0], ttl)
            return
        try:
            packet = decode(data)
        except BfdPacketError as err:
            self.counters.dropped_malformed += 1
            log.debug("bfd: dropped a packet from %s: %s", source[0], err)
            return
        peer = ip_address(source[0].split("%", 1)[0])
        entry = self._match(local, peer, packet)
        if entry is None:
            self.counters.dropped_unmatched += 1
            return
        self.counters.received += 1
        self._run(entry, entry.session.receive(packet, self._loop.time()))

    def _match(self, local: Address, peer: Address, packet: ControlPacket) -> _Entry | None:
        if packet.your_discriminator:
            entry = self._by_discr.get(packet.your_discriminator)
        else:
            entry = self._by_addresses.get((local, peer))
        if entry is None or (entry.session.local_address, entry.session.peer_address) != (local, peer):
            return None
        return entry

    def _run(self, entry: _Entry, actions: list[SessionAction]) -> None:
        session = entry.session
        for action in actions:
            if isinstance(action, Send):
                self._send(entry, action.packet)
            else:
                try:
                    self.on_state_change(session, action)
                except Exception:
                    log.exception("bfd state callback failed for %s", session.peer_address)
        if entry.closed:
            return
        timers = (session.transmit_interval_us, session.detection_time_us)
        if timers != entry.timers:
            entry.timers = timers
            if self.on_timers_change is not None:
                self.on_timers_change(session)
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        deadline = session.next_deadline()
        if deadline is not None:
            entry.timer = self._loop.call_at(deadline, self._on_timer, entry)

    def _on_timer(self, entry: _Entry) -> None:
        entry.timer = None
        if not entry.closed:
            self._run(entry, entry.session.poll(self._loop.time()))

    def _send(self, entry: _Entry, packet: ControlPacket) -> None:
        try:
            entry.sock.sendto(packet.encode(), (str(entry.session.peer_address), self.port))
        except OSError as err:
            self.counters.send_errors += 1
            log.debug("bfd send to %s: %s", entry.session.peer_address, err)
        else:
            self.counters.sent += 1
