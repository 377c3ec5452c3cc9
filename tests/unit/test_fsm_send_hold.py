"""RFC 9687 SendHoldTimer in the sans-IO FSM: the transport says since when it could
not write, the FSM keeps the deadline and, on expiry, resets the session with code 8.
A fake clock (floats); nothing sleeps."""

from __future__ import annotations

import random
from ipaddress import IPv4Address
from typing import Any

import pytest

from spinelb.bgp.fsm import (
    SEND_HOLD_TIMER_EXPIRED,
    Action,
    Disconnect,
    Event,
    Send,
    Session,
    SessionDown,
    SessionSettings,
    State,
    Timer,
    describe_notification,
)
from spinelb.bgp.wire import FourOctetAs, Keepalive, Multiprotocol, Notification, Open

PEER_ID = IPv4Address("192.0.2.2")


def make(**overrides: Any) -> Session:
    fields: dict[str, Any] = {
        "local_asn": 65001,
        "peer_asn": 65002,
        "router_id": IPv4Address("192.0.2.1"),
    }
    fields.update(overrides)
    return Session(SessionSettings(**fields), rng=random.Random(9687))


def peer_open(hold: int = 90) -> Open:
    caps = (Multiprotocol(1, 1), FourOctetAs(65002))
    return Open(my_as=65002, hold_time=hold, bgp_id=PEER_ID, capabilities=caps)


def established(session: Session, *, peer_hold: int = 90, now: float = 0.0) -> Session:
    session.start(now)
    session.handle(Event.TCP_CR_ACKED, now)
    session.receive(peer_open(peer_hold), now)
    session.receive(Keepalive(), now)
    assert session.state is State.ESTABLISHED
    return session


def advance(session: Session, start: float, end: float) -> list[Action]:
    """Run the clock from ``start`` to ``end`` in 0.5 s steps; the peer keeps sending
    KEEPALIVEs (it talks but does not read: the zombie RFC 9687 is about)."""
    actions: list[Action] = []
    now = start
    while now < end and session.state is State.ESTABLISHED:
        now = min(now + 0.5, end)
        actions += session.poll(now)
        if session.state is State.ESTABLISHED:
            session.receive(Keepalive(), now)
    return actions


@pytest.mark.parametrize(
    ("ours", "theirs", "configured", "expected"),
    [
        (90, 90, None, 480.0),  # max(8 minutes, 2 x 90)
        (300, 600, None, 600.0),  # 2 x the negotiated 300
        (3, 90, None, 480.0),
        (3, 90, 4.0, 4.0),  # configured wins
        (90, 30, 100.0, 100.0),  # > our hold time, so > any negotiated one
        (0, 90, None, 0.0),  # hold 0: no SendHoldTimer at all
        (90, 0, 200.0, 0.0),
    ],
)
def test_send_hold_time_is_negotiated_from_the_hold_time(
    ours: int, theirs: int, configured: float | None, expected: float
) -> None:
    session = established(make(hold_time=ours, send_hold_time=configured), peer_hold=theirs)
    assert session.negotiated is not None
    assert session.negotiated.send_hold_time == expected


@pytest.mark.parametrize(("hold", "send_hold"), [(3, 3), (90, 60), (0, 0), (3, -1)])
def test_send_hold_time_must_exceed_the_hold_time(hold: int, send_hold: float) -> None:
    with pytest.raises(ValueError, match="send_hold_time"):
        make(hold_time=hold, send_hold_time=send_hold)


def test_blocked_writing_arms_the_timer_and_progress_stops_it() -> None:
    session = established(make(hold_time=3, send_hold_time=4))
    assert session.deadline(Timer.SEND_HOLD) is None  # writing freely: no timer
    session.sending_blocked(10.0)
    assert session.deadline(Timer.SEND_HOLD) == 14.0
    advance(session, 0.0, 13.5)
    assert session.state is State.ESTABLISHED
    session.sending_blocked(12.0)  # the peer took some bytes at 12: counted from there
    assert session.deadline(Timer.SEND_HOLD) == 16.0
    session.sending_blocked(None)
    assert session.deadline(Timer.SEND_HOLD) is None
    assert session.state is State.ESTABLISHED


def test_expiry_resets_with_code_8_aborts_and_damps() -> None:
    session = established(make(hold_time=90, send_hold_time=200))
    session.connect_retry_counter = 2
    session.sending_blocked(5.0)
    actions = advance(session, 0.0, 300.0)
    actions = actions[actions.index(Send(Notification(SEND_HOLD_TIMER_EXPIRED, 0), True)) :]
    notification = Notification(SEND_HOLD_TIMER_EXPIRED, 0)
    assert actions[0] == Send(notification, best_effort=True)
    assert actions[1] == Disconnect(abort=True)
    down = actions[-1]
    assert isinstance(down, SessionDown)
    assert down.notification == notification and down.sent
    assert "send hold timer expired" in down.reason
    assert session.state is State.IDLE
    assert session.connect_retry_counter == 3  # RFC 9687: incremented by 1
    assert session.deadline(Timer.IDLE_HOLD) is not None  # DampPeerOscillations restart
    assert session.deadline(Timer.SEND_HOLD) is None
    assert session.last_error is not None and "send hold" in session.last_error
    assert describe_notification(notification) == "8/0 Send hold timer expired"


def test_keepalives_keep_going_out_while_blocked_until_expiry() -> None:
    # Blocked writing does not silence the KeepaliveTimer: the transport still
    # queues KEEPALIVEs, which go out the moment the peer reads again.
    session = established(make(hold_time=3, send_hold_time=5))
    session.sending_blocked(0.0)
    actions = advance(session, 0.0, 100.0)
    keepalives = [a for a in actions if isinstance(a, Send) and isinstance(a.message, Keepalive)]
    assert len(keepalives) >= 4  # one a second (hold 3), until the expiry at 5 s
    assert session.state is State.IDLE
    assert isinstance(actions[-1], SessionDown) and "send hold" in actions[-1].reason


@pytest.mark.parametrize("state", [State.IDLE, State.CONNECT, State.ACTIVE, State.OPEN_SENT])
def test_no_send_hold_timer_before_open_confirm(state: State) -> None:
    session = make(hold_time=3, send_hold_time=4)
    if state is not State.IDLE:
        session.start(0.0)
    if state is State.ACTIVE:
        session.handle(Event.TCP_CR_ACKED, 0.0)
        session.handle(Event.TCP_CONNECTION_FAILS, 0.0)
    if state is State.OPEN_SENT:
        session.handle(Event.TCP_CR_ACKED, 0.0)
    assert session.state is state
    session.sending_blocked(0.0)
    assert session.deadline(Timer.SEND_HOLD) is None


def test_open_confirm_runs_it_and_leaving_the_connection_clears_it() -> None:
    session = make(hold_time=3, send_hold_time=4)
    session.start(0.0)
    session.handle(Event.TCP_CR_ACKED, 0.0)
    session.receive(peer_open(), 0.0)
    assert session.state is State.OPEN_CONFIRM
    session.sending_blocked(1.0)
    assert session.deadline(Timer.SEND_HOLD) == 5.0
    session.handle(Event.TCP_CONNECTION_FAILS, 2.0)
    assert session.deadline(Timer.SEND_HOLD) is None
    assert session.state is State.IDLE
