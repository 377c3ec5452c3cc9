"""Turning BFD off and on again, the way the playbooks do it, without one BGP session lost.

A real FRR 8.4 spine (zebra, bgpd, bfdd) and two spinelb speakers, with BFD (100 ms x 3) on
every session.  ``spinelb.fabric.spine_bgp`` (its ``main()``, with the real ``vtysh -N``)
applies the spine's intent with ``state: replaced``, as ``playbooks/site.yml`` does; the
speakers are reloaded with SIGHUP, as the speaker role does.  Off: the spine first (its
profile is shut down so bfdd says AdminDown before the neighbors' ``bfd`` lines go), then the
speakers.  On: the spine first (a BFD session that never came Up leaves FRR's BGP alone),
then the speakers (BFD starts beside the running session).

Throughout, a thread polls the spine's kernel: every speaker's route stays; at the end the
sessions are the ones from the start (FRR's established and dropped counters, and no new
Established in the speakers' logs) with BFD Up on both ends.  Takes about 15 s.
"""

from __future__ import annotations

import importlib
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from lab.frr import FrrRouter
from lab.netns import parse_routes, wait_for
from lab.topology import SpeakerHandle, Topology

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
WORKERS = 2
BFD = {"min_rx_ms": 100, "min_tx_ms": 100, "multiplier": 3}
PROFILE = """bfd
 profile spinelb
  receive-interval 100
  transmit-interval 100
  detect-multiplier 3
 exit
exit
"""


def prefix(index: int) -> str:
    return f"10.99.0.{index + 1}/32"


@pytest.fixture(scope="module")
def spine_bgp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The collection's spine_bgp module, imported the way Ansible imports it."""
    root = tmp_path_factory.mktemp("collection")
    (root / "ansible_collections" / "spinelb").mkdir(parents=True)
    (root / "ansible_collections" / "spinelb" / "fabric").symlink_to(REPO)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("ansible_collections.spinelb.fabric.plugins.modules.spine_bgp")
    finally:
        sys.path.remove(str(root))


def intent(topo: Topology, *, bfd: bool) -> str:
    """The spine's intended config, as ``spinelb.spine`` renders it with or without BFD."""
    extra = "".join(f" neighbor {a} bfd\n neighbor {a} bfd profile spinelb\n"
                    for a in topo.workers_v4) if bfd else ""
    text = topo.frr_spine_config(extra_bgp=extra)
    # datacenter defaults hide this line from the running config; out, so a rerun changes nothing
    text = text.replace(" no bgp ebgp-requires-policy\n", "")
    return (PROFILE if bfd else "") + text


def apply_spine(
    module: Any, capsys: pytest.CaptureFixture[str], spine: FrrRouter, config: str
) -> dict[str, Any]:
    """One ``state: replaced`` run of spine_bgp on the spine, as the action plugin calls it."""
    args = {"state": "replaced", "config": config, "platform": "frr",
            "pathspace": spine.ns.name, "save": False, "_ansible_diff": True}
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert not result.get("failed"), result.get("msg")
    return result


def reload_speaker(handle: SpeakerHandle, *, bfd: bool) -> None:
    """Rewrite the speaker's config with or without ``bfd`` and send SIGHUP."""
    config = yaml.safe_load(handle.config_path.read_text())
    for peer in config["peers"]:
        peer.pop("bfd", None)
        if bfd:
            peer["bfd"] = dict(BFD)
    handle.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    handle.signal(signal.SIGHUP)


def speaker_peer(handle: SpeakerHandle) -> dict[str, Any]:
    peer: dict[str, Any] = handle.status()["peers"][0]
    return peer


def speakers_are(handles: list[SpeakerHandle], bfd: str | None) -> bool:
    """Whether every speaker's session is Established with BFD in state ``bfd`` (None: off)."""
    try:
        peers = [speaker_peer(h) for h in handles]
    except Exception:  # its API is not listening yet
        return False
    return all(p["state"] == "Established" and p["bfd"] == bfd for p in peers)


def spine_bfd(spine: FrrRouter) -> dict[str, str]:
    """bfdd's sessions: peer address -> status."""
    return {p["peer"]: p["status"] for p in spine.json("show bfd peers")}


def established(log: str) -> int:
    """How many times a speaker's log says its session became Established."""
    return log.count('"new":"Established"')


def sessions(spine: FrrRouter, topo: Topology) -> dict[str, tuple[Any, Any]]:
    """FRR's count of each worker session: (connections established, connections dropped).

    (``peerUptimeEstablishedEpoch`` is now minus the uptime, so it moves by a second.)
    """
    peers = spine.bgp_peers()
    return {a: (peers[a]["connectionsEstablished"], peers[a]["connectionsDropped"])
            for a in topo.workers_v4}


class RouteWatch:
    """Polls the spine's kernel in a thread, noting every moment a worker's route is missing."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.gaps: list[str] = []
        self.polls = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stopping.is_set():
            routes = {r.dst: r.gateways for r in
                      parse_routes(self.topo.spine.ip("-j", "-4", "route", "show", "proto", "bgp"))}
            for index, address in enumerate(self.topo.workers_v4):
                if address not in routes.get(prefix(index).removesuffix("/32"), set()):
                    self.gaps.append(f"{prefix(index)} via {address} missing at poll {self.polls}")
            self.polls += 1
            self.stopping.wait(0.01)

    def __enter__(self) -> RouteWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


def test_bfd_off_and_on_keeps_every_session(
    topology: Callable[..., Topology], speaker_ready: None, spine_bgp: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topo = topology(workers=WORKERS)
    spine = topo.start_frr_spine(intent(topo, bfd=True), bfd=True)
    handles = [topo.start_speaker(i, topo.speaker_config(i, announce=[prefix(i)], bfd=dict(BFD)))
               for i in range(WORKERS)]
    workers = set(topo.workers_v4)
    # bgpd moves its BFD session to the connection's local address once Established (a new
    # bfdd session, one flap at start): wait for the session that stays
    wait_for(lambda: speakers_are(handles, "Up")
             and spine_bfd(spine) == dict.fromkeys(workers, "up")
             and spine.established() >= workers
             and all(p.get("local") == topo.spine_v4 for p in spine.json("show bfd peers")),
             timeout=30, what="sessions Established with BFD Up on both ends")
    start = sessions(spine, topo)
    logs = [established(h.log()) for h in handles]
    uptimes = [speaker_peer(h)["uptime_seconds"] for h in handles]

    with RouteWatch(topo) as watch:
        off = apply_spine(spine_bgp, capsys, spine, intent(topo, bfd=False))
        assert off["changed"]
        assert off["commands"][:5] == ["bfd", " profile spinelb", "  shutdown", " exit", "exit"]
        assert "  no shutdown" in off["commands"]
        running = spine.vtysh("show running-config")
        assert " bfd" not in running.split("router bgp")[1].split("\nexit")[0]
        assert "shutdown" not in running
        wait_for(lambda: not spine_bfd(spine), timeout=10, what="bfdd to end its sessions")
        assert not apply_spine(spine_bgp, capsys, spine, intent(topo, bfd=False))["changed"]

        for handle in handles:
            reload_speaker(handle, bfd=False)
        wait_for(lambda: speakers_are(handles, None), timeout=10, what="speakers without BFD")

        on = apply_spine(spine_bgp, capsys, spine, intent(topo, bfd=True))
        assert on["changed"] and "  shutdown" not in on["commands"]
        wait_for(lambda: spine_bfd(spine) == dict.fromkeys(workers, "down"), timeout=10,
                 what="bfdd sessions for the neighbors (Down: the speakers run none yet)")
        assert sessions(spine, topo) == start  # BFD never Up: FRR keeps BGP

        for handle in handles:
            reload_speaker(handle, bfd=True)
        wait_for(lambda: speakers_are(handles, "Up")
                 and spine_bfd(spine) == dict.fromkeys(workers, "up"),
                 timeout=10, what="BFD Up on both ends again")
        assert not apply_spine(spine_bgp, capsys, spine, intent(topo, bfd=True))["changed"]

    assert watch.polls > 10 and not watch.gaps, watch.gaps[:5]
    assert sessions(spine, topo) == start
    assert [established(h.log()) for h in handles] == logs
    assert all(speaker_peer(h)["uptime_seconds"] > before
               for h, before in zip(handles, uptimes, strict=True))
