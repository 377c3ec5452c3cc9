"""The BFD session machine (RFC 5880 6.2, 6.8): two machines on a simulated link, fake clock.

:class:`Link` joins two sessions with a one-way delay of 1 ms and runs them in
simulated time: at each step the earliest of both sessions' deadlines and the
packets in flight happens next.  Nothing sleeps; "time" is the ``now`` passed in.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest

from spinelb.bfd.packet import ControlPacket, Diag, State
from spinelb.bfd.session import Action, BfdSettings, Send, Session, StateChanged

A_ADDR, B_ADDR = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.2")
FAST = BfdSettings(min_tx_ms=100, min_rx_ms=100, multiplier=3)
DELAY = 0.001

ADMIN_DOWN, DOWN, INIT, UP = State.ADMIN_DOWN, State.DOWN, State.INIT, State.UP


def session(settings: BfdSettings = FAST, seed: int = 1, local: IPv4Address = A_ADDR,
            peer: IPv4Address = B_ADDR) -> Session:
    return Session(local, peer, settings, random.Random(seed))


@dataclass
class Link:
    a: Session
    b: Session
    now: float = 0.0
    cut: set[str] = field(default_factory=set)  # directions dropped: "ab", "ba"
    changes: dict[str, list[tuple[float, StateChanged]]] = field(
        default_factory=lambda: {"a": [], "b": []}
    )
    sent: dict[str, list[tuple[float, ControlPacket]]] = field(
        default_factory=lambda: {"a": [], "b": []}
    )
    _flight: list[tuple[float, int, str, ControlPacket]] = field(default_factory=list)
    _seq: int = 0

    def side(self, name: str) -> Session:
        return self.a if name == "a" else self.b

    def execute(self, name: str, actions: list[Action]) -> None:
        other = "b" if name == "a" else "a"
        for action in actions:
            if isinstance(action, Send):
                self.sent[name].append((self.now, action.packet))
                if name + other not in self.cut:
                    self._seq += 1
                    heapq.heappush(self._flight, (self.now + DELAY, self._seq, other, action.packet))
            else:
                self.changes[name].append((self.now, action))

    def start(self, *names: str) -> None:
        for name in names:
            self.execute(name, self.side(name).start(self.now))

    def run_until(self, until: float) -> None:
        while True:
            candidates = [(d, name) for name in ("a", "b") if (d := self.side(name).next_deadline()) is not None]
            if self._flight:
                candidates.append((self._flight[0][0], "packet"))
            if not candidates or min(candidates)[0] > until:
                self.now = until
                return
            when, what = min(candidates)
            self.now = max(self.now, when)
            if what == "packet":
                _, _, dest, packet = heapq.heappop(self._flight)
                self.execute(dest, self.side(dest).receive(packet, self.now))
            else:
                self.execute(what, self.side(what).poll(self.now))

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def states(self, name: str) -> list[tuple[State, State, int]]:
        return [(c.old, c.new, c.diag) for _, c in self.changes[name]]


def up_pair(a_settings: BfdSettings = FAST, b_settings: BfdSettings = FAST) -> Link:
    link = Link(session(a_settings, seed=1), session(b_settings, seed=2, local=B_ADDR, peer=A_ADDR))
    link.start("a", "b")
    link.run_for(0.5)
    assert (link.a.state, link.b.state) == (UP, UP)
    return link


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


# --- the handshake ----------------------------------------------------------------


def test_three_way_handshake_down_init_up_on_both_ends() -> None:
    link = Link(session(seed=1), session(seed=2, local=B_ADDR, peer=A_ADDR))
    link.start("a", "b")
    link.run_for(0.01)  # a few one-millisecond hops, no timer needed: state changes send at once
    for name in ("a", "b"):
        assert link.states(name) == [(DOWN, INIT, 0), (INIT, UP, 0)]
    assert link.a.remote_discr == link.b.local_discr
    assert link.b.remote_discr == link.a.local_discr
    first = link.sent["a"][0][1]
    assert (first.state, first.your_discriminator, first.my_discriminator) == (DOWN, 0, link.a.local_discr)


def test_one_end_late_still_comes_up() -> None:
    link = Link(session(seed=1), session(seed=2, local=B_ADDR, peer=A_ADDR))
    link.start("a")
    link.run_for(2.5)  # b not started: it ignores what a sends
    assert link.b.state is DOWN and link.changes["b"] == []
    link.start("b")
    link.run_for(0.01)
    assert link.states("a") == [(DOWN, INIT, 0), (INIT, UP, 0)]
    assert link.states("b") == [(DOWN, UP, 0)]  # a said Init: b skips Init (6.8.6)


def test_discriminators_are_random_non_zero_from_the_rng() -> None:
    first = {session(seed=s).local_discr for s in range(50)}
    assert 0 not in first and len(first) == 50
    assert session(seed=7).local_discr == session(seed=7).local_discr


# --- timers ---------------------------------------------------------------------------


def test_one_second_while_not_up() -> None:
    link = Link(session(seed=1), session(seed=2, local=B_ADDR, peer=A_ADDR))
    link.start("a")  # b never answers
    link.run_for(20)
    packets = link.sent["a"]
    assert all(p.desired_min_tx_us == 1_000_000 for _, p in packets)
    assert all(p.required_min_rx_us == 100_000 for _, p in packets)
    assert all(0.75 <= gap <= 1.0 for gap in gaps([t for t, _ in packets]))
    assert link.a.transmit_interval_us == 1_000_000


def test_negotiated_interval_after_up_via_poll_and_final() -> None:
    link = Link(session(seed=1), session(seed=2, local=B_ADDR, peer=A_ADDR))
    link.start("a", "b")
    link.run_for(0.01)
    up_at = link.changes["a"][-1][0]
    after_up = [p for t, p in link.sent["a"] if t >= up_at]
    assert after_up[0].state is UP and after_up[0].poll and after_up[0].desired_min_tx_us == 100_000
    assert any(p.final and not p.poll for _, p in link.sent["b"])  # b answered the Poll
    link.run_for(1)
    assert not link.a.polling and not link.b.polling
    for side in (link.a, link.b):
        assert side.transmit_interval_us == 100_000
        assert side.detection_time_us == 300_000
    late = [t for t, p in link.sent["a"] if t > up_at + 0.1 and not p.final]
    assert all(0.075 <= gap <= 0.1 for gap in gaps(late))


def test_transmit_interval_is_the_larger_of_ours_and_the_remote_rx() -> None:
    link = up_pair(FAST, BfdSettings(min_tx_ms=100, min_rx_ms=300, multiplier=5))
    link.run_for(1)
    assert link.a.transmit_interval_us == 300_000  # max(our 100 ms TX, b's 300 ms RX)
    assert link.b.transmit_interval_us == 100_000
    # a's detection: b's multiplier 5 x max(a's RX 100, b's TX 100); b's: 3 x max(300, 300)
    assert link.a.detection_time_us == 500_000
    assert link.b.detection_time_us == 900_000


@pytest.mark.parametrize(("multiplier", "high"), [(3, 1.0), (1, 0.9)])
def test_jitter_bounds(multiplier: int, high: float) -> None:
    lone = session(BfdSettings(min_tx_ms=1000, min_rx_ms=1000, multiplier=multiplier), seed=3)
    now, times = 0.0, []
    lone.start(now)
    for _ in range(400):
        deadline = lone.next_deadline()
        assert deadline is not None
        now = deadline
        if any(isinstance(a, Send) for a in lone.poll(now)):
            times.append(now)
    spread = gaps(times)
    assert all(0.75 <= gap <= high for gap in spread)
    assert min(spread) < 0.76 and max(spread) > high - 0.01  # really spread over the range


def test_larger_tx_used_only_after_final_smaller_right_away() -> None:
    link = up_pair()
    link.run_for(1)
    slower = BfdSettings(min_tx_ms=500, min_rx_ms=100, multiplier=3)
    link.execute("a", link.a.reconfigure(slower, link.now))
    assert link.a.polling and link.a.desired_min_tx_us == 500_000
    assert link.a.transmit_interval_us == 100_000  # still the old rate: b has not answered
    link.run_for(0.01)
    assert link.b.detection_time_us == 1_500_000  # b heard the Poll
    assert not link.a.polling and link.a.transmit_interval_us == 500_000
    link.execute("a", link.a.reconfigure(FAST, link.now))
    assert link.a.transmit_interval_us == 100_000  # faster again: at once, Poll or not


def test_smaller_rx_shortens_detection_only_after_final() -> None:
    link = up_pair(BfdSettings(min_tx_ms=100, min_rx_ms=300, multiplier=3))
    link.run_for(1)
    assert link.a.detection_time_us == 900_000
    link.execute("a", link.a.reconfigure(FAST, link.now))
    assert link.a.detection_time_us == 900_000  # b may still send every 300 ms
    link.run_for(0.01)
    assert link.a.detection_time_us == 300_000
    link.execute("a", link.a.reconfigure(BfdSettings(100, 400, 3), link.now))
    assert link.a.detection_time_us == 1_200_000  # longer detection: at once


def test_settings_changes_below_up_apply_without_poll() -> None:
    lone = session()
    lone.start(0.0)
    actions = lone.reconfigure(BfdSettings(min_tx_ms=100, min_rx_ms=500, multiplier=3), 0.1)
    assert not lone.polling
    assert [a.packet.required_min_rx_us for a in actions if isinstance(a, Send)] == [500_000]


def test_poll_is_answered_at_once_with_final() -> None:
    lone = session()
    lone.start(0.0)
    poll = ControlPacket(DOWN, my_discriminator=9, detect_mult=3, poll=True)
    actions = lone.receive(poll, 0.2)
    sends = [a.packet for a in actions if isinstance(a, Send)]
    assert len(sends) == 1 and sends[0].final and not sends[0].poll
    assert sends[0].state is INIT and sends[0].your_discriminator == 9


def test_no_periodic_packets_while_the_remote_wants_none() -> None:
    lone = session()
    lone.start(0.0)
    lone.receive(ControlPacket(DOWN, my_discriminator=9, required_min_rx_us=0), 0.1)
    assert lone.next_deadline() == pytest.approx(0.1 + 3.0)  # only detection: 3 x 1 s
    assert lone.poll(3.0) == []  # three slow intervals passed, nothing sent


def test_no_periodic_packets_when_the_remote_is_in_demand_mode_and_both_up() -> None:
    link = up_pair()
    demand = ControlPacket(UP, my_discriminator=link.b.local_discr,
                           your_discriminator=link.a.local_discr, detect_mult=3,
                           desired_min_tx_us=100_000, required_min_rx_us=100_000, demand=True)
    link.a.receive(demand, link.now)
    assert link.a.next_deadline() == pytest.approx(link.now + 0.3)  # only the detection time


def test_packet_for_another_discriminator_is_ignored() -> None:
    lone = session()
    lone.start(0.0)
    stray = ControlPacket(UP, my_discriminator=9, your_discriminator=lone.local_discr + 1)
    assert lone.receive(stray, 0.1) == []
    assert lone.remote_discr == 0


def test_packets_before_start_are_ignored() -> None:
    lone = session()
    assert lone.receive(ControlPacket(DOWN, my_discriminator=9), 0.0) == []
    assert lone.next_deadline() is None and lone.state is DOWN


# --- failures ---------------------------------------------------------------------------


def test_detection_time_expiry_goes_down_with_diag_1() -> None:
    link = up_pair()
    link.run_for(1)
    cut_at = link.now
    link.cut |= {"ab", "ba"}
    link.run_for(1)
    for name in ("a", "b"):
        when, change = link.changes[name][-1]
        assert (change.old, change.new, change.diag) == (UP, DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED)
        assert cut_at < when <= cut_at + 0.3 + DELAY
    assert link.a.remote_discr == 0 and link.a.local_diag == 1
    assert link.sent["a"][-1][1].desired_min_tx_us == 1_000_000  # back to the slow rate


def test_one_way_loss_the_far_end_is_told_down() -> None:
    link = up_pair()
    link.run_for(1)
    link.cut.add("ab")  # b stops hearing a; a still hears b
    link.run_for(1)
    assert link.states("b")[-1] == (UP, DOWN, Diag.CONTROL_DETECTION_TIME_EXPIRED)
    assert link.states("a")[-1][:3] == (UP, DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)


def test_link_restored_comes_up_again() -> None:
    link = up_pair()
    link.cut |= {"ab", "ba"}
    link.run_for(5)  # long enough for both to forget the other
    assert link.a.remote_discr == 0
    link.cut.clear()
    link.run_for(3)
    assert (link.a.state, link.b.state) == (UP, UP)
    assert link.a.local_diag == 0


def test_admin_down_tells_the_peer_and_restart_recovers() -> None:
    link = up_pair()
    link.execute("a", link.a.admin_down(link.now))
    assert link.states("a")[-1] == (UP, ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN)
    link.run_for(5)
    assert link.a.state is ADMIN_DOWN  # b's Down packets do not move it
    assert link.states("b")[-1] == (UP, DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)
    assert link.b.state is DOWN  # AdminDown does not let b go Init
    sent = [p for t, p in link.sent["a"] if t > 1]
    assert sent and all(p.state is ADMIN_DOWN and p.diag == 7 for p in sent)
    assert all(0.75 <= g <= 1.0 for g in gaps([t for t, _ in link.sent["a"] if t > 1]))
    assert link.a.admin_down(link.now) == []
    link.execute("a", link.a.start(link.now))
    link.run_for(0.1)
    assert (link.a.state, link.b.state) == (UP, UP)


# --- every (state, received state) pair of RFC 5880 6.8.6, and the detection timer ----------


def in_state(state: State) -> Session:
    s = session()
    s.start(0.0)
    if state is INIT:
        s.receive(ControlPacket(DOWN, my_discriminator=9), 0.0)
    elif state is UP:
        s.receive(ControlPacket(INIT, my_discriminator=9, your_discriminator=s.local_discr), 0.0)
    elif state is ADMIN_DOWN:
        s.admin_down(0.0)
    assert s.state is state
    return s


NEIGHBOR, DETECT, ADMIN = 3, 1, 7
RECEIVE_TABLE = [
    # (our state, received state, our state afterwards, diag afterwards or None if no change)
    (ADMIN_DOWN, ADMIN_DOWN, ADMIN_DOWN, None),
    (ADMIN_DOWN, DOWN, ADMIN_DOWN, None),
    (ADMIN_DOWN, INIT, ADMIN_DOWN, None),
    (ADMIN_DOWN, UP, ADMIN_DOWN, None),
    (DOWN, ADMIN_DOWN, DOWN, None),
    (DOWN, DOWN, INIT, 0),
    (DOWN, INIT, UP, 0),
    (DOWN, UP, DOWN, None),
    (INIT, ADMIN_DOWN, DOWN, NEIGHBOR),
    (INIT, DOWN, INIT, None),
    (INIT, INIT, UP, 0),
    (INIT, UP, UP, 0),
    (UP, ADMIN_DOWN, DOWN, NEIGHBOR),
    (UP, DOWN, DOWN, NEIGHBOR),
    (UP, INIT, UP, None),
    (UP, UP, UP, None),
]


@pytest.mark.parametrize(("ours", "theirs", "after", "diag"), RECEIVE_TABLE)
def test_receive_table(ours: State, theirs: State, after: State, diag: int | None) -> None:
    s = in_state(ours)
    packet = ControlPacket(theirs, my_discriminator=9, your_discriminator=s.local_discr)
    actions = s.receive(packet, 0.5)
    changes = [a for a in actions if isinstance(a, StateChanged)]
    assert s.state is after
    if diag is None:
        assert changes == []
        assert actions == []  # nothing to answer: no Poll, no state change
    else:
        assert changes == [StateChanged(ours, after, diag)]
        sends = [a.packet for a in actions if isinstance(a, Send)]
        assert [p.state for p in sends] == [after]  # the news goes out at once
    assert s.remote_state is theirs
    assert s.remote_discr == 9


DETECTION_TABLE = [
    # (state, state after a detection time of silence, diag)
    (ADMIN_DOWN, ADMIN_DOWN, ADMIN),  # no detection timer in AdminDown
    (DOWN, DOWN, 0),
    (INIT, DOWN, DETECT),
    (UP, DOWN, DETECT),
]


@pytest.mark.parametrize(("ours", "after", "diag"), DETECTION_TABLE)
def test_detection_table(ours: State, after: State, diag: int) -> None:
    s = in_state(ours)
    if ours is DOWN:
        s.receive(ControlPacket(ADMIN_DOWN, my_discriminator=9), 0.0)  # heard, stays Down
    s.poll(60.0)
    assert (s.state, s.local_diag) == (after, diag)
    if ours is not ADMIN_DOWN:
        assert s.remote_discr == 0 and s.detection_time_us == 0


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_tx_ms": 5}, "bfd.min_tx_ms must be an integer from 10 to 60000 (milliseconds), got 5"),
        ({"min_rx_ms": 60001}, "bfd.min_rx_ms must be an integer from 10 to 60000"),
        ({"min_rx_ms": True}, "bfd.min_rx_ms"),
        ({"min_tx_ms": 100.0}, "bfd.min_tx_ms"),
        ({"multiplier": 0}, "bfd.multiplier must be an integer from 1 to 255, got 0"),
        ({"multiplier": 256}, "bfd.multiplier"),
    ],
)
def test_settings_refused_with_a_clear_message(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BfdSettings(**fields)  # type: ignore[arg-type]


def test_settings_defaults_and_units() -> None:
    settings = BfdSettings()
    assert (settings.min_tx_ms, settings.min_rx_ms, settings.multiplier) == (300, 300, 3)
    assert (FAST.min_tx_us, FAST.min_rx_us) == (100_000, 100_000)
