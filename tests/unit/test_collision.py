"""Connection collisions (RFC 4271 6.8), driven by a scripted peer that dials back while our
connection to it is in OpenSent: the connection opened by the side with the higher BGP
Identifier survives and the other gets Cease/7."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address

import pytest
from waiting import wait_for

from spinelb.bgp import wire
from spinelb.bgp.fsm import State
from spinelb.config import parse_config
from spinelb.speaker.speaker import Speaker

OUR_ID = "10.252.1.10"


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


async def read_message(reader: asyncio.StreamReader) -> wire.Message:
    head = await asyncio.wait_for(reader.readexactly(19), 5)
    body = await asyncio.wait_for(reader.readexactly(int.from_bytes(head[16:18]) - 19), 5)
    return wire.decode(head[18], body)


@pytest.mark.parametrize(("peer_id", "kept"), [("10.2.0.2", "ours"), ("10.255.0.1", "theirs")])
def test_collision_keeps_the_connection_of_the_higher_identifier(peer_id: str, kept: str) -> None:
    async def scenario() -> None:
        peer_port, our_port = free_port("127.0.0.1"), free_port("127.0.0.2")
        first: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

        async def on_connect(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await first.put((r, w))

        server = await asyncio.start_server(on_connect, "127.0.0.1", peer_port)
        speaker = Speaker(parse_config({
            "node_name": "w", "router_id": OUR_ID, "local_asn": 65531, "api": {"listen": None},
            "listen": {"address": "127.0.0.2", "port": our_port},
            "peers": [{"name": "spine", "address": "127.0.0.1", "port": peer_port, "asn": 65533,
                       "source_address": "127.0.0.2", "hold_time": 9}],
        }))
        await speaker.start()
        session = speaker.sessions["spine"]
        their_open = wire.Open(65533, 9, IPv4Address(peer_id), (
            wire.Multiprotocol(1, 1), wire.FourOctetAs(65533)))
        try:
            r1, w1 = await asyncio.wait_for(first.get(), 5)
            assert isinstance(await read_message(r1), wire.Open)
            assert session.state is State.OPEN_SENT
            # Now the peer dials us too, from the configured address, and opens.
            r2, w2 = await asyncio.open_connection("127.0.0.2", our_port, local_addr=("127.0.0.1", 0))
            assert isinstance(await read_message(r2), wire.Open)
            w2.write(wire.encode(their_open))
            loser, winner = (r2, (r1, w1)) if kept == "ours" else (r1, (r2, w2))
            note = await read_message(loser)
            while isinstance(note, wire.Keepalive):  # the OPEN was accepted before the check
                note = await read_message(loser)
            assert isinstance(note, wire.Notification) and (note.code, note.subcode) == (6, 7)
            # The surviving connection goes on to Established.
            wr, ww = winner
            if kept == "ours":
                ww.write(wire.encode(their_open))
            ww.write(wire.encode(wire.Keepalive()))
            while not isinstance(await read_message(wr), wire.Keepalive):
                pass
            await wait_for(lambda: session.state is State.ESTABLISHED)
            assert session.connection is not None and session.connection.outgoing == (kept == "ours")
        finally:
            await speaker.shutdown("test over")
            server.close()

    asyncio.run(scenario())
