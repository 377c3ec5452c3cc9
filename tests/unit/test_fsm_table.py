"""Every (state, event) pair of RFC 4271 8.2.2: 6 states x 29 events (28 + RFC 9687's 29).

Each row says, for one event fired in one state: the state afterwards, the
actions in order, what happened to the ConnectRetryCounter (preset to 5, so
"unchanged", "incremented" and "set to zero" are told apart) and which timers
run afterwards.  The rows follow the RFC's text state by state; the few
deliberate departures are named in spinelb.bgp.fsm's docstring and marked
"(choice)" here.
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address

import pytest

from spinelb.bgp.fsm import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Event,
    Send,
    Session,
    SessionDown,
    SessionEstablished,
    SessionSettings,
    State,
    StateChanged,
    Timer,
)
from spinelb.bgp.wire import (
    BgpError,
    FourOctetAs,
    Keepalive,
    Message,
    Multiprotocol,
    Notification,
    Open,
    RouteRefreshCapability,
    Update,
)

LOCAL_ID = IPv4Address("192.0.2.1")
PEER_ID = IPv4Address("192.0.2.2")
PRESET_COUNTER = 5

IDLE, CONNECT, ACTIVE = State.IDLE, State.CONNECT, State.ACTIVE
OPEN_SENT, OPEN_CONFIRM, ESTABLISHED = State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED

CR, HOLD, KA, IH = Timer.CONNECT_RETRY, Timer.HOLD, Timer.KEEPALIVE, Timer.IDLE_HOLD

SAME, PLUS, ZERO = PRESET_COUNTER, PRESET_COUNTER + 1, 0


def peer_open() -> Open:
    return Open(
        my_as=65002,
        hold_time=90,
        bgp_id=PEER_ID,
        capabilities=(Multiprotocol(1, 1), RouteRefreshCapability(), FourOctetAs(65002)),
    )


# What each message/error event carries when fired.
MESSAGES: dict[Event, Message] = {
    Event.BGP_OPEN: peer_open(),
    Event.BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING: peer_open(),
    Event.NOTIF_MSG_VER_ERR: Notification(2, 1, b"\x00\x04"),
    Event.NOTIF_MSG: Notification(6, 2),
    Event.KEEPALIVE_MSG: Keepalive(),
    Event.UPDATE_MSG: Update(),
}
ERRORS: dict[Event, BgpError] = {
    Event.BGP_HEADER_ERR: BgpError(1, 2, b"\x00\x11", "bad message length"),
    Event.BGP_OPEN_MSG_ERR: BgpError(2, 4, reason="unsupported optional parameter"),
    Event.UPDATE_MSG_ERR: BgpError(3, 1, reason="malformed attribute list"),
}


def drive(state: State) -> Session:
    """A session brought to ``state`` the way the transport would, at t=0..4."""
    settings = SessionSettings(local_asn=65001, peer_asn=65002, router_id=LOCAL_ID)
    session = Session(settings, rng=random.Random(4271))
    if state == IDLE:
        return session
    session.start(0.0)
    if state == CONNECT:
        return session
    session.handle(Event.TCP_CR_ACKED, 1.0)
    if state == ACTIVE:
        session.handle(Event.TCP_CONNECTION_FAILS, 2.0)  # OpenSent -> Active
        return session
    if state == OPEN_SENT:
        return session
    session.receive(peer_open(), 2.0)
    if state == OPEN_CONFIRM:
        return session
    session.receive(Keepalive(), 3.0)
    assert session.state == ESTABLISHED
    return session


def summary(actions: list[Action]) -> list[str]:
    """Actions as short words: what the transport is asked to do, in order."""
    words = []
    for action in actions:
        if isinstance(action, Send):
            message = action.message
            if isinstance(message, Notification):
                words.append(f"send NOTIFICATION {message.code}/{message.subcode}")
                if action.best_effort:
                    words[-1] += " if writable"
            else:
                words.append(f"send {type(message).__name__.upper()}")
        elif isinstance(action, Connect):
            words.append("connect")
        elif isinstance(action, Disconnect):
            words.append("abort" if action.abort else "disconnect")
        elif isinstance(action, StateChanged):
            words.append(f"-> {action.new.value}")
        elif isinstance(action, SessionDown):
            words.append("down")
        elif isinstance(action, SessionEstablished):
            words.append("up")
        elif isinstance(action, Deliver):
            words.append("deliver")
        else:
            words.append(type(action).__name__)
    return words


Row = tuple[State, list[str], int, set[Timer]]

DOWN = ["disconnect", "-> Idle", "down"]
# RFC 9687 event 29: NOTIFICATION 8 only if it goes out at once, then the connection is reset.
SEND_HOLD_DOWN = ["send NOTIFICATION 8/0 if writable", "abort", "-> Idle", "down"]


def down_with(code: str) -> list[str]:
    return [f"send NOTIFICATION {code}", *DOWN]


def table() -> dict[State, dict[int, Row]]:
    starts = (1, 3, 4, 5, 6, 7)
    idle: dict[int, Row] = {e: (IDLE, [], SAME, set()) for e in range(1, 30)}
    idle.update(
        {
            1: (CONNECT, ["connect", "-> Connect"], ZERO, {CR}),
            3: (CONNECT, ["connect", "-> Connect"], ZERO, {CR}),
            4: (ACTIVE, ["-> Active"], ZERO, {CR}),
            5: (ACTIVE, ["-> Active"], ZERO, {CR}),
            6: (IDLE, [], SAME, {IH}),  # DampPeerOscillations: restart after the IdleHoldTimer
            7: (IDLE, [], SAME, {IH}),
            13: (CONNECT, ["connect", "-> Connect"], ZERO, {CR}),
            16: (IDLE, ["disconnect"], SAME, set()),  # (choice) refuse the connection
            17: (IDLE, ["disconnect"], SAME, set()),
        }
    )

    connect: dict[int, Row] = {e: (IDLE, DOWN, PLUS, {IH}) for e in range(1, 30)}  # any other
    connect.update({e: (CONNECT, [], SAME, {CR}) for e in starts})
    connect.update(
        {
            2: (IDLE, DOWN, ZERO, set()),
            9: (CONNECT, ["disconnect", "connect"], SAME, {CR}),
            12: (OPEN_SENT, ["send OPEN", "-> OpenSent"], SAME, {HOLD}),
            14: (CONNECT, [], SAME, {CR}),
            15: (CONNECT, [], SAME, {CR}),
            16: (OPEN_SENT, ["send OPEN", "-> OpenSent"], SAME, {HOLD}),
            17: (OPEN_SENT, ["send OPEN", "-> OpenSent"], SAME, {HOLD}),
            18: (IDLE, DOWN, SAME, {IH}),  # no DelayOpenTimer: no counter increment
            20: (
                OPEN_CONFIRM,
                ["send OPEN", "send KEEPALIVE", "-> OpenConfirm"],
                SAME,
                {HOLD, KA},
            ),
        }
    )

    active: dict[int, Row] = {e: (IDLE, DOWN, PLUS, {IH}) for e in range(1, 30)}  # any other
    active.update({e: (ACTIVE, [], SAME, {CR}) for e in starts})
    active.update(
        {
            2: (IDLE, DOWN, ZERO, set()),
            9: (CONNECT, ["connect", "-> Connect"], SAME, {CR}),
            12: (OPEN_SENT, ["send OPEN", "-> OpenSent"], SAME, {HOLD}),
            14: (ACTIVE, [], SAME, {CR}),
            15: (ACTIVE, [], SAME, {CR}),
            16: (OPEN_SENT, ["send OPEN", "-> OpenSent"], SAME, {HOLD}),
            17: (OPEN_SENT, ["send OPEN", "-> OpenSent"], SAME, {HOLD}),
            18: (IDLE, ["-> Idle", "down"], PLUS, {IH}),  # the RFC does not drop here
            20: (
                OPEN_CONFIRM,
                ["send OPEN", "send KEEPALIVE", "-> OpenConfirm"],
                SAME,
                {HOLD, KA},
            ),
        }
    )

    open_sent: dict[int, Row] = {
        e: (IDLE, down_with("5/1"), PLUS, {IH}) for e in range(1, 30)
    }  # any other: RFC 6608 5/1
    open_sent.update({e: (OPEN_SENT, [], SAME, {HOLD}) for e in (*starts, 14, 15, 16, 17)})
    open_sent.update(
        {
            2: (IDLE, down_with("6/2"), ZERO, set()),
            8: (IDLE, down_with("6/0"), PLUS, {IH}),
            10: (IDLE, down_with("4/0"), PLUS, {IH}),
            18: (ACTIVE, ["disconnect", "-> Active", "down"], SAME, {CR}),
            19: (OPEN_CONFIRM, ["send KEEPALIVE", "-> OpenConfirm"], SAME, {HOLD, KA}),
            21: (IDLE, down_with("1/2"), PLUS, {IH}),
            22: (IDLE, down_with("2/4"), PLUS, {IH}),
            23: (IDLE, down_with("6/7"), PLUS, {IH}),
            24: (IDLE, DOWN, SAME, {IH}),
            25: (IDLE, DOWN, PLUS, {IH}),  # (choice) no NOTIFICATION answers a NOTIFICATION
        }
    )

    open_confirm: dict[int, Row] = {
        e: (IDLE, down_with("5/2"), PLUS, {IH}) for e in range(1, 30)
    }  # any other (and an OPEN on this connection): 5/2
    open_confirm.update(
        {e: (OPEN_CONFIRM, [], SAME, {HOLD, KA}) for e in (*starts, 14, 15, 16, 17)}
    )
    open_confirm.update(
        {
            2: (IDLE, down_with("6/2"), ZERO, set()),
            8: (IDLE, down_with("6/0"), PLUS, {IH}),
            10: (IDLE, down_with("4/0"), PLUS, {IH}),
            11: (OPEN_CONFIRM, ["send KEEPALIVE"], SAME, {HOLD, KA}),
            29: (IDLE, SEND_HOLD_DOWN, PLUS, {IH}),
            18: (IDLE, DOWN, PLUS, {IH}),
            21: (IDLE, down_with("1/2"), PLUS, {IH}),
            22: (IDLE, down_with("2/4"), PLUS, {IH}),
            23: (IDLE, down_with("6/7"), PLUS, {IH}),
            24: (IDLE, DOWN, SAME, {IH}),
            25: (IDLE, DOWN, PLUS, {IH}),
            26: (ESTABLISHED, ["-> Established", "up"], SAME, {HOLD, KA}),
        }
    )

    established: dict[int, Row] = {
        e: (IDLE, down_with("5/3"), PLUS, {IH}) for e in range(1, 30)
    }  # any other (and an OPEN on this connection): 5/3
    established.update({e: (ESTABLISHED, [], SAME, {HOLD, KA}) for e in (*starts, 14, 15, 16, 17)})
    established.update(
        {
            2: (IDLE, down_with("6/2"), ZERO, set()),
            8: (IDLE, down_with("6/0"), PLUS, {IH}),
            10: (IDLE, down_with("4/0"), PLUS, {IH}),
            11: (ESTABLISHED, ["send KEEPALIVE"], SAME, {HOLD, KA}),
            18: (IDLE, DOWN, PLUS, {IH}),
            21: (IDLE, down_with("1/2"), PLUS, {IH}),  # (choice) RFC 4271 6.1 header error
            23: (IDLE, down_with("6/7"), PLUS, {IH}),
            24: (IDLE, DOWN, PLUS, {IH}),
            25: (IDLE, DOWN, PLUS, {IH}),
            26: (ESTABLISHED, [], SAME, {HOLD, KA}),
            27: (ESTABLISHED, ["deliver"], SAME, {HOLD, KA}),
            28: (IDLE, down_with("3/1"), PLUS, {IH}),
            29: (IDLE, SEND_HOLD_DOWN, PLUS, {IH}),
        }
    )
    return {
        IDLE: idle,
        CONNECT: connect,
        ACTIVE: active,
        OPEN_SENT: open_sent,
        OPEN_CONFIRM: open_confirm,
        ESTABLISHED: established,
    }


TABLE = table()
CASES = [(state, Event(event), row) for state, rows in TABLE.items() for event, row in rows.items()]


def test_table_covers_every_pair() -> None:
    assert len(CASES) == 6 * 29
    assert {(state, event) for state, event, _ in CASES} == {
        (state, event) for state in State for event in Event
    }


@pytest.mark.parametrize(
    ("state", "event", "row"), CASES, ids=[f"{s.value}-{e.value}-{e.name}" for s, e, _ in CASES]
)
def test_state_event(state: State, event: Event, row: Row) -> None:
    expected_state, expected_actions, expected_counter, expected_timers = row
    session = drive(state)
    assert session.state == state
    session.connect_retry_counter = PRESET_COUNTER

    actions = session.handle(event, 10.0, message=MESSAGES.get(event), error=ERRORS.get(event))

    assert session.state == expected_state
    assert summary(actions) == expected_actions
    assert session.connect_retry_counter == expected_counter
    running = {timer for timer in Timer if session.deadline(timer) is not None}
    assert running == expected_timers
    if expected_state in (OPEN_CONFIRM, ESTABLISHED):
        assert session.negotiated is not None
    else:
        assert session.negotiated is None
