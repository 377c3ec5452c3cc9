"""playbooks/verify.yml and reconcile.yml on the lab: each verdict from a real fault, then repaired.

Every fault is made the way an operator or an outage makes it (a speaker
stopped, a neighbor deleted with vtysh, a static route typed on a spine, a
Service's status written while the controller is down, a route-map edited by
hand); ``verify.yml`` must name it with the right verdict and evidence, and
``reconcile.yml`` (with ``spines.yml`` where the fault is spine configuration)
must bring the site back to every address ``ok``.  Runs on the shared converged lab
(``scl<pid>-`` names, conftest.py).
"""

from __future__ import annotations

import json
import re
import signal
import time

import pytest

from lab.frr import FrrRouter
from lab.netns import wait_for
from lab.reference_site import SiteLab

pytestmark = pytest.mark.interop

# the seed's 16 addresses and the lab's layer2 Service's (lab/layer2.py; verify.yml judges it by
# its owner's answer, docs/layer2.md)
HEALTHY = "17 addresses: ok 17"
KEA = "10.92.100.222"  # Local policy: only ncn-w002 has an endpoint
TFTP = "10.92.100.60"  # requested by services/cray-tftp
CMN_GATEWAY = "istio-ingressgateway-cmn"  # istio-system; auto-assigned from its pool
PROBE = "10.92.100.255"  # the lab's refusal probe: an NMN pool address sent on CMN sessions


@pytest.fixture(scope="module")
def lab(healthy_lab: SiteLab) -> SiteLab:
    """The run's shared converged lab (tests/interop/conftest.py); these tests restore it."""
    return healthy_lab


def failed_verify(lab: SiteLab, *args: str) -> str:
    """The whole output of a verify.yml run that must fail."""
    run = lab.run_playbook("verify.yml", *args)
    assert run.returncode != 0, run.stdout[-3000:]
    return run.stdout


def verified(lab: SiteLab, timeout: float = 30) -> str:
    """Run verify.yml until it passes (a repair converges in well under a second; a verify run
    takes a few); the last output."""
    deadline = time.monotonic() + timeout
    while True:
        run = lab.run_playbook("verify.yml")
        if run.returncode == 0:
            return run.stdout
        assert time.monotonic() < deadline, f"verify.yml still fails after {timeout}s:\n" + (
            run.stdout[-4000:])


def reconciled(lab: SiteLab, *args: str) -> str:
    """reconcile.yml's whole output, whether it passed or failed (what it did is in either)."""
    return lab.run_playbook("reconcile.yml", *args).stdout


def frr(lab: SiteLab, spine: str) -> FrrRouter:
    return lab.spine_router(lab.site.spines[spine])


def address(lab: SiteLab, worker: str, network: str) -> str:
    return str(lab.site.workers[worker].addresses[network])


def test_verify_reports_every_seed_address_ok(lab: SiteLab) -> None:
    output = lab.playbook("verify.yml")
    assert HEALTHY in output
    assert "sessions: 14 of 14 established" in output
    # KEA: only ncn-w002 has an endpoint, so one next hop, its NMN address, on both spines
    assert re.search(r"10\.92\.100\.222\s+ok\s+node-management\s+1/1\s+1/1\s+10\.252\.1\.11\s",
                     output)
    assert re.search(r"10\.92\.100\.71\s+ok\s+node-management\s+3/3\s+3/3\s+"
                     r"10\.252\.1\.10 10\.252\.1\.11 10\.252\.1\.12\s", output)


def test_verify_and_reconcile_change_nothing_on_a_healthy_site(lab: SiteLab) -> None:
    recap = lab.playbook("verify.yml", "--check")
    assert not re.search(r"changed=[1-9]", recap)
    output = lab.playbook("reconcile.yml")
    assert not re.search(r"changed=[1-9]", output), output[-3000:]
    assert "repairs done:" in output


def test_a_stopped_speaker_is_not_announced_then_started_by_reconcile(lab: SiteLab) -> None:
    lab.worker_speaker("spinelb", lab.site.workers["ncn-w001"]).stop()
    output = failed_verify(lab)
    # every address ncn-w001 should announce; KEA (only from ncn-w002) stays ok, and so does the
    # layer2 address, which ncn-w003 answers
    assert "17 addresses: not_announced 15, ok 2" in output, output[-3000:]
    assert "speakers unreachable: ncn-w001" in output
    assert "ncn-w001: speaker unreachable; it should announce (Cluster policy, node Ready)" in output
    # the spines' side of the same fault: two of three next hops, its sessions down
    assert "sw-spine-001: 2 of 3 next hops; lacks 10.102.10.10 (ncn-w001 can)" in output
    assert "sessions: 10 of 14 established" in output

    check = reconciled(lab, "--check")
    assert not lab.worker_speaker("spinelb", lab.site.workers["ncn-w001"]).running()
    assert "Start it with the speaker role" in check
    output = reconciled(lab)
    assert re.search(r"ncn-w001\s*: ok=\d+\s+changed=[1-9]", output), output[-3000:]
    assert lab.worker_speaker("spinelb", lab.site.workers["ncn-w001"]).running()
    assert HEALTHY in verified(lab)


def test_a_neighbor_deleted_on_the_spines_is_missing_then_restored(lab: SiteLab) -> None:
    # on both spines: with one left, the other spine still installs KEA over iBGP (ok)
    neighbor = address(lab, "ncn-w002", "nmn")
    for spine in lab.site.spines:
        frr(lab, spine).vtysh("configure terminal", f"router bgp {lab.site.switch_asn}",
                              f"no neighbor {neighbor}")
    output = failed_verify(lab)
    kea = re.search(rf"{re.escape(KEA)}\s+(\w+)", output)
    assert kea and kea.group(1) == "missing", output[-3000:]
    for spine in lab.site.spines:
        assert f"{spine}: no neighbor ncn-w002-nmn ({neighbor}) configured" in output
        assert re.search(rf"{spine}\s+ncn-w002-nmn\s+\S+\s+\S+\s+absent", output), output
    assert re.search(r"10\.92\.100\.71\s+not_ecmp", output), output[-3000:]

    # reconcile cannot re-add a neighbor: it says so, and what to run
    left = reconciled(lab)
    assert (f"sw-spine-001: neighbor ncn-w002-nmn ({neighbor}) is missing: run "
            "playbooks/spines.yml -e spine_state=replaced") in left, left[-3000:]
    lab.playbook("spines.yml")
    # the speaker connects again now instead of after its backoff
    output = reconciled(lab)
    assert HEALTHY in verified(lab), output[-3000:]


def test_a_static_route_to_a_pool_address_on_a_spine_is_stale_then_removed(
        lab: SiteLab) -> None:
    hop = address(lab, "ncn-w003", "nmn")
    frr(lab, "sw-spine-002").vtysh("configure terminal", f"ip route 10.92.100.99/32 {hop}")
    output = failed_verify(lab)
    assert re.search(r"10\.92\.100\.99\s+stale", output), output[-3000:]
    assert (f"sw-spine-002: installed via {hop} (ncn-w003 nmn) and received from no BGP "
            "neighbor (a static route)") in output
    assert "18 addresses: ok 17, stale 1" in output

    lab.playbook("spines.yml")  # spinelb owns the pools' addresses on the spines
    assert "10.92.100.99" not in frr(lab, "sw-spine-002").vtysh("show running-config")
    assert HEALTHY in verified(lab)


def test_service_status_written_behind_the_controllers_back_then_reassigned(
        lab: SiteLab) -> None:
    cluster = lab.cluster
    cluster.stop_controller()
    assert not cluster.controller_running()
    patch = ["patch", "service", "--subresource=status", "--type=merge"]
    cluster.kubectl(*patch, "-n", "istio-system", CMN_GATEWAY, "-p",
                    json.dumps({"status": {"loadBalancer": {"ingress": None}}}))
    cluster.kubectl(*patch, "-n", "services", "cray-tftp", "-p",
                    json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "10.1.2.3"}]}}}))
    output = failed_verify(lab)
    assert re.search(rf"istio-system/{CMN_GATEWAY}\s+pending", output), output[-3000:]
    assert re.search(r"10\.1\.2\.3\s+outside_pools", output), output[-3000:]
    assert "10.1.2.3 is in no pool of site" in output

    output = reconciled(lab)
    assert "Start it with the controller role" in output
    assert cluster.controller_running()
    output = verified(lab)
    assert HEALTHY in output
    assert re.search(rf"{re.escape(TFTP)}\s+ok", output)


def test_a_route_map_edited_to_accept_an_nmn_address_on_a_cmn_session_is_leaked(
        lab: SiteLab) -> None:
    # the probe is ignored by the lab's verify; judged here, it is stale (a static announcement
    # no Service has) until a hand-edited route-map lets it in on the CMN session: leaked
    judged = ["-e", json.dumps({"spinelb_verify_ignore": ["10.102.5.63/32", "192.0.2.1/32"]})]
    before = failed_verify(lab, *judged)
    assert re.search(rf"{re.escape(PROBE)}\s+stale", before), before[-3000:]
    spine, session = frr(lab, "sw-spine-001"), address(lab, "ncn-w001", "cmn")
    # route-map changes apply only when a session is cleared (FRR's delay-timer 0), so what
    # the repair does is seen, not FRR's own re-evaluation a few seconds later
    spine.vtysh("configure terminal", "bgp route-map delay-timer 0")
    try:
        spine.vtysh("configure terminal", "route-map ncn-w001-cmn permit 5", "exit",
                    f"do clear bgp {session} soft")
        output = failed_verify(lab, *judged)
        assert re.search(rf"{re.escape(PROBE)}\s+leaked", output), output[-3000:]
        assert (f"sw-spine-001: received from ncn-w001-cmn ({session}), a cmn session; pool "
                "node-management is carried by nmn sessions only") in output
        # the entry skips the next-hop rewrite too: the CAN addresses via ncn-w001's CMN address
        assert re.search(r"10\.102\.10\.129\s+wrong_next_hop", output), output[-3000:]

        # replaced: also what was added by hand inside spinelb's route-maps (merged only adds)
        lab.playbook("spines.yml", "-e", "spine_state=replaced")
        assert "permit 5" not in spine.vtysh("show running-config")
        still = failed_verify(lab, *judged)  # the route-map is right, the table not yet
        assert re.search(rf"{re.escape(PROBE)}\s+leaked", still), still[-3000:]
        output = reconciled(lab, *judged)  # re-applies it to what the session holds now
        assert (f"sw-spine-001: soft_clear(spine sw-spine-001, neighbor {session}): re-apply "
                "the route-map of ncn-w001-cmn") in output, output[-3000:]
        # judged, the probe is also a static announcement no Service has: each worker
        # withdraws it until its config file is loaded again, and a person is told
        for worker in lab.site.workers:
            assert (f"{worker}: withdraw_static(worker {worker}, prefix {PROBE}/32): a pool's "
                    "address no Service has") in output, output[-3000:]
        assert f"remove {PROBE}/32 from the speaker's static announcements" in output
        assert HEALTHY in verified(lab)
        # gone from what the spine received on the session (kept even where refused)
        received = f"show bgp ipv4 unicast neighbors {session} received-routes json"
        assert PROBE not in json.dumps(spine.json(received))

        # the probe is the lab's on purpose: a reload of each speaker's file brings it back
        for worker in lab.site.workers.values():
            lab.worker_speaker("spinelb", worker).signal(signal.SIGHUP)
        wait_for(lambda: PROBE in json.dumps(spine.json(received)), timeout=30,
                 what="the probe back on the session after each speaker's reload")
        after = failed_verify(lab, *judged)
        assert re.search(rf"{re.escape(PROBE)}\s+stale", after), after[-3000:]
    finally:
        spine.vtysh("configure terminal", "no bgp route-map delay-timer")
