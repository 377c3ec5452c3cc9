"""The lab's peer runners and the topology fixture, exercised with FRR bgpd as the speaker.

These prove the fixtures other interop tests build on: a topology comes up,
FRR/BIRD/GoBGP/ExaBGP start in it, their parsed views show what was sent, and
teardown leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lab import exabgp as exabgp_lab
from lab import gobgp
from lab.netns import Namespace, wait_for
from lab.topology import SPINE_ASN, Topology

pytestmark = pytest.mark.interop

V4 = ["10.92.100.71/32", "10.92.100.72/32"]
V6 = ["fd00:92::71/128"]


def test_frr_spine_installs_three_way_ecmp(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=3)
    spine = topo.start_frr_spine(topo.frr_spine_config([65531, 65531, 65531]))
    for i in range(3):
        topo.start_frr_speaker(i, 65531, V4)
    spine.wait_established(set(topo.workers_v4))

    route = wait_for(
        lambda: (r := topo.spine.route("10.92.100.71/32")) and len(r.nexthops) == 3 and r,
        timeout=15, what="3-way ECMP route",
    )
    assert route.gateways == set(topo.workers_v4)
    assert route.protocol == "bgp"
    paths = spine.bgp_paths("10.92.100.71/32")
    assert sum(1 for p in paths if p.get("multipath")) == 3


def test_frr_spine_ipv6_ecmp(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=2)
    spine = topo.start_frr_spine(topo.frr_spine_config(ipv6=True))
    for i in range(2):
        topo.start_frr_speaker(i, 65531, V6, ipv6=True)
    wait_for(lambda: set(topo.workers_v6) <= spine.established(ipv6=True), timeout=15,
             what="IPv6 sessions")
    route = wait_for(
        lambda: (r := topo.spine.route(V6[0])) and len(r.nexthops) == 2 and r,
        timeout=15, what="2-way IPv6 ECMP route",
    )
    assert route.protocol == "bgp"


def test_bird_receives_routes_with_attributes(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=1)
    config = f"""
router id {topo.spine_v4};
protocol device {{ }}
protocol kernel {{ ipv4 {{ export all; }}; merge paths on; }}
protocol bgp w1 {{
    local {topo.spine_v4} as {SPINE_ASN};
    neighbor {topo.worker_v4(0)} as 65531;
    passive on;
    hold time 3;
    ipv4 {{ import all; export none; }};
}}
"""
    router = topo.start_bird(config)
    topo.start_frr_speaker(0, 65531, V4)
    wait_for(lambda: router.protocols().get("w1") == "Established", timeout=20,
             what="BIRD session")
    routes = wait_for(lambda: router.routes_for(V4[0]), timeout=10, what="route in BIRD")
    assert routes[0].as_path == [65531]
    assert routes[0].next_hops == [topo.worker_v4(0)]
    assert routes[0].attributes["BGP.origin"] == "IGP"


def test_gobgp_receives_routes(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=1)
    config = gobgp.render_config(
        asn=SPINE_ASN, router_id=topo.spine_v4,
        neighbors=[{"address": topo.worker_v4(0), "asn": 65531, "passive": True}],
    )
    router = topo.start_gobgp(config)
    topo.start_frr_speaker(0, 65531, V4)
    wait_for(lambda: router.neighbors().get(topo.worker_v4(0)) == "established", timeout=20,
             what="GoBGP session")
    rib = wait_for(lambda: (r := router.rib()) and set(V4) <= set(r) and r, timeout=10,
                   what="routes in GoBGP")
    assert set(V4) <= set(rib)


def test_exabgp_logs_received_updates(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=1)
    receiver_config = exabgp_lab.render_config(
        local_address=topo.spine_v4, local_as=SPINE_ASN, router_id=topo.spine_v4,
        neighbors=[{"address": topo.worker_v4(0), "asn": 65531}],
        received_file=topo.run_dir / f"exabgp-{topo.spine.name}.jsonl",
    )
    receiver = topo.start_exabgp(receiver_config)
    speaker = topo.start_frr_speaker(0, 65531, V4)
    table = wait_for(lambda: (t := receiver.announced()) and set(V4) <= set(t) and t,
                     timeout=20, what="routes at ExaBGP")
    assert table[V4[0]]["next_hop"] == topo.worker_v4(0)
    assert exabgp_lab.as_path(table[V4[0]]["attributes"]) == [65531]
    speaker.stop()
    wait_for(lambda: "down" in receiver.states(), timeout=10, what="session down at ExaBGP")


def test_teardown_leaves_nothing(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=1)
    topo.start_frr_spine(topo.frr_spine_config())
    names = [topo.fabric.name, topo.spine.name, topo.workers[0].name]
    topo.close()
    assert not any(Namespace(name).exists() for name in names)
