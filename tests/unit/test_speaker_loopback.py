"""Two speakers talking BGP to each other over loopback: the transport end to end, no namespaces."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, ip_network
from typing import Any

import pytest
from waiting import wait_for

from spinelb.bgp.fsm import State
from spinelb.config import parse_config
from spinelb.speaker.speaker import Speaker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def host(i: int) -> str:
    """The i-th /32 from 10.92.0.0 on."""
    return f"{IPv4Address(0x0A5C0000 + i)}/32"


def configs(port: int, n: int, **peer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    announcer = {
        "node_name": "ncn-w001",
        "router_id": "10.252.1.10",
        "local_asn": 65531,
        "api": {"listen": None},
        "peers": [{"name": "spine", "address": "127.0.0.1", "asn": 65533, "port": port,
                   "source_address": "127.0.0.2", "hold_time": 3, **peer}],
        "announce": [{"prefix": host(i), "next_hop": "10.252.1.10"} for i in range(n)],
    }
    receiver = {
        "node_name": "sw-spine-001",
        "router_id": "10.2.0.2",
        "local_asn": 65533,
        "api": {"listen": None},
        "listen": {"address": "127.0.0.1", "port": port},
        "peers": [{"name": "w001", "address": "127.0.0.2", "asn": 65531, "passive": True,
                   "hold_time": 3, **peer}],
    }
    return announcer, receiver


async def run_pair(n: int, **peer: Any) -> None:
    a_conf, b_conf = configs(free_port(), n, **peer)
    a, b = Speaker(parse_config(a_conf)), Speaker(parse_config(b_conf))
    await b.start()
    await a.start()
    try:
        rx = b.sessions["w001"]
        await wait_for(lambda: len(rx.received) == n)
        assert a.sessions["spine"].state is State.ESTABLISHED
        assert set(rx.received) == {ip_network(host(i)) for i in range(n)}
        assert a.status()["peers"][0]["advertised"] == n
        await a.shutdown("maintenance window 42")
        await wait_for(lambda: rx.state is not State.ESTABLISHED)
        assert not rx.received
        assert rx.last_error is not None and "maintenance window 42" in rx.last_error
    finally:
        await a.shutdown("test over")
        await b.shutdown("test over")


@pytest.mark.parametrize("n", [2000, 20_000])
def test_loopback_session_carries_every_prefix_and_shutdown_says_why(n: int) -> None:
    # 20,000 /32s are 25 UPDATEs, more than one read handles per loop turn.
    asyncio.run(run_pair(n))


def test_loopback_session_with_tcp_md5() -> None:
    asyncio.run(run_pair(10, password="s3cret-md5"))


def test_md5_mismatch_never_establishes() -> None:
    async def scenario() -> None:
        a_conf, b_conf = configs(free_port(), 1, password="right")
        b_conf["peers"][0]["password"] = "wrong"
        a, b = Speaker(parse_config(a_conf)), Speaker(parse_config(b_conf))
        await b.start()
        await a.start()
        try:
            with pytest.raises(AssertionError):
                await wait_for(lambda: b.sessions["w001"].state is State.ESTABLISHED, timeout=2)
        finally:
            await a.shutdown("test over")
            await b.shutdown("test over")

    asyncio.run(scenario())


def test_connection_collision_leaves_exactly_one_session() -> None:
    """Both speakers dial and listen at once (RFC 4271 6.8): one connection survives, both agree."""

    async def scenario() -> None:
        port = free_port()
        a_conf = {
            "node_name": "a", "router_id": "10.0.0.1", "local_asn": 65001, "api": {"listen": None},
            "listen": {"address": "127.0.0.2", "port": port},
            "peers": [{"name": "b", "address": "127.0.0.3", "asn": 65002, "port": port,
                       "source_address": "127.0.0.2", "hold_time": 3}],
            "announce": [{"prefix": "10.92.0.1/32", "next_hop": "10.252.1.10"}],
        }
        b_conf = {
            "node_name": "b", "router_id": "10.0.0.2", "local_asn": 65002, "api": {"listen": None},
            "listen": {"address": "127.0.0.3", "port": port},
            "peers": [{"name": "a", "address": "127.0.0.2", "asn": 65001, "port": port,
                       "source_address": "127.0.0.3", "hold_time": 3}],
            "announce": [{"prefix": "10.92.0.2/32", "next_hop": "10.252.1.11"}],
        }
        a, b = Speaker(parse_config(a_conf)), Speaker(parse_config(b_conf))
        await a.start()
        await b.start()
        try:
            sa, sb = a.sessions["b"], b.sessions["a"]
            await wait_for(lambda: sa.state is State.ESTABLISHED and sb.state is State.ESTABLISHED
                           and len(sa.received) == 1 and len(sb.received) == 1)
            # One TCP connection: each side's local end is the other's remote end.
            assert sa.connection is not None and sb.connection is not None
            assert sa.connection.transport is not None and sb.connection.transport is not None
            a_local = sa.connection.transport.get_extra_info("sockname")
            b_peer = sb.connection.transport.get_extra_info("peername")
            assert a_local[:2] == b_peer[:2]
            assert sa.connection.outgoing != sb.connection.outgoing
        finally:
            await a.shutdown("test over")
            await b.shutdown("test over")

    asyncio.run(scenario())


def test_no_api_endpoint_shows_the_bgp_password() -> None:
    """Every GET endpoint of a speaker whose session runs TCP MD5: the password is nowhere."""
    import urllib.request

    from spinelb.speaker.api import GET_PATHS

    password = "s3cret-md5-Zq9"

    async def scenario() -> None:
        a_conf, b_conf = configs(free_port(), 3, password=password)
        a_conf["api"] = {"listen": f"127.0.0.1:{free_port()}"}
        a, b = Speaker(parse_config(a_conf)), Speaker(parse_config(b_conf))
        await b.start()
        await a.start()
        try:
            await wait_for(lambda: len(b.sessions["w001"].received) == 3)
            assert a.api is not None
            for path in GET_PATHS:
                url = f"http://127.0.0.1:{a.api.port}{path}"
                body = await asyncio.to_thread(lambda url=url: urllib.request.urlopen(url).read())
                assert body, path
                assert password.encode() not in body, path
        finally:
            await a.shutdown("test over")
            await b.shutdown("test over")

    asyncio.run(scenario())
