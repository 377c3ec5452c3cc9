"""The BGP-4 session finite state machine of RFC 4271 section 8, sans-IO.

One :class:`Session` is the FSM of one peer over one TCP connection at a time.
It never touches a socket or a clock: the transport feeds it events
(:meth:`Session.handle`), decoded messages (:meth:`Session.receive`), decode
errors (:meth:`Session.decode_error`) and the time (every call takes ``now``,
monotonic seconds), and executes the :data:`Action` list each call returns, in
order.  Timers are deadlines; the transport wakes at :meth:`Session.next_deadline`
and calls :meth:`Session.poll`.

Where the RFCs live in this module:

- RFC 4271 8.1.1-8.1.5, events 1-28: :class:`Event`; optional session
  attributes used: DelayOpen (``delay_open_time``), PassiveTcpEstablishment
  (``passive``), DampPeerOscillations (``idle_hold_time`` .. ``idle_hold_max``,
  events 6, 7, 13), AllowAutomaticStart/Stop (events 3-8).
  SendNOTIFICATIONwithoutOPEN and CollisionDetectEstablishedState are FALSE.
- RFC 4271 8.2.2, the six states: ``Session._in_idle`` .. ``Session._in_established``,
  one method per state, branches in the RFC's order, "any other event" last.
- RFC 4271 4.2 / 6.2 OPEN checks, 4.4 / 10 hold time, keepalive and jitter,
  RFC 6286 (BGP Identifier), RFC 6793 (4-octet AS, AS_TRANS), RFC 4760
  (families), RFC 2918 (route refresh), RFC 4724 (graceful restart):
  ``Session._negotiate`` and :meth:`Session.build_open`.
- RFC 6608 FSM error subcodes: ``_FSM_ERROR``.  RFC 4486 Cease subcodes and
  RFC 9003 shutdown communication: :meth:`Session.stop` (128 octets at most).
- RFC 4271 6.8 collision detection: :func:`collision_winner` (the transport
  runs a second :class:`Session` for the second connection and fires
  ``OPEN_COLLISION_DUMP`` on the loser).
- RFC 9687 send hold timer, event 29: :meth:`Session.sending_blocked` (the
  transport says since when nothing it queued could be written) and
  ``Session._send_hold_expired``.

Deliberate choices where the RFC leaves room or contradicts itself (each
tested):

- Idle refuses connections: ``TCP_CR_ACKED``/``TCP_CONNECTION_CONFIRMED`` in
  Idle return ``Disconnect`` so the transport closes the socket it offered.
- Entering Idle stops every timer (the RFC's Active + TcpConnectionFails
  "restarts the ConnectRetryTimer" although that timer is ignored in Idle);
  the restart is the IdleHoldTimer's job instead.
- DampPeerOscillations: after any error the session goes Idle and, with
  ``auto_restart``, starts the IdleHoldTimer; its expiry (event 13) is an
  AutomaticStart.  The delay doubles per consecutive failure up to
  ``idle_hold_max`` and falls back to ``idle_hold_time`` only once a session
  stayed Established for ``idle_hold_max`` seconds, so a peer that accepts and
  drops at once is damped.  ManualStop in Idle cancels a pending restart.
- ConnectRetryTimer: ``connect_retry_time`` doubled per start since the last
  Established (or ManualStart), capped at ``connect_retry_max``, times a
  jitter factor in [0.75, 1.0]; KeepaliveTimer likewise jittered (RFC 4271 10)
  but never below one second (RFC 4271 4.4), so hold time 3 keeps 1 s.
- A passive session (``passive``) never emits :class:`Connect`: an expired
  ConnectRetryTimer in Active only restarts the timer.
- An OPEN on this connection in OpenConfirm or Established is an FSM error
  (5/2, 5/3); collisions with a second connection are the transport's.
- NOTIFICATION received in OpenSent closes without answering with an FSM
  error (RFC 4271 lists event 25 under "any other event" there, but a
  NOTIFICATION is the peer's closing word, not an unexpected message in the
  sense of RFC 6608).
- A message header error in Established is reported with its own
  NOTIFICATION (RFC 4271 6.1 "MUST"), not as an FSM error.
- No common address family still brings the session up (RFC 4760 and 5492
  do not require a reset): ``Negotiated.families`` is the intersection and
  may be empty; the speaker then has nothing to announce.
- SendHoldTimer (RFC 9687): the RFC restarts it on every message sent; here
  it runs only while the transport has data the peer's TCP window will not
  take, from the moment nothing more could be written, which is the same
  condition without a timer restart per message.  It runs in OpenConfirm and
  Established with a non-zero negotiated hold time.  On expiry the
  NOTIFICATION (code 8) is sent only if it can go out at once
  (``Send.best_effort``) and the connection is aborted (``Disconnect.abort``):
  a peer that reads nothing would never receive it, and waiting for it is
  what the timer exists to prevent.
- Any message received in Established restarts the HoldTimer, ROUTE-REFRESH
  included.  A ROUTE-REFRESH for a family not negotiated, or when this
  speaker did not advertise the capability, is ignored (RFC 2918).
"""

from __future__ import annotations

import contextlib
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address

from spinelb.bgp.wire import (
    AS_TRANS,
    IPV4_UNICAST,
    BgpError,
    Capability,
    CeaseSubcode,
    ErrorCode,
    Family,
    FourOctetAs,
    FsmSubcode,
    GracefulRestart,
    GracefulRestartFamily,
    HeaderSubcode,
    Keepalive,
    Message,
    MessageType,
    Multiprotocol,
    Notification,
    Open,
    OpenSubcode,
    RouteRefresh,
    RouteRefreshCapability,
    Update,
    UpdateSubcode,
    shutdown_data,
    shutdown_reason,
)

__all__ = [
    "Action",
    "Connect",
    "Deliver",
    "Disconnect",
    "Event",
    "Negotiated",
    "RefreshRequested",
    "Send",
    "Session",
    "SessionDown",
    "SessionEstablished",
    "SessionSettings",
    "State",
    "StateChanged",
    "Timer",
    "collision_winner",
    "describe_notification",
]

BGP_VERSION = 4
JITTER_MIN = 0.75  # RFC 4271 10: timers jittered by a factor in [0.75, 1.0]
KEEPALIVE_MIN = 1.0  # RFC 4271 4.4: KEEPALIVEs no more often than one per second
SEND_HOLD_TIME_MIN = 480.0  # RFC 9687: SendHoldTime defaults to max(8 minutes, 2 x HoldTime)
SEND_HOLD_TIMER_EXPIRED = 8  # RFC 9687 NOTIFICATION error code "Send Hold Timer Expired"
SHUTDOWN_COMMUNICATION_MAX = 128  # RFC 8203 limit; RFC 9003 allows 255, older peers 128


class State(enum.Enum):
    """RFC 4271 8.2.2 states, valued as the RFC spells them (and as the status API shows)."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


class Event(enum.IntEnum):
    """RFC 4271 8.1 events, numbered as the RFC numbers them."""

    MANUAL_START = 1
    MANUAL_STOP = 2
    AUTOMATIC_START = 3
    MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT = 4
    AUTOMATIC_START_WITH_PASSIVE_TCP_ESTABLISHMENT = 5
    AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS = 6
    AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS_AND_PASSIVE_TCP_ESTABLISHMENT = 7
    AUTOMATIC_STOP = 8
    CONNECT_RETRY_TIMER_EXPIRES = 9
    HOLD_TIMER_EXPIRES = 10
    KEEPALIVE_TIMER_EXPIRES = 11
    DELAY_OPEN_TIMER_EXPIRES = 12
    IDLE_HOLD_TIMER_EXPIRES = 13
    TCP_CONNECTION_VALID = 14
    TCP_CR_INVALID = 15
    TCP_CR_ACKED = 16
    TCP_CONNECTION_CONFIRMED = 17
    TCP_CONNECTION_FAILS = 18
    BGP_OPEN = 19
    BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING = 20
    BGP_HEADER_ERR = 21
    BGP_OPEN_MSG_ERR = 22
    OPEN_COLLISION_DUMP = 23
    NOTIF_MSG_VER_ERR = 24
    NOTIF_MSG = 25
    KEEPALIVE_MSG = 26
    UPDATE_MSG = 27
    UPDATE_MSG_ERR = 28
    SEND_HOLD_TIMER_EXPIRES = 29  # RFC 9687


class Timer(enum.Enum):
    """The FSM's timers, each valued with the event its expiry fires."""

    CONNECT_RETRY = Event.CONNECT_RETRY_TIMER_EXPIRES
    HOLD = Event.HOLD_TIMER_EXPIRES
    KEEPALIVE = Event.KEEPALIVE_TIMER_EXPIRES
    DELAY_OPEN = Event.DELAY_OPEN_TIMER_EXPIRES
    IDLE_HOLD = Event.IDLE_HOLD_TIMER_EXPIRES
    SEND_HOLD = Event.SEND_HOLD_TIMER_EXPIRES

    @property
    def event(self) -> Event:
        return Event(self.value)


_START_EVENTS = frozenset(
    {
        Event.MANUAL_START,
        Event.AUTOMATIC_START,
        Event.MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT,
        Event.AUTOMATIC_START_WITH_PASSIVE_TCP_ESTABLISHMENT,
        Event.AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS,
        Event.AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS_AND_PASSIVE_TCP_ESTABLISHMENT,
    }
)
_PASSIVE_START_EVENTS = frozenset(
    {
        Event.MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT,
        Event.AUTOMATIC_START_WITH_PASSIVE_TCP_ESTABLISHMENT,
        Event.AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS_AND_PASSIVE_TCP_ESTABLISHMENT,
    }
)
_TCP_UP_EVENTS = frozenset({Event.TCP_CR_ACKED, Event.TCP_CONNECTION_CONFIRMED})
_SECOND_CONNECTION_EVENTS = frozenset(
    {
        Event.TCP_CONNECTION_VALID,
        Event.TCP_CR_INVALID,
        Event.TCP_CR_ACKED,
        Event.TCP_CONNECTION_CONFIRMED,
    }
)

# RFC 6608: which FSM error subcode each state reports an unexpected event with.
_FSM_ERROR = {
    State.OPEN_SENT: FsmSubcode.UNEXPECTED_IN_OPENSENT,
    State.OPEN_CONFIRM: FsmSubcode.UNEXPECTED_IN_OPENCONFIRM,
    State.ESTABLISHED: FsmSubcode.UNEXPECTED_IN_ESTABLISHED,
}

# Fallback NOTIFICATIONs when an error event arrives without its BgpError (subcode 0 = unspecific).
_DEFAULT_ERROR = {
    Event.BGP_HEADER_ERR: Notification(ErrorCode.MESSAGE_HEADER, 0),
    Event.BGP_OPEN_MSG_ERR: Notification(ErrorCode.OPEN_MESSAGE, 0),
    Event.UPDATE_MSG_ERR: Notification(ErrorCode.UPDATE_MESSAGE, 0),
    Event.MANUAL_STOP: Notification(ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN),
    Event.AUTOMATIC_STOP: Notification(ErrorCode.CEASE, 0),
}


# --- settings and negotiation ---------------------------------------------------


@dataclass(frozen=True)
class SessionSettings:
    """What this speaker offers one peer, and its timer policy (seconds)."""

    local_asn: int
    peer_asn: int
    router_id: IPv4Address
    hold_time: int = 90  # 0 or >= 3: what we offer in the OPEN
    keepalive: int | None = None  # configured keepalive; None = negotiated hold / 3
    passive: bool = False  # PassiveTcpEstablishment: never initiate the TCP connection
    families: tuple[Family, ...] = (IPV4_UNICAST,)
    connect_retry_time: float = 5.0  # first ConnectRetryTimer; doubles per start up to:
    connect_retry_max: float = 60.0
    idle_hold_time: float = 1.0  # first IdleHoldTimer after an error; doubles up to:
    idle_hold_max: float = 60.0
    open_hold_time: float = 240.0  # the "large value" HoldTimer in OpenSent (RFC 4271 8.2.2)
    delay_open_time: float = 0.0  # 0 = DelayOpen off
    route_refresh: bool = True
    graceful_restart_time: int | None = None  # advertise GR (RFC 4724) with this restart time
    restart_state: bool = False  # R bit in the OPENs until the first Established (after a restart)
    forwarding_preserved: bool = False  # F bit per family in the OPENs until the first Established
    auto_restart: bool = True
    send_hold_time: float | None = None  # RFC 9687; None = max(480, 2 x negotiated hold time)

    def __post_init__(self) -> None:
        # The config model validates user input; this guards the FSM's own invariants.
        object.__setattr__(self, "families", tuple(self.families))
        problems = []
        for name in ("local_asn", "peer_asn"):
            if not 1 <= getattr(self, name) <= 0xFFFFFFFF:
                problems.append(f"{name} must be 1..4294967295")
        if int(self.router_id) == 0:
            problems.append("router_id must not be 0.0.0.0")
        if not (self.hold_time == 0 or 3 <= self.hold_time <= 0xFFFF):
            problems.append("hold_time must be 0 or 3..65535")
        if self.keepalive is not None and not 1 <= self.keepalive <= 0xFFFF:
            problems.append("keepalive must be 1..65535")
        if not self.families:
            problems.append("families must not be empty")
        if not 0 < self.connect_retry_time <= self.connect_retry_max:
            problems.append("connect_retry_time must be > 0 and <= connect_retry_max")
        if not 0 < self.idle_hold_time <= self.idle_hold_max:
            problems.append("idle_hold_time must be > 0 and <= idle_hold_max")
        if self.open_hold_time <= 0:
            problems.append("open_hold_time must be > 0")
        if self.delay_open_time < 0:
            problems.append("delay_open_time must be >= 0")
        if self.graceful_restart_time is not None and not 0 <= self.graceful_restart_time <= 4095:
            problems.append("graceful_restart_time must be 0..4095")
        if self.send_hold_time is not None and not self.send_hold_time > max(0, self.hold_time):
            problems.append("send_hold_time must be more than hold_time (RFC 9687)")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def internal(self) -> bool:
        """iBGP: both ends in the same AS."""
        return self.local_asn == self.peer_asn


@dataclass(frozen=True)
class Negotiated:
    """What both OPENs agreed; set from OpenConfirm on, cleared when the connection goes."""

    hold_time: int  # 0 = no HoldTimer and no keepalives
    keepalive_interval: float  # before jitter; 0 when hold_time is 0
    asn4: bool  # both sides have capability 65: AS numbers travel as 4 octets
    families: frozenset[Family]  # ours & theirs; may be empty
    route_refresh: bool  # both sides advertised RFC 2918
    peer_open: Open
    peer_graceful_restart: GracefulRestart | None
    internal: bool = False  # iBGP (RFC 4271 8.2.2: "set the connection status to internal")
    send_hold_time: float = 0.0  # RFC 9687 SendHoldTime; 0 when hold_time is 0 (no timer)


# --- actions for the transport -------------------------------------------------


@dataclass(frozen=True)
class Connect:
    """Initiate an outgoing TCP connection to the peer."""


@dataclass(frozen=True)
class Disconnect:
    """Drop the TCP connection (or the attempt), after writing what was sent before it.

    ``abort``: drop it now, discarding whatever is still unsent, and reset the
    connection (RFC 9687: the peer stopped reading, so nothing queued would go).
    """

    abort: bool = False


@dataclass(frozen=True)
class Send:
    """Send this message on the connection (encoded with the negotiated AS size).

    ``best_effort``: only if it can be written at once, ahead of nothing
    still unsent; otherwise drop it (RFC 9687's NOTIFICATION to a stalled peer).
    """

    message: Message
    best_effort: bool = False


@dataclass(frozen=True)
class SessionEstablished:
    """The session reached Established: announce the Adj-RIB-Out."""

    negotiated: Negotiated


@dataclass(frozen=True)
class SessionDown:
    """The session left Established, or an attempt failed: drop what the peer sent us.

    ``notification`` is the NOTIFICATION involved, if any; ``sent`` says whether
    we sent it (True) or received it (False).
    """

    reason: str
    notification: Notification | None = None
    sent: bool = False


@dataclass(frozen=True)
class Deliver:
    """An UPDATE accepted in Established, for the Adj-RIB-In."""

    update: Update


@dataclass(frozen=True)
class RefreshRequested:
    """The peer asked for our routes of this family again (RFC 2918): resend the Adj-RIB-Out."""

    afi: int
    safi: int


@dataclass(frozen=True)
class StateChanged:
    old: State
    new: State


Action = (
    Connect
    | Disconnect
    | Send
    | SessionEstablished
    | SessionDown
    | Deliver
    | RefreshRequested
    | StateChanged
)


# --- free functions ----------------------------------------------------------------


def collision_winner(
    local_id: IPv4Address,
    remote_id: IPv4Address,
    *,
    local_asn: int | None = None,
    remote_asn: int | None = None,
) -> str:
    """Which connection survives a collision (RFC 4271 6.8, RFC 6286 2.3).

    Returns ``"local"`` when the connection the local system initiated is kept
    (local BGP Identifier greater, as unsigned integers), else ``"remote"``.
    Equal identifiers (possible on eBGP since RFC 6286) fall back to the AS
    numbers: the speaker with the larger AS keeps the connection it initiated.
    An Established connection always wins; that check is the caller's.
    """
    if int(local_id) != int(remote_id):
        return "local" if int(local_id) > int(remote_id) else "remote"
    if local_asn is None or remote_asn is None or local_asn == remote_asn:
        raise ValueError("equal BGP Identifiers: collision needs distinct AS numbers")
    return "local" if local_asn > remote_asn else "remote"


_CODE_SUBCODES: dict[int, type[enum.IntEnum]] = {
    ErrorCode.MESSAGE_HEADER: HeaderSubcode,
    ErrorCode.OPEN_MESSAGE: OpenSubcode,
    ErrorCode.UPDATE_MESSAGE: UpdateSubcode,
    ErrorCode.FSM: FsmSubcode,
    ErrorCode.CEASE: CeaseSubcode,
}


def describe_notification(notification: Notification) -> str:
    """``"6/2 Cease/administrative shutdown: maintenance"``: code, names and any shutdown text."""
    code, subcode = notification.code, notification.subcode
    try:
        text = ErrorCode(code).name.replace("_", " ").capitalize()
    except ValueError:
        text = "Send hold timer expired" if code == SEND_HOLD_TIMER_EXPIRED else f"code {code}"
    sub_enum = _CODE_SUBCODES.get(code)
    if sub_enum is not None:
        with contextlib.suppress(ValueError):  # a subcode this speaker has no name for
            text += "/" + sub_enum(subcode).name.replace("_", " ").lower()
    result = f"{code}/{subcode} {text}"
    if code == ErrorCode.CEASE and subcode in (
        CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
        CeaseSubcode.ADMINISTRATIVE_RESET,
    ):
        said = shutdown_reason(notification.data)
        if said:
            result += ": " + "".join(ch if ch.isprintable() else "?" for ch in said)
    return result


# --- the machine ----------------------------------------------------------------------


_Handler = Callable[[Event, float, "Message | None", "BgpError | None"], "list[Action]"]


class Session:
    """The RFC 4271 FSM for one peer; see the module docstring for the contract."""

    def __init__(self, settings: SessionSettings, *, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._rng = rng if rng is not None else random.Random()
        self._state = State.IDLE
        self.negotiated: Negotiated | None = None
        self.connect_retry_counter = 0
        self.last_error: str | None = None
        self.established_at: float | None = None  # monotonic time Established was reached
        self._timers: dict[Timer, float] = {}
        self._connect_retry_starts = 0  # ConnectRetryTimer starts since Established/ManualStart
        self._idle_hold_starts = 0  # IdleHoldTimer starts since a stable session/ManualStart
        self._manually_stopped = True  # until the first start: no automatic restarts
        self._passive_restart = settings.passive
        # RFC 4724 bits of the next OPEN: the settings' until the first Established; then R=0
        # (no restart since) and F=1 (this process holds the table it announced).
        self.restart_state = settings.restart_state
        self.forwarding_preserved = settings.forwarding_preserved
        self._handlers: dict[State, _Handler] = {
            State.IDLE: self._in_idle,
            State.CONNECT: self._in_connect,
            State.ACTIVE: self._in_active,
            State.OPEN_SENT: self._in_open_sent,
            State.OPEN_CONFIRM: self._in_open_confirm,
            State.ESTABLISHED: self._in_established,
        }

    def __repr__(self) -> str:
        s = self.settings
        return f"<Session AS{s.local_asn}->AS{s.peer_asn} {self._state.value}>"

    # --- public API ----------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    def start(self, now: float) -> list[Action]:
        """ManualStart (event 1), or event 4 for a passive peer."""
        event = (
            Event.MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT
            if self.settings.passive
            else Event.MANUAL_START
        )
        return self.handle(event, now)

    def retry_now(self, now: float) -> list[Action]:
        """An operator's "connect now": a session waiting out its backoff starts at once.

        Idle waiting for its IdleHoldTimer starts as on ManualStart (the
        backoff counts from zero again); Active waiting for its
        ConnectRetryTimer connects now, with the first ConnectRetryTimer.  Any
        other state (connecting, opening, Established), a passive peer, and a
        session an operator stopped are left alone.
        """
        if self._manually_stopped or self.settings.passive:
            return []
        if self._state is State.IDLE and Timer.IDLE_HOLD in self._timers:
            return self.handle(Event.MANUAL_START, now)
        if self._state is State.ACTIVE:
            self._connect_retry_starts = 0
            self._start_connect_retry(now)
            return [Connect(), *self._goto(State.CONNECT)]
        return []

    def stop(
        self,
        now: float,
        *,
        reason: str = "",
        subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
        notify: bool = True,
    ) -> list[Action]:
        """ManualStop (event 2): Cease/``subcode`` (with ``reason`` as RFC 9003 text for
        administrative shutdown and reset) where an OPEN was sent; stay Idle afterwards.

        ``notify=False`` closes the connection without any NOTIFICATION: the planned
        restart of RFC 4724, which a peer in helper mode takes as the start of the
        restart (a NOTIFICATION would make it drop our routes, RFC 4724 4.2, 8538).
        """
        data = b""
        if subcode in (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET):
            data = shutdown_data(reason, limit=SHUTDOWN_COMMUNICATION_MAX) if reason else b""
        cease = BgpError(ErrorCode.CEASE, subcode, data, reason)
        if not notify and self._state is not State.IDLE:
            return self._manual_stop(now, cease, notify=False)
        return self.handle(Event.MANUAL_STOP, now, error=cease)

    def handle(
        self,
        event: Event,
        now: float,
        *,
        message: Message | None = None,
        error: BgpError | None = None,
    ) -> list[Action]:
        """Process one RFC 4271 event in the current state.

        ``message`` carries the OPEN for events 19/20, the NOTIFICATION for 24/25
        and the UPDATE for 27.  ``error`` carries the NOTIFICATION to send for
        events 21/22/28, and the Cease for events 2/8 (defaults exist for all).
        Events 19/20 without an :class:`Open`, where they are processed, raise TypeError.
        """
        return self._handlers[self._state](Event(event), now, message, error)

    def receive(self, message: Message, now: float) -> list[Action]:
        """A decoded message from the peer: map it to events 19/20, 24/25, 26, 27."""
        if isinstance(message, Open):
            delayed = (
                self._state in (State.CONNECT, State.ACTIVE) and Timer.DELAY_OPEN in self._timers
            )
            event = Event.BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING if delayed else Event.BGP_OPEN
            return self.handle(event, now, message=message)
        if isinstance(message, Notification):
            version_error = (message.code, message.subcode) == (
                ErrorCode.OPEN_MESSAGE,
                OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
            )
            event = Event.NOTIF_MSG_VER_ERR if version_error else Event.NOTIF_MSG
            return self.handle(event, now, message=message)
        if isinstance(message, Keepalive):
            return self.handle(Event.KEEPALIVE_MSG, now, message=message)
        if isinstance(message, Update):
            return self.handle(Event.UPDATE_MSG, now, message=message)
        return self._route_refresh(message, now)

    def decode_error(self, error: BgpError, now: float) -> list[Action]:
        """A message the codec rejected: OPEN errors are event 22, UPDATE errors 28,
        header (and any other message) errors 21."""
        if error.code == ErrorCode.OPEN_MESSAGE:
            event = Event.BGP_OPEN_MSG_ERR
        elif error.code == ErrorCode.UPDATE_MESSAGE:
            event = Event.UPDATE_MSG_ERR
        else:
            event = Event.BGP_HEADER_ERR
        return self.handle(event, now, error=error)

    def poll(self, now: float) -> list[Action]:
        """Fire every timer whose deadline is <= ``now``, earliest first."""
        actions: list[Action] = []
        while True:
            due = [
                (deadline, timer.value, timer)
                for timer, deadline in self._timers.items()
                if deadline <= now
            ]
            if not due:
                return actions
            _, _, timer = min(due)
            del self._timers[timer]
            actions += self.handle(timer.event, now)

    def next_deadline(self) -> float | None:
        """The earliest running timer's deadline, or None when no timer runs."""
        return min(self._timers.values(), default=None)

    def sending_blocked(self, since: float | None) -> None:
        """The transport has had data the peer would not take since ``since`` (monotonic
        seconds), or None when everything queued was written: runs or stops the
        SendHoldTimer (RFC 9687), which expires at ``since`` + SendHoldTime.

        Only in OpenConfirm and Established with a non-zero negotiated hold time;
        elsewhere the HoldTimer's large OpenSent value already bounds a stall.
        """
        negotiated = self.negotiated
        if (
            since is None
            or negotiated is None
            or not negotiated.send_hold_time
            or self._state not in (State.OPEN_CONFIRM, State.ESTABLISHED)
        ):
            self._timers.pop(Timer.SEND_HOLD, None)
            return
        self._timers[Timer.SEND_HOLD] = since + negotiated.send_hold_time

    def deadline(self, timer: Timer) -> float | None:
        """When ``timer`` expires, or None when it is not running."""
        return self._timers.get(timer)

    def message_sent(self, message_type: int, now: float) -> None:
        """The transport wrote a message: a KEEPALIVE or UPDATE restarts the KeepaliveTimer
        (RFC 4271 4.4, 8.2.2), unless the negotiated hold time is zero."""
        if message_type not in (MessageType.KEEPALIVE, MessageType.UPDATE):
            return
        if self._state in (State.OPEN_CONFIRM, State.ESTABLISHED):
            self._start_keepalive(now)

    def build_open(self) -> Open:
        """Our OPEN: MP capability per family, route refresh, 4-octet AS, graceful restart.

        Graceful restart (RFC 4724) lists every configured family, so a helper keeps
        our routes over a restart, with the F bit from :attr:`forwarding_preserved`
        and the R bit from :attr:`restart_state`.  The N bit (RFC 8538) is never
        set: a NOTIFICATION, hold timer expiry or BFD Cease from either side always
        ends the session with its routes.
        """
        s = self.settings
        caps: list[Capability] = [Multiprotocol(afi, safi) for afi, safi in s.families]
        if s.route_refresh:
            caps.append(RouteRefreshCapability())
        caps.append(FourOctetAs(s.local_asn))
        if s.graceful_restart_time is not None:
            caps.append(
                GracefulRestart(
                    restart_time=s.graceful_restart_time,
                    restart_state=self.restart_state,
                    families=tuple(
                        GracefulRestartFamily(afi, safi, self.forwarding_preserved)
                        for afi, safi in s.families
                    ),
                )
            )
        my_as = s.local_asn if s.local_asn <= 0xFFFF else AS_TRANS
        return Open(
            my_as=my_as, hold_time=s.hold_time, bgp_id=s.router_id, capabilities=tuple(caps)
        )

    # --- Idle ------------------------------------------------------------------------------

    def _in_idle(
        self, event: Event, now: float, message: Message | None, error: BgpError | None
    ) -> list[Action]:
        if event in (Event.MANUAL_START, Event.MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT):
            self._manually_stopped = False
            self._connect_retry_starts = 0
            self._idle_hold_starts = 0
            return self._start_session(now, passive=event in _PASSIVE_START_EVENTS)
        if event in (Event.AUTOMATIC_START, Event.AUTOMATIC_START_WITH_PASSIVE_TCP_ESTABLISHMENT):
            return self._start_session(now, passive=event in _PASSIVE_START_EVENTS)
        if event in _START_EVENTS:  # 6, 7: AutomaticStart with DampPeerOscillations
            self._passive_restart = event in _PASSIVE_START_EVENTS
            if Timer.IDLE_HOLD not in self._timers:
                self._start_idle_hold(now)
            return []
        if event == Event.IDLE_HOLD_TIMER_EXPIRES:
            self._timers.pop(Timer.IDLE_HOLD, None)
            return self._start_session(now, passive=self._passive_restart)
        if event == Event.MANUAL_STOP:  # ignored by the RFC; also cancels a pending restart
            self._manually_stopped = True
            self._timers.pop(Timer.IDLE_HOLD, None)
            return []
        if event in _TCP_UP_EVENTS:  # Idle refuses all incoming connections
            return [Disconnect()]
        return []

    def _start_session(self, now: float, *, passive: bool) -> list[Action]:
        """Idle + a start event: ConnectRetryCounter = 0, ConnectRetryTimer, Connect or Active."""
        self._timers.pop(Timer.IDLE_HOLD, None)
        self.connect_retry_counter = 0
        self._start_connect_retry(now)
        if passive or self.settings.passive:
            return self._goto(State.ACTIVE)
        return [Connect(), *self._goto(State.CONNECT)]

    # --- Connect and Active -------------------------------------------------------------

    def _in_connect(
        self, event: Event, now: float, message: Message | None, error: BgpError | None
    ) -> list[Action]:
        if event in _START_EVENTS:
            return []
        if event == Event.MANUAL_STOP:
            return self._manual_stop(now, error, notify=False)
        if event == Event.CONNECT_RETRY_TIMER_EXPIRES:
            self._timers.pop(Timer.DELAY_OPEN, None)
            self._start_connect_retry(now)
            return [Disconnect(), Connect()]
        if event == Event.DELAY_OPEN_TIMER_EXPIRES:
            return self._send_open(now)
        if event in (Event.TCP_CONNECTION_VALID, Event.TCP_CR_INVALID):
            return []
        if event in _TCP_UP_EVENTS:
            return self._tcp_up(now)
        if event == Event.TCP_CONNECTION_FAILS:
            if Timer.DELAY_OPEN in self._timers:
                self._timers.pop(Timer.DELAY_OPEN)
                self._start_connect_retry(now)
                self.last_error = "TCP connection failed"
                return [*self._goto(State.ACTIVE), SessionDown(self.last_error)]
            return self._to_idle(now, "TCP connection failed", count=False)
        if event == Event.BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING:
            return self._delayed_open(now, message)
        if event in (Event.BGP_HEADER_ERR, Event.BGP_OPEN_MSG_ERR):
            # SendNOTIFICATIONwithoutOPEN is FALSE: close without a NOTIFICATION.
            return self._to_idle(now, _error_reason(event, error, sent=False))
        if event == Event.NOTIF_MSG_VER_ERR:
            return self._notification_received(
                now, message, count=Timer.DELAY_OPEN not in self._timers
            )
        if event == Event.AUTOMATIC_STOP:
            return self._to_idle(now, "automatic stop")
        # any other event (10-11, 13, 19, 23, 25-28)
        return self._to_idle(now, self._unexpected(event, message))

    def _in_active(
        self, event: Event, now: float, message: Message | None, error: BgpError | None
    ) -> list[Action]:
        if event in _START_EVENTS:
            return []
        if event == Event.MANUAL_STOP:
            return self._manual_stop(now, error, notify=False)
        if event == Event.CONNECT_RETRY_TIMER_EXPIRES:
            self._start_connect_retry(now)
            if self.settings.passive:  # PassiveTcpEstablishment: keep waiting
                return []
            return [Connect(), *self._goto(State.CONNECT)]
        if event == Event.DELAY_OPEN_TIMER_EXPIRES:
            return self._send_open(now)
        if event in (Event.TCP_CONNECTION_VALID, Event.TCP_CR_INVALID):
            return []
        if event in _TCP_UP_EVENTS:
            return self._tcp_up(now)
        if event == Event.TCP_CONNECTION_FAILS:
            return self._to_idle(now, "TCP connection failed", drop=False)
        if event == Event.BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING:
            return self._delayed_open(now, message)
        if event in (Event.BGP_HEADER_ERR, Event.BGP_OPEN_MSG_ERR):
            return self._to_idle(now, _error_reason(event, error, sent=False))
        if event == Event.NOTIF_MSG_VER_ERR:
            return self._notification_received(
                now, message, count=Timer.DELAY_OPEN not in self._timers
            )
        if event == Event.AUTOMATIC_STOP:
            return self._to_idle(now, "automatic stop")
        # any other event (10-11, 13, 19, 23, 25-28)
        return self._to_idle(now, self._unexpected(event, message))

    def _tcp_up(self, now: float) -> list[Action]:
        """Connect/Active + Tcp_CR_Acked or TcpConnectionConfirmed."""
        self._timers.pop(Timer.CONNECT_RETRY, None)
        if self.settings.delay_open_time > 0:
            self._timers[Timer.DELAY_OPEN] = now + self.settings.delay_open_time
            return []
        return self._send_open(now)

    def _send_open(self, now: float) -> list[Action]:
        """Send our OPEN, HoldTimer to the large value, go OpenSent."""
        self._timers.pop(Timer.CONNECT_RETRY, None)
        self._timers.pop(Timer.DELAY_OPEN, None)
        self._timers[Timer.HOLD] = now + self.settings.open_hold_time
        return [Send(self.build_open()), *self._goto(State.OPEN_SENT)]

    def _delayed_open(self, now: float, message: Message | None) -> list[Action]:
        """Connect/Active + BGPOpen with the DelayOpenTimer running (event 20)."""
        try:
            negotiated = self._negotiate(message)
        except BgpError as err:
            return self._handlers[self._state](Event.BGP_OPEN_MSG_ERR, now, message, err)
        self._timers.pop(Timer.CONNECT_RETRY, None)
        self._timers.pop(Timer.DELAY_OPEN, None)
        actions: list[Action] = [Send(self.build_open()), Send(Keepalive())]
        self._open_confirmed(now, negotiated)
        return actions + self._goto(State.OPEN_CONFIRM)

    # --- OpenSent -----------------------------------------------------------------------------

    def _in_open_sent(
        self, event: Event, now: float, message: Message | None, error: BgpError | None
    ) -> list[Action]:
        if event in _START_EVENTS:
            return []
        if event == Event.MANUAL_STOP:
            return self._manual_stop(now, error, notify=True)
        if event == Event.AUTOMATIC_STOP:
            return self._notify_and_idle(now, _notification_for(event, error), "automatic stop")
        if event == Event.HOLD_TIMER_EXPIRES:
            return self._notify_and_idle(
                now, Notification(ErrorCode.HOLD_TIMER_EXPIRED, 0), "hold timer expired"
            )
        if event in _SECOND_CONNECTION_EVENTS:  # tracked by the transport (RFC 4271 6.8)
            return []
        if event == Event.TCP_CONNECTION_FAILS:
            self._release()
            self._start_connect_retry(now)
            self.last_error = "TCP connection failed"
            return [Disconnect(), *self._goto(State.ACTIVE), SessionDown(self.last_error)]
        if event == Event.BGP_OPEN:
            try:
                negotiated = self._negotiate(message)
            except BgpError as err:
                return self._in_open_sent(Event.BGP_OPEN_MSG_ERR, now, message, err)
            self._timers.pop(Timer.DELAY_OPEN, None)
            self._timers.pop(Timer.CONNECT_RETRY, None)
            self._open_confirmed(now, negotiated)
            return [Send(Keepalive()), *self._goto(State.OPEN_CONFIRM)]
        if event in (Event.BGP_HEADER_ERR, Event.BGP_OPEN_MSG_ERR):
            return self._notify_and_idle(
                now, _notification_for(event, error), _error_reason(event, error)
            )
        if event == Event.OPEN_COLLISION_DUMP:
            return self._collision_dump(now)
        if event == Event.NOTIF_MSG_VER_ERR:
            return self._notification_received(now, message, count=False)
        if event == Event.NOTIF_MSG:  # see the module docstring: no NOTIFICATION in reply
            return self._notification_received(now, message, count=True)
        # any other event (9, 11-13, 20, 26-28)
        return self._fsm_error(now, event, message)

    # --- OpenConfirm --------------------------------------------------------------------------

    def _in_open_confirm(
        self, event: Event, now: float, message: Message | None, error: BgpError | None
    ) -> list[Action]:
        if event in _START_EVENTS:
            return []
        if event == Event.MANUAL_STOP:
            return self._manual_stop(now, error, notify=True)
        if event == Event.AUTOMATIC_STOP:
            return self._notify_and_idle(now, _notification_for(event, error), "automatic stop")
        if event == Event.HOLD_TIMER_EXPIRES:
            return self._notify_and_idle(
                now, Notification(ErrorCode.HOLD_TIMER_EXPIRED, 0), "hold timer expired"
            )
        if event == Event.KEEPALIVE_TIMER_EXPIRES:
            self._start_keepalive(now)
            return [Send(Keepalive())]
        if event == Event.SEND_HOLD_TIMER_EXPIRES:
            return self._send_hold_expired(now)
        if event in _SECOND_CONNECTION_EVENTS:
            return []
        if event == Event.TCP_CONNECTION_FAILS:
            return self._to_idle(now, "TCP connection failed")
        if event == Event.NOTIF_MSG:
            return self._notification_received(now, message, count=True)
        if event == Event.NOTIF_MSG_VER_ERR:
            return self._notification_received(now, message, count=False)
        if event in (Event.BGP_HEADER_ERR, Event.BGP_OPEN_MSG_ERR):
            return self._notify_and_idle(
                now, _notification_for(event, error), _error_reason(event, error)
            )
        if event == Event.OPEN_COLLISION_DUMP:
            return self._collision_dump(now)
        if event == Event.KEEPALIVE_MSG:
            self._restart_hold(now)
            self._connect_retry_starts = 0
            self.established_at = now
            self.restart_state, self.forwarding_preserved = False, True
            assert self.negotiated is not None
            return [*self._goto(State.ESTABLISHED), SessionEstablished(self.negotiated)]
        # any other event (9, 12-13, 19 on this connection, 20, 27-28)
        return self._fsm_error(now, event, message)

    # --- Established --------------------------------------------------------------------------

    def _in_established(
        self, event: Event, now: float, message: Message | None, error: BgpError | None
    ) -> list[Action]:
        if event in _START_EVENTS:
            return []
        if event == Event.MANUAL_STOP:
            return self._manual_stop(now, error, notify=True)
        if event == Event.AUTOMATIC_STOP:
            return self._notify_and_idle(now, _notification_for(event, error), "automatic stop")
        if event == Event.HOLD_TIMER_EXPIRES:
            return self._notify_and_idle(
                now, Notification(ErrorCode.HOLD_TIMER_EXPIRED, 0), "hold timer expired"
            )
        if event == Event.KEEPALIVE_TIMER_EXPIRES:
            self._start_keepalive(now)
            return [Send(Keepalive())]
        if event == Event.SEND_HOLD_TIMER_EXPIRES:
            return self._send_hold_expired(now)
        if event in _SECOND_CONNECTION_EVENTS:
            return []
        if event == Event.TCP_CONNECTION_FAILS:
            return self._to_idle(now, "TCP connection failed")
        if event in (Event.NOTIF_MSG, Event.NOTIF_MSG_VER_ERR):
            return self._notification_received(now, message, count=True)
        if event == Event.OPEN_COLLISION_DUMP:
            return self._collision_dump(now)
        if event == Event.KEEPALIVE_MSG:
            self._restart_hold(now)
            return []
        if event == Event.UPDATE_MSG:
            self._restart_hold(now)
            return [Deliver(message)] if isinstance(message, Update) else []
        if event in (Event.UPDATE_MSG_ERR, Event.BGP_HEADER_ERR):
            return self._notify_and_idle(
                now, _notification_for(event, error), _error_reason(event, error)
            )
        # any other event (9, 12-13, 19 on this connection, 20, 22)
        return self._fsm_error(now, event, message)

    def _route_refresh(self, message: RouteRefresh, now: float) -> list[Action]:
        """ROUTE-REFRESH (RFC 2918, RFC 7313 subtype 0): resend on request, in Established only."""
        if self._state == State.IDLE:
            return []
        if self._state != State.ESTABLISHED:  # unexpected like an UPDATE (RFC 6608)
            return self.handle(Event.UPDATE_MSG, now, message=message)
        self._restart_hold(now)
        family = (message.afi, message.safi)
        negotiated = self.negotiated
        if (
            message.subtype == 0
            and self.settings.route_refresh
            and negotiated is not None
            and family in negotiated.families
        ):
            return [RefreshRequested(message.afi, message.safi)]
        return []

    # --- OPEN checks and negotiation --------------------------------------------------------

    def _negotiate(self, message: Message | None) -> Negotiated:
        """Check the peer's OPEN against our settings (RFC 4271 6.2) and agree on the session."""
        if not isinstance(message, Open):
            raise TypeError("events 19 and 20 need the received Open as message=")
        s = self.settings
        if message.version != BGP_VERSION:
            raise BgpError(
                ErrorCode.OPEN_MESSAGE,
                OpenSubcode.UNSUPPORTED_VERSION_NUMBER,
                BGP_VERSION.to_bytes(2, "big"),
                f"peer speaks BGP version {message.version}",
            )
        as4 = next((c.asn for c in message.capabilities if isinstance(c, FourOctetAs)), None)
        peer_as = message.my_as if as4 is None else as4
        if as4 is not None and message.my_as != (as4 if as4 <= 0xFFFF else AS_TRANS):
            raise BgpError(
                ErrorCode.OPEN_MESSAGE,
                OpenSubcode.BAD_PEER_AS,
                reason=f"My AS {message.my_as} does not match 4-octet AS {as4}",
            )
        if peer_as != s.peer_asn:
            raise BgpError(
                ErrorCode.OPEN_MESSAGE,
                OpenSubcode.BAD_PEER_AS,
                reason=f"peer AS {peer_as}, expected {s.peer_asn}",
            )
        if message.hold_time in (1, 2):
            raise BgpError(
                ErrorCode.OPEN_MESSAGE,
                OpenSubcode.UNACCEPTABLE_HOLD_TIME,
                reason=f"hold time {message.hold_time}",
            )
        bgp_id = int(message.bgp_id)
        if bgp_id == 0 or (s.internal and bgp_id == int(s.router_id)):
            raise BgpError(
                ErrorCode.OPEN_MESSAGE,
                OpenSubcode.BAD_BGP_IDENTIFIER,
                reason=f"BGP identifier {message.bgp_id}",
            )
        hold = min(s.hold_time, message.hold_time)
        if hold == 0:
            keepalive = 0.0
        elif s.keepalive is None:
            keepalive = hold / 3
        else:
            keepalive = min(float(s.keepalive), hold / 3)
        if hold == 0:  # RFC 9687: no SendHoldTimer when the negotiated hold time is zero
            send_hold = 0.0
        elif s.send_hold_time is not None:
            send_hold = s.send_hold_time
        else:
            send_hold = max(SEND_HOLD_TIME_MIN, 2.0 * hold)
        peer_families = {
            (c.afi, c.safi) for c in message.capabilities if isinstance(c, Multiprotocol)
        }
        if not peer_families:  # no MP capability: IPv4 unicast only (RFC 4760 1)
            peer_families = {IPV4_UNICAST}
        return Negotiated(
            hold_time=hold,
            keepalive_interval=keepalive,
            asn4=as4 is not None,
            families=frozenset(peer_families & set(s.families)),
            route_refresh=s.route_refresh
            and any(isinstance(c, RouteRefreshCapability) for c in message.capabilities),
            peer_open=message,
            peer_graceful_restart=next(
                (c for c in message.capabilities if isinstance(c, GracefulRestart)), None
            ),
            internal=s.internal,
            send_hold_time=send_hold,
        )

    def _open_confirmed(self, now: float, negotiated: Negotiated) -> None:
        """Timers on entering OpenConfirm: none at all when the negotiated hold time is 0."""
        self.negotiated = negotiated
        self._timers.pop(Timer.HOLD, None)
        self._timers.pop(Timer.KEEPALIVE, None)
        if negotiated.hold_time:
            self._start_keepalive(now)
            self._restart_hold(now)

    # --- ways down ----------------------------------------------------------------------------

    def _manual_stop(self, now: float, error: BgpError | None, *, notify: bool) -> list[Action]:
        """ManualStop: Cease if an OPEN was sent, ConnectRetryCounter = 0, Idle for good."""
        cease = _notification_for(Event.MANUAL_STOP, error)
        reason = "stopped" + (f": {error.reason}" if error is not None and error.reason else "")
        self._manually_stopped = True
        self.connect_retry_counter = 0
        actions: list[Action] = [Send(cease)] if notify else []
        return actions + self._to_idle(
            now,
            reason,
            notification=cease if notify else None,
            sent=notify,
            count=False,
            error=False,
        )

    def _notify_and_idle(self, now: float, notification: Notification, reason: str) -> list[Action]:
        return [
            Send(notification),
            *self._to_idle(now, reason, notification=notification, sent=True),
        ]

    def _fsm_error(self, now: float, event: Event, message: Message | None) -> list[Action]:
        """An event the state does not expect: NOTIFICATION 5/<RFC 6608 subcode>, Idle."""
        notification = Notification(ErrorCode.FSM, _FSM_ERROR[self._state])
        return self._notify_and_idle(now, notification, self._unexpected(event, message))

    def _send_hold_expired(self, now: float) -> list[Action]:
        """RFC 9687 event 29: the peer took nothing for SendHoldTime.  NOTIFICATION 8 only
        if it can go at once, connection aborted, ConnectRetryCounter + 1, damped restart."""
        notification = Notification(SEND_HOLD_TIMER_EXPIRED, 0)
        negotiated = self.negotiated
        waited = 0.0 if negotiated is None else negotiated.send_hold_time
        return [
            Send(notification, best_effort=True),
            *self._to_idle(
                now,
                f"send hold timer expired (8/0): the peer took nothing for {waited:g} s",
                notification=notification,
                sent=True,
                abort=True,
            ),
        ]

    def _collision_dump(self, now: float) -> list[Action]:
        cease = Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
        return self._notify_and_idle(now, cease, "connection collision resolution")

    def _notification_received(
        self, now: float, message: Message | None, *, count: bool
    ) -> list[Action]:
        notification = message if isinstance(message, Notification) else None
        reason = "received NOTIFICATION"
        if notification is not None:
            reason += " " + describe_notification(notification)
        return self._to_idle(now, reason, notification=notification, sent=False, count=count)

    def _to_idle(
        self,
        now: float,
        reason: str,
        *,
        notification: Notification | None = None,
        sent: bool = False,
        count: bool = True,
        drop: bool = True,
        error: bool = True,
        abort: bool = False,
    ) -> list[Action]:
        """Release everything, maybe drop the connection, go Idle, and schedule the
        automatic restart (DampPeerOscillations) unless the session was stopped by hand."""
        was_established = self._state == State.ESTABLISHED
        stable = (
            was_established
            and self.established_at is not None
            and now - self.established_at >= self.settings.idle_hold_max
        )
        self._release()
        self._timers.clear()
        self.established_at = None
        if count:
            self.connect_retry_counter += 1
        if error:
            self.last_error = reason
        actions: list[Action] = [Disconnect(abort=abort)] if drop else []
        actions += self._goto(State.IDLE)
        actions.append(SessionDown(reason, notification, sent))
        if error and self.settings.auto_restart and not self._manually_stopped:
            if stable:
                self._idle_hold_starts = 0
            self._passive_restart = self.settings.passive
            self._start_idle_hold(now)
        return actions

    def _release(self) -> None:
        """Release the per-connection resources: negotiation and connection timers."""
        self.negotiated = None
        for timer in (
            Timer.HOLD,
            Timer.KEEPALIVE,
            Timer.DELAY_OPEN,
            Timer.CONNECT_RETRY,
            Timer.SEND_HOLD,
        ):
            self._timers.pop(timer, None)

    # --- small pieces ----------------------------------------------------------------------------

    def _goto(self, new: State) -> list[Action]:
        old, self._state = self._state, new
        return [StateChanged(old, new)] if old != new else []

    def _jitter(self) -> float:
        return self._rng.uniform(JITTER_MIN, 1.0)

    def _start_connect_retry(self, now: float) -> None:
        s = self.settings
        base = min(
            s.connect_retry_time * 2 ** min(self._connect_retry_starts, 32), s.connect_retry_max
        )
        self._connect_retry_starts += 1
        self._timers[Timer.CONNECT_RETRY] = now + base * self._jitter()

    def _start_idle_hold(self, now: float) -> None:
        s = self.settings
        delay = min(s.idle_hold_time * 2 ** min(self._idle_hold_starts, 32), s.idle_hold_max)
        self._idle_hold_starts += 1
        self._timers[Timer.IDLE_HOLD] = now + delay

    def _start_keepalive(self, now: float) -> None:
        negotiated = self.negotiated
        if negotiated is None or negotiated.hold_time == 0:
            return
        # Jittered, but never more often than once a second (RFC 4271 4.4): hold 3 keeps 1 s.
        interval = max(KEEPALIVE_MIN, negotiated.keepalive_interval * self._jitter())
        self._timers[Timer.KEEPALIVE] = now + interval

    def _restart_hold(self, now: float) -> None:
        negotiated = self.negotiated
        if negotiated is None or negotiated.hold_time == 0:
            return
        self._timers[Timer.HOLD] = now + negotiated.hold_time

    def _unexpected(self, event: Event, message: Message | None) -> str:
        what = event.name
        if isinstance(message, RouteRefresh):
            what = "ROUTE-REFRESH"
        return f"unexpected {what} in {self._state.value}"


def _notification_for(event: Event, error: BgpError | None) -> Notification:
    return error.notification() if error is not None else _DEFAULT_ERROR[event]


def _error_reason(event: Event, error: BgpError | None, *, sent: bool = True) -> str:
    notification = _notification_for(event, error)
    verb = "sent NOTIFICATION" if sent else "closed without NOTIFICATION"
    text = f"{verb} {describe_notification(notification)}"
    if error is not None and error.reason:
        text += f" ({error.reason})"
    return text
