"""The spine site model: the inventories load through Ansible, and what the model derives from them.

:func:`inventory_data` reads an inventory's YAML the way Ansible merges it for
this layout (``group_vars/all/*.yml``, ``group_vars/<group>.yml``,
``host_vars/<host>.yml``) so the other spine tests stay fast; the tests here
check it against ``ansible-inventory --list`` for both inventories.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import replace
from functools import cache
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from spinelb.spine import Site, load_site, site_from_inventory
from spinelb.spine.model import PolicyEntry

REPO = Path(__file__).resolve().parents[2]
INVENTORIES = REPO / "inventories"
GROUPS = ("spines", "workers", "masters")

SiteData = tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, list[str]]]


def _yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {} if path.exists() else {}


@cache
def _inventory_data(name: str) -> SiteData:
    root = INVENTORIES / name
    site_vars: dict[str, Any] = {}
    for path in sorted((root / "group_vars" / "all").glob("*.yml")):
        site_vars.update(_yaml(path))
    children = _yaml(root / "hosts.yml")["all"]["children"]
    groups = {group: sorted(children.get(group, {}).get("hosts") or {}) for group in GROUPS}
    hosts: dict[str, dict[str, Any]] = {}
    for group, members in groups.items():
        group_vars = _yaml(root / "group_vars" / f"{group}.yml")
        for host in members:
            hosts[host] = {**site_vars, **group_vars, **_yaml(root / "host_vars" / f"{host}.yml")}
    return site_vars, hosts, groups


def inventory_data(name: str = "reference-site") -> SiteData:
    """A fresh, mutable copy of an inventory's (site vars, host vars, groups)."""
    return copy.deepcopy(_inventory_data(name))


def reference_site(name: str = "reference-site") -> Site:
    return load_site(*inventory_data(name))


@cache
def ansible_inventory(name: str) -> dict[str, Any]:
    """``ansible-inventory --list`` of ``inventories/<name>`` (the real Ansible merge)."""
    command = Path(sys.executable).with_name("ansible-inventory")
    result = subprocess.run(
        [str(command), "-i", str(INVENTORIES / name), "--list"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    listing: dict[str, Any] = json.loads(result.stdout)
    return listing


@pytest.mark.parametrize("name", ["reference-site", "lab"])
def test_ansible_reads_the_same_site_as_the_yaml(name: str) -> None:
    assert site_from_inventory(ansible_inventory(name)) == reference_site(name)


def test_lab_shares_the_site_facts_and_differs_only_in_platform_bfd_and_its_layer2_pool() -> None:
    production = site_from_inventory(ansible_inventory("reference-site"))
    lab = site_from_inventory(ansible_inventory("lab"))
    assert (INVENTORIES / "lab" / "group_vars" / "all" / "site.yml").is_symlink()
    # File symlinks, not a directory symlink: ansible-test sanity refuses those.
    shared = sorted(p.name for p in (INVENTORIES / "reference-site" / "host_vars").iterdir())
    lab_host_vars = sorted((INVENTORIES / "lab" / "host_vars").iterdir())
    assert [p.name for p in lab_host_vars] == shared
    assert all(p.is_symlink() for p in lab_host_vars)
    for field in (
        "name",
        "switch_asn",
        "networks",
        "single_path",
        "workers",
        "masters",
    ):
        assert getattr(lab, field) == getattr(production, field), field
    # the site's pools, and the lab's own layer2 pool (spinelb_extra_pools in its layer)
    assert {n: p for n, p in lab.pools.items() if n != "lab-layer2"} == production.pools
    assert lab.pools["lab-layer2"].layer2 and lab.bgp_pools == production.bgp_pools
    # the lab runs BFD 100 ms x 3 (spinelb_bgp_bfd in its own layer); the rest of bgp is shared
    assert replace(lab.bgp, bfd=None) == production.bgp
    assert lab.bgp.bfd is not None and lab.bgp.bfd.min_rx_ms == 100
    assert {s.platform for s in production.spines.values()} == {"aoscx"}
    assert {s.platform for s in lab.spines.values()} == {"frr"}
    assert all(s.collapse_vrfs and s.soft_reconfiguration for s in lab.spines.values())
    for name, spine in lab.spines.items():
        assert spine.addresses == production.spines[name].addresses


def test_reference_site_facts() -> None:
    site = reference_site()
    assert site.name == "reference-site"
    assert site.switch_asn == 65533
    assert list(site.spines) == ["sw-spine-001", "sw-spine-002"]
    assert list(site.workers) == ["ncn-w001", "ncn-w002", "ncn-w003"]
    assert list(site.masters) == ["ncn-m001"]
    assert site.spines["sw-spine-002"].loopback == IPv4Address("10.2.0.3")
    assert [net.name for net in site.peering_networks] == ["cmn", "nmn"]
    assert site.networks["nmn"].speaker_asn == 65531
    assert site.pools["customer-management-static"].auto_assign is False
    assert (site.bgp.keepalive, site.bgp.hold, site.bgp.maximum_paths) == (1, 3, 32)
    assert (site.bgp.distance_ebgp, site.bgp.distance_ibgp) == (20, 70)
    assert [str(s.prefix) for s in site.single_path] == ["10.92.100.60/32", "10.94.100.60/32"]


def test_pools_carried_per_peering_network() -> None:
    site = reference_site()
    carried = {
        net.name: [p.name for p in site.pools_carried_by(net)] for net in site.peering_networks
    }
    assert carried == {
        "cmn": ["customer-access", "customer-management", "customer-management-static"],
        "nmn": ["hardware-management", "node-management"],
    }


def test_maximum_prefix_defaults_to_the_host_routes_a_session_can_carry() -> None:
    site = reference_site()
    assert site.maximum_prefix(site.networks["nmn"]) == 256 + 256
    assert site.maximum_prefix(site.networks["cmn"]) == 64 + 64 + 4
    site_vars, hosts, groups = inventory_data()
    site_vars["spinelb_bgp"]["maximum_prefix"] = 1000
    configured = load_site(site_vars, hosts, groups)
    assert configured.maximum_prefix(configured.networks["cmn"]) == 1000


def test_inbound_policy_pins_single_path_then_permits_pools_with_next_hop_rewrites() -> None:
    site = reference_site()
    policy = site.inbound_policy(site.workers["ncn-w002"], site.networks["nmn"])
    assert policy.name == "ncn-w002-nmn"
    assert policy.entries == (
        PolicyEntry(10, "single-path-1", 1100, None),
        PolicyEntry(20, "single-path-2", 1100, IPv4Address("10.254.1.18")),
        PolicyEntry(30, "pl-hardware-management", None, IPv4Address("10.254.1.18")),
        PolicyEntry(40, "pl-node-management", None, None),
    )


def test_cmn_policy_rewrites_customer_access_to_the_can_address() -> None:
    site = reference_site()
    policy = site.inbound_policy(site.workers["ncn-w003"], site.networks["cmn"])
    assert [(e.prefix_list, e.next_hop) for e in policy.entries] == [
        ("pl-customer-access", IPv4Address("10.102.10.12")),
        ("pl-customer-management", None),
        ("pl-customer-management-static", None),
    ]


def test_single_path_local_preference_falls_in_list_order() -> None:
    site = reference_site()
    prefs = [
        site.inbound_policy(site.workers[w], site.networks["nmn"]).entries[0].local_preference
        for w in ("ncn-w001", "ncn-w002", "ncn-w003")
    ]
    assert prefs == [1200, 1100, 1000]


def test_worker_missing_from_a_single_path_list_gets_no_pin() -> None:
    site_vars, hosts, groups = inventory_data()
    site_vars["spinelb_bgp"]["single_path"] = [
        {"prefix": "10.92.100.60/32", "workers": ["ncn-w003", "ncn-w001"]}
    ]
    site = load_site(site_vars, hosts, groups)
    lists = {
        w: [
            e.prefix_list
            for e in site.inbound_policy(site.workers[w], site.networks["nmn"]).entries
        ]
        for w in site.workers
    }
    assert lists["ncn-w002"] == ["pl-hardware-management", "pl-node-management"]
    assert (
        site.inbound_policy(site.workers["ncn-w003"], site.networks["nmn"])
        .entries[0]
        .local_preference
        == 1100
    )


def test_prefix_lists_admit_only_host_routes() -> None:
    lists = {p.name: (p.prefix, p.ge, p.le) for p in reference_site().prefix_lists()}
    assert lists["pl-node-management"] == (IPv4Network("10.92.100.0/24"), 32, 32)
    assert lists["single-path-1"] == (IPv4Network("10.92.100.60/32"), None, None)


def test_intent_keeps_vrfs_apart_unless_collapsed() -> None:
    site = reference_site()
    intent = site.intent("sw-spine-001")
    assert [i.vrf for i in intent.instances] == ["default", "CSM"]
    default, csm = intent.instances
    assert [str(n.address) for n in default.neighbors] == [
        "10.102.5.3",
        "10.102.5.14",
        "10.102.5.15",
        "10.102.5.16",
    ]
    assert [str(n.address) for n in csm.neighbors] == [
        "10.252.0.3",
        "10.252.1.10",
        "10.252.1.11",
        "10.252.1.12",
    ]
    ibgp = csm.neighbors[0]
    assert (ibgp.remote_as, ibgp.passive, ibgp.route_map) == (65533, False, None)
    assert all(n.passive and n.remote_as == 65531 for n in csm.neighbors[1:])
    collapsed = site.intent("sw-spine-002", collapse_vrfs=True)
    assert [i.vrf for i in collapsed.instances] == ["default"]
    (only,) = collapsed.instances
    assert len(only.neighbors) == 1 + 3 * 2
    assert only.neighbors[0].address == IPv4Address("10.102.5.2")  # the other spine, once
    assert {rm.name for rm in collapsed.route_maps} == {rm.name for rm in intent.route_maps}


def test_password_never_in_repr() -> None:
    site_vars, hosts, groups = inventory_data()
    site_vars["spinelb_bgp_password"] = "s3cret-md5"
    site = load_site(site_vars, hosts, groups)
    assert site.bgp.password == "s3cret-md5"
    assert "s3cret-md5" not in repr(site)
    assert "s3cret-md5" not in repr(site.intent("sw-spine-001"))
