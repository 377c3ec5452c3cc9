"""Keepalives under a large table and RFC 9687's send hold timer, end to end over loopback.

The speaker dials test peers that run in their own threads on plain blocking
sockets, so they time what arrives independently of the speaker's event loop:
one reads a little every few milliseconds while 100,000 prefixes are pumped
at it; one never reads at all (a zombie that still sends KEEPALIVEs).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from ipaddress import IPv4Address
from typing import Any

import pytest
from waiting import wait_for

from spinelb.bgp import wire
from spinelb.bgp.fsm import State
from spinelb.bgp.transport import NOTSENT_LOWAT
from spinelb.config import ConfigError, parse_config
from spinelb.speaker.speaker import Speaker, session_settings

HOLD = 3  # keepalive 1 s
SEND_HOLD = 4  # the smallest RFC 9687 allows with hold 3: more than the hold time
PEER_ASN = 65533
KEEPALIVE = wire.encode(wire.Keepalive())


def peer_open() -> bytes:
    caps = (wire.Multiprotocol(1, 1), wire.FourOctetAs(PEER_ASN))
    message = wire.Open(my_as=PEER_ASN, hold_time=HOLD, bgp_id=IPv4Address("10.2.0.2"),
                        capabilities=caps)
    return wire.encode(message)


def nlri_count(body: bytes) -> int:
    """Prefixes in an UPDATE's NLRI field, counted from the octets (an oracle apart from wire)."""
    withdrawn = int.from_bytes(body[0:2], "big")
    attrs = int.from_bytes(body[2 + withdrawn : 4 + withdrawn], "big")
    nlri = body[4 + withdrawn + attrs :]
    count = i = 0
    while i < len(nlri):
        i += 1 + (nlri[i] + 7) // 8
        count += 1
    return count


class TestPeer(threading.Thread):
    """A BGP peer on one accepted connection: OPEN, a KEEPALIVE a second, and reads of
    ``chunk`` octets every ``pause`` seconds (``chunk`` 0: never reads)."""

    __test__ = False

    def __init__(self, *, chunk: int, pause: float, rcvbuf: int | None = None) -> None:
        super().__init__(daemon=True)
        self.chunk, self.pause = chunk, pause
        self.listener = socket.socket()
        if rcvbuf is not None:  # accepted sockets inherit it
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.port: int = self.listener.getsockname()[1]
        self.done = threading.Event()
        self.keepalives: list[float] = []  # arrival times (monotonic)
        self.arrivals: list[float] = []  # every message's arrival time
        self.nlri = 0
        self.reset_at: float | None = None

    def run(self) -> None:
        conn, _ = self.listener.accept()
        self.listener.close()
        with conn:
            conn.sendall(peer_open() + KEEPALIVE)
            next_keepalive = time.monotonic() + 1.0
            buffer = bytearray()
            while not self.done.is_set():
                now = time.monotonic()
                try:
                    if now >= next_keepalive:
                        conn.sendall(KEEPALIVE)
                        next_keepalive = now + 1.0
                    if self.chunk:
                        conn.settimeout(self.pause or 0.05)
                        try:
                            data = conn.recv(self.chunk)
                        except TimeoutError:
                            data = None
                        if data == b"":
                            return
                        if data:
                            buffer += data
                            self._messages(buffer, time.monotonic())
                except (ConnectionResetError, BrokenPipeError):
                    self.reset_at = time.monotonic()
                    return
                time.sleep(self.pause)  # the slow reader's pace, not a wait for a condition

    def _messages(self, buffer: bytearray, now: float) -> None:
        while len(buffer) >= wire.HEADER_LEN:
            length = int.from_bytes(buffer[16:18], "big")
            if len(buffer) < length:
                return
            kind, body = buffer[18], bytes(buffer[wire.HEADER_LEN : length])
            del buffer[:length]
            self.arrivals.append(now)
            if kind == wire.MessageType.KEEPALIVE:
                self.keepalives.append(now)
            elif kind == wire.MessageType.UPDATE:
                self.nlri += nlri_count(body)


def speaker_config(n: int, peers: dict[str, int], **peer: Any) -> dict[str, Any]:
    return {
        "node_name": "ncn-w001",
        "router_id": "10.252.1.10",
        "local_asn": 65531,
        "api": {"listen": None},
        "peers": [{"name": name, "address": "127.0.0.1", "asn": PEER_ASN, "port": port,
                   "hold_time": HOLD, **peer} for name, port in peers.items()],
        "announce": [{"prefix": f"{IPv4Address(0x0A5C0000 + i)}/32", "next_hop": "10.252.1.10"}
                     for i in range(n)],
    }


def max_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def test_keepalives_arrive_on_time_while_100k_prefixes_go_to_a_slow_reader() -> None:
    n = 100_000

    async def scenario() -> None:
        peer = TestPeer(chunk=512, pause=0.005)
        peer.start()
        speaker = Speaker(parse_config(speaker_config(n, {"spine": peer.port},
                                                      send_hold_time=SEND_HOLD)))
        await speaker.start()
        try:
            session = speaker.sessions["spine"]
            await wait_for(lambda: session.state is State.ESTABLISHED)
            established_at = session.fsm.established_at
            assert session.connection is not None and session.connection.transport is not None
            sock = session.connection.transport.get_extra_info("socket")
            # The kernel keeps little unsent: the queue in front of a KEEPALIVE is ours, and small.
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == NOTSENT_LOWAT
            started = time.monotonic()
            await wait_for(lambda: peer.nlri >= n, timeout=60)
            finished = time.monotonic()
            took = finished - started
            during = [t for t in peer.keepalives if started <= t <= finished]
            print(f"\n{n} prefixes to a reader of 512 octets / 5 ms: {took:.1f} s, "
                  f"{len(during)} keepalives, max keepalive gap {max_gap(during):.2f} s, "
                  f"max gap between messages {max_gap(peer.arrivals):.2f} s")
            assert peer.nlri == n
            # Slow enough to span several keepalive intervals and the send hold time:
            # a peer that reads, however slowly, is never taken for a zombie.
            assert took > SEND_HOLD + 1
            assert len(during) >= 3
            assert max_gap(during) < HOLD  # the peer's hold timer never comes close
            assert session.state is State.ESTABLISHED
            assert session.fsm.established_at == established_at  # never flapped
            assert session.last_error is None
        finally:
            peer.done.set()
            await speaker.shutdown("test over")
            peer.join(5)

    asyncio.run(scenario())


def test_a_peer_that_stops_reading_is_reset_after_send_hold_time_and_others_stay_up() -> None:
    n = 50_000  # far more than the stuck peer's socket buffers hold

    async def scenario() -> None:
        stuck = TestPeer(chunk=0, pause=0.05, rcvbuf=16 * 1024)
        healthy = TestPeer(chunk=65536, pause=0.001)
        stuck.start()
        healthy.start()
        config = speaker_config(n, {"stuck": stuck.port, "healthy": healthy.port},
                                send_hold_time=SEND_HOLD)
        speaker = Speaker(parse_config(config))
        await speaker.start()
        try:
            zombie, other = speaker.sessions["stuck"], speaker.sessions["healthy"]
            await wait_for(lambda: zombie.state is State.ESTABLISHED
                           and other.state is State.ESTABLISHED)
            up_at, other_up_at = time.monotonic(), other.fsm.established_at
            await wait_for(lambda: zombie.state is not State.ESTABLISHED, timeout=SEND_HOLD + 6)
            took = time.monotonic() - up_at
            print(f"\nstuck peer reset {took:.2f} s after Established (send hold time {SEND_HOLD} s)")
            # not before the send hold time (up_at is seen a moment after Established, so
            # allow 0.1 s of that), and not much after it
            assert SEND_HOLD - 0.1 <= took < SEND_HOLD + 3
            assert zombie.last_error is not None
            assert zombie.last_error.startswith("send hold timer expired")
            await wait_for(lambda: stuck.reset_at is not None)  # RST: its next KEEPALIVE fails
            # The other session never noticed.
            await wait_for(lambda: healthy.nlri >= n)
            assert healthy.nlri == n
            assert other.state is State.ESTABLISHED
            assert other.fsm.established_at == other_up_at
            assert other.last_error is None
        finally:
            stuck.done.set()
            healthy.done.set()
            await speaker.shutdown("test over")
            stuck.join(5)
            healthy.join(5)

    asyncio.run(scenario())


def base_config(**peer: Any) -> dict[str, Any]:
    return speaker_config(0, {"spine": 179}, **peer)


@pytest.mark.parametrize(
    ("peer", "message"),
    [
        ({"send_hold_time": 3}, "must be more than hold_time (3)"),
        ({"hold_time": 90, "send_hold_time": 60}, "must be more than hold_time (90)"),
        ({"send_hold_time": 0}, "must be 1..131070"),
        ({"send_hold_time": 2.5}, "expected an integer"),
    ],
)
def test_send_hold_time_is_validated(peer: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(base_config(**peer))
    assert any(p.path == "peers[0].send_hold_time" and message in p.message
               for p in err.value.problems), err.value.problems


def test_send_hold_time_reaches_the_session_settings() -> None:
    config = parse_config(base_config(send_hold_time=600))
    assert config.peers[0].send_hold_time == 600
    assert session_settings(config, config.peers[0]).send_hold_time == 600
    default = parse_config(base_config())
    assert session_settings(default, default.peers[0]).send_hold_time is None
