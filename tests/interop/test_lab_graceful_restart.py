"""Graceful restart on the lab: a planned restart of ncn-w001's speaker loses no next hop.

The lab inventory leaves graceful restart off (``spinelb_bgp_graceful_restart: false``, see
docs/graceful-restart.md: FRR 8.4 keeps a SIGKILLed speaker's routes for the whole restart
time, BFD or not).  This module turns it on for ncn-w001 alone: its speaker config gains
``graceful_restart`` and a SIGHUP restarts its sessions with the capability (FRR spines are
helpers by default); the original config is put back at the end.  Then, while a thread reads
both spines' kernel routes every ~5 ms:

- SIGUSR2 (planned restart): TFTP 10.92.100.60 (single path through ncn-w001) and the 3-way
  ECMP 10.92.100.71 never lose ncn-w001's next hop; afterwards every session is up again,
  End-of-RIB received and no path stale (FRR's JSON);
- SIGTERM (the contrast, once): 10.92.100.60 loses ncn-w001 as its next hop;
- its links down (the node dies): BFD removes it from both spines in well under a second, GR
  keeps nothing stale;
- SIGKILL: the spines keep the routes as stale (the reason the lab leaves it off), until the
  restarted speaker, with no restart record, says F=0: then no stale path is left.

Runs on the shared converged lab (tests/interop/conftest.py ``healthy_lab``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from typing import Any

import pytest
import yaml

from lab.netns import wait_for
from lab.reference_site import SiteLab
from lab.worker import SpinelbWorker

pytestmark = pytest.mark.interop

WORKER = "ncn-w001"
TFTP = IPv4Address("10.92.100.60")  # single path: ncn-w001 first
ECMP = IPv4Address("10.92.100.71")  # istio-ingressgateway: every worker
RESTART_TIME = 60  # covers the supervisor's restart delay (1 s, doubling while unstable)


class Lab:
    """The shared lab with ncn-w001's speaker advertising graceful restart."""

    def __init__(self, site_lab: SiteLab) -> None:
        self.lab = site_lab
        self.worker = site_lab.site.workers[WORKER]
        speaker = site_lab.worker_speaker("spinelb", self.worker)
        assert isinstance(speaker, SpinelbWorker)
        self.speaker = speaker

    @property
    def hop(self) -> IPv4Address:
        return self.worker.addresses["nmn"]

    def has_hop(self, address: IPv4Address) -> bool:
        return all(self.hop in self.lab.kernel_next_hops(spine, address)
                   for spine in self.lab.site.spines.values())

    def child(self) -> int:
        pid = self.speaker.child_pid()
        assert pid is not None, f"{WORKER}'s speaker is not running"
        return pid

    def neighbors(self) -> list[tuple[Any, str]]:
        """(spine router, address) of every session of ncn-w001."""
        return [(self.lab.spine_router(spine), str(self.worker.addresses[net]))
                for spine in self.lab.site.spines.values()
                for net in ("nmn", "cmn")]

    def gr_state(self, router: Any, address: str) -> dict[str, Any]:
        data: dict[str, dict[str, Any]] = router.json(
            f"show bgp ipv4 neighbors {address} graceful-restart")
        return data.get(address, {})

    def stale_paths(self) -> list[str]:
        """Prefixes with a stale path from ncn-w001 on any spine."""
        stale = []
        for router, address in self.neighbors():
            routes = router.json(f"show bgp ipv4 unicast neighbors {address} routes").get(
                "routes", {})
            for prefix, paths in routes.items():
                if any(path.get("stale") for path in paths):
                    stale.append(f"{prefix} from {address}")
        return stale

    def restarted_cleanly(self, gr: bool = True) -> bool:
        """Every session up, advertising GR as asked, End-of-RIB in, nothing stale."""
        for router, address in self.neighbors():
            peer = router.json(f"show bgp ipv4 neighbors {address}").get(address, {})
            if peer.get("bgpState") != "Established":
                return False
            state = self.gr_state(router, address)
            if (state.get("remoteGrMode") == "Restart") is not gr:
                return False
            if gr and not state.get("ipv4Unicast", {}).get("endOfRibStatus", {}).get(
                    "endOfRibRecv"):
                return False
        return not self.stale_paths() and self.has_hop(TFTP) and self.has_hop(ECMP)


class Poller(threading.Thread):
    """Reads both spines' kernel routes every ~5 ms; records when ncn-w001's hop was missing."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.missing: list[tuple[float, str]] = []
        self.samples = 0
        self._done = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._done.is_set():
            for address in (TFTP, ECMP):
                if not self.lab.has_hop(address):
                    self.missing.append((time.monotonic() - started, str(address)))
            self.samples += 1
            self._done.wait(0.005)

    def stop(self) -> None:
        self._done.set()
        self.join(10)


@pytest.fixture(scope="module")
def lab(healthy_lab: SiteLab) -> Iterator[Lab]:
    """ncn-w001 with graceful restart on for this module; its own config again afterwards."""
    gr_lab = Lab(healthy_lab)
    config_path = gr_lab.speaker.config_path
    original = config_path.read_text()
    document = yaml.safe_load(original)
    document["graceful_restart"] = {"restart_time": RESTART_TIME,
                                    "state_file": str(gr_lab.speaker.host_dir / "gr.json")}
    config_path.write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        gr_lab.speaker.signal(signal.SIGHUP)  # the supervisor passes it on: sessions reset
        wait_for(gr_lab.restarted_cleanly, timeout=60, interval=0.2,
                 what=f"{WORKER}'s sessions back with graceful restart")
        yield gr_lab
    finally:
        config_path.write_text(original)
        gr_lab.speaker.signal(signal.SIGHUP)
        wait_for(lambda: gr_lab.restarted_cleanly(gr=False), timeout=60, interval=0.2,
                 what=f"{WORKER}'s sessions back without graceful restart")
        assert healthy_lab.wait_converged(60, "spinelb"), healthy_lab.show()


def test_planned_restart_never_loses_the_next_hop(lab: Lab) -> None:
    before = lab.child()
    poller = Poller(lab)
    poller.start()
    try:
        started = time.monotonic()
        os.kill(before, signal.SIGUSR2)
        wait_for(lambda: lab.speaker.child_pid() not in (None, before), timeout=60,
                 interval=0.05, what=f"{WORKER}'s speaker started again")
        wait_for(lab.restarted_cleanly, timeout=60, interval=0.1,
                 what="sessions up with End-of-RIB and no stale path")
        took = time.monotonic() - started
    finally:
        poller.stop()
    print(f"planned restart: back in {took:.2f} s, {poller.samples} samples, "
          f"{len(poller.missing)} without {WORKER}")
    assert poller.samples >= 20  # it kept reading (fewer on a loaded machine); none missing:
    assert poller.missing == []
    for router, address in lab.neighbors():  # the restarted speaker said R=1 and F=1
        state = lab.gr_state(router, address)
        assert state.get("rBit") is True, (address, state)
        assert state["ipv4Unicast"].get("fBit") is True, (address, state)


def test_sigterm_restart_loses_the_next_hop(lab: Lab) -> None:
    os.kill(lab.child(), signal.SIGTERM)  # Cease and withdraw: fast failover, by design
    wait_for(lambda: not lab.has_hop(TFTP), timeout=10, interval=0.005,
             what=f"{TFTP} to leave {WORKER}")
    wait_for(lab.restarted_cleanly, timeout=60, interval=0.1, what=f"{WORKER} back")


def test_sigkill_leaves_stale_routes_until_the_restarted_speaker_says_f0(lab: Lab) -> None:
    before = lab.child()
    os.kill(before, signal.SIGKILL)  # no record: the next start says F=0
    wait_for(lambda: bool(lab.stale_paths()), timeout=5, interval=0.01,
             what="the spines to keep ncn-w001's routes as stale")
    assert lab.has_hop(TFTP)  # kept: why the lab inventory leaves graceful restart off
    wait_for(lambda: lab.speaker.child_pid() not in (None, before), timeout=60,
             interval=0.05, what=f"{WORKER}'s speaker started again")
    wait_for(lab.restarted_cleanly, timeout=60, interval=0.1,
             what="no stale path once the new speaker's OPEN said F=0")
    for router, address in lab.neighbors():  # no planned restart was claimed
        # (F is not checked here: FRR 8.4 drops each BFD session once right after it comes up,
        # docs/bfd.md, and the same process's next OPEN rightly says F=1: it kept its table)
        assert lab.gr_state(router, address).get("rBit") is False


def test_a_dead_worker_is_removed_by_bfd_even_with_graceful_restart(lab: Lab) -> None:
    """The node itself gone (its links down, nothing said): BFD removes it, GR keeps nothing."""
    ns = lab.lab.ns(lab.worker)
    links = [net for net in lab.lab.site.networks if net in lab.worker.addresses]
    for link in links:
        ns.link_down(link)
    started = time.monotonic()
    try:
        wait_for(lambda: all(lab.hop not in lab.lab.kernel_next_hops(spine, ECMP)
                             for spine in lab.lab.site.spines.values()),
                 timeout=10, interval=0.005, what=f"both spines to drop {WORKER} for {ECMP}")
        took = time.monotonic() - started
        assert not lab.has_hop(TFTP)
    finally:
        for link in links:
            ns.link_up(link)
    print(f"graceful restart on, links down: {WORKER} gone from both spines in "
          f"{took * 1000:.0f} ms")
    assert took < 1.0  # BFD 100 ms x 3 ends the session with its routes (no stale path)
    wait_for(lab.restarted_cleanly, timeout=60, interval=0.1, what=f"{WORKER} back")
