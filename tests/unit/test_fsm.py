"""The FSM's behaviour beyond single (state, event) pairs: OPEN checks and
negotiation, timers with jitter and backoff, passive peers, automatic restart,
shutdown communication, route refresh and collisions.  A fake clock (floats)
and a seeded random.Random; nothing sleeps."""

from __future__ import annotations

import itertools
import random
from ipaddress import IPv4Address
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinelb.bgp.fsm import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Event,
    RefreshRequested,
    Send,
    Session,
    SessionDown,
    SessionEstablished,
    SessionSettings,
    State,
    StateChanged,
    Timer,
    collision_winner,
    describe_notification,
)
from spinelb.bgp.wire import (
    AS_TRANS,
    IPV4_UNICAST,
    IPV6_UNICAST,
    BgpError,
    Capability,
    FourOctetAs,
    GracefulRestart,
    GracefulRestartFamily,
    Keepalive,
    MessageType,
    Multiprotocol,
    Notification,
    Open,
    RouteRefresh,
    RouteRefreshCapability,
    Update,
)

LOCAL_ID = IPv4Address("192.0.2.1")
PEER_ID = IPv4Address("192.0.2.2")


def make(rng_seed: int = 1, **overrides: Any) -> Session:
    fields: dict[str, Any] = {"local_asn": 65001, "peer_asn": 65002, "router_id": LOCAL_ID}
    fields.update(overrides)
    return Session(SessionSettings(**fields), rng=random.Random(rng_seed))


def peer_open(
    *,
    asn: int = 65002,
    hold: int = 90,
    bgp_id: IPv4Address = PEER_ID,
    caps: tuple[Capability, ...] | None = None,
    my_as: int | None = None,
    version: int = 4,
) -> Open:
    if caps is None:
        caps = (Multiprotocol(1, 1), RouteRefreshCapability(), FourOctetAs(asn))
    if my_as is None:
        my_as = asn if asn <= 0xFFFF else AS_TRANS
    return Open(my_as=my_as, hold_time=hold, bgp_id=bgp_id, capabilities=caps, version=version)


def open_sent(session: Session, now: float = 0.0) -> Session:
    session.start(now)
    session.handle(Event.TCP_CR_ACKED, now)
    assert session.state == State.OPEN_SENT
    return session


def established(session: Session, now: float = 0.0, **open_args: Any) -> Session:
    open_sent(session, now)
    session.receive(peer_open(**open_args), now)
    session.receive(Keepalive(), now)
    assert session.state == State.ESTABLISHED
    return session


def sent(actions: list[Action]) -> list[Any]:
    return [a.message for a in actions if isinstance(a, Send)]


def notifications(actions: list[Action]) -> list[tuple[int, int, bytes]]:
    return [(m.code, m.subcode, m.data) for m in sent(actions) if isinstance(m, Notification)]


def downs(actions: list[Action]) -> list[SessionDown]:
    return [a for a in actions if isinstance(a, SessionDown)]


# --- a whole session, action by action -----------------------------------------------


def test_active_session_from_start_to_established_and_back() -> None:
    session = make()
    assert session.start(0.0) == [Connect(), StateChanged(State.IDLE, State.CONNECT)]
    assert session.handle(Event.TCP_CR_ACKED, 0.5) == [
        Send(session.build_open()),
        StateChanged(State.CONNECT, State.OPEN_SENT),
    ]
    assert session.deadline(Timer.HOLD) == 0.5 + 240.0
    assert session.receive(peer_open(), 0.6) == [
        Send(Keepalive()),
        StateChanged(State.OPEN_SENT, State.OPEN_CONFIRM),
    ]
    actions = session.receive(Keepalive(), 0.7)
    assert session.negotiated is not None
    assert actions == [
        StateChanged(State.OPEN_CONFIRM, State.ESTABLISHED),
        SessionEstablished(session.negotiated),
    ]
    assert session.established_at == 0.7
    update = Update(nlri=())
    assert session.receive(update, 1.0) == [Deliver(update)]
    actions = session.receive(Notification(6, 4), 2.0)
    assert actions == [
        Disconnect(),
        StateChanged(State.ESTABLISHED, State.IDLE),
        SessionDown(
            "received NOTIFICATION 6/4 Cease/administrative reset", Notification(6, 4), False
        ),
    ]
    assert session.negotiated is None
    assert session.last_error == "received NOTIFICATION 6/4 Cease/administrative reset"


# --- our OPEN --------------------------------------------------------------------------


def test_build_open_two_octet_asn() -> None:
    session = make(families=(IPV4_UNICAST, IPV6_UNICAST), hold_time=9)
    assert session.build_open() == Open(
        my_as=65001,
        hold_time=9,
        bgp_id=LOCAL_ID,
        capabilities=(
            Multiprotocol(1, 1),
            Multiprotocol(2, 1),
            RouteRefreshCapability(),
            FourOctetAs(65001),
        ),
    )


def test_build_open_four_octet_asn_uses_as_trans() -> None:
    bgp_open = make(local_asn=4200000001).build_open()
    assert bgp_open.my_as == AS_TRANS
    assert FourOctetAs(4200000001) in bgp_open.capabilities


def test_build_open_graceful_restart_lists_the_families_and_no_route_refresh() -> None:
    bgp_open = make(graceful_restart_time=120, route_refresh=False).build_open()
    assert RouteRefreshCapability() not in bgp_open.capabilities
    gr = [c for c in bgp_open.capabilities if isinstance(c, GracefulRestart)]
    # a fresh start: R=0, F=0 (tests/unit/test_graceful_restart.py has the restart's bits)
    assert gr == [GracefulRestart(restart_time=120, restart_state=False,
                                  families=(GracefulRestartFamily(1, 1, False),))]


# --- the peer's OPEN -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bgp_open", "code", "data"),
    [
        (peer_open(version=3), (2, 1), b"\x00\x04"),
        (peer_open(asn=65099), (2, 2), b""),
        # 4-octet AS capability with a My AS that is neither the AS nor AS_TRANS
        (peer_open(asn=4200000002, my_as=65002), (2, 2), b""),
        (peer_open(my_as=AS_TRANS), (2, 2), b""),
        (peer_open(caps=(Multiprotocol(1, 1),), my_as=65099), (2, 2), b""),
        (peer_open(hold=1), (2, 6), b""),
        (peer_open(hold=2), (2, 6), b""),
        (peer_open(bgp_id=IPv4Address("0.0.0.0")), (2, 3), b""),
    ],
    ids=[
        "version",
        "peer-as",
        "my-as-not-as-trans",
        "as-trans-small-asn",
        "two-octet",
        "hold-1",
        "hold-2",
        "id-0",
    ],
)
def test_open_errors(bgp_open: Open, code: tuple[int, int], data: bytes) -> None:
    session = open_sent(make())
    actions = session.receive(bgp_open, 1.0)
    assert notifications(actions) == [(*code, data)]
    assert session.state == State.IDLE
    assert session.connect_retry_counter == 1
    assert downs(actions)[0].sent is True


def test_open_four_octet_peer_with_as_trans_accepted() -> None:
    session = make(peer_asn=4200000002)
    open_sent(session)
    session.receive(peer_open(asn=4200000002), 1.0)
    assert session.state == State.OPEN_CONFIRM
    assert session.negotiated is not None and session.negotiated.asn4


def test_bgp_identifier_equal_to_ours_rejected_on_ibgp_only() -> None:
    ibgp = open_sent(make(peer_asn=65001))
    actions = ibgp.receive(peer_open(asn=65001, bgp_id=LOCAL_ID), 1.0)
    assert notifications(actions) == [(2, 3, b"")]

    ebgp = open_sent(make())
    ebgp.receive(peer_open(bgp_id=LOCAL_ID), 1.0)  # RFC 6286: allowed between ASes
    assert ebgp.state == State.OPEN_CONFIRM


@pytest.mark.parametrize(
    ("ours", "theirs", "keepalive", "hold", "interval"),
    [
        (90, 90, None, 90, 30.0),
        (90, 9, None, 9, 3.0),
        (9, 180, None, 9, 3.0),
        (3, 90, None, 3, 1.0),  # hold 3 keeps keepalive 1
        (90, 90, 10, 90, 10.0),  # configured keepalive
        (90, 9, 30, 9, 3.0),  # configured keepalive clamped to negotiated hold / 3
        (0, 90, None, 0, 0.0),
        (90, 0, 30, 0, 0.0),
    ],
)
def test_hold_and_keepalive_negotiation(
    ours: int, theirs: int, keepalive: int | None, hold: int, interval: float
) -> None:
    session = open_sent(make(hold_time=ours, keepalive=keepalive))
    session.receive(peer_open(hold=theirs), 1.0)
    assert session.negotiated is not None
    assert session.negotiated.hold_time == hold
    assert session.negotiated.keepalive_interval == interval


@pytest.mark.parametrize(
    ("ours", "caps", "families"),
    [
        ((IPV4_UNICAST, IPV6_UNICAST), (Multiprotocol(2, 1),), {IPV6_UNICAST}),
        ((IPV4_UNICAST, IPV6_UNICAST), (), {IPV4_UNICAST}),  # no MP capability: IPv4 only
        ((IPV6_UNICAST,), (), set()),  # no common family: the session still comes up
        ((IPV4_UNICAST,), (Multiprotocol(1, 1), Multiprotocol(1, 128)), {IPV4_UNICAST}),
    ],
)
def test_families_are_the_intersection(
    ours: tuple[tuple[int, int], ...], caps: tuple[Capability, ...], families: set[tuple[int, int]]
) -> None:
    session = open_sent(make(families=ours))
    session.receive(peer_open(caps=caps), 1.0)
    session.receive(Keepalive(), 1.0)
    assert session.state == State.ESTABLISHED
    assert session.negotiated is not None
    assert session.negotiated.families == frozenset(families)
    assert session.negotiated.asn4 is False
    assert session.negotiated.route_refresh is False


def test_negotiated_capabilities() -> None:
    gr = GracefulRestart(restart_time=120)
    session = open_sent(make(peer_asn=65001))
    caps = (Multiprotocol(1, 1), RouteRefreshCapability(), FourOctetAs(65001), gr)
    session.receive(peer_open(asn=65001, caps=caps), 1.0)
    negotiated = session.negotiated
    assert negotiated is not None
    assert negotiated.asn4 and negotiated.route_refresh and negotiated.internal
    assert negotiated.peer_graceful_restart == gr
    assert negotiated.peer_open.bgp_id == PEER_ID

    no_rr = open_sent(make(route_refresh=False))
    no_rr.receive(peer_open(), 1.0)
    assert no_rr.negotiated is not None and not no_rr.negotiated.route_refresh


# --- hold and keepalive timers ---------------------------------------------------------------


def test_keepalive_timer_jittered_between_three_quarters_and_full_interval() -> None:
    session = established(make(rng_seed=99))
    gaps = []
    now = 0.0
    for _ in range(200):
        deadline = session.deadline(Timer.KEEPALIVE)
        assert deadline is not None
        gaps.append(deadline - now)
        now = deadline
        session.receive(Keepalive(), now)  # the peer keeps the hold timer alive
        assert sent(session.poll(now)) == [Keepalive()]
    assert all(0.75 * 30 <= gap <= 30 for gap in gaps)
    assert max(gaps) - min(gaps) > 3  # really jittered, not a constant


def test_hold_three_keeps_keepalive_at_one_second_despite_jitter() -> None:
    session = established(make(hold_time=3))
    now = 0.0
    for _ in range(20):
        deadline = session.deadline(Timer.KEEPALIVE)
        assert deadline == now + 1.0
        now = deadline
        session.receive(Keepalive(), now)
        assert sent(session.poll(now)) == [Keepalive()]


def test_same_seed_same_timers() -> None:
    one, two = established(make(rng_seed=5)), established(make(rng_seed=5))
    assert one.deadline(Timer.KEEPALIVE) == two.deadline(Timer.KEEPALIVE)


def test_hold_zero_means_no_keepalives_and_no_hold_timer() -> None:
    session = make(hold_time=0)
    open_sent(session)
    session.receive(peer_open(hold=0), 1.0)
    assert session.next_deadline() is None
    session.receive(Keepalive(), 2.0)
    assert session.state == State.ESTABLISHED
    session.message_sent(MessageType.UPDATE, 3.0)
    session.receive(Update(), 4.0)
    assert session.next_deadline() is None
    assert session.poll(1e9) == []
    assert session.state == State.ESTABLISHED


def test_update_and_keepalive_restart_hold_timer_and_expiry_sends_4_0() -> None:
    session = established(make(hold_time=9))
    assert session.deadline(Timer.HOLD) == 9.0
    session.receive(Keepalive(), 5.0)
    assert session.deadline(Timer.HOLD) == 14.0
    session.receive(Update(), 10.0)
    assert session.deadline(Timer.HOLD) == 19.0
    session.receive(RouteRefresh(1, 1), 12.0)
    assert session.deadline(Timer.HOLD) == 21.0
    session.message_sent(MessageType.KEEPALIVE, 20.0)  # keep our keepalive timer out of the way
    actions = session.poll(21.0)
    assert notifications(actions) == [(4, 0, b"")]
    assert session.state == State.IDLE
    assert downs(actions) == [SessionDown("hold timer expired", Notification(4, 0), True)]


def test_message_sent_restarts_keepalive_only_for_keepalive_and_update() -> None:
    session = established(make(hold_time=9, rng_seed=3))
    before = session.deadline(Timer.KEEPALIVE)
    session.message_sent(MessageType.NOTIFICATION, 2.0)
    session.message_sent(MessageType.ROUTE_REFRESH, 2.0)
    assert session.deadline(Timer.KEEPALIVE) == before
    session.message_sent(MessageType.UPDATE, 2.0)
    deadline = session.deadline(Timer.KEEPALIVE)
    assert deadline is not None and 2.0 + 0.75 * 3 <= deadline <= 2.0 + 3


def test_poll_fires_only_due_timers_earliest_first() -> None:
    session = established(make(hold_time=9))
    assert session.poll(0.5) == []
    # far too late: the keepalive (due at <= 3) is sent, then the hold timer (9) expires
    actions = session.poll(100.0)
    assert [type(m).__name__ for m in sent(actions)] == ["Keepalive", "Notification"]
    assert session.state == State.IDLE
    assert session.next_deadline() == session.deadline(Timer.IDLE_HOLD) == 101.0


# --- connect retry ------------------------------------------------------------------------------


def test_connect_retry_backoff_doubles_with_jitter_and_caps() -> None:
    session = make(connect_retry_time=5, connect_retry_max=60)
    session.start(0.0)
    now, bases = 0.0, []
    for _ in range(7):
        deadline = session.deadline(Timer.CONNECT_RETRY)
        assert deadline is not None
        bases.append(deadline - now)
        now = deadline
        assert session.poll(now) == [Disconnect(), Connect()]
        assert session.state == State.CONNECT
    for gap, base in zip(bases, [5, 10, 20, 40, 60, 60, 60], strict=True):
        assert 0.75 * base <= gap <= base


def test_connect_retry_backoff_resets_when_established() -> None:
    session = make(connect_retry_time=5, connect_retry_max=60)
    session.start(0.0)
    now = 0.0
    for _ in range(5):  # five expiries: the sixth ConnectRetryTimer is at the cap
        now = session.deadline(Timer.CONNECT_RETRY) or 0.0
        session.poll(now)
    assert (session.deadline(Timer.CONNECT_RETRY) or 0.0) - now >= 0.75 * 60
    session.handle(Event.TCP_CR_ACKED, now)
    session.receive(peer_open(), now)
    session.receive(Keepalive(), now)
    session.handle(Event.TCP_CONNECTION_FAILS, now)  # Established -> Idle
    restart = session.deadline(Timer.IDLE_HOLD)
    assert restart is not None
    session.poll(restart)
    assert session.state == State.CONNECT
    gap = (session.deadline(Timer.CONNECT_RETRY) or 0) - restart
    assert 0.75 * 5 <= gap <= 5


# --- passive peers -----------------------------------------------------------------------------


def test_passive_peer_waits_in_active_and_never_connects() -> None:
    session = make(passive=True)
    actions = session.start(0.0)
    assert actions == [StateChanged(State.IDLE, State.ACTIVE)]
    now = 0.0
    for _ in range(20):
        now = session.next_deadline() or now + 1
        assert session.poll(now) == []
        assert session.state == State.ACTIVE
    session.handle(Event.TCP_CONNECTION_CONFIRMED, now)
    session.receive(peer_open(), now)
    session.receive(Keepalive(), now)
    assert session.state == State.ESTABLISHED
    session.receive(Notification(6, 2), now)
    all_actions: list[Action] = []
    for _ in range(20):
        now = session.next_deadline() or now + 1
        all_actions += session.poll(now)
    assert session.state == State.ACTIVE
    assert not any(isinstance(a, Connect) for a in all_actions)


def test_passive_settings_win_over_an_active_start_event() -> None:
    session = make(passive=True)
    session.handle(Event.MANUAL_START, 0.0)
    assert session.state == State.ACTIVE


# --- automatic restart and manual stop --------------------------------------------------------------


def fail_in_open_sent(session: Session, now: float) -> None:
    session.handle(Event.TCP_CR_ACKED, now)
    session.receive(Notification(6, 5), now)  # connection rejected
    assert session.state == State.IDLE


def test_idle_hold_doubles_per_failure_up_to_max() -> None:
    session = make(idle_hold_time=1, idle_hold_max=8)
    session.start(0.0)
    now, delays = 0.0, []
    for _ in range(6):
        fail_in_open_sent(session, now)
        restart = session.deadline(Timer.IDLE_HOLD)
        assert restart is not None
        delays.append(restart - now)
        now = restart
        assert session.poll(now) == [Connect(), StateChanged(State.IDLE, State.CONNECT)]
        assert session.connect_retry_counter == 0  # AutomaticStart resets it (RFC 4271 8.2.2)
    assert delays == [1, 2, 4, 8, 8, 8]


def test_retry_now_starts_a_session_waiting_out_its_idle_hold_and_resets_the_backoff() -> None:
    session = make(idle_hold_time=1, idle_hold_max=8)
    session.start(0.0)
    now = 0.0
    for _ in range(4):  # four failures: the next restart is 8 s away
        fail_in_open_sent(session, now)
        now = session.deadline(Timer.IDLE_HOLD) or now
        session.poll(now)
    fail_in_open_sent(session, now)
    assert (session.deadline(Timer.IDLE_HOLD) or 0) - now == 8
    assert session.retry_now(now) == [Connect(), StateChanged(State.IDLE, State.CONNECT)]
    assert session.deadline(Timer.IDLE_HOLD) is None
    fail_in_open_sent(session, now)  # the backoff counts from the first delay again
    assert (session.deadline(Timer.IDLE_HOLD) or 0) - now == 1


def test_retry_now_connects_an_active_session_now_with_the_first_connect_retry() -> None:
    session = make(delay_open_time=5, connect_retry_time=5, connect_retry_max=60)
    session.start(0.0)
    now = 0.0
    for _ in range(4):  # four expiries: the next ConnectRetryTimer is at the cap
        now = session.deadline(Timer.CONNECT_RETRY) or now
        session.poll(now)
    session.handle(Event.TCP_CR_ACKED, now)
    session.handle(Event.TCP_CONNECTION_FAILS, now)  # DelayOpen running: Active
    assert session.state is State.ACTIVE
    assert (session.deadline(Timer.CONNECT_RETRY) or 0) - now >= 0.75 * 60
    assert session.retry_now(now) == [Connect(), StateChanged(State.ACTIVE, State.CONNECT)]
    assert 0.75 * 5 <= (session.deadline(Timer.CONNECT_RETRY) or 0) - now <= 5


def test_retry_now_leaves_connecting_established_passive_and_stopped_sessions_alone() -> None:
    connecting = make()
    connecting.start(0.0)
    assert connecting.state is State.CONNECT and connecting.retry_now(1.0) == []
    assert established(make()).retry_now(1.0) == []
    passive = make(passive=True)
    passive.start(0.0)
    assert passive.retry_now(1.0) == [] and passive.state is State.ACTIVE
    stopped = make()
    stopped.start(0.0)
    stopped.stop(0.0)
    assert stopped.retry_now(1.0) == [] and stopped.state is State.IDLE


def test_idle_hold_resets_only_after_a_stable_session() -> None:
    session = make(idle_hold_time=1, idle_hold_max=8)
    session.start(0.0)
    for now in (0.0, 10.0, 20.0):  # three quick failures: 1, 2, 4
        fail_in_open_sent(session, now)
        session.poll(session.deadline(Timer.IDLE_HOLD) or 0.0)

    def up_then_down(at: float, lasting: float) -> float:
        session.handle(Event.TCP_CR_ACKED, at)
        session.receive(peer_open(), at)
        session.receive(Keepalive(), at)
        session.receive(Keepalive(), at + lasting)
        session.handle(Event.TCP_CONNECTION_FAILS, at + lasting)
        return (session.deadline(Timer.IDLE_HOLD) or 0.0) - (at + lasting)

    assert up_then_down(30.0, 1.0) == 8  # a flap: still damped
    session.poll(1000.0)
    assert up_then_down(1000.0, 8.0) == 1  # stable for idle_hold_max: back to the first delay


def test_manual_stop_stays_idle() -> None:
    session = established(make())
    actions = session.stop(5.0, reason="maintenance")
    assert notifications(actions) == [(6, 2, b"\x0bmaintenance")]
    assert session.state == State.IDLE
    assert session.next_deadline() is None
    assert session.poll(1e6) == []
    assert downs(actions)[0].reason == "stopped: maintenance"
    assert session.last_error is None


def test_manual_stop_in_idle_cancels_pending_restart() -> None:
    session = make()
    session.start(0.0)
    fail_in_open_sent(session, 0.0)
    assert session.deadline(Timer.IDLE_HOLD) is not None
    assert session.stop(0.5) == []
    assert session.next_deadline() is None
    assert session.poll(1e6) == []
    assert session.state == State.IDLE
    session.start(2.0)  # an operator can still start it again
    assert session.state == State.CONNECT


def test_no_auto_restart_stays_idle_after_error() -> None:
    session = make(auto_restart=False)
    session.start(0.0)
    fail_in_open_sent(session, 0.0)
    assert session.next_deadline() is None


def test_damped_automatic_start_waits_for_idle_hold() -> None:
    session = make(idle_hold_time=2)
    assert session.handle(Event.AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS, 0.0) == []
    assert session.deadline(Timer.IDLE_HOLD) == 2.0
    assert session.poll(2.0) == [Connect(), StateChanged(State.IDLE, State.CONNECT)]


def test_stop_with_other_cease_subcode_has_no_communication() -> None:
    session = established(make())
    actions = session.stop(1.0, reason="gone", subcode=3)
    assert notifications(actions) == [(6, 3, b"")]


def test_stop_before_open_sent_sends_nothing() -> None:
    session = make()
    session.start(0.0)
    actions = session.stop(1.0, reason="bye")
    assert sent(actions) == []
    assert actions[0] == Disconnect()
    assert session.state == State.IDLE


def test_shutdown_communication_is_cut_at_128_octets_on_a_character_boundary() -> None:
    def cease_data(reason: str) -> bytes:
        stopped = make()
        stopped.start(0.0)
        stopped.handle(Event.TCP_CR_ACKED, 0.0)
        notes = [m for m in sent(stopped.stop(1.0, reason=reason)) if isinstance(m, Notification)]
        return notes[0].data

    assert cease_data("") == b""
    assert cease_data("hi") == b"\x02hi"
    data = cease_data("é" * 100)  # 200 octets of UTF-8
    assert data[0] == len(data) - 1 == 128
    assert data[1:].decode("utf-8") == "é" * 64
    data = cease_data("a" + "é" * 100)
    assert data[0] == 127  # 'a' + 63 whole characters; half an é is dropped
    data[1:].decode("utf-8")


def test_describe_notification() -> None:
    text = describe_notification(Notification(6, 2, b"\x0bmaint\x00nance"))
    assert text == "6/2 Cease/administrative shutdown: maint?nance"
    assert describe_notification(Notification(2, 2)) == "2/2 Open message/bad peer as"
    assert describe_notification(Notification(99, 7)) == "99/7 code 99"
    assert (
        describe_notification(Notification(6, 2, b"\x09short"))
        == "6/2 Cease/administrative shutdown"
    )


# --- specific RFC rules ---------------------------------------------------------------------------


def test_version_error_notification_in_open_sent_does_not_count() -> None:
    session = open_sent(make())
    actions = session.receive(Notification(2, 1, b"\x00\x04"), 1.0)
    assert session.state == State.IDLE
    assert session.connect_retry_counter == 0
    assert sent(actions) == []
    other = open_sent(make())
    other.receive(Notification(2, 2), 1.0)
    assert other.connect_retry_counter == 1


@pytest.mark.parametrize(("state", "subcode"), [(State.OPEN_CONFIRM, 2), (State.ESTABLISHED, 3)])
def test_open_on_the_same_connection_is_an_fsm_error(state: State, subcode: int) -> None:
    session = open_sent(make())
    session.receive(peer_open(), 1.0)
    if state == State.ESTABLISHED:
        session.receive(Keepalive(), 1.0)
    actions = session.receive(peer_open(), 2.0)
    assert notifications(actions) == [(5, subcode, b"")]
    assert session.state == State.IDLE


@pytest.mark.parametrize(
    ("message", "subcode"), [(Keepalive(), 1), (Update(), 1), (RouteRefresh(1, 1), 1)]
)
def test_unexpected_messages_in_open_sent(message: Any, subcode: int) -> None:
    session = open_sent(make())
    actions = session.receive(message, 1.0)
    assert notifications(actions) == [(5, subcode, b"")]


def test_route_refresh_in_established() -> None:
    session = established(make(families=(IPV4_UNICAST, IPV6_UNICAST)))
    assert session.receive(RouteRefresh(1, 1), 1.0) == [RefreshRequested(1, 1)]
    assert session.receive(RouteRefresh(2, 1), 1.0) == []  # the peer did not negotiate IPv6
    assert session.receive(RouteRefresh(1, 1, subtype=1), 1.0) == []  # RFC 7313 BoRR: ignored
    assert session.state == State.ESTABLISHED


def test_route_refresh_ignored_when_we_did_not_advertise_it() -> None:
    session = established(make(route_refresh=False))
    assert session.receive(RouteRefresh(1, 1), 1.0) == []


def test_route_refresh_in_idle_ignored_and_in_connect_fails() -> None:
    session = make()
    assert session.receive(RouteRefresh(1, 1), 0.0) == []
    session.start(0.0)
    session.receive(RouteRefresh(1, 1), 0.0)
    assert session.state == State.IDLE
    assert session.last_error == "unexpected ROUTE-REFRESH in Connect"


@pytest.mark.parametrize(
    ("state", "error", "expected"),
    [
        (State.OPEN_SENT, BgpError(1, 1), (1, 1)),
        (State.OPEN_SENT, BgpError(2, 4), (2, 4)),
        (State.OPEN_SENT, BgpError(3, 1), (5, 1)),  # an UPDATE in OpenSent is unexpected anyway
        (State.OPEN_CONFIRM, BgpError(3, 1), (5, 2)),
        (State.ESTABLISHED, BgpError(3, 11), (3, 11)),
        (State.ESTABLISHED, BgpError(1, 2, b"\x00\x05"), (1, 2)),
        (State.ESTABLISHED, BgpError(7, 1), (7, 1)),  # ROUTE-REFRESH length error
    ],
)
def test_decode_errors(state: State, error: BgpError, expected: tuple[int, int]) -> None:
    session = open_sent(make())
    if state != State.OPEN_SENT:
        session.receive(peer_open(), 1.0)
    if state == State.ESTABLISHED:
        session.receive(Keepalive(), 1.0)
    actions = session.decode_error(error, 2.0)
    assert [(c, s) for c, s, _ in notifications(actions)] == [expected]
    assert session.state == State.IDLE


def test_decode_error_before_open_sent_closes_silently() -> None:
    session = make(delay_open_time=5)
    session.start(0.0)
    session.handle(Event.TCP_CR_ACKED, 0.0)
    actions = session.decode_error(BgpError(2, 2, reason="bad AS"), 1.0)
    assert sent(actions) == []  # SendNOTIFICATIONwithoutOPEN is FALSE
    assert session.state == State.IDLE
    assert session.connect_retry_counter == 1


# --- DelayOpen --------------------------------------------------------------------------------------


def test_delay_open_answers_the_peers_open_with_open_and_keepalive() -> None:
    session = make(delay_open_time=5)
    session.start(0.0)
    assert session.handle(Event.TCP_CR_ACKED, 1.0) == []
    assert session.deadline(Timer.DELAY_OPEN) == 6.0
    assert session.deadline(Timer.CONNECT_RETRY) is None
    actions = session.receive(peer_open(), 2.0)
    assert sent(actions) == [session.build_open(), Keepalive()]
    assert session.state == State.OPEN_CONFIRM
    assert session.deadline(Timer.DELAY_OPEN) is None


def test_delay_open_expiry_sends_open() -> None:
    session = make(delay_open_time=5)
    session.start(0.0)
    session.handle(Event.TCP_CR_ACKED, 1.0)
    assert sent(session.poll(6.0)) == [session.build_open()]
    assert session.state == State.OPEN_SENT


def test_delay_open_invalid_open_closes_without_notification() -> None:
    session = make(delay_open_time=5)
    session.start(0.0)
    session.handle(Event.TCP_CR_ACKED, 1.0)
    actions = session.receive(peer_open(asn=1), 2.0)
    assert sent(actions) == []
    assert session.state == State.IDLE


def test_delay_open_connection_failure_goes_active() -> None:
    session = make(delay_open_time=5)
    session.start(0.0)
    session.handle(Event.TCP_CR_ACKED, 1.0)
    session.handle(Event.TCP_CONNECTION_FAILS, 2.0)
    assert session.state == State.ACTIVE
    assert session.deadline(Timer.CONNECT_RETRY) is not None
    assert session.connect_retry_counter == 0


def test_version_error_with_delay_open_running_does_not_count() -> None:
    session = make(delay_open_time=5)
    session.start(0.0)
    session.handle(Event.TCP_CR_ACKED, 1.0)
    session.receive(Notification(2, 1), 2.0)
    assert session.state == State.IDLE
    assert session.connect_retry_counter == 0


# --- collisions ---------------------------------------------------------------------------------------


def test_collision_winner_compares_identifiers_as_unsigned() -> None:
    high, low = IPv4Address("200.0.0.1"), IPv4Address("10.0.0.1")
    assert collision_winner(high, low) == "local"
    assert collision_winner(low, high) == "remote"


def test_collision_equal_identifiers_fall_back_to_as() -> None:
    same = IPv4Address("10.0.0.1")
    assert collision_winner(same, same, local_asn=65002, remote_asn=65001) == "local"
    assert collision_winner(same, same, local_asn=65001, remote_asn=65002) == "remote"
    with pytest.raises(ValueError):
        collision_winner(same, same)


def test_collision_dump_sends_cease_7() -> None:
    session = open_sent(make())
    actions = session.handle(Event.OPEN_COLLISION_DUMP, 1.0)
    assert notifications(actions) == [(6, 7, b"")]


# --- settings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"hold_time": 1},
        {"hold_time": 2},
        {"hold_time": 70000},
        {"keepalive": 0},
        {"local_asn": 0},
        {"peer_asn": 2**32},
        {"families": ()},
        {"router_id": IPv4Address("0.0.0.0")},
        {"connect_retry_time": 0},
        {"connect_retry_time": 90, "connect_retry_max": 60},
        {"idle_hold_time": 0},
        {"delay_open_time": -1},
        {"graceful_restart_time": 4096},
    ],
)
def test_settings_rejected(bad: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"local_asn": 65001, "peer_asn": 65002, "router_id": LOCAL_ID}
    fields.update(bad)
    with pytest.raises(ValueError):
        SessionSettings(**fields)


def test_settings_accept_a_list_of_families() -> None:
    s = SessionSettings(65001, 65002, LOCAL_ID, families=[IPV4_UNICAST, IPV6_UNICAST])
    assert s.families == (IPV4_UNICAST, IPV6_UNICAST)
    hash(s)


# --- invariants under any sequence of events -----------------------------------------------------------

ALLOWED_TIMERS = {
    State.IDLE: {Timer.IDLE_HOLD},
    State.CONNECT: {Timer.CONNECT_RETRY, Timer.DELAY_OPEN},
    State.ACTIVE: {Timer.CONNECT_RETRY, Timer.DELAY_OPEN},
    State.OPEN_SENT: {Timer.HOLD},
    State.OPEN_CONFIRM: {Timer.HOLD, Timer.KEEPALIVE},
    State.ESTABLISHED: {Timer.HOLD, Timer.KEEPALIVE},
}

INPUTS: list[tuple[str, Any]] = [
    *[("event", e) for e in Event if e not in (19, 20)],
    ("message", peer_open()),
    ("message", peer_open(asn=1)),
    ("message", Keepalive()),
    ("message", Update()),
    ("message", Notification(6, 2)),
    ("message", Notification(2, 1)),
    ("message", RouteRefresh(1, 1)),
    ("error", BgpError(1, 2)),
    ("error", BgpError(2, 2)),
    ("error", BgpError(3, 1)),
    ("stop", None),
    ("poll", None),
]


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(INPUTS), st.floats(0, 50)), max_size=40),
    passive=st.booleans(),
    delay_open=st.sampled_from([0.0, 3.0]),
    hold=st.sampled_from([0, 3, 90]),
)
def test_any_sequence_keeps_the_machine_consistent(
    steps: list[tuple[tuple[str, Any], float]], passive: bool, delay_open: float, hold: int
) -> None:
    session = make(passive=passive, delay_open_time=delay_open, hold_time=hold)
    now = 0.0
    for (kind, value), step in steps:
        now += step
        if kind == "event":
            actions = session.handle(value, now)
        elif kind == "message":
            actions = session.receive(value, now)
        elif kind == "error":
            actions = session.decode_error(value, now)
        elif kind == "stop":
            actions = session.stop(now)
        else:
            actions = session.poll(now)
        running = {t for t in Timer if session.deadline(t) is not None}
        assert running <= ALLOWED_TIMERS[session.state]
        deadline = session.next_deadline()
        assert deadline is None or deadline > now or kind != "poll"
        assert (session.negotiated is not None) == (
            session.state in (State.OPEN_CONFIRM, State.ESTABLISHED)
        )
        if passive:
            assert not any(isinstance(a, Connect) for a in actions)
        changes = [a for a in actions if isinstance(a, StateChanged)]
        for first, second in itertools.pairwise(changes):
            assert first.new == second.old
        if changes:
            assert changes[-1].new == session.state
