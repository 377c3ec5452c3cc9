"""spinelb speakers against a real FRR spine: sessions, ECMP in the spine's kernel, MD5, 4-octet AS,
communities, and withdrawal on SIGTERM."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from lab.frr import FrrRouter
from lab.netns import wait_for
from lab.topology import SpeakerHandle, Topology

pytestmark = pytest.mark.interop

SERVICE = "10.92.100.71/32"
SERVICE6 = "fd00:92::71/128"


def start_three(
    topo: Topology, spine_extra: str = "", *, asns: list[int] | None = None, **peer: Any
) -> tuple[FrrRouter, list[SpeakerHandle]]:
    asns = asns or [65531, 65531, 65531]
    spine = topo.start_frr_spine(topo.frr_spine_config(asns, extra_bgp=spine_extra))
    speakers = []
    for i, asn in enumerate(asns):
        config = topo.speaker_config(i, local_asn=asn, announce=[SERVICE], **peer)
        speakers.append(topo.start_speaker(i, config))
    return spine, speakers


def ecmp_route(topo: Topology, prefix: str, ways: int) -> Any:
    return wait_for(
        lambda: (r := topo.spine.route(prefix)) and len(r.nexthops) == ways and r,
        timeout=20, what=f"{ways}-way ECMP route for {prefix} in the spine's kernel",
    )


def test_three_speakers_ipv4_and_ipv6_are_three_way_ecmp_in_the_spine_kernel(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(workers=3)
    spine = topo.start_frr_spine(topo.frr_spine_config())
    for i in range(3):
        config = topo.speaker_config(i, families=["ipv4-unicast", "ipv6-unicast"])
        config["announce"] = [
            {"prefix": SERVICE},
            {"prefix": SERVICE6, "next_hop": topo.worker_v6(i)},
        ]
        topo.start_speaker(i, config)
    spine.wait_established(set(topo.workers_v4))

    v4 = ecmp_route(topo, SERVICE, 3)
    assert v4.gateways == set(topo.workers_v4)
    assert v4.protocol == "bgp"
    v6 = ecmp_route(topo, SERVICE6, 3)
    assert v6.gateways == set(topo.workers_v6)
    paths = spine.bgp_paths(SERVICE)
    assert sum(1 for p in paths if p.get("multipath")) == 3


def test_md5_right_establishes_and_wrong_never_does(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=2)
    w_right, w_wrong = topo.workers_v4
    spine = topo.start_frr_spine(topo.frr_spine_config(
        [65531, 65531],
        extra_bgp=f" neighbor {w_right} password s3cret-md5\n neighbor {w_wrong} password s3cret-md5",
    ))
    right = topo.start_speaker(0, topo.speaker_config(0, announce=[SERVICE], password="s3cret-md5",
                                                      connect_retry=1))
    wrong = topo.start_speaker(1, topo.speaker_config(1, announce=[SERVICE], password="not-it",
                                                      connect_retry=1))
    spine.wait_established({w_right})
    ecmp_route(topo, SERVICE, 1)
    # A wrongly signed SYN is dropped by the spine's kernel: give the speaker several
    # connect-retry rounds (1 s each), then it must still not be up on either side.
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        assert w_wrong not in spine.established()
        assert wrong.status()["peers"][0]["state"] != "Established"
        time.sleep(0.5)
    assert right.status()["peers"][0]["state"] == "Established"
    assert "not-it" not in wrong.log() and "s3cret-md5" not in right.log()


def test_four_octet_as_reaches_frr(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=1)
    spine = topo.start_frr_spine(topo.frr_spine_config([4200000001]))
    topo.start_speaker(0, topo.speaker_config(0, local_asn=4200000001, announce=[SERVICE]))
    spine.wait_established(set(topo.workers_v4))
    paths = wait_for(lambda: spine.bgp_paths(SERVICE), timeout=15, what="path in FRR")
    assert paths[0]["aspath"]["string"] == "4200000001"


def test_communities_and_large_communities_are_visible_in_frr_json(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(workers=1)
    spine = topo.start_frr_spine(topo.frr_spine_config())
    config = topo.speaker_config(0)
    config["announce"] = [{
        "prefix": SERVICE,
        "communities": ["65533:100", "no-export"],
        "large_communities": ["65533:1:1"],
        "med": 7,
    }]
    topo.start_speaker(0, config)
    spine.wait_established(set(topo.workers_v4))
    paths = wait_for(lambda: spine.bgp_paths(SERVICE), timeout=15, what="path in FRR")
    path = paths[0]
    assert path["community"]["string"] == "65533:100 no-export"
    assert path["largeCommunity"]["string"] == "65533:1:1"
    assert path["metric"] == 7
    assert path["aspath"]["string"] == "65531"
    assert path["nexthops"][0]["ip"] == topo.worker_v4(0)


def test_sigterm_removes_the_next_hop_from_the_spine_kernel_within_a_second(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(workers=3)
    spine, speakers = start_three(topo)
    spine.wait_established(set(topo.workers_v4))
    ecmp_route(topo, SERVICE, 3)

    started = time.monotonic()
    speakers[0].signal(15)
    route = wait_for(
        lambda: (r := topo.spine.route(SERVICE)) and len(r.nexthops) == 2 and r,
        timeout=1.0, interval=0.01, what="worker 1's next hop gone within 1 s of SIGTERM",
    )
    elapsed = time.monotonic() - started
    assert topo.worker_v4(0) not in route.gateways
    assert speakers[0].process.wait(timeout=5) == 0
    neighbor = spine.json(f"show bgp neighbors {topo.worker_v4(0)} json")[topo.worker_v4(0)]
    assert "spinelb speaker stopping" in str(neighbor), neighbor.get("lastNotificationReason")
    print(f"next hop removed {elapsed * 1000:.0f} ms after SIGTERM")


def test_status_api_reports_established_sessions_and_counts(
    topology: Callable[..., Topology],
) -> None:
    topo = topology(workers=1)
    spine = topo.start_frr_spine(topo.frr_spine_config())
    speaker = topo.start_speaker(0, topo.speaker_config(0, announce=[SERVICE, "10.92.100.72/32"]))
    spine.wait_established(set(topo.workers_v4))
    status = wait_for(
        lambda: (s := speaker.status())["peers"][0]["advertised"] == 2 and s,
        timeout=10, what="status shows 2 advertised",
    )
    peer = status["peers"][0]
    assert peer["state"] == "Established" and peer["uptime_seconds"] >= 0
    assert {a["prefix"] for a in status["announced"]} == {SERVICE, "10.92.100.72/32"}
    metrics = speaker.api_get("/metrics")
    assert 'spinelb_session_up{peer="spine"} 1.0' in metrics
    assert 'spinelb_prefixes_advertised{peer="spine"} 2.0' in metrics


def test_route_refresh_from_the_spine_gets_the_table_again(topology: Callable[..., Topology]) -> None:
    topo = topology(workers=1)
    spine = topo.start_frr_spine(topo.frr_spine_config())
    prefixes = [f"10.92.101.{i}/32" for i in range(1, 41)]
    topo.start_speaker(0, topo.speaker_config(0, announce=prefixes))
    address = topo.worker_v4(0)
    spine.wait_established({address})

    def updates_received() -> int:
        stats = spine.json(f"show bgp neighbors {address} json")[address]["messageStats"]
        return int(stats["updatesRecv"])

    first = wait_for(lambda: (n := updates_received()) >= 2 and n, timeout=10,
                     what="the table and End-of-RIB at the spine")
    spine.vtysh(f"clear bgp ipv4 unicast {address} soft in")  # sends ROUTE-REFRESH (RFC 2918)
    # The whole table (one UPDATE for 40 /32s) and End-of-RIB come again; the session stays.
    wait_for(lambda: updates_received() >= first + 2, timeout=10, what="the table resent")
    neighbor = spine.json(f"show bgp neighbors {address} json")[address]
    assert neighbor["bgpState"] == "Established"
    assert neighbor["messageStats"]["routeRefreshSent"] >= 1
    assert neighbor["messageStats"]["notificationsRecv"] == 0
    assert len(spine.bgp_paths(prefixes[-1])) == 1
