"""Three speakers on one layer2 segment (loopback), meshed by BFD, sharing a layer2 pool.

Each speaker runs BFD with the other two (50 ms x 3: detection 150 ms) from its own
127.0.8.x address, gets the same static decisions through ``service_decisions`` (what
the Kubernetes source would give every node), and answers through fake responders that
record what they were told to answer.  All of them also peer BGP with one spine, which
records every UPDATE: a layer2 address must never reach it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

from test_speaker_k8s import Spine
from waiting import wait_for

from lab.apiserver import free_port
from spinelb.bgp.fsm import State
from spinelb.bgp.wire import Address
from spinelb.config import parse_config
from spinelb.k8s.objects import NodeInfo
from spinelb.l2.packet import MacAddress
from spinelb.l2.responder import L2Counters
from spinelb.speaker.k8s_source import Decision
from spinelb.speaker.speaker import Speaker

NODES = ("ncn-w001", "ncn-w002", "ncn-w003")
SEGMENT = {node: f"127.0.8.{i + 1}" for i, node in enumerate(NODES)}
SPINE = "127.0.8.10"
BFD = {"min_tx_ms": 50, "min_rx_ms": 50, "multiplier": 3}  # detection 150 ms
INTERFACE = "l2test0"
CLUSTER = [ip_address(f"10.102.10.{i}") for i in range(224, 254)]
LOCAL = ip_address("10.102.10.254")  # Local policy, endpoint on ncn-w002 only
BGP = ip_address("10.92.100.7")


class FakeResponder:
    """Records every address set it is given (a real one announces the new ones)."""

    def __init__(self, interface: str, mac: MacAddress) -> None:
        self.interface = interface
        self.mac = mac
        self.counters = L2Counters()
        self.history: list[frozenset[Address]] = []
        self.announced: list[frozenset[Address]] = []  # announce() again (a peer came back)
        self.closed = False
        self._addresses: frozenset[Address] = frozenset()

    @property
    def addresses(self) -> frozenset[Address]:
        return self._addresses

    def set_addresses(self, addresses: Iterable[Address]) -> None:
        assert not self.closed
        self._addresses = frozenset(addresses)
        self.history.append(self._addresses)

    def announce(self, addresses: Iterable[Address] | None = None) -> None:
        chosen = self._addresses if addresses is None else frozenset(addresses) & self._addresses
        self.announced.append(chosen)

    def close(self) -> None:
        self.closed = True
        self._addresses = frozenset()


def speaker_config(node: str, port: int) -> dict[str, Any]:
    index = NODES.index(node) + 1
    return {
        "node_name": node, "router_id": f"10.252.1.{index}", "local_asn": 65531,
        "api": {"listen": None},
        "peers": [{"name": "spine", "address": SPINE, "asn": 65533, "port": port,
                   "source_address": SEGMENT[node], "hold_time": 3}],
        "pools": [
            {"name": "lab-l2", "addresses": ["10.102.10.224/27"], "mode": "layer2",
             "interfaces": [INTERFACE]},
            {"name": "lab-bgp", "addresses": ["10.92.100.0/24"]},
        ],
        "layer2": {"source_address": SEGMENT[node], "bfd": BFD,
                   "peers": [{"node": other, "address": SEGMENT[other]}
                             for other in NODES if other != node]},
    }


def spine_config(port: int) -> dict[str, Any]:
    return {
        "node_name": "sw-spine-001", "router_id": "10.2.0.2", "local_asn": 65533,
        "api": {"listen": None}, "listen": {"address": SPINE, "port": port},
        "peers": [{"name": node, "address": SEGMENT[node], "asn": 65531, "passive": True,
                   "source_address": SPINE, "hold_time": 3} for node in NODES],
    }


def decisions() -> dict[Address, Decision | None]:
    """What every node's source decides (``announce`` as on ncn-w001; the speaker uses nodes)."""
    found: dict[Address, Decision | None] = {
        a: Decision(a, (f"services/l2-{a}",), "lab-l2", True, "Cluster policy, node Ready",
                    mode="layer2", nodes=None)
        for a in CLUSTER
    }
    found[LOCAL] = Decision(LOCAL, ("services/local",), "lab-l2", False,
                            "Local policy: no ready endpoint", mode="layer2",
                            nodes=frozenset({"ncn-w002"}))
    found[BGP] = Decision(BGP, ("services/bgp",), "lab-bgp", True, "Cluster policy, node Ready")
    return found


class Segment:
    """The three speakers, their fake responders and the spine."""

    def __init__(self) -> None:
        port = free_port()
        self.spine = Spine(parse_config(spine_config(port)))
        self.responders: dict[str, FakeResponder] = {}
        self.speakers = {node: Speaker(parse_config(speaker_config(node, port)),
                                       responder_factory=self._factory(node)) for node in NODES}

    def _factory(self, node: str) -> Any:
        def factory(interface: str) -> FakeResponder:
            mac = MacAddress(bytes([2, 0, 0, 0, 8, NODES.index(node) + 1]))
            responder = self.responders[node] = FakeResponder(interface, mac)
            return responder
        return factory

    async def start(self) -> None:
        await self.spine.start()
        for speaker in self.speakers.values():
            await speaker.start()
            speaker.service_decisions(decisions(), True)

    async def stop(self) -> None:
        for speaker in self.speakers.values():
            await speaker.shutdown("test over")
        await self.spine.shutdown("test over")

    def answered(self, node: str) -> frozenset[Address]:
        return self.responders[node].addresses

    def converged(self, nodes: Iterable[str] = NODES) -> bool:
        """The given nodes agree on the owners, and each answers exactly what it owns."""
        nodes = list(nodes)
        views = [self.speakers[n].layer2.assignment.owners for n in nodes]
        owners = views[0]
        return (all(view == owners for view in views)
                and set(owners) == {*CLUSTER, LOCAL}
                and all(self.answered(n) == {a for a, o in owners.items() if o == n}
                        for n in nodes))

    def live(self, node: str) -> set[str]:
        return self.speakers[node].layer2.live_peers()


async def meshed() -> Segment:
    segment = Segment()
    await segment.start()
    await wait_for(lambda: all(len(segment.live(n)) == 2 for n in NODES), timeout=10)
    await wait_for(segment.converged)
    return segment


def test_three_speakers_agree_spread_and_fail_over_within_detection_time() -> None:
    async def scenario() -> None:
        segment = await meshed()
        try:
            a, _b, c = (segment.speakers[n] for n in NODES)
            before = dict(a.layer2.assignment.owners)
            mine = {n: segment.answered(n) for n in NODES}
            assert all(len(mine[n]) >= 3 for n in NODES), {n: len(m) for n, m in mine.items()}
            assert before[LOCAL] == "ncn-w002"  # Local: only the endpoint's node
            assert sum(len(m) for m in mine.values()) == len(CLUSTER) + 1

            # ncn-w003's BFD goes silent (a dead speaker: no AdminDown)
            assert c.bfd is not None
            c.bfd.close(admin_down=False)
            c.bfd = None
            lost = time.monotonic()
            others = ("ncn-w001", "ncn-w002")
            await wait_for(lambda: not (mine["ncn-w003"] - segment.answered("ncn-w001")
                                        - segment.answered("ncn-w002")), timeout=5)
            took = time.monotonic() - lost
            print(f"ncn-w003's {len(mine['ncn-w003'])} addresses taken over "
                  f"{took * 1000:.0f} ms after its BFD went silent")
            assert took < 1.5
            await wait_for(lambda: segment.converged(others))
            moved = {x for x, o in a.layer2.assignment.owners.items() if o != before[x]}
            assert moved == mine["ncn-w003"]  # only its addresses moved
            for node in others:
                assert mine[node] <= segment.answered(node)

            # it comes back: exactly its addresses return to it
            c.layer2.update()  # its sessions start again on a new transport
            await wait_for(lambda: all(len(segment.live(n)) == 2 for n in NODES), timeout=10)
            await wait_for(segment.converged)
            assert a.layer2.assignment.owners == before
            for node in others:  # never lost one of its own on the way
                assert all(mine[node] <= seen for seen in segment.responders[node].history[1:])
            assert c.status()["layer2"]["takeovers"] == len(mine["ncn-w003"])
            # it never stopped answering its own in its view (it saw nobody): once its peers are
            # Up again it announces them anew, or clients would stay with the others' MACs
            announced = segment.responders["ncn-w003"].announced
            assert announced and announced[-1] == mine["ncn-w003"]
        finally:
            await segment.stop()
        assert all(r.closed for r in segment.responders.values())

    asyncio.run(scenario())


def test_a_node_not_eligible_says_admin_down_and_the_others_take_over() -> None:
    async def scenario() -> None:
        segment = await meshed()
        try:
            a, b, _c = (segment.speakers[n] for n in NODES)
            before = dict(a.layer2.assignment.owners)
            mine = segment.answered("ncn-w002")
            b.set_node_eligible(False)
            assert segment.answered("ncn-w002") == frozenset()  # at once, on its own
            others = ("ncn-w001", "ncn-w003")
            await wait_for(lambda: all("ncn-w002" not in segment.live(n) for n in others),
                           timeout=2)
            status = b.status()["layer2"]
            assert status["eligible"] is False and status["owned"] == 0
            assert {p["bfd"] for p in status["peers"]} == {"AdminDown"}
            peer = next(p for p in a.status()["layer2"]["peers"] if p["node"] == "ncn-w002")
            assert peer == {"node": "ncn-w002", "address": SEGMENT["ncn-w002"],
                            "bfd": "Down", "live": False}
            await wait_for(lambda: segment.converged(others))
            after = a.layer2.assignment.owners
            assert {x for x in after if after[x] != before[x]} == mine
            assert after[LOCAL] is None  # its endpoint's node is out: nobody answers

            b.set_node_eligible(True)
            await wait_for(lambda: all(len(segment.live(n)) == 2 for n in NODES), timeout=10)
            await wait_for(segment.converged)
            assert a.layer2.assignment.owners == before
        finally:
            await segment.stop()

    asyncio.run(scenario())


def test_layer2_addresses_never_reach_bgp_and_status_shows_who_answers() -> None:
    async def scenario() -> None:
        segment = await meshed()
        try:
            spine = segment.spine
            bgp = ip_network(f"{BGP}/32")
            await wait_for(lambda: all(
                s.sessions["spine"].state is State.ESTABLISHED for s in segment.speakers.values()))
            await wait_for(lambda: bgp in spine.routes)
            assert set(spine.routes) == {bgp}
            for speaker in segment.speakers.values():
                rib = speaker.sessions["spine"].rib
                assert rib is not None and rib.advertised_prefixes() == [bgp]
                assert len(speaker.table.dynamic) == 1

            a = segment.speakers["ncn-w001"]
            status = a.status()
            layer2 = status["layer2"]
            assert layer2["eligible"] is True and layer2["source_address"] == SEGMENT["ncn-w001"]
            assert layer2["live"] == list(NODES)
            entries = {e["address"]: e for e in layer2["addresses"]}
            assert len(entries) == len(CLUSTER) + 1
            for address, owner in a.layer2.assignment.owners.items():
                entry = entries[str(address)]
                here = owner == "ncn-w001"
                assert entry == {"address": str(address), "pool": "lab-l2", "owner": owner,
                                 "answered_here": here,
                                 "mac": "02:00:00:00:08:01" if here else None,
                                 "interfaces": [INTERFACE] if here else []}
            assert {p["node"]: p["bfd"] for p in layer2["peers"]} == {
                "ncn-w002": "Up", "ncn-w003": "Up"}
            assert layer2["interfaces"][0]["interface"] == INTERFACE
            assert layer2["owned"] == layer2["takeovers"] == len(segment.answered("ncn-w001"))
            services = {e["address"]: e for e in status["services"]}
            assert not services[str(LOCAL)]["announced"]
            assert "layer2: answered by ncn-w002" in services[str(LOCAL)]["reason"]

            a.layer2.responders[INTERFACE].counters.arp_answered = 4
            text = a.render_metrics().decode()
            owned = len(segment.answered("ncn-w001"))
            assert f"spinelb_layer2_owned {owned}.0" in text
            assert f"spinelb_layer2_takeovers_total {owned}.0" in text
            assert f'spinelb_layer2_requests_answered_total{{interface="{INTERFACE}"}} 4.0' in text
            assert 'spinelb_layer2_peer_live{node="ncn-w002"} 1.0' in text
        finally:
            await segment.stop()

    asyncio.run(scenario())


def test_a_starting_speaker_holds_until_its_peers_are_up_or_the_hold_ends() -> None:
    """Alone at start (its peers silent), it takes nothing until the hold ends; then all.

    Without the hold a starting speaker would own, and announce, every address for the
    moment before its BFD sessions come Up, pulling the clients away from the owners.
    """
    async def scenario() -> None:
        config = {**speaker_config("ncn-w001", 179), "peers": []}
        speaker = Speaker(parse_config(config),
                          responder_factory=lambda i: FakeResponder(i, MacAddress(bytes(6))))
        speaker.layer2.hold = 0.3
        await speaker.start()
        try:
            speaker.service_decisions(decisions(), True)
            responder = speaker.layer2.responders[INTERFACE]
            layer2 = speaker.status()["layer2"]
            assert layer2["holding"] and layer2["owned"] == 0
            assert responder.addresses == frozenset()
            await wait_for(lambda: responder.addresses == frozenset(CLUSTER), timeout=5)
            assert not speaker.status()["layer2"]["holding"]
        finally:
            await speaker.shutdown("test over")
        assert responder.closed

    asyncio.run(scenario())


def test_reload_moves_the_pool_to_other_interfaces_and_ends_the_mesh() -> None:
    async def scenario() -> None:
        config = {**speaker_config("ncn-w001", 179), "peers": []}
        config["layer2"] = {**config["layer2"], "peers": []}  # one speaker: no hold
        speaker = Speaker(parse_config(config),
                          responder_factory=lambda i: FakeResponder(i, MacAddress(bytes(6))))
        await speaker.start()
        try:
            speaker.service_decisions(decisions(), True)
            responder = speaker.layer2.responders[INTERFACE]
            assert responder.addresses == frozenset(CLUSTER)  # alone: every Cluster address
            config["pools"][0]["interfaces"] = ["l2test1"]
            await speaker.apply(parse_config(config))
            speaker.service_decisions(decisions(), True)  # no source: decisions are fed again
            assert responder.closed and set(speaker.layer2.responders) == {"l2test1"}
            assert speaker.layer2.responders["l2test1"].addresses == frozenset(CLUSTER)

            # the pool becomes bgp and the layer2 section goes: no responder, no BFD
            del config["layer2"]
            config["pools"][0] = {"name": "lab-l2", "addresses": ["10.102.10.224/27"]}
            await speaker.apply(parse_config(config))
            assert speaker.layer2.responders == {} and speaker.status()["layer2"] is None
            assert speaker.bfd is None or not speaker.bfd.sessions
        finally:
            await speaker.shutdown("test over")

    asyncio.run(scenario())


def test_a_responder_that_cannot_open_is_reported_not_fatal() -> None:
    async def scenario() -> None:
        def refuse(interface: str) -> FakeResponder:
            raise PermissionError(1, "Operation not permitted")

        config = {**speaker_config("ncn-w001", 179), "peers": []}
        config["layer2"] = {**config["layer2"], "peers": []}
        speaker = Speaker(parse_config(config), responder_factory=refuse)
        await speaker.start()
        try:
            speaker.service_decisions(decisions(), True)
            layer2 = speaker.status()["layer2"]
            assert layer2["owned"] == len(CLUSTER)  # it owns them; nothing answers here
            assert layer2["interfaces"] == [{
                "interface": INTERFACE, "mac": None, "error": "Operation not permitted",
                "addresses": 0, "received": 0, "requests_answered": 0,
                "announcements_sent": 0, "send_errors": 0}]
            assert not any(e["answered_here"] for e in layer2["addresses"])
        finally:
            await speaker.shutdown("test over")

    asyncio.run(scenario())


class SourceStub:
    """What the speaker reads of its Kubernetes source to judge its own node."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.synced = False
        self.nodes: dict[str, NodeInfo] = {}


def test_with_kubernetes_eligibility_is_the_node_status_once_synced(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")  # never read: the source is a stub

    async def scenario() -> None:
        config = {**speaker_config("ncn-w001", 179), "peers": [],
                  "kubernetes": {"kubeconfig": str(kubeconfig)}}
        speaker = Speaker(parse_config(config),
                          responder_factory=lambda i: FakeResponder(i, MacAddress(bytes(6))))
        source = SourceStub("ncn-w001")
        speaker.source = source  # type: ignore[assignment]
        try:
            speaker.layer2.update()  # not synced: not eligible, no BFD, nothing answered
            assert not speaker.layer2.eligible and not speaker.layer2.peers
            source.synced = True
            source.nodes["ncn-w001"] = NodeInfo("ncn-w001", ready=True, excluded=False)
            speaker.layer2.update()
            assert speaker.layer2.eligible and len(speaker.layer2.peers) == 2
            source.nodes["ncn-w001"] = NodeInfo("ncn-w001", ready=True, excluded=True)
            speaker.layer2.update()  # excluded: its sessions go (AdminDown)
            assert not speaker.layer2.eligible and not speaker.layer2.peers
            assert speaker.bfd is not None and not speaker.bfd.sessions
        finally:
            speaker.source = None
            await speaker.shutdown("test over")

    asyncio.run(scenario())
