"""1,000 BGP session flaps in a row leak nothing: file descriptors, asyncio tasks, memory.

A passive speaker (so no connect backoff) with a one-millisecond IdleHoldTimer
(so DampPeerOscillations does not slow the churn down) takes a connection from
a test peer on loopback; the peer sends OPEN and KEEPALIVE, waits for
Established, and drops the connection (FIN or RST, alternately), a thousand
times.  After a warm-up, the counts taken before the churn must be back after it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import time
import tracemalloc
from collections import defaultdict
from dataclasses import replace
from ipaddress import IPv4Address
from typing import Any

import pytest
from waiting import wait_for

from spinelb.bgp import fsm, wire
from spinelb.bgp.fsm import State
from spinelb.config import PeerConfig, SpeakerConfig, parse_config
from spinelb.speaker import speaker as speaker_module
from spinelb.speaker.speaker import Speaker

FLAPS = 1000
WARMUP = 50
PEER_ASN = 65533
FD_SLACK = 0  # every socket of a flap is closed by the time the session is back in Active
TASK_SLACK = 0
TRACED_BOUND = 512 * 1024  # Python allocations still held after the churn (~0.5 KiB a flap)
RSS_BOUND = 16 * 1024 * 1024  # the process's resident size may keep allocator slack


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class StateEvents:
    """An asyncio.Event per FSM state, set when the speaker's session enters it."""

    def __init__(self, speaker: Speaker) -> None:
        self.reached: defaultdict[State, asyncio.Event] = defaultdict(asyncio.Event)
        observed = speaker.state_changed

        def state_changed(peer: str, old: State, new: State) -> None:
            observed(peer, old, new)
            self.reached[new].set()

        speaker.state_changed = state_changed  # type: ignore[method-assign]

    def expect(self, state: State) -> None:
        """Forget an earlier entry into ``state``: the next :meth:`entered` waits for a new one."""
        self.reached[state].clear()

    async def entered(self, state: State) -> None:
        await asyncio.wait_for(self.reached[state].wait(), 5)


def fast_idle_hold(config: SpeakerConfig, peer: PeerConfig) -> fsm.SessionSettings:
    """The speaker's settings with a 1 ms IdleHoldTimer, damping included."""
    return replace(settings_of(config, peer), idle_hold_time=0.001, idle_hold_max=0.001)


settings_of = speaker_module.session_settings


async def flap(port: int, states: StateEvents, opening: bytes, number: int) -> None:
    """One session: connect, OPEN + KEEPALIVE, Established, drop, back to Active."""
    states.expect(State.ESTABLISHED)
    _, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
    writer.write(opening)
    await states.entered(State.ESTABLISHED)
    states.expect(State.ACTIVE)
    if number % 2:
        writer.transport.abort()  # RST
    else:
        writer.close()  # FIN
        await writer.wait_closed()
    await states.entered(State.ACTIVE)


def test_a_thousand_session_flaps_leak_no_fd_task_or_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(speaker_module, "session_settings", fast_idle_hold)
    port = free_port()
    config = parse_config({
        "node_name": "sw-spine-001",
        "router_id": "10.2.0.2",
        "local_asn": 65531,
        "api": {"listen": None},
        "listen": {"address": "127.0.0.1", "port": port},
        "peers": [{"name": "w001", "address": "127.0.0.2", "asn": PEER_ASN, "passive": True,
                   "hold_time": 3}],
        "announce": [{"prefix": f"{IPv4Address(0x0A5C0000 + i)}/32", "next_hop": "10.2.0.2"}
                     for i in range(10)],
    })
    caps = (wire.Multiprotocol(1, 1), wire.FourOctetAs(PEER_ASN))
    opening = wire.encode(
        wire.Open(my_as=PEER_ASN, hold_time=3, bgp_id=IPv4Address("10.252.1.10"),
                  capabilities=caps)
    ) + wire.encode(wire.Keepalive())

    async def scenario() -> dict[str, Any]:
        speaker = Speaker(config)
        states = StateEvents(speaker)
        await speaker.start()
        try:
            session = speaker.sessions["w001"]
            await wait_for(lambda: session.state is State.ACTIVE)
            for number in range(WARMUP):
                await flap(port, states, opening, number)
            gc.collect()
            before = {"fds": fd_count(), "tasks": len(asyncio.all_tasks()), "rss": rss()}
            tracemalloc.start()
            traced_before = tracemalloc.get_traced_memory()[0]
            started = time.monotonic()
            for number in range(FLAPS):
                await flap(port, states, opening, number)
            took = time.monotonic() - started
            await wait_for(lambda: fd_count() <= before["fds"] + FD_SLACK, timeout=5)
            gc.collect()
            after = {
                "fds": fd_count(),
                "tasks": len(asyncio.all_tasks()),
                "rss": rss(),
                "traced": tracemalloc.get_traced_memory()[0] - traced_before,
                "took": took,
                "counter": session.fsm.connect_retry_counter,
            }
            tracemalloc.stop()
            assert session.state is State.ACTIVE
            return {"before": before, "after": after}
        finally:
            tracemalloc.stop()
            await speaker.shutdown("test over")

    result = asyncio.run(scenario())
    before, after = result["before"], result["after"]
    print(f"\n{FLAPS} flaps in {after['took']:.1f} s: fds {before['fds']} -> {after['fds']}, "
          f"tasks {before['tasks']} -> {after['tasks']}, "
          f"traced +{after['traced'] / 1024:.1f} KiB, "
          f"RSS {(after['rss'] - before['rss']) / 1024:+.0f} KiB")
    assert after["fds"] <= before["fds"] + FD_SLACK
    assert after["tasks"] <= before["tasks"] + TASK_SLACK
    assert after["traced"] < TRACED_BOUND
    assert after["rss"] - before["rss"] < RSS_BOUND
