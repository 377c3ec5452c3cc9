"""A peer that sends garbage gets the NOTIFICATION the RFCs prescribe; the other sessions carry on.

The speaker runs in-process and dials two peers on loopback: a scripted "bad"
peer that completes the OPEN exchange and then sends one broken message, and
a well-behaved peer whose session must stay Established throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from ipaddress import IPv4Address, ip_network

import pytest
from waiting import wait_for

from spinelb.bgp import wire
from spinelb.bgp.fsm import State
from spinelb.config import parse_config
from spinelb.speaker.speaker import Speaker

PEER_AS = 65533
MARKER = b"\xff" * 16


def header(length: int, msg_type: int) -> bytes:
    return MARKER + struct.pack("!HB", length, msg_type)


def update_with(attrs: bytes, nlri: bytes = b"\x20\x0a\x5c\x64\x01") -> bytes:
    body = struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + nlri
    return header(19 + len(body), 2) + body


GOOD_ATTRS = (
    b"\x40\x01\x01\x00"  # ORIGIN IGP
    + b"\x40\x02\x06\x02\x01\x00\x00\xff\xfd"  # AS_PATH 65533 (4-octet)
    + b"\x40\x03\x04\x0a\x00\x00\x01"  # NEXT_HOP 10.0.0.1
)


class ScriptedPeer:
    """A BGP peer on 127.0.0.1 that answers the OPEN, then runs ``script``."""

    def __init__(self, script: bytes | None) -> None:
        self.script = script
        self.received: list[wire.Message] = []
        self.closed = asyncio.Event()
        self.server: asyncio.Server | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        opened = wire.Open(PEER_AS, 3, IPv4Address("10.2.0.2"), (
            wire.Multiprotocol(1, 1), wire.RouteRefreshCapability(), wire.FourOctetAs(PEER_AS)))
        writer.write(wire.encode(opened) + wire.encode(wire.Keepalive()))
        msgs = wire.MessageReader()
        sent_script = False
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                msgs.feed(data)
                for msg_type, body in msgs.messages():
                    msg = wire.decode(msg_type, body)
                    self.received.append(msg)
                    if isinstance(msg, wire.Keepalive) and not sent_script:
                        sent_script = True
                        if self.script is not None:
                            writer.write(self.script)
                        else:
                            writer.write(wire.encode(wire.Keepalive()))
                    elif isinstance(msg, wire.Keepalive):
                        writer.write(wire.encode(wire.Keepalive()))
        finally:
            writer.close()
            self.closed.set()

    def notifications(self) -> list[wire.Notification]:
        return [m for m in self.received if isinstance(m, wire.Notification)]

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def exchange(script: bytes) -> tuple[ScriptedPeer, Speaker]:
    bad, good = ScriptedPeer(script), ScriptedPeer(None)
    bad_port, good_port = await bad.start(), await good.start()
    config = parse_config({
        "node_name": "ncn-w001", "router_id": "10.252.1.10", "local_asn": 65531,
        "api": {"listen": None},
        "peers": [
            {"name": "bad", "address": "127.0.0.1", "port": bad_port, "asn": PEER_AS,
             "hold_time": 30, "connect_retry": 30},
            {"name": "good", "address": "127.0.0.1", "port": good_port, "asn": PEER_AS,
             "hold_time": 30},
        ],
        "announce": [{"prefix": "10.92.100.71/32", "next_hop": "10.252.1.10"}],
    })
    speaker = Speaker(config)
    await speaker.start()
    await wait_for(lambda: speaker.sessions["good"].state is State.ESTABLISHED)
    return bad, speaker


CASES = {
    "bad marker": (header(19, 4)[:15] + b"\x00" + header(19, 4)[16:], (1, 1, b"")),
    "length below 19": (MARKER + struct.pack("!HB", 18, 4), (1, 2, b"\x00\x12")),
    "oversized message": (MARKER + struct.pack("!HB", 4097, 2) + bytes(4078), (1, 2, b"\x10\x01")),
    "unknown type": (header(19, 9), (1, 3, b"\x09")),
    "keepalive with a body": (header(20, 4) + b"\x00", (1, 2, b"\x00\x14")),
    "truncated UPDATE (withdrawn length overruns)":
        (header(23, 2) + b"\x00\x10\x00\x00", (3, 1, b"")),
    "second OPEN in Established": (
        wire.encode(wire.Open(PEER_AS, 3, IPv4Address("10.2.0.2"))), (5, 3, b"")),
    "MP_REACH_NLRI malformed": (update_with(
        GOOD_ATTRS + b"\x80\x0e\x05\x00\x02\x01\x10\x00", b""), (3, 9, None)),
    "unrecognized well-known attribute": (update_with(
        GOOD_ATTRS + b"\x40\x63\x01\x00"), (3, 2, b"\x40\x63\x01\x00")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_message_gets_the_prescribed_notification(case: str) -> None:
    script, (code, subcode, data) = CASES[case]

    async def scenario() -> None:
        bad, speaker = await exchange(script)
        try:
            await wait_for(lambda: bad.notifications())
            note = bad.notifications()[0]
            assert (note.code, note.subcode) == (code, subcode)
            if data is not None:
                assert note.data == data
            await wait_for(lambda: speaker.sessions["bad"].state is not State.ESTABLISHED)
            assert speaker.sessions["good"].state is State.ESTABLISHED
            assert speaker.status()["peers"][0]["last_error"]
        finally:
            await speaker.shutdown("test over")
            await bad.close()

    asyncio.run(scenario())


def test_malformed_origin_is_treat_as_withdraw_and_the_session_stays_up() -> None:
    bad_origin = GOOD_ATTRS.replace(b"\x40\x01\x01\x00", b"\x40\x01\x01\x05")
    other = b"\x20\x0a\x5c\x64\x02"  # 10.92.100.2/32
    script = update_with(GOOD_ATTRS) + update_with(GOOD_ATTRS, other) + update_with(bad_origin)

    async def scenario() -> None:
        bad, speaker = await exchange(script)
        try:
            session = speaker.sessions["bad"]
            await wait_for(lambda: session.state is State.ESTABLISHED)
            # Two good UPDATEs put .1 and .2 in; the broken one withdrew .1 again.
            three = b'spinelb_updates_received_total{peer="bad"} 3.0'
            await wait_for(lambda: three in speaker.render_metrics())
            assert set(session.received) == {ip_network("10.92.100.2/32")}
            assert session.state is State.ESTABLISHED
            assert not bad.notifications()
        finally:
            await speaker.shutdown("test over")
            with contextlib.suppress(Exception):
                await bad.close()

    asyncio.run(scenario())
