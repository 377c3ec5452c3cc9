"""The lab library's pure parts: parsers, the site model, the config renderers.

No namespaces needed (rendered FRR configs are checked with ``vtysh -C`` when
FRR is installed).
"""

from __future__ import annotations

import shutil
from ipaddress import IPv4Address, IPv4Network

import pytest

from lab import bird, frr, netns
from lab.exabgp import as_path
from lab.site import Site, load_site
from lab.worker import OUTSIDE_PROBE, frr_worker_config, refusal_probes

BIRD_ECMP = """BIRD 2.0.12 ready.
Table master4:
10.92.100.71/32      unicast [w1 16:58:05.097] * (100) [AS65531i]
\tvia 10.200.0.11 on eth0
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65531
\tBGP.next_hop: 10.200.0.11
\tBGP.local_pref: 100
\tBGP.community: (65533,100) (65533,200)
\tBGP.large_community: (65533, 1, 1)
                     unicast [w2 16:58:05.309] (100) [AS65532i]
\tvia 10.200.0.12 on eth0
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65532 65000
\tBGP.next_hop: 10.200.0.12
"""

IP_ROUTE_ECMP = (
    '[{"dst":"10.92.100.71","protocol":"bgp","metric":20,"flags":[],"nexthops":['
    '{"gateway":"10.252.1.10","dev":"nmn","weight":1,"flags":[]},'
    '{"gateway":"10.252.1.11","dev":"nmn","weight":1,"flags":[]}]}]'
)
IP_ROUTE_SINGLE = '[{"dst":"10.92.100.60","nhid":25,"gateway":"10.252.1.10","dev":"nmn","protocol":"bgp"}]'


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site()


def test_kernel_route_parser_reads_ecmp_and_single_path() -> None:
    (ecmp,) = netns.parse_routes(IP_ROUTE_ECMP)
    assert ecmp.gateways == {"10.252.1.10", "10.252.1.11"}
    assert ecmp.protocol == "bgp"
    (single,) = netns.parse_routes(IP_ROUTE_SINGLE)
    assert single.gateways == {"10.252.1.10"}
    assert netns.parse_routes("") == []


def test_bird_parser_reads_every_path_and_attribute() -> None:
    first, second = bird.parse_routes(BIRD_ECMP)
    assert (first.prefix, first.protocol, first.primary) == ("10.92.100.71/32", "w1", True)
    assert first.next_hops == ["10.200.0.11"]
    assert first.communities == [(65533, 100), (65533, 200)]
    assert first.large_communities == [(65533, 1, 1)]
    assert (second.prefix, second.protocol, second.primary) == ("10.92.100.71/32", "w2", False)
    assert second.as_path == [65532, 65000]


def test_bird_protocols_parser() -> None:
    text = (
        "Name       Proto      Table      State  Since         Info\n"
        "kernel1    Kernel     master4    up     16:58:02.813\n"
        "w1         BGP        ---        up     16:58:04.047  Established\n"
        "w2         BGP        ---        start  16:58:04.258  Active        Socket: x\n"
    )
    assert bird.parse_protocols(text) == {"w1": "Established", "w2": "Active"}


def test_exabgp_as_path_both_formats() -> None:
    assert as_path({"as-path": {"0": {"element": "as-sequence", "value": [65531, 65000]}}}) == [
        65531, 65000]
    assert as_path({"as-path": [65531]}) == [65531]


def test_wait_for_returns_value_and_times_out() -> None:
    calls = iter([0, 0, 7])
    assert netns.wait_for(lambda: next(calls), timeout=5, interval=0) == 7
    with pytest.raises(TimeoutError, match="never"):
        netns.wait_for(lambda: False, timeout=0, what="never")


def test_interface_names_are_checked() -> None:
    assert netns.check_ifname("swspine001-nmn") == "swspine001-nmn"
    with pytest.raises(netns.LabError):
        netns.check_ifname("sw-spine-001-nmn")


def test_site_services_and_allocation(site: Site) -> None:
    addresses = site.service_addresses()
    assert IPv4Address("10.102.10.129") in addresses  # first seed service
    assert len(site.services) == 17
    assert len(addresses) == 16  # the two unbound NMN services share one address
    cmn = next(s for s in site.services if s.name == "istio-ingressgateway-cmn")
    assert cmn.address is not None
    assert cmn.address in site.pools["customer-management"].cidr


def test_local_policy_only_from_ready_workers(site: Site) -> None:
    kea = IPv4Network("10.92.100.222/32")
    assert [w for w in site.workers if kea in {a.prefix for a in site.announcements(w)}] == [
        "ncn-w002"]
    assert site.expected_next_hops(IPv4Address("10.92.100.222")) == {IPv4Address("10.252.1.11")}


def test_next_hops_follow_the_delivery_network(site: Site) -> None:
    assert site.expected_next_hops(IPv4Address("10.102.10.129")) == {
        IPv4Address("10.102.10.10"), IPv4Address("10.102.10.11"), IPv4Address("10.102.10.12")}
    assert site.expected_next_hops(IPv4Address("10.94.100.71")) == {
        IPv4Address("10.254.1.16"), IPv4Address("10.254.1.18"), IPv4Address("10.254.1.20")}
    assert site.expected_next_hops(IPv4Address("10.94.100.60")) == {IPv4Address("10.254.1.16")}


def test_announcements_ride_their_pools_peering_network(site: Site) -> None:
    for ann in site.announcements("ncn-w001"):
        assert ann.peering == site.pools[ann.pool].peering
    probes = refusal_probes(site)
    assert {p.peering for p in probes if p.prefix == OUTSIDE_PROBE} == {"nmn", "cmn"}
    for probe in probes:
        if probe.pool:
            assert site.pools[probe.pool].peering != probe.peering


@pytest.mark.skipif(shutil.which("vtysh") is None, reason="FRR's vtysh is not installed")
def test_rendered_configs_pass_frr_offline_check(site: Site) -> None:
    # The spines' configs are the collection's (tests/unit/test_spine_render.py checks them).
    for worker in site.workers.values():
        frr.check_config(frr_worker_config(site, worker))
    with pytest.raises(netns.LabError):
        frr.check_config("router bgp 65533\n bogus command\n")
