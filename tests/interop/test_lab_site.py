"""The reference-site lab end to end: up, converged per reference-site/README.md, failover, down.

With the ``spinelb`` speaker the checks run on the run's shared converged lab (built by
``playbooks/site.yml``, conftest.py), which the test restores; with the ``frr`` stand-in
speaker (which proves the spine side on its own) a lab of its own is built under ``slt<pid>-``
names, and also brought up twice and down twice.  Idempotence and a clean teardown of the
spinelb lab are the molecule ``site`` scenario's (tests/interop/test_molecule.py).
Assertions read FRR's JSON and the spines' kernel routes directly, not only the lab's own
verdicts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.netns import Namespace, list_namespaces, wait_for
from lab.reference_site import SiteLab
from lab.site import Host, load_site
from lab.worker import OUTSIDE_PROBE

pytestmark = pytest.mark.interop

CAN_SERVICE = IPv4Address("10.102.10.129")  # cray-s3, customer-access: learned on CMN
HMN_SERVICE = IPv4Address("10.94.100.71")  # istio-ingressgateway-hmn: learned on NMN
NMN_SERVICE = IPv4Address("10.92.100.71")
TFTP = IPv4Address("10.92.100.60")
TFTP_HMN = IPv4Address("10.94.100.60")
KEA = IPv4Address("10.92.100.222")


@pytest.fixture
def frr_lab(netns_ready: None, tmp_path: Path) -> Iterator[SiteLab]:
    """A lab of its own whose workers run FRR as the speaker (torn down after the test)."""
    lab = SiteLab(load_site(), prefix=f"slt{os.getpid()}-", run_dir=tmp_path)
    try:
        yield lab
    finally:
        lab.down()


def kernel_hops(lab: SiteLab, spine: Host, address: IPv4Address) -> set[str]:
    route = lab.ns(spine).route(f"{address}/32")
    return route.gateways if route else set()


def workers_on(lab: SiteLab, network: str, names: list[str] | None = None) -> set[str]:
    workers = lab.site.workers
    return {str(workers[n].addresses[network]) for n in names or list(workers)}


def converged_and_fails_over(lab: SiteLab, speaker: str) -> None:
    """Every session, ECMP set, single path and refusal as the README says; then ncn-w001 stops."""
    site = lab.site
    assert all(v.ok for v in lab.check())

    for spine in site.spines.values():
        router = lab.spine_router(spine)
        peers = router.bgp_peers()
        # every worker: NMN and CMN sessions established; iBGP to the other spine
        for worker in site.workers.values():
            for network in ("nmn", "cmn"):
                peer = peers[str(worker.addresses[network])]
                assert peer["state"] == "Established"
                assert peer["remoteAs"] == site.networks[network].speaker_asn
        # ECMP through each worker's address on the delivery network, though learned elsewhere
        assert kernel_hops(lab, spine, CAN_SERVICE) == workers_on(lab, "can")
        assert kernel_hops(lab, spine, HMN_SERVICE) == workers_on(lab, "hmn")
        assert kernel_hops(lab, spine, NMN_SERVICE) == workers_on(lab, "nmn")
        paths = router.bgp_paths(f"{CAN_SERVICE}/32")
        assert sum(1 for p in paths if p.get("multipath")) == 3
        # TFTP single-path through the first worker of the list; KEA only via ncn-w002
        assert kernel_hops(lab, spine, TFTP) == workers_on(lab, "nmn", ["ncn-w001"])
        assert kernel_hops(lab, spine, TFTP_HMN) == workers_on(lab, "hmn", ["ncn-w001"])
        assert kernel_hops(lab, spine, KEA) == workers_on(lab, "nmn", ["ncn-w002"])
        # refused: an address outside the pools, received but neither accepted nor installed
        assert router.bgp_paths(str(OUTSIDE_PROBE)) == []
        assert lab.ns(spine).route(str(OUTSIDE_PROBE)) is None
        received = router.json(
            f"show bgp ipv4 unicast neighbors {site.workers['ncn-w001'].addresses['cmn']}"
            " received-routes"
        )
        assert str(OUTSIDE_PROBE) in received.get("receivedRoutes", {})

    # ncn-w001 stops: it leaves the ECMP sets and TFTP moves to the next worker of its list
    lab.worker_speaker(speaker, site.workers["ncn-w001"]).stop()
    for spine in site.spines.values():
        wait_for(lambda spine=spine: kernel_hops(lab, spine, TFTP)
                 == workers_on(lab, "nmn", ["ncn-w002"]),
                 timeout=15, what=f"TFTP failover on {spine.name}")
        wait_for(lambda spine=spine: kernel_hops(lab, spine, CAN_SERVICE)
                 == workers_on(lab, "can", ["ncn-w002", "ncn-w003"]),
                 timeout=15, what=f"ECMP without ncn-w001 on {spine.name}")
        assert kernel_hops(lab, spine, TFTP_HMN) == workers_on(lab, "hmn", ["ncn-w002"])


def test_reference_site_converges_and_fails_over(healthy_lab: SiteLab) -> None:
    converged_and_fails_over(healthy_lab, "spinelb")
    # back as the run found it: the collection starts ncn-w001's speaker again
    healthy_lab.playbook("site.yml", "--limit", "ncn-w001")
    assert healthy_lab.wait_converged(60, "spinelb"), healthy_lab.show()


def test_reference_site_converges_and_fails_over_with_frr_speakers(frr_lab: SiteLab) -> None:
    assert frr_lab.up("frr", timeout=60), frr_lab.show()
    converged_and_fails_over(frr_lab, "frr")


def test_up_twice_then_down_twice_leaves_nothing(frr_lab: SiteLab) -> None:
    lab = frr_lab
    assert lab.up("frr", timeout=60), lab.show()
    assert lab.up("frr", timeout=60), lab.show()
    lab.down()
    lab.down()
    names = [lab.ns(host).name for host in lab.site.hosts] + [lab.fabric.name]
    assert not set(names) & set(list_namespaces())
    assert not list(lab.run_dir.glob("*.pid"))
    assert not any(Path("/var/run/frr", name).exists() for name in names)
    assert all(not Namespace(name).exists() for name in names)
