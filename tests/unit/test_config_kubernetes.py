"""The config's Kubernetes section and address pools, for the speaker and for the controller."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest

from spinelb.config import (
    ConfigError,
    KubernetesConfig,
    load_controller_config,
    parse_config,
    parse_controller_config,
    parse_range,
)


def speaker(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "node_name": "ncn-w001",
        "router_id": "10.252.1.10",
        "local_asn": 65532,
        "peers": [
            {"name": "sw-spine-001-cmn", "address": "10.102.5.2", "asn": 65533},
            {"name": "sw-spine-002-cmn", "address": "10.102.5.3", "asn": 65533},
        ],
    }
    data.update(extra)
    return data


def problems(data: object, *, controller: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        if controller:
            parse_controller_config(data)
        else:
            parse_config(data)
    return [str(p) for p in caught.value.problems]


def test_pools_resolve_ranges_peers_and_attributes() -> None:
    config = parse_config(speaker(pools=[
        {"name": "customer-access", "addresses": ["10.102.10.128/26", "10.102.10.200-10.102.10.210"],
         "peers": ["sw-spine-001-cmn"], "communities": ["65533:100"], "local_pref": 200},
        {"name": "customer-management", "addresses": ["10.102.5.64/26", "fd00:5::/126"],
         "auto_assign": False, "avoid_buggy_ips": True},
    ]))
    access, management = config.pools
    assert access.ranges == (
        (IPv4Address("10.102.10.128"), IPv4Address("10.102.10.191")),
        (IPv4Address("10.102.10.200"), IPv4Address("10.102.10.210")),
    )
    assert access.size() == 64 + 11
    assert access.peers == ("sw-spine-001-cmn",)
    assert access.attributes.communities == (65533 << 16 | 100,)
    assert access.attributes.local_pref == 200
    assert access.auto_assign and not access.avoid_buggy_ips
    # no peers given: every peer; both families in one pool
    assert management.peers == ("sw-spine-001-cmn", "sw-spine-002-cmn")
    assert management.versions == {4, 6}
    assert not management.auto_assign and management.avoid_buggy_ips
    assert IPv6Address("fd00:5::3") in management and IPv6Address("fd00:5::4") not in management
    assert config.pool_of(ip_address("10.102.10.205")) is access
    assert config.pool_of(ip_address("10.102.10.199")) is None
    assert config.pool("customer-management") is management
    assert config.kubernetes is None


def test_kubernetes_section(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")
    config = parse_config(speaker(kubernetes={"kubeconfig": "kubeconfig", "context": "lab",
                                              "load_balancer_class": "spinelb.io/bgp"}),
                          base_dir=tmp_path)
    assert config.kubernetes == KubernetesConfig(
        kubeconfig=kubeconfig, context="lab", load_balancer_class="spinelb.io/bgp"
    )
    # an empty section means the in-cluster service account
    assert parse_config(speaker(kubernetes={})).kubernetes == KubernetesConfig()


def test_every_pool_and_kubernetes_problem_is_named() -> None:
    found = problems(speaker(
        kubernetes={"kubeconfig": "/nonexistent/kubeconfig", "namespace": "Spine_LB",
                    "lease": "x"},
        pools=[
            {"name": "a", "addresses": ["10.0.0.0/24", "10.0.0.128/25", "10.1.1.1/24", "nope",
                                        "10.2.0.9-10.2.0.1", "10.3.0.1-fd00::1"],
             "peers": ["sw-spine-003-cmn"], "auto_assign": "yes"},
            {"name": "a", "addresses": ["10.0.0.7"], "communities": ["65533:99999"]},
            {"name": "c", "addresses": []},
            {"addresses": ["10.9.0.0/24"]},
        ],
    ))
    assert found == [
        "kubernetes.lease: unknown key; did you mean 'lease_name'? (got 'lease')",
        "kubernetes.kubeconfig: no such file: /nonexistent/kubeconfig "
        "(got '/nonexistent/kubeconfig')",
        "kubernetes.namespace: not a namespace name (lowercase letters, digits and '-', "
        "at most 63) (got 'Spine_LB')",
        "pools[0].addresses[1]: overlaps 10.0.0.0/24 of this pool (got '10.0.0.128/25')",
        "pools[0].addresses[2]: host bits set: the network is 10.1.1.0/24 (got '10.1.1.1/24')",
        "pools[0].addresses[3]: expected CIDR, FIRST-LAST or an address (got 'nope')",
        "pools[0].addresses[4]: the range ends before it starts (got '10.2.0.9-10.2.0.1')",
        "pools[0].addresses[5]: the two ends of a range must be the same IP version "
        "(got '10.3.0.1-fd00::1')",
        "pools[0].auto_assign: expected true or false, got a string (got 'yes')",
        "pools[0].peers[0]: unknown peer; did you mean 'sw-spine-002-cmn'? (got 'sw-spine-003-cmn')",
        "pools[1].name: duplicate pool name (also pools[0]) (got 'a')",
        "pools[1].addresses[0]: overlaps 10.0.0.0/24 of pools[0] (got '10.0.0.7')",
        "pools[1].communities[0]: each half of a community must be 0..65535 (got '65533:99999')",
        "pools[2].addresses: must list at least one address range (got '<list>')",
        "pools[3].name: missing required key (got None)",
    ]


def test_parse_range_forms() -> None:
    assert parse_range("10.0.0.5") == (IPv4Address("10.0.0.5"), IPv4Address("10.0.0.5"))
    assert parse_range(" 10.0.0.1 - 10.0.0.3 ") == (IPv4Address("10.0.0.1"),
                                                    IPv4Address("10.0.0.3"))
    assert parse_range("fd00::/127") == (IPv6Address("fd00::"), IPv6Address("fd00::1"))


def test_controller_reads_a_file_without_bgp_settings(tmp_path: Path) -> None:
    path = tmp_path / "controller.yaml"
    path.write_text(
        "kubernetes: {namespace: spinelb-system}\n"
        "controller: {listen: '127.0.0.1:9474'}\n"
        "log_level: debug\n"
        "pools:\n"
        "  - {name: node-management, addresses: [10.92.100.0/24], peers: [sw-spine-001-nmn]}\n"
    )
    config = load_controller_config(path)
    assert [pool.name for pool in config.pools] == ["node-management"]
    # without peers in the file, a pool's peer names are kept unchecked
    assert config.pools[0].peers == ("sw-spine-001-nmn",)
    assert config.api.listen == "127.0.0.1:9474"
    assert config.log_level == "debug"
    assert config.kubernetes == KubernetesConfig()


def test_controller_reads_a_speaker_file_and_checks_all_of_it() -> None:
    config = parse_controller_config(speaker(pools=[{"name": "p", "addresses": ["10.9.0.0/30"]}]))
    assert config.pools[0].peers == ("sw-spine-001-cmn", "sw-spine-002-cmn")
    assert config.api.listen == "127.0.0.1:7474"  # not the speaker's API port
    found = problems(speaker(router_id="0.0.0.0",
                             pools=[{"name": "p", "addresses": ["10.9.0.0/30"]}]), controller=True)
    assert found == ["router_id: the BGP identifier must be a non-zero IPv4 address (got '0.0.0.0')"]


def test_controller_needs_pools() -> None:
    assert problems({"kubernetes": {}}, controller=True) == [
        "pools: missing required key: the controller assigns addresses from pools (got None)"
    ]
    assert problems({"pools": [], "log_level": "loud"}, controller=True) == [
        "log_level: must be one of debug, info, warning, error (got 'loud')"
    ]
