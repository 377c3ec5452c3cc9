"""A hostile peer cannot crash the speaker or disturb its other sessions.

A real speaker runs in-process with two peers: ``good``, a well-behaved spine on 127.0.0.1
that the speaker dials and that announces one route back, and ``hostile``, a passive peer on
127.0.0.3 driven by a raw socket from this test.  Each case sends something hostile and reads
the answer off the socket: the prescribed NOTIFICATION and a close, or acceptance where the RFCs
say the input is legal.  Throughout, the good session stays Established with the same start
time and keeps its routes both ways, no exception reaches the event loop, and afterwards the
speaker accepts a well-behaved session from the hostile address (it is alive and serving).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_network
from typing import Any

import pytest
from waiting import wait_for

from spinelb.bgp import wire
from spinelb.bgp.fsm import State
from spinelb.bgp.transport import PeerSession
from spinelb.config import parse_config
from spinelb.speaker.speaker import Speaker

GOOD_AS, HOSTILE_AS, LOCAL_AS = 65533, 65534, 65531
HOSTILE_ADDRESS = "127.0.0.3"
ANNOUNCED = ip_network("10.92.100.71/32")  # what the speaker announces to both peers
FROM_GOOD = ip_network("10.92.200.1/32")  # what the good peer announces to the speaker
FROM_HOSTILE = ip_network("10.92.201.1/32")
MARKER = b"\xff" * 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def open_message(asn: int = HOSTILE_AS, hold_time: int = 30, repeat: int = 1) -> bytes:
    """A 2-octet-AS OPEN body's header fields as given, capabilities ``repeat`` times over."""
    caps = (wire.Multiprotocol(1, 1), wire.RouteRefreshCapability(), wire.FourOctetAs(asn or 1))
    return wire.frame(1, wire.encode_open(wire.Open(asn, hold_time, IPv4Address("10.2.0.3"),
                                                    caps * repeat)))


def update(attrs: bytes, nlri: wire.Prefix) -> bytes:
    return wire.frame(2, wire.encode_update_body(b"", attrs, wire.encode_prefix(nlri)))


def base_attributes(asn: int) -> bytes:
    return wire.encode_path_attributes(
        [wire.Origin(0), wire.AsPath.sequence(asn), wire.NextHop(IPv4Address("10.2.0.3"))]
    )


def many_attributes() -> bytes:
    """As many attributes as fit a 4096-octet UPDATE: the mandatory three, then 1,349 copies of
    an empty optional transitive attribute (RFC 7606 3.g: all but the first are discarded)."""
    base = base_attributes(HOSTILE_AS)
    room = wire.MAX_MESSAGE_LEN - wire.HEADER_LEN - 4 - len(base) - 5
    message = update(base + b"\xc0\x63\x00" * (room // 3), FROM_HOSTILE)
    assert len(message) == wire.MAX_MESSAGE_LEN - room % 3
    return message


class GoodPeer:
    """A well-behaved spine on 127.0.0.1: answers the OPEN, announces FROM_GOOD, echoes keepalives."""

    def __init__(self) -> None:
        self.received: list[wire.Message] = []
        self.lost = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        opened = wire.Open(GOOD_AS, 30, IPv4Address("10.2.0.2"), (
            wire.Multiprotocol(1, 1), wire.RouteRefreshCapability(), wire.FourOctetAs(GOOD_AS)))
        writer.write(wire.encode(opened) + wire.encode(wire.Keepalive()))
        messages = wire.MessageReader()
        announced = False
        try:
            while data := await reader.read(65536):
                messages.feed(data)
                for msg_type, body in messages.messages():
                    msg = wire.decode(msg_type, body)
                    self.received.append(msg)
                    if isinstance(msg, wire.Keepalive):
                        writer.write(wire.encode(wire.Keepalive()))
                        if not announced:
                            announced = True
                            writer.write(update(base_attributes(GOOD_AS), FROM_GOOD))
        finally:
            writer.close()
            self.lost.set()

    def announced_to_me(self) -> set[wire.Prefix]:
        """The prefixes the speaker currently announces on this session."""
        routes: set[wire.Prefix] = set()
        for msg in self.received:
            if isinstance(msg, wire.Update):
                routes.difference_update(msg.withdrawn)
                routes.update(msg.nlri)
        return routes

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@dataclass
class Hostile:
    """One raw TCP connection from the hostile address to the speaker's listener."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    buffer: wire.MessageReader = field(default_factory=wire.MessageReader)
    received: list[wire.Message] = field(default_factory=list)

    @classmethod
    async def connect(cls, port: int) -> Hostile:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(HOSTILE_ADDRESS, 0))
        return cls(reader, writer)

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def until(self, cond: Callable[[wire.Message], bool]) -> wire.Message:
        """Read messages until one satisfies ``cond``; AssertionError at EOF or after 10 s."""
        async def read() -> wire.Message:
            while True:
                for msg in self.received:
                    if cond(msg):
                        return msg
                data = await self.reader.read(65536)
                assert data, f"closed without it; got {self.received}"
                self.buffer.feed(data)
                self.received += [wire.decode(t, b) for t, b in self.buffer.messages()]
        return await asyncio.wait_for(read(), 10)

    async def closed_after_notification(self) -> wire.Notification:
        """Read to EOF: the speaker's last word must be a NOTIFICATION, then it closes."""
        async def read() -> None:
            while data := await self.reader.read(65536):
                self.buffer.feed(data)
                self.received += [wire.decode(t, b) for t, b in self.buffer.messages()]
        await asyncio.wait_for(read(), 10)
        assert self.received and isinstance(self.received[-1], wire.Notification), self.received
        return self.received[-1]

    async def establish(self, opening: bytes | None = None) -> None:
        self.send(opening or open_message())
        await self.until(lambda m: isinstance(m, wire.Open))
        self.send(wire.encode(wire.Keepalive()))
        await self.until(lambda m: isinstance(m, wire.Keepalive))

    def close(self) -> None:
        self.writer.close()


@dataclass
class Lab:
    speaker: Speaker
    good: GoodPeer
    port: int  # the speaker's listener
    loop_errors: list[dict[str, Any]]

    @property
    def hostile_session(self) -> PeerSession:
        return self.speaker.sessions["hostile"]

    def hostile_state(self) -> State:
        """The hostile session's state, read afresh (a call, so nothing is assumed between reads)."""
        return self.hostile_session.state


async def run_case(case: Callable[[Lab], Awaitable[None]]) -> None:
    """Start the speaker and the good peer, run ``case``, then check nothing else was touched."""
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: loop_errors.append(context))
    good = GoodPeer()
    good_port, port = await good.start(), free_port()
    speaker = Speaker(parse_config({
        "node_name": "ncn-w001", "router_id": "10.252.1.10", "local_asn": LOCAL_AS,
        "api": {"listen": None},
        "listen": {"address": "127.0.0.1", "port": port},
        "peers": [
            {"name": "good", "address": "127.0.0.1", "port": good_port, "asn": GOOD_AS,
             "hold_time": 30},
            {"name": "hostile", "address": HOSTILE_ADDRESS, "asn": HOSTILE_AS, "passive": True,
             "hold_time": 30},
        ],
        "announce": [{"prefix": str(ANNOUNCED), "next_hop": "10.252.1.10"}],
    }))
    await speaker.start()
    lab = Lab(speaker, good, port, loop_errors)
    try:
        session = speaker.sessions["good"]
        await wait_for(lambda: FROM_GOOD in session.received and ANNOUNCED in good.announced_to_me())
        started = session.established_at
        await wait_for(lambda: lab.hostile_session.state is State.ACTIVE)

        await case(lab)

        # The speaker is alive and serving: the hostile address, now well-behaved, gets a session
        # (after the idle hold that damps a peer that just failed).
        await wait_for(lambda: lab.hostile_session.state is State.ACTIVE, timeout=15)
        again = await Hostile.connect(port)
        await again.establish()
        await wait_for(lambda: lab.hostile_session.state is State.ESTABLISHED)
        again.close()
        # The good session never noticed: same session, routes intact both ways, nothing unusual.
        assert session.state is State.ESTABLISHED
        assert session.established_at == started
        assert FROM_GOOD in session.received
        assert ANNOUNCED in good.announced_to_me()
        assert not good.lost.is_set()
        assert not [m for m in good.received if isinstance(m, wire.Notification)]
        assert loop_errors == []
    finally:
        await speaker.shutdown("test over")
        await good.close()


async def expect_notification(lab: Lab, data: bytes, code: int, subcode: int,
                              payload: bytes | None = b"") -> None:
    hostile = await Hostile.connect(lab.port)
    hostile.send(data)
    note = await hostile.closed_after_notification()
    assert (note.code, note.subcode) == (code, subcode), note
    if payload is not None:
        assert note.data == payload
    assert lab.hostile_session.state is not State.ESTABLISHED
    assert lab.hostile_session.last_error


NOTIFIED = {
    # name: (bytes sent right after connecting, NOTIFICATION code, subcode, data)
    "garbage": (b"GET / HTTP/1.1\r\nHost: spine\r\n\r\n", 1, 1, b""),
    "length 65535": (MARKER + struct.pack("!HB", 65535, 2), 1, 2, b"\xff\xff"),
    "marker of zeros": (bytes(16) + struct.pack("!HB", 19, 4), 1, 1, b""),
    "OPEN hold time 1": (open_message(hold_time=1), 2, 6, b""),  # RFC 4271 6.2
    "OPEN hold time 2": (open_message(hold_time=2), 2, 6, b""),
    "OPEN AS 0": (open_message(asn=0), 2, 2, b""),  # RFC 7607
    "OPEN from the wrong AS": (open_message(asn=HOSTILE_AS + 1), 2, 2, None),
}


@pytest.mark.parametrize("name", list(NOTIFIED))
def test_hostile_input_gets_the_prescribed_notification(name: str) -> None:
    data, code, subcode, payload = NOTIFIED[name]
    asyncio.run(run_case(lambda lab: expect_notification(lab, data, code, subcode, payload)))


def test_repeated_capabilities_are_accepted() -> None:
    """RFC 5492 4: a capability may appear more than once; the session comes up normally."""
    async def case(lab: Lab) -> None:
        hostile = await Hostile.connect(lab.port)
        await hostile.establish(open_message(repeat=20))
        await wait_for(lambda: lab.hostile_session.state is State.ESTABLISHED)
        negotiated = lab.hostile_session.fsm.negotiated
        assert negotiated is not None and negotiated.families == {wire.IPV4_UNICAST}
        hostile.close()

    asyncio.run(run_case(case))


def test_update_with_as_many_attributes_as_fit_is_handled() -> None:
    """1,352 attributes in one 4096-octet UPDATE: the repeats are discarded, the route kept."""
    async def case(lab: Lab) -> None:
        hostile = await Hostile.connect(lab.port)
        await hostile.establish()
        hostile.send(many_attributes())
        await wait_for(lambda: FROM_HOSTILE in lab.hostile_session.received)
        hostile.send(wire.encode(wire.Keepalive()))  # still talking afterwards
        assert lab.hostile_session.state is State.ESTABLISHED
        assert not [m for m in hostile.received if isinstance(m, wire.Notification)]
        hostile.close()

    asyncio.run(run_case(case))


def test_slow_loris_open_is_reassembled_and_blocks_nothing() -> None:
    """An OPEN sent one octet at a time: the good session carries on meanwhile, and the OPEN,
    once whole, is answered with a KEEPALIVE (the pause between octets is the input itself)."""
    async def case(lab: Lab) -> None:
        hostile = await Hostile.connect(lab.port)
        good_session = lab.speaker.sessions["good"]
        opening = open_message()
        for octet in opening[:-1]:
            hostile.send(bytes((octet,)))
            await hostile.writer.drain()
            await asyncio.sleep(0.01)
            assert good_session.state is State.ESTABLISHED
        assert lab.hostile_state() is State.OPEN_SENT  # one octet short of an OPEN
        hostile.send(opening[-1:])
        await hostile.until(lambda m: isinstance(m, wire.Keepalive))
        assert lab.hostile_state() is State.OPEN_CONFIRM
        hostile.close()

    asyncio.run(run_case(case))
