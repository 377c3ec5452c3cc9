"""Failover on the lab with BFD 100 ms x 3 on every worker session (the lab inventory's default).

A worker dies three ways and both spines' kernels must drop its next hop for a 3-way ECMP
service address: its links taken down in its namespace (BFD on the spines notices), its
speaker SIGKILLed (the same: nothing is said), its speaker SIGTERMed (it says Cease and
withdraws). Each time the worker comes back and the address is 3-way again. The bounds asserted
are generous (a loaded CI machine); the measured values are printed and kept in
docs/resilience.md. Runs on the shared converged lab (``scl<pid>-`` names, conftest.py).
"""

from __future__ import annotations

import os
import signal
import time
from ipaddress import IPv4Address

import pytest

from lab.netns import wait_for
from lab.reference_site import SiteLab
from lab.worker import SpinelbWorker

pytestmark = pytest.mark.interop

ADDRESS = IPv4Address("10.92.100.71")  # istio-ingressgateway: NMN pool, ECMP over all three
WORKER = "ncn-w003"


@pytest.fixture(scope="module")
def lab(healthy_lab: SiteLab) -> SiteLab:
    """The run's shared converged lab (tests/interop/conftest.py); these tests restore it."""
    return healthy_lab


def hop(lab: SiteLab) -> IPv4Address:
    return lab.site.workers[WORKER].addresses["nmn"]


def everywhere(lab: SiteLab, present: bool) -> bool:
    """Whether the worker's next hop is (present) or is not in both spines' kernels."""
    return all((hop(lab) in lab.kernel_next_hops(spine, ADDRESS)) is present
               for spine in lab.site.spines.values())


def time_until_dropped(lab: SiteLab, timeout: float = 10) -> float:
    """Seconds from now until both spines' kernels no longer route through the worker."""
    started = time.monotonic()
    wait_for(lambda: everywhere(lab, False), timeout=timeout, interval=0.005,
             what=f"both spines to drop {hop(lab)} for {ADDRESS}")
    return time.monotonic() - started


def back(lab: SiteLab) -> None:
    wait_for(lambda: everywhere(lab, True), timeout=60, interval=0.05,
             what=f"both spines to route {ADDRESS} through {WORKER} again")


def test_the_lab_runs_bfd_on_every_worker_session(lab: SiteLab) -> None:
    for spine in lab.site.spines.values():
        peers = lab.spine_router(spine).json("show bfd peers json")
        up = {p["peer"] for p in peers if p.get("status") == "up"}
        workers = {str(w.addresses[n]) for w in lab.site.workers.values() for n in ("nmn", "cmn")}
        assert workers <= up, f"{spine.name}: BFD up with {sorted(up)}"
    assert everywhere(lab, True)


def test_worker_links_down_drop_its_next_hop_in_under_a_second(lab: SiteLab) -> None:
    ns = lab.ns(lab.site.workers[WORKER])
    links = [net for net in lab.site.networks if net in lab.site.workers[WORKER].addresses]
    for link in links:
        ns.link_down(link)
    try:
        took = time_until_dropped(lab)
    finally:
        for link in links:
            ns.link_up(link)
    print(f"links down -> next hop gone from both spines' kernels: {took * 1000:.0f} ms")
    assert took < 1.0  # BFD 100 ms x 3: detection 300 ms; measured figures in resilience.md
    back(lab)


def speaker_pid(lab: SiteLab) -> int:
    """The pid of the worker's speaker itself (under its supervisor)."""
    speaker = lab.worker_speaker("spinelb", lab.site.workers[WORKER])
    assert isinstance(speaker, SpinelbWorker)
    child = speaker.child_pid()
    assert child is not None, f"{WORKER}'s speaker is not running"
    return child


def test_speaker_sigkill_drops_its_next_hop_in_under_a_second(lab: SiteLab) -> None:
    child = speaker_pid(lab)
    os.kill(child, signal.SIGKILL)  # the supervisor starts it again after its backoff
    took = time_until_dropped(lab)
    print(f"speaker SIGKILL -> next hop gone from both spines' kernels: {took * 1000:.0f} ms")
    assert took < 1.0
    back(lab)


def test_speaker_sigterm_withdraws_at_once(lab: SiteLab) -> None:
    child = speaker_pid(lab)
    os.kill(child, signal.SIGTERM)  # Cease to every spine; the supervisor starts it again
    took = time_until_dropped(lab)
    print(f"speaker SIGTERM -> next hop gone from both spines' kernels: {took * 1000:.0f} ms")
    assert took < 0.5  # the bound is 0.2 s; measured in resilience.md
    back(lab)
