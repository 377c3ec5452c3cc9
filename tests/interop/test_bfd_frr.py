"""spinelb's BFD against FRR bfdd: handshake, 100 ms timers, detection on link loss, bfdd restart.

Two namespaces joined by a veth pair: FRR (zebra + bfdd) in one, ``python -m
spinelb.bfd`` in the other, printing its state changes as JSON lines stamped
with the host's monotonic clock, so the time from the fault to our Down is
measured against the moment the test caused it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lab.frr import FrrRouter, stop_stale
from lab.netns import Namespace, list_namespaces, pid_alive, read_pid_file, stop_pid, veth, wait_for

pytestmark = pytest.mark.interop

PREFIX = f"bfd{os.getpid()}-"
FRR_ADDRESS, SPINELB_ADDRESS = "10.77.0.1", "10.77.0.2"
LINK = "bfd0"
DETECTION_BOUND = 1.5  # seconds; 3 x 100 ms plus generous scheduling margin

FRR_CONFIG = f"""\
frr defaults datacenter
bfd
 peer {SPINELB_ADDRESS} local-address {FRR_ADDRESS}
  receive-interval 100
  transmit-interval 100
  detect-multiplier 3
 exit
exit
"""


def sweep_stale() -> None:
    """Remove ``bfd<pid>-*`` namespaces (and their FRR) left by test runs that are gone."""
    for name in list_namespaces():
        match = re.fullmatch(r"bfd(\d+)-.*", name)
        if match and not pid_alive(int(match.group(1))):
            stop_stale(name)
            Namespace(name).delete()


@dataclass
class BfdLab:
    frr_ns: Namespace
    our_ns: Namespace
    frr: FrrRouter
    log: Path
    pid: int = 0

    def events(self, kind: str) -> list[dict[str, Any]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        # a line still being written has no closing brace yet
        records = [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]
        return [r for r in records if r.get("event") == kind]

    def our_timers(self) -> dict[str, Any]:
        timers = self.events("timers")
        return timers[-1] if timers else {}

    def our_state(self) -> str:
        states = self.events("state")
        return states[-1]["new"] if states else "Down"

    def frr_peer(self) -> dict[str, Any]:
        peers = self.frr.json("show bfd peers")
        return next((p for p in peers if p.get("peer") == SPINELB_ADDRESS), {})

    def wait_up(self, timeout: float = 10) -> None:
        wait_for(
            lambda: self.our_state() == "Up" and self.frr_peer().get("status") == "up",
            timeout=timeout, what="BFD Up on both sides",
        )

    def our_down_after(self, t0: float) -> dict[str, Any]:
        """Our first Down at or after ``t0`` ({} while there is none)."""
        downs = [e for e in self.events("state") if e["at"] >= t0 and e["new"] == "Down"]
        return downs[0] if downs else {}

    def wait_our_down_after(self, t0: float, timeout: float = 5) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(
            lambda: self.our_down_after(t0),
            timeout=timeout, interval=0.02, what="spinelb's BFD Down",
        )
        return found


@pytest.fixture
def lab(netns_ready: None, tmp_path: Path) -> Iterator[BfdLab]:
    sweep_stale()
    frr_ns, our_ns = Namespace(PREFIX + "frr"), Namespace(PREFIX + "spl")
    frr = FrrRouter(frr_ns, daemons=("zebra", "bfdd"))
    bfd = BfdLab(frr_ns, our_ns, frr, tmp_path / "spinelb-bfd.log")
    try:
        frr_ns.create()
        our_ns.create()
        veth(frr_ns, LINK, our_ns, LINK)
        frr_ns.add_address(LINK, f"{FRR_ADDRESS}/30")
        our_ns.add_address(LINK, f"{SPINELB_ADDRESS}/30")
        frr.start(FRR_CONFIG)
        proc = our_ns.popen([
            sys.executable, "-m", "spinelb.bfd", "--local", SPINELB_ADDRESS, "--peer", FRR_ADDRESS,
            "--min-tx-ms", "100", "--min-rx-ms", "100", "--multiplier", "3",
        ], log=bfd.log)
        bfd.pid = proc.pid
        yield bfd
    finally:
        if bfd.pid:
            stop_pid(bfd.pid, expect="spinelb.bfd")
        frr.cleanup()
        our_ns.delete()
        frr_ns.delete()


def test_bfd_against_frr_bfdd(lab: BfdLab) -> None:
    lab.wait_up()

    # Both ends agree on 100 ms once the Poll/Final exchanges after Up are done.
    wait_for(
        lambda: lab.our_timers().get("transmit_interval_ms") == 100.0
        and lab.our_timers().get("detection_time_ms") == 300.0,
        timeout=5, what="spinelb's negotiated 100 ms x 3",
    )
    wait_for(
        lambda: lab.frr_peer().get("remote-transmit-interval") == 100
        and lab.frr_peer().get("remote-receive-interval") == 100,
        timeout=5, what="bfdd's view of our 100 ms timers",
    )
    frr_view = lab.frr_peer()
    assert frr_view["transmit-interval"] == 100
    assert frr_view["receive-interval"] == 100
    assert frr_view["remote-detect-multiplier"] == 3
    assert frr_view["remote-id"] == lab.our_timers()["local_discriminator"]

    # The link goes down on bfdd's side: our detection time (300 ms) runs out.
    t0 = time.monotonic()
    lab.frr_ns.link_down(LINK)
    down = lab.wait_our_down_after(t0)
    measured = down["at"] - t0
    print(f"\nveth down -> spinelb BFD Down (diag {down['diag']}): {measured * 1000:.0f} ms")
    assert down["diag"] == 1
    assert measured < DETECTION_BOUND

    lab.frr_ns.link_up(LINK)
    lab.wait_up()

    # bfdd dies: Down with diag 1 again; bfdd restarted: Up again.
    pid = read_pid_file(lab.frr.pid_file("bfdd"))
    assert pid is not None
    t0 = time.monotonic()
    stop_pid(pid, expect=f"-N {lab.frr_ns.name}", sig=signal.SIGKILL)
    down = lab.wait_our_down_after(t0)
    measured = down["at"] - t0
    print(f"bfdd killed -> spinelb BFD Down (diag {down['diag']}): {measured * 1000:.0f} ms")
    assert down["diag"] == 1
    assert measured < DETECTION_BOUND

    lab.frr.start(FRR_CONFIG)
    lab.wait_up()

    # Our side stopped (SIGTERM): bfdd hears AdminDown, not a detection timeout.
    assert stop_pid(lab.pid, expect="spinelb.bfd")
    wait_for(lambda: lab.frr_peer().get("status") == "down", timeout=5,
             what="bfdd's peer down after our AdminDown")
    frr_view = lab.frr_peer()
    assert frr_view["remote-diagnostic"] == "administratively down"
    assert frr_view["diagnostic"] == "neighbor signaled session down"
