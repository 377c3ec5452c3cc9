"""The speaker's Kubernetes source end to end: the lab's API server, a speaker, a BGP receiver.

The announcing speaker (node ncn-w001) watches the emulator (lab/apiserver.py)
and talks BGP over loopback to a second speaker acting as the spine, which
records every UPDATE it receives.  "Not announced" is never checked by waiting
for nothing: a barrier Service is created after the change, and once the
barrier's prefix has arrived, every UPDATE sent before it has arrived too
(one TCP stream, in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml
from waiting import wait_for

from lab.apiserver import (
    LAB_TOKEN,
    ApiServerProcess,
    LabApiServer,
    free_port,
    node_objects,
    running_apiserver,
)
from spinelb.bgp import wire
from spinelb.bgp.fsm import State
from spinelb.bgp.wire import Prefix
from spinelb.config import KubernetesConfig, PoolConfig, parse_config
from spinelb.k8s.objects import EXCLUDE_LABEL
from spinelb.speaker import k8s_source
from spinelb.speaker.speaker import Speaker
from spinelb.status import print_status

NODE = "ncn-w001"
STATIC = ip_network("10.92.0.1/32")
RESOURCES = ("services", "endpointslices", "nodes")
WORKERS = {"ncn-w001": "10.252.1.10", "ncn-w002": "10.252.1.11"}


def host(address: str) -> IPv4Network:
    return IPv4Network(f"{address}/32")


def lb_service(
    name: str, address: str | None = None, *, local: bool = False, namespace: str = "services",
    sharing: str | None = None, port: int = 80,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "LoadBalancer",
            "ports": [{"port": port, "protocol": "TCP", "targetPort": port}],
            "selector": {"app": name},
            "externalTrafficPolicy": "Local" if local else "Cluster",
        },
    }
    if sharing is not None:
        obj["metadata"]["annotations"] = {"metallb.universe.tf/allow-shared-ip": sharing}
    if address is not None:
        obj["status"] = {"loadBalancer": {"ingress": [{"ip": address}]}}
    return obj


def endpoint_slice(service: str, *ready_on: str, namespace: str = "services",
                   suffix: str = "abcde") -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": f"{service}-{suffix}", "namespace": namespace,
                     "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [f"10.40.0.{i + 10}"], "conditions": {"ready": True}, "nodeName": node}
            for i, node in enumerate(ready_on)
        ],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
    }


class Spine(Speaker):
    """The receiving speaker: records every announce and withdraw it gets, and the routes.

    The speaker's own Adj-RIB-In would treat the routes as withdrawn: their next
    hop "self" is the session's loopback address, a martian (RFC 7606).  So the
    spine keeps its own table of what the UPDATEs say, with the attributes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[str, Prefix]] = []
        self.routes: dict[Prefix, tuple[wire.PathAttribute, ...]] = {}

    def message_received(self, peer: str, msg: wire.Message) -> None:
        super().message_received(peer, msg)
        if isinstance(msg, wire.Update):
            self.log += [("withdraw", p) for p in msg.withdrawn]
            self.log += [("announce", p) for p in msg.nlri]
            for prefix in msg.withdrawn:
                self.routes.pop(prefix, None)
            for prefix in msg.nlri:
                self.routes[prefix] = msg.attributes

    def state_changed(self, peer: str, old: State, new: State) -> None:
        super().state_changed(peer, old, new)
        if new is not State.ESTABLISHED:
            self.routes.clear()


@dataclass
class Lab:
    """An emulator (in process, or None when it runs as a process), the speaker, the spine."""

    emulator: LabApiServer | None
    speaker: Speaker
    spine: Spine
    barriers: itertools.count[int] = field(default_factory=lambda: itertools.count(180))

    @property
    def received(self) -> set[Prefix]:
        return set(self.spine.routes)

    @property
    def api(self) -> LabApiServer:
        assert self.emulator is not None
        return self.emulator

    async def arrives(self, address: str) -> None:
        await wait_for(lambda: host(address) in self.received)

    async def leaves(self, address: str) -> None:
        await wait_for(lambda: host(address) not in self.received)

    async def barrier(self) -> None:
        """Return once every UPDATE the speaker sent before now has reached the spine."""
        address = f"10.102.10.{next(self.barriers)}"
        self.api.create_object(lb_service(f"barrier-{address.rsplit('.', 1)[1]}", address))
        await self.arrives(address)

    async def absent(self, address: str) -> None:
        await self.barrier()
        assert host(address) not in self.received

    def entry(self, address: str) -> dict[str, Any]:
        for item in self.speaker.status()["services"]:
            if item["address"] == address:
                return dict(item)
        raise KeyError(address)

    def requests(self, verb: str) -> list[int]:
        """How many ``verb`` requests the API server has served for each watched resource."""
        return [self.api.counts[verb, plural] for plural in RESOURCES]

    def withdrawals(self) -> list[Prefix]:
        return [prefix for kind, prefix in self.spine.log if kind == "withdraw"]

    def patch_node(self, name: str, patch: dict[str, Any]) -> None:
        self.api.patch_object("nodes", None, name, patch)


def configs(port: int, kubeconfig: Path, **pool: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    announcer = {
        "node_name": NODE,
        "router_id": "10.252.1.10",
        "local_asn": 65531,
        "api": {"listen": None},
        "peers": [{"name": "spine", "address": "127.0.0.1", "asn": 65533, "port": port,
                   "source_address": "127.0.0.2", "hold_time": 3}],
        "announce": [{"prefix": str(STATIC), "next_hop": "10.252.1.10"}],
        "kubernetes": {"kubeconfig": str(kubeconfig)},
        "pools": [{"name": "customer-access", "addresses": ["10.102.10.128/26"],
                   "communities": ["65533:100"], **pool}],
    }
    spine = {
        "node_name": "sw-spine-001",
        "router_id": "10.2.0.2",
        "local_asn": 65533,
        "api": {"listen": None},
        "listen": {"address": "127.0.0.1", "port": port},
        "peers": [{"name": "w001", "address": "127.0.0.2", "asn": 65531, "passive": True,
                   "hold_time": 3}],
    }
    return announcer, spine


@contextlib.asynccontextmanager
async def speakers(
    kubeconfig: Path, emulator: LabApiServer | None, **changes: Any
) -> AsyncIterator[Lab]:
    a_conf, s_conf = configs(free_port(), kubeconfig)
    a_conf.update(changes)
    spine = Spine(parse_config(s_conf))
    speaker = Speaker(parse_config(a_conf))
    await spine.start()
    await speaker.start()
    try:
        lab = Lab(emulator, speaker, spine)
        await wait_for(lambda: STATIC in lab.received)
        assert speaker.source is not None
        await wait_for(lambda: speaker.status()["kubernetes"]["synced"])
        yield lab
    finally:
        await speaker.shutdown("test over")
        await spine.shutdown("test over")


@contextlib.asynccontextmanager
async def lab(*objects: dict[str, Any], **changes: Any) -> AsyncIterator[Lab]:
    seed = [*node_objects(WORKERS), *objects]
    async with running_apiserver(seed) as api, speakers(api.kubeconfig, api.emulator,
                                                        **changes) as running:
        yield running


def test_cluster_service_is_announced_then_withdrawn_when_deleted() -> None:
    async def scenario() -> None:
        async with lab() as t:
            t.api.create_object(lb_service("cray-s3", "10.102.10.129"))
            await t.arrives("10.102.10.129")
            assert wire.Communities((65533 << 16 | 100,)) in t.spine.routes[host("10.102.10.129")]
            session = t.speaker.sessions["spine"]
            table = t.speaker.table.routes_for(t.speaker.config.peer("spine"),
                                               IPv4Address("127.0.0.2"), frozenset({wire.IPV4_UNICAST}))
            assert table[host("10.102.10.129")].next_hop == session.local_address  # self
            assert t.entry("10.102.10.129") == {
                "address": "10.102.10.129", "pool": "customer-access",
                "services": ["services/cray-s3"], "announced": True,
                "reason": "Cluster policy, node Ready", "peers": ["spine"],
            }
            assert t.speaker.status()["kubernetes"] == {
                "connected": True, "last_error": None, "synced": True
            }
            metrics = t.speaker.render_metrics().decode()
            assert "spinelb_kubernetes_connected 1.0" in metrics
            assert "spinelb_service_addresses_announced 1.0" in metrics
            t.api.delete_object("services", "services", "cray-s3")
            await t.leaves("10.102.10.129")
            assert all(item["address"] != "10.102.10.129"
                       for item in t.speaker.status()["services"])
            assert STATIC in t.received

    asyncio.run(scenario())


def test_status_written_later_and_addresses_outside_pools() -> None:
    """A pending Service (no ingress yet) gets its address from the controller: announced then.

    An address in no pool is reported, never announced; a Service of another
    loadBalancerClass is not ours at all.
    """

    async def scenario() -> None:
        async with lab(lb_service("pending")) as t:
            t.api.patch_object("services", "services", "pending",
                               {"status": {"loadBalancer": {"ingress": [{"ip": "10.102.10.140"}]}}})
            await t.arrives("10.102.10.140")
            t.api.create_object(lb_service("stray", "10.1.2.3"))
            other = lb_service("other-class", "10.102.10.141")
            other["spec"]["loadBalancerClass"] = "example.com/other"
            t.api.create_object(other)
            await t.absent("10.1.2.3")
            assert host("10.102.10.141") not in t.received
            assert t.entry("10.1.2.3") | {"reason": ""} == {
                "address": "10.1.2.3", "pool": None, "services": ["services/stray"],
                "announced": False, "reason": "", "peers": [],
            }
            assert t.entry("10.1.2.3")["reason"] == "10.1.2.3 is in no pool"
            with pytest.raises(KeyError):
                t.entry("10.102.10.141")

    asyncio.run(scenario())


def test_local_policy_follows_the_ready_endpoints_on_this_node() -> None:
    async def scenario() -> None:
        async with lab(lb_service("kea", "10.102.10.150", local=True)) as t:
            await t.absent("10.102.10.150")
            assert t.entry("10.102.10.150")["reason"] == "Local policy: no ready endpoint on ncn-w001"
            t.api.create_object(endpoint_slice("kea", "ncn-w002"))
            await t.absent("10.102.10.150")
            t.api.put_object(endpoint_slice("kea", "ncn-w002", NODE))
            await t.arrives("10.102.10.150")
            assert t.entry("10.102.10.150")["reason"] == "Local policy, ready endpoint on ncn-w001"
            # The endpoint on this node stops being ready: withdrawn.
            not_ready = endpoint_slice("kea", "ncn-w002", NODE)
            not_ready["endpoints"][1]["conditions"]["ready"] = False
            t.api.put_object(not_ready)
            await t.leaves("10.102.10.150")
            # A second slice of the same Service brings one back.
            t.api.create_object(endpoint_slice("kea", NODE, suffix="fghij"))
            await t.arrives("10.102.10.150")
            t.api.delete_object("endpointslices", "services", "kea-fghij")
            await t.leaves("10.102.10.150")
            assert STATIC in t.received

    asyncio.run(scenario())


def test_node_exclusion_readiness_and_existence() -> None:
    async def scenario() -> None:
        async with lab(lb_service("web", "10.102.10.160")) as t:
            await t.arrives("10.102.10.160")
            t.patch_node(NODE, {"metadata": {"labels": {EXCLUDE_LABEL: ""}}})
            await t.leaves("10.102.10.160")
            assert t.entry("10.102.10.160")["reason"] == f"node {NODE} labelled {EXCLUDE_LABEL}"
            t.patch_node(NODE, {"metadata": {"labels": {EXCLUDE_LABEL: None}}})
            await t.arrives("10.102.10.160")

            ready = t.api.get_object("nodes", None, NODE)
            ready["status"]["conditions"][0]["status"] = "False"
            t.api.put_object(ready)
            await t.leaves("10.102.10.160")
            assert t.entry("10.102.10.160")["reason"] == "node not Ready"
            ready["status"]["conditions"][0]["status"] = "True"
            t.api.put_object(ready)
            await t.arrives("10.102.10.160")

            # Another node's changes are not ours.
            t.patch_node("ncn-w002", {"metadata": {"labels": {EXCLUDE_LABEL: ""}}})
            await t.barrier()
            assert host("10.102.10.160") in t.received

            t.api.delete_object("nodes", None, NODE)
            await t.leaves("10.102.10.160")
            assert t.entry("10.102.10.160")["reason"] == "node unknown to the API"
            assert STATIC in t.received

    asyncio.run(scenario())


def test_shared_address_is_announced_while_any_user_qualifies() -> None:
    async def scenario() -> None:
        tcp = lb_service("unbound-tcp", "10.102.10.170", local=True, sharing="unbound", port=53)
        udp = lb_service("unbound-udp", "10.102.10.170", local=True, sharing="unbound", port=54)
        async with lab(tcp, udp, endpoint_slice("unbound-udp", NODE)) as t:
            await t.arrives("10.102.10.170")
            assert t.entry("10.102.10.170")["services"] == [
                "services/unbound-tcp", "services/unbound-udp"
            ]
            t.api.delete_object("endpointslices", "services", "unbound-udp-abcde")
            await t.leaves("10.102.10.170")
            t.api.create_object(endpoint_slice("unbound-tcp", NODE))
            await t.arrives("10.102.10.170")
            t.api.delete_object("services", "services", "unbound-tcp")
            await t.leaves("10.102.10.170")
            assert t.entry("10.102.10.170")["services"] == ["services/unbound-udp"]

    asyncio.run(scenario())


def test_static_entry_wins_and_survives_the_service() -> None:
    async def scenario() -> None:
        async with running_apiserver(node_objects(WORKERS)) as api, speakers(
            api.kubeconfig, api.emulator,
            announce=[{"prefix": "10.102.10.130/32", "next_hop": "10.252.1.10"},
                      {"prefix": str(STATIC), "next_hop": "10.252.1.10"}],
        ) as t:
            await t.arrives("10.102.10.130")
            t.api.create_object(lb_service("dup", "10.102.10.130"))
            await t.barrier()
            entry = t.entry("10.102.10.130")
            assert (entry["announced"], entry["peers"]) == (True, ["spine"])
            assert entry["reason"] == (
                "Cluster policy, node Ready; the static announcement wins on spine"
            )
            t.api.delete_object("services", "services", "dup")
            await t.barrier()
            with pytest.raises(KeyError):
                t.entry("10.102.10.130")
            assert host("10.102.10.130") in t.received
            assert t.withdrawals() == []

    asyncio.run(scenario())


def test_watch_end_and_410_withdraw_nothing() -> None:
    """A watch that ends resumes where it was; one answered 410 Gone lists again.

    Changes made while no watch is open arrive either way, and nothing already
    announced is withdrawn.  The lab's knobs: ``hold_watches`` keeps the
    resumed watches waiting so a change can be made in the gap.
    """

    async def scenario() -> None:
        async with lab(lb_service("web", "10.102.10.131"),
                       lb_service("kea", "10.102.10.132", local=True),
                       endpoint_slice("kea", NODE)) as t:
            await t.arrives("10.102.10.131")
            await t.arrives("10.102.10.132")
            # Every reflector is watching (a served watch is subscribed at once when not held).
            await wait_for(lambda: all(t.requests("watch")))
            lists, watches = t.requests("list"), t.requests("watch")

            # The watches end; while they are away, a Service is created.
            t.api.hold_watches()
            assert t.api.expire_watches() == 3
            await wait_for(lambda: t.requests("watch") == [w + 1 for w in watches])
            t.api.create_object(lb_service("gap", "10.102.10.133"))
            t.api.release_watches()
            await t.arrives("10.102.10.133")  # all three released watches are subscribed by now
            assert t.requests("list") == lists  # resumed, not re-listed

            # Again, but the history is compacted in the gap: 410 Gone, then a list.
            t.api.hold_watches()
            assert t.api.expire_watches() == 3
            await wait_for(lambda: t.requests("watch") == [w + 2 for w in watches])
            t.api.create_object(lb_service("gap-410", "10.102.10.134"))
            t.api.compact()
            t.api.release_watches()
            await t.arrives("10.102.10.134")
            await wait_for(lambda: t.requests("list") == [n + 1 for n in lists])

            t.api.create_object(lb_service("later", "10.102.10.135"))
            await t.arrives("10.102.10.135")
            assert t.withdrawals() == []
            assert {host(f"10.102.10.{i}") for i in range(131, 136)} | {STATIC} == t.received
            assert t.speaker.status()["kubernetes"]["connected"] is True

    asyncio.run(scenario())


def test_api_outage_keeps_routes_and_resync_applies_only_the_difference(tmp_path: Path) -> None:
    def write(name: str, objects: list[dict[str, Any]]) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump_all([*node_objects(WORKERS), *objects]))
        return path

    before = write("before.yaml", [lb_service("keep", "10.102.10.140"),
                                   lb_service("gone", "10.102.10.141"),
                                   lb_service("moved", "10.102.10.142")])
    after = write("after.yaml", [lb_service("keep", "10.102.10.140"),
                                 lb_service("moved", "10.102.10.143"),
                                 lb_service("new", "10.102.10.144")])

    async def scenario() -> None:
        kubeconfig = tmp_path / "kubeconfig"
        server = ApiServerProcess(free_port(), kubeconfig, [before])
        await server.start()
        try:
            async with speakers(kubeconfig, None) as t:
                for address in ("10.102.10.140", "10.102.10.141", "10.102.10.142"):
                    await t.arrives(address)
                await server.stop()
                await wait_for(lambda: not t.speaker.status()["kubernetes"]["connected"])
                assert t.speaker.status()["kubernetes"]["last_error"]
                assert LAB_TOKEN not in json.dumps(t.speaker.status())
                assert "spinelb_kubernetes_connected 0.0" in t.speaker.render_metrics().decode()
                assert {host(f"10.102.10.{i}") for i in (140, 141, 142)} <= t.received
                mark = len(t.spine.log)
                await server.start(loads=[after])
                await t.arrives("10.102.10.144")
                await t.arrives("10.102.10.143")
                await t.leaves("10.102.10.141")
                await t.leaves("10.102.10.142")
                await wait_for(lambda: t.speaker.status()["kubernetes"]["connected"])
                since = t.spine.log[mark:]
                assert sorted(since) == sorted([
                    ("announce", host("10.102.10.143")), ("announce", host("10.102.10.144")),
                    ("withdraw", host("10.102.10.141")), ("withdraw", host("10.102.10.142")),
                ])
                assert STATIC in t.received
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_reload_applies_pool_changes() -> None:
    """SIGHUP's apply(): new pool attributes are re-sent, an address leaving the pools is withdrawn."""

    async def scenario() -> None:
        async with lab(lb_service("web", "10.102.10.131"),
                       lb_service("edge", "10.102.10.190")) as t:
            await t.arrives("10.102.10.131")
            await t.arrives("10.102.10.190")
            kubernetes = t.speaker.config.kubernetes
            assert kubernetes is not None and kubernetes.kubeconfig is not None
            conf, _ = configs(t.speaker.config.peers[0].port, kubernetes.kubeconfig)
            conf["pools"] = [{"name": "customer-access", "addresses": ["10.102.10.128/27"],
                              "communities": ["65533:200"]}]
            session = t.speaker.sessions["spine"]
            mark = len(t.spine.log)
            await t.speaker.apply(parse_config(conf))
            await t.leaves("10.102.10.190")
            await wait_for(lambda: ("announce", host("10.102.10.131")) in t.spine.log[mark:])
            assert t.speaker.sessions["spine"] is session  # the session stayed up
            assert host("10.102.10.131") in t.received
            assert t.entry("10.102.10.190")["reason"] == "10.102.10.190 is in no pool"
            assert t.speaker.status()["kubernetes"]["synced"] is True
            # The source still follows the API after the reload.
            t.api.delete_object("services", "services", "web")
            await t.leaves("10.102.10.131")

    asyncio.run(scenario())


def test_reload_without_kubernetes_withdraws_the_service_addresses_only() -> None:
    async def scenario() -> None:
        async with lab(lb_service("web", "10.102.10.131")) as t:
            await t.arrives("10.102.10.131")
            conf, _ = configs(t.speaker.config.peers[0].port, Path("/unused"))
            del conf["kubernetes"], conf["pools"]
            await t.speaker.apply(parse_config(conf))
            await t.leaves("10.102.10.131")
            assert t.speaker.status()["kubernetes"] is None
            assert t.speaker.status()["services"] == []
            assert t.received == {STATIC}
            assert t.withdrawals() == [host("10.102.10.131")]

    asyncio.run(scenario())


def test_one_service_change_does_not_walk_a_large_static_table() -> None:
    """With 20,000 static routes, a Service coming and going touches its one prefix only."""

    async def scenario() -> None:
        statics = [{"prefix": f"10.93.{i >> 8}.{i & 255}/32", "next_hop": "10.252.1.10"}
                   for i in range(20_000)]
        statics.append({"prefix": str(STATIC), "next_hop": "10.252.1.10"})
        async with lab(announce=statics) as t:
            await wait_for(lambda: len(t.received) == 20_001)
            walks = 0
            table_routes_for = t.speaker.table.routes_for

            def counting(*args: Any) -> Any:
                nonlocal walks
                walks += 1
                return table_routes_for(*args)

            t.speaker.table.routes_for = counting  # type: ignore[method-assign]
            t.api.create_object(lb_service("web", "10.102.10.131"))
            await t.arrives("10.102.10.131")
            t.api.delete_object("services", "services", "web")
            await t.leaves("10.102.10.131")
            assert walks == 0
            assert len(t.received) == 20_001
            assert t.spine.sessions["w001"].state is State.ESTABLISHED

    asyncio.run(scenario())


def test_status_table_shows_service_addresses() -> None:
    status = {
        "node_name": NODE, "router_id": "10.252.1.10", "version": "0.1.0", "peers": [],
        "announced": [],
        "kubernetes": {"connected": False, "last_error": "connection refused", "synced": True},
        "services": [
            {"address": "10.102.10.129", "pool": "customer-access",
             "services": ["ceph-rgw/cray-s3"], "announced": True,
             "reason": "Cluster policy, node Ready", "peers": ["spine"]},
            {"address": "10.1.2.3", "pool": None, "services": ["default/stray"],
             "announced": False, "reason": "10.1.2.3 is in no pool", "peers": []},
        ],
    }
    out = io.StringIO()
    print_status(status, out)
    text = out.getvalue()
    assert "kubernetes: not connected, synced (last error: connection refused)" in text
    assert "service addresses: 2 (1 announced)" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("ADDRESS"))
    assert header.split() == ["ADDRESS", "POOL", "ANNOUNCED", "REASON", "SERVICES"]
    row = next(line for line in lines if line.startswith("10.102.10.129"))
    assert row.split("  ")[0] == "10.102.10.129"
    assert "customer-access" in row and " yes " in row and row.endswith("ceph-rgw/cray-s3")
    row = next(line for line in lines if line.startswith("10.1.2.3"))
    assert " - " in row and " no " in row and "10.1.2.3 is in no pool" in row


class SyncedOnly:
    """Stands in for a Reflector where only its sync state matters."""

    def __init__(self) -> None:
        self.synced = asyncio.Event()
        self.connected = True
        self.last_error: str | None = None


def test_source_reports_nothing_before_all_three_lists_then_only_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The source on its own, fed as its reflectors feed it (no API server needed).

    Nothing is reported until Services, EndpointSlices and the Node have all
    been listed; then the whole set once; then, per loop turn, only what
    changed, recomputed from only the Services a change touches.
    """
    async def scenario() -> None:
        reports: list[tuple[dict[Any, Any], bool]] = []
        pool = PoolConfig("customer-access",
                          ((IPv4Address("10.102.10.128"), IPv4Address("10.102.10.191")),))
        source = k8s_source.KubernetesSource(
            KubernetesConfig(), NODE, [pool], lambda changed, full: reports.append(
                (dict(changed), full))
        )
        reflectors = [SyncedOnly(), SyncedOnly(), SyncedOnly()]
        source._reflectors = reflectors  # type: ignore[assignment]
        decided: list[set[str]] = []
        real_decide = k8s_source.decide

        def recording(node: str, services: Any, *rest: Any) -> Any:
            services = list(services)
            decided.append({s.key for s in services})
            return real_decide(node, services, *rest)

        monkeypatch.setattr(k8s_source, "decide", recording)
        services = {f"services/web-{i}": lb_service(f"web-{i}", f"10.102.10.{140 + i}")
                    for i in range(10)}
        source._services_changed(services)
        reflectors[0].synced.set()
        source._slices_changed({})
        reflectors[1].synced.set()
        await asyncio.sleep(0)  # one loop turn: the flush runs, and must not report
        assert reports == []
        source._nodes_changed({NODE: node_objects(WORKERS)[0]})
        reflectors[2].synced.set()
        await asyncio.sleep(0)
        assert len(reports) == 1
        changed, full = reports[0]
        assert full is True and len(changed) == 10
        assert all(d.announce for d in changed.values())

        # Three changes in one loop turn: one report, computed from the touched Service only.
        decided.clear()
        moved = lb_service("web-3", "10.102.10.160")
        source._services_changed({"services/web-3": moved})
        source._services_changed({"services/web-3": moved})
        source._slices_changed({"services/web-3-abcde": endpoint_slice("web-3", NODE)})
        await asyncio.sleep(0)
        assert decided == [{"services/web-3"}]
        assert len(reports) == 2
        assert reports[1][1] is False
        assert {str(a): d is not None for a, d in reports[1][0].items()} == {
            "10.102.10.143": False, "10.102.10.160": True
        }

        # This node changing re-decides everything; other nodes' changes nothing.
        source._nodes_changed({"ncn-w002": node_objects(WORKERS)[1]})
        await asyncio.sleep(0)
        assert len(reports) == 2
        excluded = node_objects(WORKERS)[0]
        excluded["metadata"]["labels"][EXCLUDE_LABEL] = "true"
        source._nodes_changed({NODE: excluded})
        await asyncio.sleep(0)
        assert len(reports) == 3 and len(reports[2][0]) == 10
        assert not any(d is not None and d.announce for d in reports[2][0].values())

    asyncio.run(scenario())
