"""spinelb.deploy's documents: what the lab's speakers and controller ran, now from the inventory.

The Site is built the way the spinelb_config action plugin builds it: from
``ansible-inventory --list`` of inventories/reference-site, through the
collection's ``site_inventory`` module_utils (hostvars and groups, as Ansible
hands them to an action plugin).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_spine_bgp_frr_config import collection_module
from test_spine_model import ansible_inventory

from spinelb.config import parse_config, parse_controller_config
from spinelb.deploy import (
    ControllerOptions,
    DocumentError,
    SpeakerOptions,
    controller_document,
    speaker_document,
)
from spinelb.spine import Site, load_site, render

site_inventory: Any = collection_module("plugins.module_utils.site_inventory")

WORKERS = ("ncn-w001", "ncn-w002", "ncn-w003")
SECRET = "Md5-Only-In-The-Key-File"


def task_vars(listing: dict[str, Any], host: str) -> dict[str, Any]:
    """What an action plugin gets: every host's variables and the groups."""
    groups = {name: list(listing.get(name, {}).get("hosts", []))
              for name in ("spines", "workers", "masters")}
    return {"hostvars": listing["_meta"]["hostvars"], "groups": groups,
            "inventory_hostname": host}


@cache
def inventory_site(host: str = "ncn-w001", password: str | None = None) -> Site:
    listing = ansible_inventory("reference-site")
    site_vars, hosts, groups = site_inventory.site_arguments(task_vars(listing, host), host)
    if password is not None:
        site_vars = dict(site_vars, spinelb_bgp_password=password)
    return load_site(site_vars, hosts, groups)


def by_name(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in entries}


# lab.worker.speaker_config(site, ncn-w001, kubeconfig) at commit a4f3108, minus the
# refusal probes (announce): the document the lab's speakers ran before the roles.
LAB_NCN_W001 = """
node_name: ncn-w001
router_id: 10.252.1.10
local_asn: 65531
api: {listen: '127.0.0.1:7473'}
peers:
- {name: sw-spine-001-nmn, address: 10.252.0.2, asn: 65533, local_asn: 65531,
   source_address: 10.252.1.10, hold_time: 3, keepalive: 1, passive: false,
   families: [ipv4-unicast]}
- {name: sw-spine-002-nmn, address: 10.252.0.3, asn: 65533, local_asn: 65531,
   source_address: 10.252.1.10, hold_time: 3, keepalive: 1, passive: false,
   families: [ipv4-unicast]}
- {name: sw-spine-001-cmn, address: 10.102.5.2, asn: 65533, local_asn: 65532,
   source_address: 10.102.5.14, hold_time: 3, keepalive: 1, passive: false,
   families: [ipv4-unicast]}
- {name: sw-spine-002-cmn, address: 10.102.5.3, asn: 65533, local_asn: 65532,
   source_address: 10.102.5.14, hold_time: 3, keepalive: 1, passive: false,
   families: [ipv4-unicast]}
kubernetes: {kubeconfig: /etc/spinelb/kubeconfig}
pools:
- {name: node-management, addresses: [10.92.100.0/24],
   peers: [sw-spine-001-nmn, sw-spine-002-nmn]}
- {name: hardware-management, addresses: [10.94.100.0/24],
   peers: [sw-spine-001-nmn, sw-spine-002-nmn]}
- {name: customer-management-static, addresses: [10.102.5.60/30], auto_assign: false,
   peers: [sw-spine-001-cmn, sw-spine-002-cmn]}
- {name: customer-management, addresses: [10.102.5.64/26],
   peers: [sw-spine-001-cmn, sw-spine-002-cmn]}
- {name: customer-access, addresses: [10.102.10.128/26],
   peers: [sw-spine-001-cmn, sw-spine-002-cmn]}
"""


def test_speaker_document_of_ncn_w001_is_the_one_the_lab_ran() -> None:
    expected = yaml.safe_load(LAB_NCN_W001)
    document = speaker_document(inventory_site(), "ncn-w001",
                                SpeakerOptions(kubeconfig="/etc/spinelb/kubeconfig"))
    assert document.pop("log_level") == "info"  # the lab left it to the default
    assert by_name(document.pop("pools")) == by_name(expected.pop("pools"))  # any order
    assert document == expected


def test_controller_document_is_what_the_lab_controller_ran(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    # lab/kube.py's LabCluster.controller_document before the controller role replaced it
    lab_config: dict[str, Any] = {
        "kubernetes": {"kubeconfig": str(kubeconfig)},
        "controller": {"listen": "127.0.0.1:7474"},
        # the site's pools as the lab listed them, without peers (frozen at commit a4f3108)
        "pools": [{key: value for key, value in pool.items() if key != "peers"}
                  for pool in yaml.safe_load(LAB_NCN_W001)["pools"]],
    }
    document = controller_document(inventory_site(),
                                   ControllerOptions(kubeconfig=str(kubeconfig)))

    assert document["kubernetes"] == {**lab_config["kubernetes"],
                                      "namespace": "spinelb-system",
                                      "lease_name": "spinelb-controller"}
    assert document["controller"] == lab_config["controller"]
    assert document["log_level"] == "info"
    assert by_name(document["pools"]) == by_name(lab_config["pools"])
    assert all("peers" not in pool for pool in document["pools"])


@pytest.mark.parametrize("worker", WORKERS)
def test_speaker_document_passes_the_speakers_validation(worker: str, tmp_path: Path) -> None:
    (tmp_path / "kubeconfig").write_text("apiVersion: v1\n")
    document = speaker_document(inventory_site(), worker,
                                SpeakerOptions(kubeconfig=str(tmp_path / "kubeconfig")))
    config = parse_config(yaml.safe_load(yaml.safe_dump(document)), base_dir=tmp_path)
    assert config.node_name == worker
    assert len(config.peers) == 4  # two spines on two peering networks
    assert {pool.name: pool.peers for pool in config.pools}["customer-access"] == (
        "sw-spine-001-cmn", "sw-spine-002-cmn")
    assert not config.announcements


def test_the_password_is_read_from_password_file_and_never_in_the_document(
        tmp_path: Path) -> None:
    key_file = tmp_path / "bgp-password"
    key_file.write_text(SECRET + "\n")
    site = inventory_site(password=SECRET)
    document = speaker_document(site, "ncn-w002", SpeakerOptions(password_file=str(key_file)))

    text = yaml.safe_dump(document)
    assert SECRET not in text
    assert all(peer["password_file"] == str(key_file) for peer in document["peers"])
    config = parse_config(yaml.safe_load(text))
    assert {peer.password for peer in config.peers} == {SECRET}


def test_a_site_password_without_password_file_is_refused_without_showing_it() -> None:
    with pytest.raises(DocumentError, match="password_file") as caught:
        speaker_document(inventory_site(password=SECRET), "ncn-w001", SpeakerOptions())
    assert SECRET not in str(caught.value)


def test_no_password_file_entry_when_the_site_has_no_password() -> None:
    document = speaker_document(inventory_site(), "ncn-w001",
                                SpeakerOptions(password_file="/etc/spinelb/bgp-password"))
    assert all("password_file" not in peer for peer in document["peers"])


def test_options_reach_the_parsed_config() -> None:
    options = SpeakerOptions(
        api_listen="127.0.0.1:17473",
        listen="0.0.0.0:1179",
        log_level="debug",
        graceful_restart_time=120,
        announce=({"prefix": "192.0.2.1/32", "peers": ["sw-spine-001-nmn"]},),
        load_balancer_class="spinelb.io/bgp",
        connect_retry=0.5,
    )
    document = speaker_document(inventory_site(), "ncn-w003", options)
    config = parse_config(document)

    assert config.api.listen == "127.0.0.1:17473"
    assert config.listen is not None and (str(config.listen.address), config.listen.port) == (
        "0.0.0.0", 1179)
    assert config.log_level == "debug"
    assert config.graceful_restart is not None and config.graceful_restart.restart_time == 120
    assert [(str(a.prefix), a.peers) for a in config.announcements] == [
        ("192.0.2.1/32", ("sw-spine-001-nmn",))]
    assert config.kubernetes is not None
    assert config.kubernetes.kubeconfig is None  # in-cluster
    assert config.kubernetes.load_balancer_class == "spinelb.io/bgp"
    assert {peer.connect_retry for peer in config.peers} == {0.5}
    assert config.router_id == inventory_site().workers["ncn-w003"].addresses["nmn"]


def test_controller_options_reach_the_parsed_config() -> None:
    options = ControllerOptions(api_listen="127.0.0.1:17474", namespace="lb", lease_name="leader",
                                load_balancer_class="spinelb.io/bgp", log_level="warning")
    config = parse_controller_config(controller_document(inventory_site(), options))
    assert config.api.listen == "127.0.0.1:17474"
    assert (config.kubernetes.namespace, config.kubernetes.lease_name) == ("lb", "leader")
    assert config.kubernetes.load_balancer_class == "spinelb.io/bgp"
    assert config.log_level == "warning"
    assert [pool.name for pool in config.pools] == sorted(inventory_site().pools)


def test_a_host_that_is_no_worker_has_no_speaker_document() -> None:
    with pytest.raises(DocumentError, match="'sw-spine-001' is not a worker"):
        speaker_document(inventory_site(), "sw-spine-001", SpeakerOptions())


def test_a_bad_listen_address_is_refused() -> None:
    with pytest.raises(DocumentError, match="listen 'everywhere:179'"):
        speaker_document(inventory_site(), "ncn-w001", SpeakerOptions(listen="everywhere:179"))


# --- BFD: one site setting, both ends ------------------------------------------------------------


def bfd_site(bfd: object) -> Site:
    """The reference site with ``spinelb_bgp.bfd: bfd`` (and CSM's SVIs, which AOS-CX needs)."""
    listing = ansible_inventory("reference-site")
    site_vars, hosts, groups = site_inventory.site_arguments(task_vars(listing, "ncn-w001"),
                                                             "ncn-w001")
    networks = {name: dict(net) for name, net in site_vars["spinelb_networks"].items()}
    networks["nmn"]["vlan"], networks["cmn"]["vlan"] = 2, 6
    site_vars = dict(site_vars, spinelb_bgp=dict(site_vars["spinelb_bgp"], bfd=bfd),
                     spinelb_networks=networks)
    return load_site(site_vars, hosts, groups)


def test_every_peer_gets_the_sites_bfd_timers_the_spines_are_rendered_with() -> None:
    site = bfd_site({"min_rx_ms": 500, "min_tx_ms": 400, "multiplier": 4})
    for worker in WORKERS:
        document = speaker_document(site, worker, SpeakerOptions())
        assert [peer["bfd"] for peer in document["peers"]] == [
            {"min_rx_ms": 500, "min_tx_ms": 400, "multiplier": 4}] * 4
    spine = render(site, "sw-spine-001", "aoscx").splitlines()
    assert spine[1:5] == ["interface vlan 6", "    bfd min-transmit-interval 400",
                          "    bfd min-receive-interval 500", "    bfd detect-multiplier 4"]


def test_bfd_true_gives_the_speakers_defaults() -> None:
    document = speaker_document(bfd_site(True), "ncn-w002", SpeakerOptions())
    defaults = {"min_rx_ms": 300, "min_tx_ms": 300, "multiplier": 3}
    assert [peer["bfd"] for peer in document["peers"]] == [defaults] * 4


def test_no_bfd_key_when_the_site_has_bfd_off() -> None:
    for site in (inventory_site(), bfd_site(False)):
        document = speaker_document(site, "ncn-w001", SpeakerOptions())
        assert all("bfd" not in peer for peer in document["peers"])


def test_the_speaker_reads_the_bfd_timers_of_its_document() -> None:
    document = speaker_document(bfd_site({"min_rx_ms": 100, "min_tx_ms": 100}), "ncn-w003",
                                SpeakerOptions())
    config = parse_config(yaml.safe_load(yaml.safe_dump(document)))
    assert {(p.bfd.min_rx_ms, p.bfd.min_tx_ms, p.bfd.multiplier) for p in config.peers
            if p.bfd is not None} == {(100, 100, 3)}
    assert all(peer.bfd is not None for peer in config.peers)


# --- layer2 pools (issue 8): the pool, its interfaces and the speakers' mesh ----------------------


def layer2_site() -> Site:
    """The reference site with a layer2 pool ``lab-l2`` on the CAN segment."""
    listing = ansible_inventory("reference-site")
    site_vars, hosts, groups = site_inventory.site_arguments(task_vars(listing, "ncn-w001"),
                                                             "ncn-w001")
    pools = dict(site_vars["spinelb_pools"])
    pools["lab-l2"] = {"cidr": "10.102.10.240/29", "network": "can", "mode": "layer2",
                       "interfaces": ["bond0.can0"]}
    return load_site(dict(site_vars, spinelb_pools=pools), hosts, groups)


def test_speaker_document_has_the_layer2_pool_and_the_other_workers_as_its_mesh() -> None:
    site = layer2_site()
    document = speaker_document(site, "ncn-w002", SpeakerOptions())
    assert by_name(document["pools"])["lab-l2"] == {
        "name": "lab-l2", "addresses": ["10.102.10.240/29"], "mode": "layer2",
        "interfaces": ["bond0.can0"],
    }
    assert "mode" not in by_name(document["pools"])["customer-access"]
    assert document["layer2"] == {
        "source_address": "10.102.10.11",
        "peers": [{"node": "ncn-w001", "address": "10.102.10.10"},
                  {"node": "ncn-w003", "address": "10.102.10.12"}],
    }
    # the BGP part is the reference site's, untouched
    reference = speaker_document(inventory_site(), "ncn-w002", SpeakerOptions())
    assert {k: v for k, v in document.items() if k not in ("pools", "layer2")} == {
        k: v for k, v in reference.items() if k != "pools"}


@pytest.mark.parametrize("worker", WORKERS)
def test_the_speaker_reads_its_layer2_document(worker: str) -> None:
    site = layer2_site()
    config = parse_config(yaml.safe_load(yaml.safe_dump(
        speaker_document(site, worker, SpeakerOptions()))))
    pool = config.pool("lab-l2")
    assert (pool.mode, pool.interfaces, pool.peers) == ("layer2", ("bond0.can0",), ())
    assert config.layer2 is not None
    assert str(config.layer2.source_address) == str(site.workers[worker].addresses["can"])
    assert sorted(peer.node for peer in config.layer2.peers) == sorted(
        w for w in WORKERS if w != worker)
    assert (config.layer2.bfd.min_rx_ms, config.layer2.bfd.multiplier) == (100, 3)


def test_controller_document_has_the_layer2_pool_by_mode_only() -> None:
    document = controller_document(layer2_site(), ControllerOptions())
    assert by_name(document["pools"])["lab-l2"] == {
        "name": "lab-l2", "addresses": ["10.102.10.240/29"], "mode": "layer2"}
    config = parse_controller_config(yaml.safe_load(yaml.safe_dump(document)))
    assert config.pool("lab-l2").mode == "layer2"


def test_no_layer2_section_without_a_layer2_pool() -> None:
    assert "layer2" not in speaker_document(inventory_site(), "ncn-w001", SpeakerOptions())


def test_reconcile_leaves_layer2_addresses_out_of_the_bgp_desired_state() -> None:
    """No spine route is desired for an address the workers answer ARP for."""
    from ipaddress import IPv4Address

    from spinelb.k8s.objects import NodeInfo, service_info
    from spinelb.reconcile import desired_addresses, pool_configs

    site = layer2_site()
    configs = {pool.name: pool for pool in pool_configs(site)}
    assert (configs["lab-l2"].mode, configs["lab-l2"].peers) == ("layer2", ())
    assert configs["customer-access"].peers == ("sw-spine-001-cmn", "sw-spine-002-cmn")
    services = [service_info({
        "metadata": {"name": name, "namespace": "services"},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": address}]}},
    }) for name, address in (("web", "10.102.10.130"), ("arp", "10.102.10.241"))]
    nodes = {w: NodeInfo(name=w, ready=True, excluded=False) for w in WORKERS}
    desired = desired_addresses(site, services, nodes, [])
    assert list(desired) == [IPv4Address("10.102.10.130")]
    assert desired[IPv4Address("10.102.10.130")].announcers == WORKERS
