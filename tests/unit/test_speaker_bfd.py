"""A peer with ``bfd``: its BGP session waits for BFD Up and is torn down the moment BFD says Down.

Two speakers on loopback, each with BFD on its one peer (the far one plays the spine, a
passive receiver that records UPDATEs): they bring BFD Up, then BGP.  The spine's BFD then
goes silent without a word (its transport closed, no AdminDown: a dead path), and the
announcer's BGP must go down with Cease 10 (BFD down) within the detection time, stay down
while BFD is down, and come back with it.  A spine that says AdminDown (BFD being disabled,
RFC 5882 3.2) leaves the BGP session alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from test_speaker_k8s import Spine
from waiting import wait_for

from lab.apiserver import free_port
from spinelb.bgp.fsm import State
from spinelb.config import parse_config
from spinelb.speaker.speaker import Speaker

BFD = {"min_tx_ms": 50, "min_rx_ms": 50, "multiplier": 3}  # detection 150 ms


def pair(port: int, bfd: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    announcer = {
        "node_name": "ncn-w001", "router_id": "10.252.1.10", "local_asn": 65531,
        "api": {"listen": None},
        "peers": [{"name": "spine", "address": "127.0.0.1", "asn": 65533, "port": port,
                   "source_address": "127.0.0.2", "hold_time": 3, "bfd": bfd}],
        "announce": [{"prefix": f"10.92.0.{i}/32", "next_hop": "10.252.1.10"} for i in range(3)],
    }
    spine = {
        "node_name": "sw-spine-001", "router_id": "10.2.0.2", "local_asn": 65533,
        "api": {"listen": None}, "listen": {"address": "127.0.0.1", "port": port},
        "peers": [{"name": "w001", "address": "127.0.0.2", "asn": 65531, "passive": True,
                   "hold_time": 3, "source_address": "127.0.0.1", "bfd": bfd}],
    }
    return announcer, spine


@contextlib.asynccontextmanager
async def running(announcer: dict[str, Any], receiver: dict[str, Any]
                  ) -> AsyncIterator[tuple[Speaker, Spine]]:
    """The announcing speaker and the spine, started (spine first), shut down afterwards."""
    speaker, spine = Speaker(parse_config(announcer)), Spine(parse_config(receiver))
    await spine.start()
    await speaker.start()
    try:
        yield speaker, spine
    finally:
        await speaker.shutdown("test over")
        await spine.shutdown("test over")


def test_bfd_gates_the_session_and_its_failure_tears_bgp_down_at_once() -> None:
    async def scenario() -> None:
        announcer, receiver = pair(free_port(), BFD)
        async with running(announcer, receiver) as (speaker, spine):
            session = speaker.sessions["spine"]
            await wait_for(lambda: len(spine.routes) == 3)
            assert speaker.bfd_state("spine") == "Up"
            assert speaker.status()["peers"][0]["bfd"] == "Up"

            # the spine's BFD goes silent (a dead path): no AdminDown, nothing said
            assert spine.bfd is not None
            spine.bfd.close(admin_down=False)
            spine.bfd = None
            lost = time.monotonic()
            await wait_for(lambda: session.state is not State.ESTABLISHED, timeout=5)
            took = time.monotonic() - lost
            assert speaker.bfd_state("spine") == "Down"
            assert "BFD down" in (session.last_error or ""), session.last_error
            print(f"BGP torn down {took * 1000:.0f} ms after the peer's BFD went silent")
            assert took < 1.5  # detection 150 ms; a generous bound against a loaded machine

            # while BFD is down the BGP session is not brought up again
            await asyncio.sleep(0.5)  # long enough for a connect retry that must not happen
            assert session.state is State.IDLE

            # the path is back: BFD Up, then BGP, then the routes
            spine._add_bfd(spine.config.peers[0])
            await wait_for(lambda: session.state is State.ESTABLISHED, timeout=10)
            await wait_for(lambda: len(spine.routes) == 3)

    asyncio.run(scenario())


def test_a_peer_disabling_bfd_with_admin_down_leaves_bgp_up() -> None:
    async def scenario() -> None:
        announcer, receiver = pair(free_port(), BFD)
        async with running(announcer, receiver) as (speaker, spine):
            session = speaker.sessions["spine"]
            await wait_for(lambda: session.state is State.ESTABLISHED, timeout=10)
            established = session.established_at
            assert spine.bfd is not None
            spine.bfd.close(admin_down=True)  # planned: AdminDown first
            spine.bfd = None
            await wait_for(lambda: speaker.bfd_state("spine") == "Down", timeout=5)
            await asyncio.sleep(0.3)  # two detection times: a teardown would have happened
            assert session.state is State.ESTABLISHED
            assert session.established_at == established

    asyncio.run(scenario())


def test_bfd_without_source_address_is_refused_naming_the_peer() -> None:
    announcer, _ = pair(179, BFD)
    del announcer["peers"][0]["source_address"]
    try:
        parse_config(announcer)
    except Exception as exc:  # ConfigError
        assert "peers[0].bfd" in str(exc) and "source_address" in str(exc)
    else:
        raise AssertionError("a bfd peer without source_address was accepted")


def test_a_reload_changes_bfd_without_restarting_the_bgp_session() -> None:
    """New timers poll in place, BFD off and on again: the session keeps its start time;
    a session BFD had torn down comes back once a reload turns BFD off."""
    async def scenario() -> None:
        announcer, receiver = pair(free_port(), BFD)
        async with running(announcer, receiver) as (speaker, spine):
            session = speaker.sessions["spine"]
            await wait_for(lambda: session.state is State.ESTABLISHED, timeout=10)
            established = session.established_at
            slower = {"min_tx_ms": 100, "min_rx_ms": 100, "multiplier": 4}
            announcer["peers"][0]["bfd"] = slower
            await speaker.apply(parse_config(announcer))
            assert speaker.bfd is not None
            bfd = speaker.bfd.session(*next(iter(speaker._bfd_peers)))
            assert bfd is not None and bfd.settings.multiplier == 4
            # the peer keeps multiplier 3; our slower receive interval is in force once polled
            await wait_for(lambda: bfd.detection_time_us == 300_000, timeout=5)
            assert speaker.bfd_state("spine") == "Up"

            announcer["peers"][0].pop("bfd")
            await speaker.apply(parse_config(announcer))
            assert speaker.bfd_state("spine") is None
            announcer["peers"][0]["bfd"] = BFD
            await speaker.apply(parse_config(announcer))
            await wait_for(lambda: speaker.bfd_state("spine") == "Up", timeout=5)
            assert session.state is State.ESTABLISHED
            assert session.established_at == established
            assert speaker.sessions["spine"] is session

            # the spine's BFD goes silent: BGP down and waiting for BFD; a reload without
            # bfd (the spine no longer runs it) brings the session back at once
            assert spine.bfd is not None
            spine.bfd.close(admin_down=False)
            spine.bfd = None
            await wait_for(lambda: session.state is State.IDLE, timeout=5)
            announcer["peers"][0].pop("bfd")
            await speaker.apply(parse_config(announcer))
            await wait_for(lambda: session.state is State.ESTABLISHED, timeout=10)
            await wait_for(lambda: len(spine.routes) == 3)

    asyncio.run(scenario())
