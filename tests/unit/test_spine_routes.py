"""spinelb.spine.routes: installed routes to the pools, from FRR's and AOS-CX's JSON.

The FRR answers were captured from the lab (FRR 8.4, ``show ip route vrf default
json`` on sw-spine-001 of the converged reference site, then again after ncn-w001's
speaker stopped): tests/golden/frr-routes/.
"""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from pathlib import Path
from typing import Any

from test_spine_model import ansible_inventory

from spinelb.spine import site_from_inventory
from spinelb.spine.routes import (
    aoscx_route_table,
    as_data,
    frr_route_table,
    merge,
    pool_routes,
    route_vrfs,
    routed_through,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frr-routes"
CONVERGED = json.loads((GOLDEN / "sw-spine-001-converged.json").read_text())
WITHOUT_W001 = json.loads((GOLDEN / "sw-spine-001-without-ncn-w001.json").read_text())
POOLS = [ip_network(c) for c in ("10.92.100.0/24", "10.94.100.0/24", "10.102.5.60/30",
                                 "10.102.5.64/26", "10.102.10.128/26")]
# ncn-w001's addresses: nmn, hmn, cmn, can
W001 = ["10.252.1.10", "10.254.1.16", "10.102.5.14", "10.102.10.10"]


def hops(*addresses: str) -> tuple[IPv4Address, ...]:
    return tuple(IPv4Address(a) for a in addresses)


def test_converged_spine_routes_each_pool_prefix_through_the_workers_delivery_addresses() -> None:
    table = pool_routes(frr_route_table(CONVERGED), POOLS)
    assert table[IPv4Network("10.92.100.71/32")] == hops(
        "10.252.1.10", "10.252.1.11", "10.252.1.12")
    assert table[IPv4Network("10.94.100.71/32")] == hops(
        "10.254.1.16", "10.254.1.18", "10.254.1.20")
    assert table[IPv4Network("10.102.10.129/32")] == hops(
        "10.102.10.10", "10.102.10.11", "10.102.10.12")
    assert table[IPv4Network("10.92.100.60/32")] == hops("10.252.1.10")  # single path
    # connected networks and the loopback are no pool route
    assert IPv4Network("10.252.0.0/17") not in table
    assert IPv4Network("10.2.0.2/32") not in table
    assert len(table) == 16


def test_connected_routes_have_no_next_hop_and_are_left_out() -> None:
    table = frr_route_table(CONVERGED)
    assert IPv4Network("10.2.0.2/32") not in table
    assert IPv4Network("10.102.10.0/24") not in table


def test_routed_through_a_worker_before_and_after_its_speaker_stopped() -> None:
    before = routed_through(pool_routes(frr_route_table(CONVERGED), POOLS), W001)
    assert len(before) == 15  # everything but KEA (10.92.100.222: local policy, ncn-w002 only)
    assert IPv4Network("10.92.100.222/32") not in before
    after = pool_routes(frr_route_table(WITHOUT_W001), POOLS)
    assert routed_through(after, W001) == {}
    # the others still carry every address; TFTP moved to the next worker of its list
    assert after[IPv4Network("10.92.100.71/32")] == hops("10.252.1.11", "10.252.1.12")
    assert after[IPv4Network("10.92.100.60/32")] == hops("10.252.1.11")


def test_routes_not_selected_or_not_installed_do_not_count() -> None:
    data = copy.deepcopy(CONVERGED)
    data["10.92.100.71/32"][0]["selected"] = False
    data["10.94.100.71/32"][0]["installed"] = False
    data["10.102.10.129/32"][0]["nexthops"][0]["fib"] = False
    table = frr_route_table(data)
    assert IPv4Network("10.92.100.71/32") not in table
    assert IPv4Network("10.94.100.71/32") not in table
    assert table[IPv4Network("10.102.10.129/32")] == hops("10.102.10.11", "10.102.10.12")


def test_a_second_unselected_entry_adds_nothing() -> None:
    data = copy.deepcopy(CONVERGED)
    other = copy.deepcopy(data["10.92.100.60/32"][0])
    other.update(selected=None, installed=None, distance=70)
    other["nexthops"][0]["ip"] = "10.252.0.3"
    data["10.92.100.60/32"].append(other)
    assert frr_route_table(data)[IPv4Network("10.92.100.60/32")] == hops("10.252.1.10")


def test_vrf_all_answer_keyed_by_vrf_is_read_too() -> None:
    nested = {"default": CONVERGED, "CSM": {"10.92.100.71/32": CONVERGED["10.92.100.71/32"]}}
    assert frr_route_table(nested) == frr_route_table(CONVERGED)


def test_aoscx_routes_with_expanded_next_hops() -> None:
    data = {
        "bgp,10.92.100.71%2F32": {
            "prefix": "10.92.100.71/32", "from": "bgp", "address_family": "ipv4",
            "nexthops": {
                "10.252.1.10": {"ip_address": "10.252.1.10", "selected": True, "distance": 20},
                "10.252.1.11": {"ip_address": "10.252.1.11", "selected": True, "distance": 20},
                "10.252.1.12": {"ip_address": "10.252.1.12", "selected": False, "distance": 20},
            },
        },
        "connected,10.252.0.0%2F17": {
            "prefix": "10.252.0.0/17", "from": "connected",
            "nexthops": {"vlan2": {"port": {"vlan2": "/rest/v10.09/system/interfaces/vlan2"}}},
        },
        "bgp,10.92.100.60%2F32": {"prefix": "10.92.100.60/32", "selected": False,
                                  "nexthops": [{"ip_address": "10.252.1.10"}]},
    }
    assert aoscx_route_table(data) == {IPv4Network("10.92.100.71/32"):
                                       hops("10.252.1.10", "10.252.1.11")}


def test_merge_unions_next_hops_and_as_data_is_sorted_plain_data() -> None:
    one = {IPv4Network("10.92.100.71/32"): hops("10.252.1.11")}
    two = {IPv4Network("10.92.100.71/32"): hops("10.252.1.10"),
           IPv4Network("10.92.100.9/32"): hops("10.252.1.12")}
    merged = merge([one, two])
    assert as_data(merged) == {"10.92.100.9/32": ["10.252.1.12"],
                               "10.92.100.71/32": ["10.252.1.10", "10.252.1.11"]}
    assert list(as_data(merged)) == ["10.92.100.9/32", "10.92.100.71/32"]


def test_routed_through_takes_strings_or_addresses() -> None:
    table = {IPv4Network("10.92.100.71/32"): hops("10.252.1.10", "10.252.1.11")}
    assert routed_through(table, [ip_address("10.252.1.11")]) == table
    assert routed_through(table, ["10.252.1.12"]) == {}


def test_route_vrfs_follow_the_spines_vrf_setting() -> None:
    production = site_from_inventory(ansible_inventory("reference-site"))
    lab = site_from_inventory(ansible_inventory("lab"))
    assert route_vrfs(production, "sw-spine-001") == ["default", "CSM"]
    assert route_vrfs(lab, "sw-spine-001") == ["default"]


def test_garbage_is_ignored_not_fatal() -> None:
    data: dict[str, Any] = {"x": "y", "10.0.0.0/8": [{"selected": True, "prefix": "nope",
                                                      "nexthops": [{"ip": "1.2.3.4"}]}],
                            "10.1.0.0/16": [{"selected": True, "nexthops": [{"ip": "zz"}]}]}
    assert frr_route_table(data) == {}
    assert aoscx_route_table({"a": 1, "b": {"prefix": 5}}) == {}
