"""One BFD session's state machine (RFC 5880 6.2, 6.8.1-6.8.7, 6.8.16), sans-IO.

Single-hop asynchronous mode (RFC 5881) in the active role, no Echo function,
no Demand mode of our own, no authentication.  Like :mod:`spinelb.bgp.fsm`,
a :class:`Session` never touches a socket or a clock: every call takes
``now`` (monotonic seconds) and returns the :data:`Action` list for the
transport to execute in order; the transport wakes at
:meth:`Session.next_deadline` and calls :meth:`Session.poll`.

Where the RFC lives here:

- 6.8.1 state variables: the attributes of :class:`Session` (``local_discr``,
  ``remote_discr``, ``remote_state``, ``local_diag``, ...).  Intervals are
  kept in microseconds, the wire's unit.
- 6.2 / 6.8.6 reception and the three-way handshake: :meth:`Session.receive`.
- 6.8.2 transmit interval, ``max(DesiredMinTx, remote RequiredMinRx)``:
  :attr:`Session.transmit_interval_us`; 6.8.4 detection time, the remote's
  Detect Mult times ``max(RequiredMinRx, remote DesiredMinTx)``:
  :attr:`Session.detection_time_us`.
- 6.8.3 timer changes: while not Up the advertised DesiredMinTx is at least
  one second; a change while Up starts a Poll Sequence (6.5).  A larger
  DesiredMinTx is used for sending, and a smaller RequiredMinRx for the
  detection time, only once the Final arrives; the opposite changes apply at
  once.
- 6.8.7 transmission: every periodic interval is the transmit interval times a
  random factor in [0.75, 1.0], or [0.75, 0.9] when our DetectMult is 1; no
  periodic packets while the remote's RequiredMinRx is 0 or it is in Demand
  mode with both ends Up; a Poll (P) is answered at once with a Final (F).
- 6.8.16 administrative control: :meth:`Session.admin_down` and
  :meth:`Session.start`.

Choices where the RFC leaves room (each tested):

- A state change sends a packet at once (and restarts the periodic timer),
  so the handshake and a Down are not held back by the one-second rate.
- Reaching Up clears ``local_diag``; leaving Up keeps the reason until then.
- A Poll Sequence is started only for changes while Up (entering Up lowers
  DesiredMinTx to the configured value); below Up the new values simply apply.
- AdminDown keeps sending (at the slow rate) until the session is started
  again or dropped: the RFC's "indefinitely" option.
- After a Detection Time without packets, whatever the state, everything
  learnt from the remote is forgotten (``remote_discr`` 0, RFC 6.8.1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from spinelb.bfd.packet import U32_MAX, ControlPacket, Diag, State

__all__ = [
    "SLOW_TX_US",
    "Action",
    "BfdSettings",
    "Send",
    "Session",
    "StateChanged",
]

Address = IPv4Address | IPv6Address

SLOW_TX_US = 1_000_000  # RFC 5880 6.8.3: DesiredMinTxInterval while not Up, at least 1 s
INTERVAL_MS_MIN = 10  # FRR bfdd's range for both intervals
INTERVAL_MS_MAX = 60_000
JITTER_MIN = 0.75  # RFC 5880 6.8.7: each interval reduced by 0-25% ...
JITTER_MAX_DETECT_MULT_1 = 0.9  # ... and by at least 10% when DetectMult is 1


@dataclass(frozen=True)
class BfdSettings:
    """A peer's ``bfd: {min_rx_ms, min_tx_ms, multiplier}``: what we offer and how many misses we allow."""

    min_tx_ms: int = 300
    min_rx_ms: int = 300
    multiplier: int = 3

    def __post_init__(self) -> None:
        problems = []
        for name in ("min_tx_ms", "min_rx_ms"):
            value = getattr(self, name)
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not INTERVAL_MS_MIN <= value <= INTERVAL_MS_MAX
            ):
                problems.append(
                    f"bfd.{name} must be an integer from {INTERVAL_MS_MIN} to {INTERVAL_MS_MAX}"
                    f" (milliseconds), got {value!r}"
                )
        multiplier = self.multiplier
        if not isinstance(multiplier, int) or isinstance(multiplier, bool) or not 1 <= multiplier <= 255:
            problems.append(f"bfd.multiplier must be an integer from 1 to 255, got {multiplier!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def min_tx_us(self) -> int:
        return self.min_tx_ms * 1000

    @property
    def min_rx_us(self) -> int:
        return self.min_rx_ms * 1000


# --- actions for the transport -------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send this Control packet to the peer (UDP 3784, TTL 255)."""

    packet: ControlPacket


@dataclass(frozen=True)
class StateChanged:
    """The session moved from ``old`` to ``new``; ``diag`` is bfd.LocalDiag afterwards."""

    old: State
    new: State
    diag: int


Action = Send | StateChanged


# --- the machine ------------------------------------------------------------------


class Session:
    """RFC 5880 asynchronous-mode session with one peer; see the module docstring."""

    def __init__(
        self,
        local_address: Address,
        peer_address: Address,
        settings: BfdSettings,
        rng: random.Random | None = None,
        *,
        discriminator: int | None = None,
    ) -> None:
        self.local_address = local_address
        self.peer_address = peer_address
        self.settings = settings
        self._rng = rng if rng is not None else random.Random()
        if discriminator is not None and not 1 <= discriminator <= U32_MAX:
            raise ValueError(f"discriminator must be 1..{U32_MAX}")
        self.local_discr = discriminator or self._rng.randint(1, U32_MAX)
        self._state = State.DOWN
        self.local_diag: int = Diag.NO_DIAGNOSTIC
        self._forget_remote()
        # What we advertise (bfd.DesiredMinTxInterval, bfd.RequiredMinRxInterval) and what
        # is in force for sending and detection while a Poll Sequence is pending (6.8.3).
        self.desired_min_tx_us = max(settings.min_tx_us, SLOW_TX_US)
        self.required_min_rx_us = settings.min_rx_us
        self._tx_in_force = self.desired_min_tx_us
        self._rx_in_force = self.required_min_rx_us
        self.polling = False  # a Poll Sequence of ours awaits its Final
        self._started = False
        self._last_tx: float | None = None  # when the last periodic (or state-change) packet left
        self._tx_factor = 1.0  # the jitter factor drawn for the current interval
        self._last_rx: float | None = None  # when the last accepted packet arrived

    def _forget_remote(self) -> None:
        self.remote_discr = 0
        self.remote_state = State.DOWN
        self.remote_min_rx_us = 1  # RFC 5880 6.8.1 initial value
        self.remote_desired_min_tx_us = 0
        self.remote_detect_mult = 0
        self.remote_demand = False

    def __repr__(self) -> str:
        return f"<bfd.Session {self.local_address}->{self.peer_address} {self._state.label}>"

    # --- what the speaker and the transport read -------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def transmit_interval_us(self) -> int:
        """The agreed interval between our periodic packets, before jitter (6.8.2)."""
        return max(self._tx_in_force, self.remote_min_rx_us)

    @property
    def detection_time_us(self) -> int:
        """How long without a packet before the session is declared down (6.8.4); 0 before any."""
        return self.remote_detect_mult * max(self._rx_in_force, self.remote_desired_min_tx_us)

    def next_deadline(self) -> float | None:
        """When :meth:`poll` has something to do next, or None."""
        deadlines = [d for d in (self._transmit_deadline(), self._detection_deadline()) if d is not None]
        return min(deadlines, default=None)

    # --- administrative control (6.8.16) ---------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin (or, from AdminDown, resume) the session: Down, first packet now."""
        actions: list[Action] = []
        if self._state is State.ADMIN_DOWN:
            actions += self._goto(State.DOWN, None)
        elif self._started:
            return []
        self._started = True
        actions.append(self._send_periodic(now))
        return actions

    def admin_down(self, now: float) -> list[Action]:
        """Take the session administratively down (diag 7); the peer hears AdminDown at once."""
        if self._state is State.ADMIN_DOWN:
            return []
        actions = self._goto(State.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN)
        self._last_rx = None  # the detection timer stops
        if self._started:
            actions.append(self._send_periodic(now))
        return actions

    def reconfigure(self, settings: BfdSettings, now: float) -> list[Action]:
        """New timers or multiplier; a change of intervals while Up polls the peer (6.8.3)."""
        self.settings = settings
        if self._apply_timers() and self._started:
            return [self._send_periodic(now)]
        return []

    # --- events ------------------------------------------------------------------------

    def receive(self, packet: ControlPacket, now: float) -> list[Action]:
        """A packet from the peer that passed :func:`spinelb.bfd.packet.decode` (6.8.6)."""
        if not self._started or packet.your_discriminator not in (0, self.local_discr):
            return []  # not ours: the transport demultiplexes, this guards the invariant
        self.remote_discr = packet.my_discriminator
        self.remote_state = packet.state
        self.remote_demand = packet.demand
        self.remote_min_rx_us = packet.required_min_rx_us
        self.remote_desired_min_tx_us = packet.desired_min_tx_us
        self.remote_detect_mult = packet.detect_mult
        if self.polling and packet.final:
            self.polling = False
            self._tx_in_force, self._rx_in_force = self.desired_min_tx_us, self.required_min_rx_us
        if self._state is State.ADMIN_DOWN:
            return []
        self._last_rx = now
        actions: list[Action] = []
        state, remote = self._state, packet.state
        if remote is State.ADMIN_DOWN:
            if state is not State.DOWN:
                actions += self._goto(State.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)
        elif state is State.DOWN:
            if remote is State.DOWN:
                actions += self._goto(State.INIT, None)
            elif remote is State.INIT:
                actions += self._goto(State.UP, None)
        elif state is State.INIT:
            if remote in (State.INIT, State.UP):
                actions += self._goto(State.UP, None)
        elif remote is State.DOWN:  # Up
            actions += self._goto(State.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)
        if packet.poll:
            actions.append(Send(self._packet(final=True)))
        elif actions:
            actions.append(self._send_periodic(now))
        return actions

    def poll(self, now: float) -> list[Action]:
        """Detection-time expiry (6.8.4), then a periodic packet if one is due (6.8.7)."""
        actions: list[Action] = []
        detection = self._detection_deadline()
        if detection is not None and detection <= now:
            self._last_rx = None
            self._forget_remote()
            if self._state in (State.INIT, State.UP):
                actions += self._goto(State.DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED)
                actions.append(self._send_periodic(now))
        transmit = self._transmit_deadline()
        if transmit is not None and transmit <= now:
            actions.append(self._send_periodic(now))
        return actions

    # --- internals ---------------------------------------------------------------------

    def _goto(self, new: State, diag: Diag | None) -> list[Action]:
        old = self._state
        self._state = new
        if diag is not None:
            self.local_diag = diag
        if new is State.UP:
            self.local_diag = Diag.NO_DIAGNOSTIC
        if old is State.UP:
            self.polling = False
        self._apply_timers()
        return [StateChanged(old, new, self.local_diag)]

    def _apply_timers(self) -> bool:
        """Set the advertised intervals for the state (6.8.3); whether they changed."""
        tx = self.settings.min_tx_us
        if self._state is not State.UP:
            tx = max(tx, SLOW_TX_US)
        rx = self.settings.min_rx_us
        if (tx, rx) == (self.desired_min_tx_us, self.required_min_rx_us):
            return False
        self.desired_min_tx_us, self.required_min_rx_us = tx, rx
        if self._state is State.UP:
            # Sending faster and detecting slower are safe at once; the rest waits for the Final.
            self._tx_in_force = min(self._tx_in_force, tx)
            self._rx_in_force = max(self._rx_in_force, rx)
            self.polling = True
        else:
            self._tx_in_force, self._rx_in_force = tx, rx
            self.polling = False
        return True

    def _transmit_deadline(self) -> float | None:
        if not self._started or self._last_tx is None or self.remote_min_rx_us == 0:
            return None
        if self.remote_demand and self._state is State.UP and self.remote_state is State.UP:
            return None
        return self._last_tx + self.transmit_interval_us * self._tx_factor / 1e6

    def _detection_deadline(self) -> float | None:
        if self._last_rx is None:
            return None
        return self._last_rx + self.detection_time_us / 1e6

    def _send_periodic(self, now: float) -> Send:
        """A packet now, and the periodic timer restarted with a fresh jitter factor."""
        high = JITTER_MAX_DETECT_MULT_1 if self.settings.multiplier == 1 else 1.0
        self._tx_factor = self._rng.uniform(JITTER_MIN, high)
        self._last_tx = now
        return Send(self._packet(poll=self.polling))

    def _packet(self, *, poll: bool = False, final: bool = False) -> ControlPacket:
        return ControlPacket(
            state=self._state,
            my_discriminator=self.local_discr,
            your_discriminator=self.remote_discr,
            diag=self.local_diag,
            detect_mult=self.settings.multiplier,
            desired_min_tx_us=self.desired_min_tx_us,
            required_min_rx_us=self.required_min_rx_us,
            required_min_echo_rx_us=0,
            poll=poll,
            final=final,
        )
