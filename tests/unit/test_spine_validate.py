"""Validation of spine site data: each problem as the user reads it, naming the variable and value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from test_spine_model import SiteData, inventory_data

from spinelb.bfd import BfdSettings
from spinelb.spine import SiteError, load_site


def problems(edit: Callable[[SiteData], object]) -> list[str]:
    """The problems load_site reports for the reference site changed by ``edit``."""
    data = inventory_data()
    edit(data)
    with pytest.raises(SiteError) as caught:
        load_site(*data)
    assert str(caught.value).startswith(f"site data: {len(caught.value.problems)} problem")
    return caught.value.problems


def site(data: SiteData) -> dict[str, Any]:
    return data[0]


def host(data: SiteData, name: str) -> dict[str, Any]:
    return data[1][name]


def test_reference_site_is_valid() -> None:
    load_site(*inventory_data())


def test_overlapping_pools() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_pools"]["customer-access"]["cidr"] = "10.102.5.96/27"

    assert problems(edit) == [
        "spinelb_pools.customer-access.cidr: 10.102.5.96/27 overlaps "
        "spinelb_pools.customer-management.cidr (10.102.5.64/26)"
    ]


def test_pool_outside_every_network() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_pools"]["node-management"]["network"] = "nmnlb"

    assert problems(edit) == [
        "spinelb_pools.node-management.network: 'nmnlb' is not a network in spinelb_networks "
        "(known: can, cmn, hmn, nmn)"
    ]


def test_pool_with_host_bits() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_pools"]["customer-access"]["cidr"] = "10.102.10.130/26"

    assert problems(edit) == [
        "spinelb_pools.customer-access.cidr: '10.102.10.130/26' is not an IPv4 network "
        "(10.102.10.130/26 has host bits set)"
    ]


def test_pool_straddling_a_network_boundary() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_pools"]["customer-access"]["cidr"] = "10.102.10.0/23"

    assert problems(edit) == [
        "spinelb_pools.customer-access.cidr: 10.102.10.0/23 straddles "
        "spinelb_networks.can.cidr (10.102.10.0/24)"
    ]


def test_pool_whose_peering_network_has_no_speaker_as() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_pools"]["hardware-management"]["peering"] = "hmn"

    assert problems(edit) == [
        "spinelb_pools.hardware-management.peering: 'hmn' has no speaker AS "
        "(set spinelb_networks.hmn.speaker_asn and peering: true)"
    ]


def test_pool_peering_on_a_network_not_marked_peering() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_networks"]["hmn"]["speaker_asn"] = 65530
        site(data)["spinelb_pools"]["hardware-management"]["peering"] = "hmn"

    assert problems(edit) == [
        "spinelb_pools.hardware-management.peering: 'hmn' is not a peering network "
        "(set spinelb_networks.hmn.peering: true)"
    ]


def test_peering_network_without_speaker_as() -> None:
    def edit(data: SiteData) -> None:
        del site(data)["spinelb_networks"]["cmn"]["speaker_asn"]

    found = problems(edit)
    assert (
        found[0]
        == "spinelb_networks.cmn.speaker_asn: is required on a peering network (peering: true)"
    )
    assert "spinelb_pools.customer-access.peering: 'cmn' has no speaker AS" in found[1]


def test_worker_without_an_address_on_a_delivery_network() -> None:
    def edit(data: SiteData) -> None:
        del host(data, "ncn-w002")["spinelb_addresses"]["hmn"]

    assert problems(edit) == [
        "ncn-w002.spinelb_addresses.hmn: is missing; ncn-w002 delivers pool hardware-management "
        "(spinelb_pools.hardware-management.network: hmn)"
    ]


def test_worker_without_an_address_on_a_peering_network() -> None:
    def edit(data: SiteData) -> None:
        del host(data, "ncn-w001")["spinelb_addresses"]["cmn"]

    assert problems(edit) == [
        "ncn-w001.spinelb_addresses.cmn: is missing; ncn-w001 delivers pool customer-access "
        "(spinelb_pools.customer-access.peering: cmn)"
    ]


@pytest.mark.parametrize("value", [0, 4294967296, -1])
def test_switch_asn_out_of_range(value: int) -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_switch_asn"] = value

    assert problems(edit) == [f"spinelb_switch_asn: {value} is outside 1..4294967295"]


def test_speaker_asn_out_of_range_and_not_a_number() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_networks"]["nmn"]["speaker_asn"] = 4294967296
        site(data)["spinelb_networks"]["cmn"]["speaker_asn"] = "AS65532"

    found = problems(edit)
    assert found[:2] == [
        "spinelb_networks.cmn.speaker_asn: 'AS65532' is not an integer",
        "spinelb_networks.nmn.speaker_asn: 4294967296 is outside 1..4294967295",
    ]


def test_switch_asn_missing() -> None:
    def edit(data: SiteData) -> None:
        del site(data)["spinelb_switch_asn"]

    assert problems(edit) == ["spinelb_switch_asn: is required (the spines' AS)"]


def test_single_path_prefix_outside_the_pools() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_bgp"]["single_path"][1]["prefix"] = "10.93.100.60/32"

    assert problems(edit) == [
        "spinelb_bgp.single_path[1].prefix: 10.93.100.60/32 is outside every pool in spinelb_pools"
    ]


def test_single_path_unknown_worker() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_bgp"]["single_path"][0]["workers"] = ["ncn-w001", "ncn-w009"]

    assert problems(edit) == [
        "spinelb_bgp.single_path[0].workers[1]: 'ncn-w009' is not a host in group workers"
    ]


@pytest.mark.parametrize(
    ("platform", "paths", "bounds"),
    [("aoscx", 33, "1..32"), ("aoscx", 0, "1..32"), ("frr", 257, "1..256"), ("frr", 0, "1..256")],
)
def test_maximum_paths_outside_the_platform_range(platform: str, paths: int, bounds: str) -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_bgp"]["maximum_paths"] = paths
        for spine in ("sw-spine-001", "sw-spine-002"):
            host(data, spine)["spinelb_platform"] = platform

    assert problems(edit) == [
        f"spinelb_bgp.maximum_paths: {paths} is outside {bounds} for platform {platform} ({spine})"
        for spine in ("sw-spine-001", "sw-spine-002")
    ]


def test_maximum_paths_within_frr_range_is_accepted() -> None:
    data = inventory_data("lab")
    site(data)["spinelb_bgp"]["maximum_paths"] = 256
    assert load_site(*data).bgp.maximum_paths == 256


def test_maximum_paths_range_is_per_spine_platform() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_bgp"]["maximum_paths"] = 64
        host(data, "sw-spine-001")["spinelb_platform"] = "frr"

    assert problems(edit) == [
        "spinelb_bgp.maximum_paths: 64 is outside 1..32 for platform aoscx (sw-spine-002)"
    ]


def test_unknown_platform() -> None:
    def edit(data: SiteData) -> None:
        host(data, "sw-spine-001")["spinelb_platform"] = "eos"

    assert problems(edit) == ["sw-spine-001.spinelb_platform: 'eos' is not one of aoscx, frr"]


def test_spine_needs_a_loopback_and_peering_addresses() -> None:
    def edit(data: SiteData) -> None:
        del host(data, "sw-spine-002")["spinelb_addresses"]["loopback"]
        del host(data, "sw-spine-002")["spinelb_addresses"]["nmn"]

    assert problems(edit) == [
        "sw-spine-002.spinelb_addresses.loopback: is required on a spine (its router-id)",
        "sw-spine-002.spinelb_addresses.nmn: is required: spines peer on spinelb_networks.nmn",
    ]


def test_address_outside_its_network_and_duplicate_address() -> None:
    def edit(data: SiteData) -> None:
        host(data, "ncn-w001")["spinelb_addresses"]["nmn"] = "10.253.1.10"
        host(data, "ncn-w003")["spinelb_addresses"]["cmn"] = "10.102.5.15"

    assert problems(edit) == [
        "ncn-w001.spinelb_addresses.nmn: 10.253.1.10 is outside spinelb_networks.nmn.cidr (10.252.0.0/17)",
        "ncn-w003.spinelb_addresses.cmn: 10.102.5.15 is also ncn-w002.spinelb_addresses.cmn",
    ]


def test_bad_values_are_named_with_their_paths() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_networks"]["can"]["cidr"] = "10.102.10.0/33"
        site(data)["spinelb_bgp"]["timers"] = {"keepalive": 5, "hold": 2}
        site(data)["spinelb_bgp"]["distance"]["ibgp"] = 256
        site(data)["spinelb_bgp"]["bfd"] = "yes"

    assert problems(edit) == [
        "spinelb_networks.can.cidr: '10.102.10.0/33' is not an IPv4 network "
        "('33' is not a valid netmask)",
        "spinelb_pools.customer-access.network: 'can' is not a network in spinelb_networks "
        "(known: cmn, hmn, nmn)",
        "spinelb_bgp.timers.hold: 2 is not allowed (0 or 3..65535, RFC 4271)",
        "spinelb_bgp.distance.ibgp: 256 is outside 1..255",
        "spinelb_bgp.bfd: 'yes' is not true, false or a mapping of "
        "min_rx_ms, min_tx_ms, multiplier",
        "sw-spine-001.spinelb_addresses.can: 'can' is not a network in spinelb_networks",
        "sw-spine-002.spinelb_addresses.can: 'can' is not a network in spinelb_networks",
        "ncn-w001.spinelb_addresses.can: 'can' is not a network in spinelb_networks",
        "ncn-w002.spinelb_addresses.can: 'can' is not a network in spinelb_networks",
        "ncn-w003.spinelb_addresses.can: 'can' is not a network in spinelb_networks",
    ]


def test_every_problem_is_reported_at_once() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_switch_asn"] = 0
        site(data)["spinelb_pools"]["customer-access"]["cidr"] = "10.102.5.96/27"
        site(data)["spinelb_bgp"]["single_path"][0]["prefix"] = "10.1.1.1/32"

    assert len(problems(edit)) == 3


@pytest.mark.parametrize("password", ["a b", "x" * 81, 12345])
def test_bad_password_is_never_quoted(password: object) -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_bgp_password"] = password

    found = problems(edit)
    assert len(found) == 1 and found[0].startswith("spinelb_bgp_password: ")
    assert str(password) not in found[0]
    assert "value not shown" in found[0]


def test_missing_and_mistyped_addresses() -> None:
    def edit(data: SiteData) -> None:
        del site(data)["spinelb_pools"]["node-management"]["cidr"]
        host(data, "ncn-w001")["spinelb_addresses"]["can"] = 167772160
        host(data, "ncn-m001")["spinelb_addresses"]["nmn"] = "10.252.1.300"

    assert problems(edit) == [
        "spinelb_pools.node-management.cidr: is required (an IPv4 network, e.g. 10.92.100.0/24)",
        "ncn-w001.spinelb_addresses.can: 167772160 is not an IPv4 address",
        "ncn-m001.spinelb_addresses.nmn: '10.252.1.300' is not an IPv4 address",
        # the pool has no CIDR, so nothing holds the single-path prefix any more:
        "spinelb_bgp.single_path[0].prefix: 10.92.100.60/32 is outside every pool in spinelb_pools",
    ]


# --- BFD -----------------------------------------------------------------------------------------


def bfd_site(bfd: object, inventory: str = "reference-site", **vlans: int) -> SiteData:
    """An inventory with ``spinelb_bgp.bfd: bfd`` and ``vlan`` set on the networks named."""
    data = inventory_data(inventory)
    site(data).pop("spinelb_bgp_bfd", None)  # the lab's layer would win over spinelb_bgp.bfd
    site(data)["spinelb_bgp"]["bfd"] = bfd
    for network, vlan in vlans.items():
        site(data)["spinelb_networks"][network]["vlan"] = vlan
    return data


@pytest.mark.parametrize(
    ("bfd", "expected"),
    [
        (False, None),
        (None, None),
        (True, BfdSettings(min_tx_ms=300, min_rx_ms=300, multiplier=3)),
        ({"min_rx_ms": 100, "min_tx_ms": 150, "multiplier": 4}, BfdSettings(min_tx_ms=150, min_rx_ms=100, multiplier=4)),
        ({"multiplier": 5}, BfdSettings(min_tx_ms=300, min_rx_ms=300, multiplier=5)),
        ({}, BfdSettings()),
    ],
)
def test_bfd_is_off_the_defaults_or_the_timers_given(bfd: object, expected: object) -> None:
    loaded = load_site(*bfd_site(bfd, nmn=2, cmn=6)).bgp.bfd
    assert loaded == expected
    assert bool(loaded) is (expected is not None)


def test_bfd_timers_out_of_range_or_unknown_are_named() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_bgp"]["bfd"] = {"min_tx_ms": 5, "min_rx_ms": "fast",
                                            "multiplier": 256, "echo": True}

    assert problems(edit) == [
        "spinelb_bgp.bfd.echo: is not a BFD setting (min_rx_ms, min_tx_ms, multiplier)",
        "spinelb_bgp.bfd.min_rx_ms: 'fast' is not an integer",
        "spinelb_bgp.bfd.min_tx_ms: 5 is outside 10..60000",
        "spinelb_bgp.bfd.multiplier: 256 is outside 1..255",
    ]


def test_bfd_on_aoscx_spines_needs_timers_they_accept_and_each_sessions_vlan() -> None:
    with pytest.raises(SiteError) as caught:
        load_site(*bfd_site({"min_rx_ms": 50, "multiplier": 6}, nmn=2))
    assert caught.value.problems == [
        "spinelb_bgp.bfd.min_rx_ms: 50 is outside 100..20000 for platform aoscx (sw-spine-001)",
        "spinelb_bgp.bfd.multiplier: 6 is outside 1..5 for platform aoscx (sw-spine-001)",
        "spinelb_networks.cmn.vlan: is required with spinelb_bgp.bfd on AOS-CX spines "
        "(sw-spine-001): AOS-CX sets BFD timers on the interface (interface vlan N)",
    ]


def test_bfd_on_frr_spines_takes_bfdd_timers_and_no_vlan() -> None:
    bfd = load_site(*bfd_site({"min_rx_ms": 10, "min_tx_ms": 60000, "multiplier": 255}, "lab"))
    assert bfd.bgp.bfd == BfdSettings(min_tx_ms=60000, min_rx_ms=10, multiplier=255)


def test_vlans_are_checked_and_unique() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_networks"]["nmn"]["vlan"] = 4095
        site(data)["spinelb_networks"]["cmn"]["vlan"] = 6
        site(data)["spinelb_networks"]["hmn"]["vlan"] = 6

    assert problems(edit) == [
        "spinelb_networks.nmn.vlan: 4095 is outside 1..4094",
        "spinelb_networks.hmn.vlan: 6 is also spinelb_networks.cmn.vlan",
    ]


def test_spinelb_bgp_bfd_replaces_the_site_setting_and_is_checked_under_its_own_name() -> None:
    # the lab inventory turns BFD on with it, over the reference site's spinelb_bgp (bfd: false)
    lab = inventory_data("lab")
    assert load_site(*lab).bgp.bfd == BfdSettings(min_tx_ms=100, min_rx_ms=100, multiplier=3)
    site(lab)["spinelb_bgp_bfd"] = False
    assert load_site(*lab).bgp.bfd is None
    assert problems(lambda data: site(data).update(spinelb_bgp_bfd={"min_tx_ms": 5})) == [
        "spinelb_bgp_bfd.min_tx_ms: 5 is outside 10..60000"]


# --- layer2 pools (issue 8) ----------------------------------------------------------------------

LAYER2_POOL = {"cidr": "10.102.10.240/29", "network": "can", "mode": "layer2",
               "interfaces": ["bond0.can0"]}


def layer2_site(**pool: Any) -> SiteData:
    """The reference site with a layer2 pool ``lab-l2`` on the CAN segment."""
    data = inventory_data()
    site(data)["spinelb_pools"]["lab-l2"] = {**LAYER2_POOL, **pool}
    return data


def test_a_layer2_pool_is_carried_by_no_bgp_session() -> None:
    loaded = load_site(*layer2_site())
    pool = loaded.pools["lab-l2"]
    assert (pool.mode, pool.interfaces, pool.peering, pool.network, pool.layer2) == (
        "layer2", ("bond0.can0",), "", "can", True)
    assert pool not in loaded.bgp_pools
    assert all(not p.layer2 for p in loaded.bgp_pools) and len(loaded.bgp_pools) == 5
    for network in loaded.peering_networks:
        assert pool not in loaded.pools_carried_by(network)
    assert "pl-lab-l2" not in {pl.name for pl in loaded.prefix_lists()}
    # the BGP side is exactly the reference site's: nothing about the layer2 pool
    reference = load_site(*inventory_data())
    assert loaded.intent("sw-spine-001") == reference.intent("sw-spine-001")


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ({"mode": "arp"}, ["spinelb_pools.lab-l2.mode: 'arp' is not a pool mode (bgp or layer2)"]),
        ({"interfaces": None}, ["spinelb_pools.lab-l2.interfaces: None is not a list of "
                                "interface names (a layer2 pool needs the workers' interfaces its "
                                "addresses are answered on)"]),
        ({"interfaces": []}, ["spinelb_pools.lab-l2.interfaces: <list> is not a list of "
                              "interface names (a layer2 pool needs the workers' interfaces its "
                              "addresses are answered on)"]),
        ({"interfaces": ["eth0", "eth0"]},
         ["spinelb_pools.lab-l2.interfaces[1]: 'eth0' is listed twice"]),
        ({"interfaces": ["a/b", 7]},
         ["spinelb_pools.lab-l2.interfaces[0]: 'a/b' is not an interface name "
          "(1-15 characters, no '/' or spaces)",
          "spinelb_pools.lab-l2.interfaces[1]: 7 is not an interface name "
          "(1-15 characters, no '/' or spaces)"]),
        ({"peering": "cmn"}, ["spinelb_pools.lab-l2.peering: 'cmn': a layer2 pool is carried "
                              "by no BGP session; remove it (network is where its addresses are "
                              "answered)"]),
        ({"network": "lan"}, ["spinelb_pools.lab-l2.network: 'lan' is not a network in "
                              "spinelb_networks (known: can, cmn, hmn, nmn)"]),
        ({"cidr": "10.102.11.0/29"}, ["spinelb_pools.lab-l2.cidr: 10.102.11.0/29 is outside "
                                      "spinelb_networks.can.cidr (10.102.10.0/24): clients there "
                                      "ARP only for addresses on their subnet"]),
        ({"cidr": "10.102.10.10/32"}, ["ncn-w001.spinelb_addresses.can: 10.102.10.10 is in "
                                       "spinelb_pools.lab-l2 (10.102.10.10/32), a layer2 pool "
                                       "whose addresses the speakers answer ARP for"]),
    ],
)
def test_layer2_pool_problems(pool: dict[str, Any], expected: list[str]) -> None:
    data = layer2_site(**pool)
    entry = site(data)["spinelb_pools"]["lab-l2"]
    for key in [key for key, value in entry.items() if value is None]:
        del entry[key]
    with pytest.raises(SiteError) as caught:
        load_site(*data)
    assert caught.value.problems == expected


def test_interfaces_only_on_a_layer2_pool() -> None:
    def edit(data: SiteData) -> None:
        site(data)["spinelb_pools"]["customer-access"]["interfaces"] = ["can0"]

    assert problems(edit) == [
        "spinelb_pools.customer-access.interfaces: <list>: only a layer2 pool has interfaces "
        "(set spinelb_pools.customer-access.mode: layer2)"
    ]


def test_layer2_pools_share_one_network_and_take_no_single_path() -> None:
    data = layer2_site()
    site(data)["spinelb_pools"]["other-l2"] = {**LAYER2_POOL, "cidr": "10.102.5.40/29",
                                               "network": "cmn"}
    site(data)["spinelb_bgp"]["single_path"].append(
        {"prefix": "10.102.10.241/32", "workers": ["ncn-w001"]})
    with pytest.raises(SiteError) as caught:
        load_site(*data)
    assert caught.value.problems == [
        "spinelb_pools.other-l2.network: 'cmn': every layer2 pool must be on one network "
        "(spinelb_pools.lab-l2 is on 'can'): the speakers run one mesh",
        "spinelb_bgp.single_path[2].prefix: 10.102.10.241/32 is in spinelb_pools.lab-l2, a "
        "layer2 pool: no BGP route to choose a path for",
    ]


def test_a_worker_needs_an_address_on_the_layer2_network() -> None:
    data = layer2_site(network="hmn", cidr="10.254.100.0/29")
    del host(data, "ncn-w002")["spinelb_addresses"]["hmn"]
    with pytest.raises(SiteError) as caught:
        load_site(*data)
    assert caught.value.problems == [
        "ncn-w002.spinelb_addresses.hmn: is missing; ncn-w002 delivers pool hardware-management "
        "(spinelb_pools.hardware-management.network: hmn)"
    ]


def test_extra_pools_join_the_sites_and_a_name_in_both_is_refused() -> None:
    data = inventory_data()
    site(data)["spinelb_extra_pools"] = {
        "lab-layer2": {"cidr": "10.102.10.192/28", "network": "can", "mode": "layer2",
                       "interfaces": ["can"], "auto_assign": False},
    }
    loaded = load_site(*data)
    assert "lab-layer2" in loaded.pools and loaded.pools["lab-layer2"].layer2
    assert "customer-access" in loaded.pools  # the site's own stay

    def edit(data: SiteData) -> None:
        site(data)["spinelb_extra_pools"] = {
            "customer-access": {"cidr": "10.102.10.192/28", "network": "can", "mode": "layer2",
                                "interfaces": ["can"]},
        }

    assert "spinelb_extra_pools.customer-access: is a pool of spinelb_pools already; rename one" \
        in problems(edit)
