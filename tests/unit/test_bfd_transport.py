"""The BFD transport over loopback: source port, TTL 255 both ways, demultiplexing, AdminDown.

Sessions run between 127.0.0.1 and 127.0.0.2 on a free port instead of 3784,
so tests never collide with a real bfdd or with each other.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from ipaddress import IPv4Address, IPv6Address

import pytest
from waiting import wait_for

from spinelb.bfd.__main__ import main
from spinelb.bfd.packet import ControlPacket, Diag, State, decode
from spinelb.bfd.session import BfdSettings, Session, StateChanged
from spinelb.bfd.transport import IP_RECVTTL, SOURCE_PORTS, TTL, BfdTransport

ONE, TWO = IPv4Address("127.0.0.1"), IPv4Address("127.0.0.2")
FAST = BfdSettings(min_tx_ms=50, min_rx_ms=50, multiplier=3)


def free_port() -> int:
    """A UDP port free on both 127.0.0.1 and 127.0.0.2."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((str(ONE), 0))
            port: int = first.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                try:
                    second.bind((str(TWO), port))
                except OSError:
                    continue
                return port


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[Session, StateChanged]] = []

    def __call__(self, session: Session, change: StateChanged) -> None:
        self.changes.append((session, change))

    def states(self) -> list[tuple[State, State, int]]:
        return [(c.old, c.new, c.diag) for _, c in self.changes]


@pytest.fixture
def port() -> int:
    return free_port()


def peer_socket(port: int) -> socket.socket:
    """A hand-driven peer at 127.0.0.2:port that sees the TTL of what arrives."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    sock.bind((str(TWO), port))
    sock.setblocking(False)
    return sock


async def receive(sock: socket.socket) -> tuple[ControlPacket, int, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    readable = asyncio.Event()
    loop.add_reader(sock.fileno(), readable.set)
    try:
        await asyncio.wait_for(readable.wait(), 5)
    finally:
        loop.remove_reader(sock.fileno())
    data, ancdata, _, source = sock.recvmsg(128, socket.CMSG_SPACE(4))
    ttl = next(int.from_bytes(d[:4], sys.byteorder) for lvl, kind, d in ancdata
               if (lvl, kind) == (socket.IPPROTO_IP, socket.IP_TTL))
    return decode(data), ttl, source


def send_from(port: int, packet: ControlPacket, ttl: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        sock.bind((str(TWO), 0))
        sock.sendto(packet.encode(), (str(ONE), port))


@pytest.mark.asyncio
async def test_sends_from_a_high_port_with_ttl_255_and_drops_other_ttls(port: int) -> None:
    peer = peer_socket(port)
    recorder = Recorder()
    transport = BfdTransport(recorder, port=port)
    try:
        session = transport.add_session(ONE, TWO, FAST)
        first, ttl, source = await receive(peer)
        assert ttl == TTL
        assert source[0] == str(ONE) and source[1] in SOURCE_PORTS
        assert (first.state, first.my_discriminator, first.your_discriminator) == (
            State.DOWN, session.local_discr, 0)
        assert first.desired_min_tx_us == 1_000_000 and first.required_min_rx_us == 50_000

        down = ControlPacket(State.DOWN, my_discriminator=77, desired_min_tx_us=1_000_000,
                             required_min_rx_us=1_000_000)
        send_from(port, down, ttl=254)  # one hop away: must not count
        send_from(port, down, ttl=TTL)
        await wait_for(lambda: transport.counters.received == 1)
        assert transport.counters.dropped_ttl == 1
        assert session.state is State.INIT and session.remote_discr == 77
        assert recorder.states() == [(State.DOWN, State.INIT, 0)]
        answer, _, _ = await receive(peer)
        assert (answer.state, answer.your_discriminator) == (State.INIT, 77)

        stray = ControlPacket(State.UP, my_discriminator=77, your_discriminator=session.local_discr + 1)
        send_from(port, stray, ttl=TTL)
        send_from(port, down, ttl=TTL)  # handled after the stray: a barrier for the wait
        await wait_for(lambda: transport.counters.dropped_unmatched == 1
                       and transport.counters.received == 2)
        assert session.state is State.INIT  # a stranger's Up did not bring it up
    finally:
        transport.close()
        peer.close()


@pytest.mark.asyncio
async def test_malformed_packets_are_counted_and_dropped(port: int) -> None:
    transport = BfdTransport(Recorder(), port=port)
    try:
        transport.add_session(ONE, TWO, FAST)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
            sock.bind((str(TWO), 0))
            for garbage in (b"", b"\x20", bytes(24), b"\xff" * 24):
                sock.sendto(garbage, (str(ONE), port))
        await wait_for(lambda: transport.counters.dropped_malformed == 4)
        assert transport.counters.received == 0
    finally:
        transport.close()


@pytest.mark.asyncio
async def test_two_transports_come_up_and_admin_down_reaches_the_peer(port: int) -> None:
    one, two = Recorder(), Recorder()
    t_one = BfdTransport(one, port=port)
    t_two = BfdTransport(two, port=port)
    try:
        s_one = t_one.add_session(ONE, TWO, FAST)
        s_two = t_two.add_session(TWO, ONE, FAST)
        await wait_for(lambda: s_one.state is State.UP and s_two.state is State.UP)
        await wait_for(lambda: not s_one.polling and s_one.transmit_interval_us == 50_000
                       and s_two.detection_time_us == 150_000)
        assert t_one.session(ONE, TWO) is s_one and t_one.session(TWO, ONE) is None
        assert t_one.counters.dropped_ttl == 0 and t_one.counters.dropped_malformed == 0

        t_two.remove_session(s_two)
        await wait_for(lambda: s_one.state is State.DOWN)
        assert one.states()[-1] == (State.UP, State.DOWN, Diag.NEIGHBOR_SIGNALED_SESSION_DOWN)
        assert two.states()[-1] == (State.UP, State.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN)
        assert t_two.sessions == []
    finally:
        t_one.close()
        t_two.close()


@pytest.mark.asyncio
async def test_sessions_share_the_receive_socket_and_refuse_duplicates(port: int) -> None:
    transport = BfdTransport(Recorder(), port=port)
    try:
        first = transport.add_session(ONE, TWO, FAST)
        second = transport.add_session(ONE, IPv4Address("127.0.0.3"), FAST)
        assert first.local_discr != second.local_discr
        with pytest.raises(ValueError, match="already exists"):
            transport.add_session(ONE, TWO, FAST)
        transport.remove_session(first, admin_down=False)
        assert transport.sessions == [second]
        transport.remove_session(second)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((str(ONE), port))  # the last session gave the port back
    finally:
        transport.close()


@pytest.mark.asyncio
async def test_a_failing_callback_does_not_stop_the_session(port: int) -> None:
    def broken(session: Session, change: StateChanged) -> None:
        raise RuntimeError("callback bug")

    t_one = BfdTransport(broken, port=port)
    t_two = BfdTransport(Recorder(), port=port)
    try:
        s_one = t_one.add_session(ONE, TWO, FAST)
        s_two = t_two.add_session(TWO, ONE, FAST)
        await wait_for(lambda: s_one.state is State.UP and s_two.state is State.UP)
    finally:
        t_one.close()
        t_two.close()


@pytest.mark.asyncio
async def test_ipv6_hop_limit_255_sent_and_checked(port: int) -> None:
    """::1 to ::1 is a looped path (the session hears itself and comes Up with itself): enough
    to prove the IPv6 sockets send with hop limit 255 and read it back on receipt."""
    transport = BfdTransport(Recorder(), port=port)
    try:
        looped = transport.add_session(IPv6Address("::1"), IPv6Address("::1"), FAST)
        await wait_for(lambda: looped.state is State.UP)
        assert looped.remote_discr == looped.local_discr
        assert transport.counters.dropped_ttl == 0 and transport.counters.received >= 2
    finally:
        transport.close()


def test_entry_point_refuses_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--local", "127.0.0.1", "--peer", "127.0.0.2", "--min-tx-ms", "5"])
    assert code == 2
    assert "bfd.min_tx_ms must be an integer from 10 to 60000" in capsys.readouterr().err
