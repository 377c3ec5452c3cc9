"""The one asyncio transport: sockets, TCP MD5, TTL and timers around the sans-IO session.

A :class:`PeerSession` owns one configured peer.  It feeds what arrives on
the TCP connection to the FSM (:mod:`spinelb.bgp.fsm`), executes the actions
the FSM returns (connect, send, disconnect), arms one loop timer for the
FSM's next deadline, and pulls UPDATEs from the peer's Adj-RIB-Out
(:mod:`spinelb.bgp.rib`) one batch at a time, only once everything written
before has reached the kernel, so a KEEPALIVE is never queued behind a large
table.

A peer that stops reading is the FSM's RFC 9687 SendHoldTimer: each
connection tracks since when it has held data the kernel would not take
(:meth:`_Connection.sending_blocked`), and the session tells the FSM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, Protocol

from spinelb.bgp import fsm, wire
from spinelb.bgp.rib import AdjRibIn, AdjRibOut, PathAttributes, end_of_rib
from spinelb.bgp.wire import Address, BgpError, Family, MessageType, Prefix

log = logging.getLogger("spinelb.session")

TCP_MD5SIG = 14  # linux/tcp.h; Python has no constant
TCP_MD5SIG_MAXKEYLEN = 80
IPTOS_PREC_INTERNETCONTROL = 0xC0

# The RIB is asked for the next BATCH octets of UPDATEs only when asyncio's
# buffer is empty (writing pauses as soon as anything is left in it), and the
# kernel keeps at most about NOTSENT_LOWAT octets it has not sent yet: a
# KEEPALIVE waits behind at most BATCH + NOTSENT_LOWAT octets of ours, plus
# what the peer's TCP window already lets through.
BATCH = 16 * 1024
NOTSENT_LOWAT = 16 * 1024
# Received messages handled per event-loop turn before timers get their chance.
MESSAGES_PER_TURN = 8


# --- sockets ---------------------------------------------------------------


def md5sig(peer: Address, password: str | None) -> bytes:
    """``struct tcp_md5sig`` for ``peer``; an empty key removes the signature."""
    key = password.encode() if password else b""
    if len(key) > TCP_MD5SIG_MAXKEYLEN:
        raise ValueError("TCP MD5 key longer than 80 octets")
    if isinstance(peer, IPv4Address):
        addr = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + peer.packed
    else:
        addr = (
            struct.pack("=H", socket.AF_INET6)
            + struct.pack("!HI", 0, 0)
            + peer.packed
            + struct.pack("=I", 0)
        )
    addr = addr.ljust(128, b"\0")
    return addr + struct.pack("=BBHi", 0, 0, len(key), 0) + key.ljust(TCP_MD5SIG_MAXKEYLEN, b"\0")


def set_md5(sock: socket.socket, peer: Address, password: str | None) -> None:
    """Sign (or stop signing) every segment to and from ``peer`` with TCP MD5 (RFC 2385)."""
    if sock.family == socket.AF_INET6 and isinstance(peer, IPv4Address):
        peer = IPv6Address(f"::ffff:{peer}")
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig(peer, password))


def set_ttl(sock: socket.socket, ttl: int) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, IPTOS_PREC_INTERNETCONTROL)


def bound_unsent(sock: socket.socket) -> None:
    """Keep at most about NOTSENT_LOWAT unsent octets in the kernel (TCP_NOTSENT_LOWAT),
    so what waits in front of a KEEPALIVE stays in our own, small, queue."""
    with contextlib.suppress(OSError):  # an old kernel without it: larger queue, same behaviour
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, NOTSENT_LOWAT)


def reset_on_close(sock: socket.socket) -> None:
    """Close with a RST instead of a FIN behind unsent data (SO_LINGER 0): the way to
    drop a connection whose peer reads nothing (RFC 9687)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def connecting_socket(
    peer: Address, *, source: Address | None, ttl: int, password: str | None
) -> socket.socket:
    family = socket.AF_INET if peer.version == 4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        set_ttl(sock, ttl)
        if password:
            set_md5(sock, peer, password)
        if source is not None:
            sock.bind((str(source), 0))
    except BaseException:
        sock.close()
        raise
    return sock


# --- what the speaker gives a session, and hears back --------------------


class SessionObserver(Protocol):
    """Hooks the speaker uses for logging and metrics."""

    def state_changed(self, peer: str, old: fsm.State, new: fsm.State) -> None: ...
    def message_sent(self, peer: str, msg_type: int, count: int) -> None: ...
    def message_received(self, peer: str, msg: wire.Message) -> None: ...
    def notification_sent(self, peer: str, msg: wire.Notification) -> None: ...


RoutesFor = Callable[[Address, frozenset[Family]], Mapping[Prefix, PathAttributes]]


@dataclass
class PeerTarget:
    """Where and how to reach a peer (the transport's slice of its config)."""

    name: str
    address: Address
    port: int = 179
    source_address: Address | None = None
    ttl: int = 1
    password: str | None = field(default=None, repr=False)
    passive: bool = False


class _Connection(asyncio.Protocol):
    """One TCP connection; hands bytes to its session, tells it when it can write."""

    def __init__(self, session: PeerSession, *, outgoing: bool) -> None:
        self.session = session
        self.outgoing = outgoing  # we initiated it (what collision resolution compares)
        self.transport: asyncio.Transport | None = None
        self.reader = wire.MessageReader()
        self.paused = False  # asyncio holds data the kernel would not take yet
        self.reading_paused = False  # we stopped reading while buffered messages wait
        self.blocked_since: float | None = None  # unsent data, none taken, since then
        self._unsent = 0  # asyncio's buffer at the last look
        self._written = 0  # octets handed to write() since the last look

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=0, low=0)  # pause on any backlog, resume at none
        sock = transport.get_extra_info("socket")
        if sock is not None:
            bound_unsent(sock)

    def write(self, data: bytes) -> None:
        """Queue ``data``, counting it for :meth:`sending_blocked`."""
        assert self.transport is not None
        self._written += len(data)  # first: write() may call pause_writing, which looks
        self.transport.write(data)

    def sending_blocked(self, now: float) -> float | None:
        """Since when data has waited with none of it taken by the kernel, or None.

        The kernel took something since the last look when asyncio's buffer is
        smaller than it was plus what was written since; that progress restarts
        the count at ``now`` (RFC 9687: the peer is reading, however slowly).
        """
        transport = self.transport
        unsent = 0
        if transport is not None and not transport.is_closing():
            unsent = transport.get_write_buffer_size()
        progressed = self._unsent + self._written > unsent
        self._unsent, self._written = unsent, 0
        if unsent == 0:
            self.blocked_since = None
        elif progressed or self.blocked_since is None:
            self.blocked_since = now
        return self.blocked_since

    def abort(self) -> None:
        """Drop the connection now: unsent data discarded, the peer gets a RST."""
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            reset_on_close(sock)
        transport.abort()

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        if not self.reading_paused:
            self._drain()

    def _drain(self) -> None:
        """Handle up to MESSAGES_PER_TURN buffered messages; leave the rest for the next turn.

        A read can hold hundreds of UPDATEs (a spine sending its table back);
        handling them in slices lets the keepalive timer and the UPDATE pump run
        in between.  Reading pauses meanwhile, so the kernel's window pushes back.
        """
        session = self.session
        machine = session.machine_of(self)
        if machine is None:
            return
        budget = MESSAGES_PER_TURN
        try:
            for msg_type, body in self.reader.messages():
                neg = machine.negotiated
                msg = wire.decode(msg_type, body, asn4=True if neg is None else neg.asn4)
                session.on_message(self, machine, msg)
                machine = session.machine_of(self)
                if machine is None:
                    return
                budget -= 1
                if budget == 0 and self.reader.pending >= wire.HEADER_LEN:
                    self._pause_reading()
                    asyncio.get_running_loop().call_soon(self._drain)
                    return
        except BgpError as err:
            current = session.machine_of(self)
            if current is not None:
                session.on_decode_error(self, current, err)
            return
        if self.reading_paused:
            self.reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    def _pause_reading(self) -> None:
        if not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.on_connection_lost(self, exc)

    def pause_writing(self) -> None:
        self.paused = True
        self.session.check_sending(self)

    def resume_writing(self) -> None:
        self.paused = False
        self.session.check_sending(self)
        self.session.schedule_pump()


@dataclass
class _Candidate:
    """A second connection from the peer while ours is still opening (RFC 4271 6.8)."""

    machine: fsm.Session
    conn: _Connection


class PeerSession:
    """Drives one peer's FSM over real sockets.

    Normally one connection and one FSM.  When the peer connects to us while
    our own connection to it is in OpenSent or OpenConfirm, the incoming one
    runs its own FSM as a candidate until the peer's BGP Identifier is known,
    then the collision is resolved: the loser gets Cease/7 and is closed.
    """

    def __init__(
        self,
        target: PeerTarget,
        settings: fsm.SessionSettings,
        *,
        routes: RoutesFor,
        observer: SessionObserver | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self.routes = routes
        self.observer = observer
        self.fsm = fsm.Session(settings)
        self.connection: _Connection | None = None
        self.rib: AdjRibOut | None = None
        self.received = AdjRibIn()
        self.end_of_rib: set[Family] = set()  # families whose initial table the peer finished
        self.end_of_rib_sent: set[Family] = set()  # families whose whole table we sent
        # False while the table is still incomplete (a Kubernetes source before its first
        # sync): End-of-RIB waits, so a peer in graceful restart flushes nothing early.
        self.table_complete = True
        self.established_at: float | None = None  # wall clock, for status
        self.last_error: str | None = None
        self.local_address: Address | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._pump_scheduled = False
        self._eor_pending: set[Family] = set()
        self._closed = asyncio.Event()
        self._stopping = False
        self._candidate: _Candidate | None = None

    # --- lifecycle -----------------------------------------------------

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def state(self) -> fsm.State:
        return self.fsm.state

    @property
    def asn4(self) -> bool:
        neg = self.fsm.negotiated
        return True if neg is None else neg.asn4

    def start(self) -> None:
        """ManualStart; also after :meth:`stop` (BFD Up again brings a session back)."""
        self._stopping = False
        self._run(self.fsm.start(self._loop.time()))

    def retry_now(self) -> bool:
        """Connect now instead of after the backoff (see :meth:`fsm.Session.retry_now`);
        whether a connection attempt started."""
        actions = self.fsm.retry_now(self._loop.time())
        self._run(actions)
        return bool(actions)

    async def stop(self, reason: str = "", *, subcode: int = wire.CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
                   withdraw: bool = True, notify: bool = True, timeout: float = 2.0) -> None:
        """Withdraw every route, send Cease with ``reason``, close (RFC 4486, RFC 9003).

        ``withdraw=False, notify=False`` is a planned restart (RFC 4724): the connection
        is closed with nothing said, so the peer keeps our routes as stale.
        """
        self._stopping = True
        cand, self._candidate = self._candidate, None
        if cand is not None and cand.conn.transport is not None:
            cand.conn.transport.abort()  # a collision still being decided: no session to close
        if withdraw and self.rib is not None and self.connection is not None:
            self.rib.withdraw_all()
            self._flush_rib()
        actions = self.fsm.stop(self._loop.time(), reason=reason, subcode=subcode, notify=notify)
        self._run(actions)
        conn = self.connection
        if conn is not None and conn.transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout)
            if conn.transport is not None:
                conn.abort()
        self._cancel_connect()
        if self._timer is not None:
            self._timer.cancel()

    def accept(self, sock: socket.socket) -> bool:
        """An incoming connection from this peer's address; True if taken."""
        state = self.fsm.state
        if self.connection is None and state in (fsm.State.ACTIVE, fsm.State.CONNECT):
            self._cancel_connect()
            self._adopt_soon(sock, fsm.Event.TCP_CONNECTION_CONFIRMED)
            return True
        main = self.connection
        if (
            state in (fsm.State.OPEN_SENT, fsm.State.OPEN_CONFIRM)
            and main is not None
            and main.outgoing
            and self._candidate is None
        ):
            self._loop.create_task(self._adopt_candidate(sock))
            return True
        return False  # Established (it always wins), Idle, or a collision already running

    # --- FSM plumbing -------------------------------------------------------

    def _run(self, actions: list[fsm.Action]) -> None:
        for action in actions:
            self._execute(action)
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [self.fsm.next_deadline()]
        if self._candidate is not None:
            deadlines.append(self._candidate.machine.next_deadline())
        due = [d for d in deadlines if d is not None]
        if due:
            self._timer = self._loop.call_at(min(due), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._loop.time()
        if self.connection is not None:  # progress since the last look moves the SendHoldTimer
            self.check_sending(self.connection)
        if self._candidate is not None:
            self._run_candidate(self._candidate.machine.poll(now))
        self._run(self.fsm.poll(now))

    def machine_of(self, conn: _Connection) -> fsm.Session | None:
        """The FSM a connection feeds, or None for a connection already let go."""
        if conn is self.connection:
            return self.fsm
        if self._candidate is not None and conn is self._candidate.conn:
            return self._candidate.machine
        return None

    def _execute(self, action: fsm.Action) -> None:
        if isinstance(action, fsm.Send):
            self._send(action.message, best_effort=action.best_effort)
        elif isinstance(action, fsm.Connect):
            if not self.target.passive and self._connect_task is None:
                self._connect_task = self._loop.create_task(self._connect())
        elif isinstance(action, fsm.Disconnect):
            self._disconnect(abort=action.abort)
        elif isinstance(action, fsm.SessionEstablished):
            self._established(action.negotiated)
        elif isinstance(action, fsm.SessionDown):
            self._down(action)
        elif isinstance(action, fsm.Deliver):
            self._deliver(action.update)
        elif isinstance(action, fsm.RefreshRequested):
            if self.rib is not None:
                self.rib.refresh((action.afi, action.safi))
                self._eor_pending.add((action.afi, action.safi))
                self.schedule_pump()
        elif isinstance(action, fsm.StateChanged):
            log.info("state", extra={"peer": self.name, "old": action.old.value, "new": action.new.value})
            if self.observer is not None:
                self.observer.state_changed(self.name, action.old, action.new)

    def _send(self, message: wire.Message, *, best_effort: bool = False) -> None:
        self._write(self.connection, self.fsm, message, best_effort=best_effort)

    def _write(
        self,
        conn: _Connection | None,
        machine: fsm.Session,
        message: wire.Message,
        *,
        best_effort: bool = False,
    ) -> None:
        if conn is None or conn.transport is None or conn.transport.is_closing():
            return
        if best_effort and conn.transport.get_write_buffer_size():
            # RFC 9687: behind data the peer does not read it would never arrive.
            log.warning("NOTIFICATION not sent: the peer reads nothing",
                        extra={"peer": self.name, "type": type(message).__name__})
            return
        neg = machine.negotiated
        conn.write(wire.encode(message, asn4=True if neg is None else neg.asn4))
        msg_type = _message_type(message)
        machine.message_sent(msg_type, self._loop.time())
        if conn is self.connection:
            self.check_sending(conn)
        if self.observer is not None:
            self.observer.message_sent(self.name, msg_type, 1)
        if isinstance(message, wire.Notification):
            log.warning("sent NOTIFICATION " + fsm.describe_notification(message),
                        extra={"peer": self.name})
            if self.observer is not None:
                self.observer.notification_sent(self.name, message)

    async def _connect(self) -> None:
        try:
            sock = connecting_socket(
                self.target.address,
                source=self.target.source_address,
                ttl=self.target.ttl,
                password=self.target.password,
            )
        except OSError as err:
            self._connect_task = None
            self.last_error = f"socket: {err.strerror or err}"
            self._run(self.fsm.handle(fsm.Event.TCP_CONNECTION_FAILS, self._loop.time()))
            return
        try:
            await self._loop.sock_connect(sock, (str(self.target.address), self.target.port))
        except asyncio.CancelledError:
            sock.close()
            raise
        except OSError as err:
            sock.close()
            self._connect_task = None
            self.last_error = f"connect: {err.strerror or err}"
            self._run(self.fsm.handle(fsm.Event.TCP_CONNECTION_FAILS, self._loop.time()))
            return
        self._connect_task = None
        await self._adopt(sock, fsm.Event.TCP_CR_ACKED)

    def _adopt_soon(self, sock: socket.socket, event: fsm.Event) -> None:
        self.connection = _Connection(self, outgoing=False)  # claimed now: no second adopt
        self._loop.create_task(self._adopt(sock, event, self.connection))

    async def _adopt(
        self, sock: socket.socket, event: fsm.Event, conn: _Connection | None = None
    ) -> None:
        conn = conn or _Connection(self, outgoing=True)
        self.connection = conn
        self._closed.clear()
        try:
            await self._loop.create_connection(lambda: conn, sock=sock)
        except OSError as err:
            self.connection = None
            sock.close()
            self.last_error = f"connection: {err}"
            self._run(self.fsm.handle(fsm.Event.TCP_CONNECTION_FAILS, self._loop.time()))
            return
        local = sock.getsockname()[0]
        self.local_address = _unmapped(ip_address(local))
        self._run(self.fsm.handle(event, self._loop.time()))

    def _cancel_connect(self) -> None:
        if self._connect_task is not None:
            self._connect_task.cancel()
            self._connect_task = None

    def _disconnect(self, *, abort: bool = False) -> None:
        self._cancel_connect()
        conn = self.connection
        self.connection = None
        self.rib = None
        if conn is not None and conn.transport is not None:
            if abort:
                log.warning("connection reset: the peer stopped reading", extra={"peer": self.name})
                conn.abort()
            else:
                conn.transport.close()  # flushes what was written (a NOTIFICATION) first
        else:
            self._closed.set()

    def check_sending(self, conn: _Connection) -> None:
        """Tell the FSM since when ``conn`` could not write (RFC 9687 SendHoldTimer)."""
        if conn is not self.connection:
            return
        before = self.fsm.deadline(fsm.Timer.SEND_HOLD)
        self.fsm.sending_blocked(conn.sending_blocked(self._loop.time()))
        if self.fsm.deadline(fsm.Timer.SEND_HOLD) != before:
            self._arm_timer()

    # --- collisions (RFC 4271 6.8) ------------------------------------------------

    async def _adopt_candidate(self, sock: socket.socket) -> None:
        machine = fsm.Session(self.settings)
        machine.restart_state = self.fsm.restart_state  # the same OPEN as ours would carry
        machine.forwarding_preserved = self.fsm.forwarding_preserved
        conn = _Connection(self, outgoing=False)
        self._candidate = _Candidate(machine, conn)
        now = self._loop.time()
        machine.handle(fsm.Event.MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT, now)
        try:
            await self._loop.create_connection(lambda: conn, sock=sock)
        except OSError:
            sock.close()
            self._candidate = None
            return
        log.info("connection collision: second connection opening", extra={"peer": self.name})
        self._run_candidate(machine.handle(fsm.Event.TCP_CONNECTION_CONFIRMED, self._loop.time()))

    def _run_candidate(self, actions: list[fsm.Action]) -> None:
        cand = self._candidate
        if cand is None:
            return
        for action in actions:
            if isinstance(action, fsm.Send):
                self._write(cand.conn, cand.machine, action.message)
            elif isinstance(action, fsm.Disconnect):
                self._candidate = None
                if cand.conn.transport is not None:
                    cand.conn.transport.close()
        self._resolve_collision()
        self._arm_timer()

    def _resolve_collision(self) -> None:
        """Once the peer's BGP Identifier is known, keep one connection (RFC 4271 6.8)."""
        cand = self._candidate
        if cand is None:
            return
        now = self._loop.time()
        if self.fsm.state is fsm.State.ESTABLISHED or self.connection is None:
            self._run_candidate(cand.machine.handle(fsm.Event.OPEN_COLLISION_DUMP, now))
            return
        known = [m.negotiated for m in (self.fsm, cand.machine) if m.negotiated is not None]
        if not known:
            return
        peer_open = known[0].peer_open
        keep = fsm.collision_winner(
            self.settings.router_id, peer_open.bgp_id,
            local_asn=self.settings.local_asn, remote_asn=peer_open.asn,
        )
        log.info("connection collision resolved", extra={"peer": self.name, "kept": keep})
        if keep == "local":  # ours, the outgoing one, stays
            self._run_candidate(cand.machine.handle(fsm.Event.OPEN_COLLISION_DUMP, now))
            return
        old_conn, old_state = self.connection, self.fsm.state
        for action in self.fsm.handle(fsm.Event.OPEN_COLLISION_DUMP, now):
            if isinstance(action, fsm.Send):
                self._write(old_conn, self.fsm, action.message)
        if old_conn.transport is not None:
            old_conn.transport.close()
        self._candidate = None
        self.fsm, self.connection = cand.machine, cand.conn
        local = cand.conn.transport.get_extra_info("sockname") if cand.conn.transport else None
        if local:
            self.local_address = _unmapped(ip_address(local[0]))
        if self.observer is not None:
            self.observer.state_changed(self.name, old_state, self.fsm.state)
        self._arm_timer()

    # --- events from the connection --------------------------------------

    def on_message(self, conn: _Connection, machine: fsm.Session, msg: wire.Message) -> None:
        if self.observer is not None:
            self.observer.message_received(self.name, msg)
        if isinstance(msg, wire.Notification):
            self.last_error = "received NOTIFICATION " + fsm.describe_notification(msg)
            log.warning(self.last_error, extra={"peer": self.name})
        actions = machine.receive(msg, self._loop.time())
        if machine is self.fsm:
            self._run(actions)
            if self._candidate is not None:
                self._resolve_collision()
        else:
            self._run_candidate(actions)

    def on_decode_error(self, conn: _Connection, machine: fsm.Session, err: BgpError) -> None:
        self.last_error = f"sent {err.code}/{err.subcode}: {err.reason or err}"
        log.warning("malformed message", extra={"peer": self.name, "error": str(err)})
        actions = machine.decode_error(err, self._loop.time())
        if machine is self.fsm:
            self._run(actions)
        else:
            self._run_candidate(actions)

    def on_connection_lost(self, conn: _Connection, exc: Exception | None) -> None:
        cand = self._candidate
        if cand is not None and conn is cand.conn:
            self._candidate = None
            self._arm_timer()
            return
        if conn is not self.connection:
            self._closed.set()
            return
        self.connection = None
        self.rib = None
        self._closed.set()
        if exc is not None:
            self.last_error = f"connection lost: {exc}"
        if not self._stopping:
            self._run(self.fsm.handle(fsm.Event.TCP_CONNECTION_FAILS, self._loop.time()))

    # --- Established: the Adj-RIB-Out ------------------------------------------

    def _established(self, negotiated: fsm.Negotiated) -> None:
        self.established_at = time.time()
        self.last_error = None
        self.received.clear()
        self.end_of_rib.clear()
        self.end_of_rib_sent.clear()
        self.rib = AdjRibOut(families=negotiated.families, asn4=negotiated.asn4)
        self._eor_pending = set(negotiated.families)
        self.refresh_routes()

    def refresh_routes(self) -> None:
        """Recompute what this peer should carry; only the difference is sent."""
        if self.rib is None or self.local_address is None:
            return
        self.rib.replace(self.routes(self.local_address, self.rib.families))
        self.schedule_pump()

    def update_routes(
        self, add: Mapping[Prefix, PathAttributes], remove: Iterable[Prefix]
    ) -> None:
        """Change a few routes of an established session; only these are sent.

        The incremental counterpart of :meth:`refresh_routes` (which walks the
        whole table): a Service address coming or going touches one prefix.
        Does nothing before Established, when the full table is taken anyway.
        """
        if self.rib is None:
            return
        for prefix in remove:
            self.rib.remove(prefix)
        for prefix, attrs in add.items():
            self.rib.put(prefix, attrs)
        self.schedule_pump()

    def complete_table(self) -> None:
        """The table is whole now (the first Kubernetes sync is in): End-of-RIB may go."""
        self.table_complete = True
        self.schedule_pump()

    def schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._pump_scheduled = False
        conn, rib = self.connection, self.rib
        if conn is None or conn.transport is None or rib is None or conn.paused:
            return
        messages = rib.take(BATCH)
        if messages:
            conn.write(b"".join(messages))
            self.fsm.message_sent(MessageType.UPDATE, self._loop.time())
            if self.observer is not None:
                self.observer.message_sent(self.name, MessageType.UPDATE, len(messages))
            self.check_sending(conn)
            self.schedule_pump()  # yield to the loop between batches
            return
        if self._eor_pending and self.table_complete:  # RFC 4724: after the whole table only
            for family in sorted(self._eor_pending):
                conn.write(end_of_rib(family, asn4=rib.asn4))
            self.end_of_rib_sent |= self._eor_pending
            self._eor_pending.clear()
            self.fsm.message_sent(MessageType.UPDATE, self._loop.time())
            self.check_sending(conn)

    def _flush_rib(self) -> None:
        """Write every pending change now (used for the withdrawals before a shutdown)."""
        conn, rib = self.connection, self.rib
        if conn is None or conn.transport is None or rib is None:
            return
        while rib.pending():
            conn.write(b"".join(rib.take(1 << 20)))

    def _down(self, action: fsm.SessionDown) -> None:
        if action.reason:
            self.last_error = action.reason
        self.established_at = None
        self.rib = None
        self.received.clear()
        log.info("session down", extra={"peer": self.name, "reason": action.reason})

    def _deliver(self, update: wire.Update) -> None:
        eor = wire.end_of_rib_family(update)
        if eor is not None:  # RFC 4724: the peer's initial table is complete
            self.end_of_rib.add(eor)
            return
        received = self.received
        received.withdraw(update.withdrawn)
        mp_reach: tuple[Prefix, ...] = ()
        for attr in update.attributes:
            if isinstance(attr, wire.MpUnreachNlri):
                received.withdraw(attr.withdrawn)
            elif isinstance(attr, wire.MpReachNlri):
                mp_reach = attr.nlri
        if update.treat_as_withdraw:
            received.withdraw(update.nlri)
            received.withdraw(mp_reach)
        else:
            received.announce(update.nlri)
            received.announce(mp_reach)

    # --- status ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        up = self.established_at
        return {
            "name": self.name,
            "address": str(self.target.address),
            "state": self.fsm.state.value,
            "uptime_seconds": None if up is None else round(time.time() - up, 3),
            "advertised": 0 if self.rib is None else self.rib.advertised,
            "received": len(self.received),
            "last_error": self.last_error,
            "local_address": None if self.local_address is None else str(self.local_address),
            "end_of_rib_received": sorted(f"{afi}/{safi}" for afi, safi in self.end_of_rib),
            "end_of_rib_sent": sorted(f"{afi}/{safi}" for afi, safi in self.end_of_rib_sent),
        }


def _unmapped(addr: Address) -> Address:
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _message_type(message: wire.Message) -> int:
    if isinstance(message, wire.Open):
        return MessageType.OPEN
    if isinstance(message, wire.Update):
        return MessageType.UPDATE
    if isinstance(message, wire.Notification):
        return MessageType.NOTIFICATION
    if isinstance(message, wire.Keepalive):
        return MessageType.KEEPALIVE
    return MessageType.ROUTE_REFRESH


class Listener:
    """The optional BGP listener: hands each incoming connection to the session of its peer.

    TCP MD5 keys are set on the listening socket per peer, so the kernel drops
    unsigned or wrongly signed SYNs before they reach us.
    """

    def __init__(self, host: str, port: int, sessions: Mapping[Address, PeerSession]) -> None:
        self.host = host
        self.port = port
        self.sessions = sessions
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        addr = ip_address(self.host)
        family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        for peer_addr, session in self.sessions.items():
            if session.target.password and (family == socket.AF_INET6 or peer_addr.version == 4):
                set_md5(sock, peer_addr, session.target.password)
        sock.bind((self.host, self.port))
        sock.listen(64)
        sock.setblocking(False)
        self._sock = sock
        self._task = asyncio.get_running_loop().create_task(self._accept_loop(sock))

    async def _accept_loop(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, addr = await loop.sock_accept(sock)
            peer = _unmapped(ip_address(addr[0]))
            session = self.sessions.get(peer)
            if session is None or not session.accept(conn):
                log.info("connection refused", extra={"from": str(peer)})
                conn.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sock is not None:
            self._sock.close()
