"""Rolling changes, decommission and uninstall on the reference-site lab, through the playbooks.

One lab (``slr<pid>-`` namespaces, so a running lab is not disturbed) is built with
``playbooks/site.yml`` and then, in order:

1. a restart-only change for ncn-w001 (its local API moves): the role drains it, so a
   thread watching both spines' kernel routes of an ECMP address sees ncn-w001 leave the
   set and come back, and never an empty set; the same run again changes nothing;
2. ``playbooks/decommission.yml``: refused without a worker, then ncn-w003's speaker is
   gone, both spines lose its neighbors and route through the two others; the same run
   again changes nothing; ``playbooks/site.yml`` brings ncn-w003 back;
3. ``playbooks/uninstall.yml`` (check mode first, which touches nothing): no speaker, no
   controller, no spinelb neighbor, route-map or prefix-list on the spines; again: no change.

The tests share the lab and run in this order (each starts from the state the previous one
leaves: the converged site).  Kubernetes mode's uninstall runs against the lab's API server
alone (test_k8s_apply's set-up): every object the roles applied is deleted, the Namespace too.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import yaml
from test_k8s_apply import PASSWORD, PLAY, run_playbook, stored
from test_k8s_apply import collections_path as collections_path  # the fixture

from lab.apiserver import running_apiserver
from lab.netns import LabError, wait_for
from lab.reference_site import SiteLab
from lab.site import load_site
from lab.topology import speaker_available

pytestmark = pytest.mark.interop

ECMP_SERVICE = IPv4Address("10.92.100.71")  # istio-ingressgateway: NMN, every worker
TFTP = IPv4Address("10.92.100.60")  # single path: the first of ncn-w001, ncn-w002, ncn-w003
RECAP_LINE = re.compile(r"^(\S+)\s+:\s+(ok=.*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def lab(netns_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SiteLab]:
    reason = speaker_available()
    if reason:
        pytest.fail(f"the spinelb speaker is not usable: {reason}")
    site_lab = SiteLab(load_site(), prefix=f"slr{os.getpid()}-",
                       run_dir=tmp_path_factory.mktemp("rolling"))
    try:
        assert site_lab.up("spinelb", timeout=60), site_lab.show()
        yield site_lab
    finally:
        site_lab.down()


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", rest)}
            for host, rest in RECAP_LINE.findall(output)}


def changed(output: str) -> dict[str, int]:
    return {host: counts["changed"] for host, counts in recap(output).items()}


def nmn(lab: SiteLab, *workers: str) -> set[IPv4Address]:
    return {lab.site.workers[w].addresses["nmn"] for w in workers}


class RouteWatch:
    """Samples both spines' kernel next hops of ``address`` in a thread until stopped."""

    def __init__(self, lab: SiteLab, address: IPv4Address) -> None:
        self.lab = lab
        self.address = address
        self.seen: dict[str, list[frozenset[IPv4Address]]] = {s: [] for s in lab.site.spines}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RouteWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, spine in self.lab.site.spines.items():
                hops = frozenset(self.lab.kernel_next_hops(spine, self.address))
                if not self.seen[name] or self.seen[name][-1] != hops:
                    self.seen[name].append(hops)
            self._stop.wait(0.01)


def test_a_restart_drains_the_worker_and_never_leaves_an_address_without_next_hops(
        lab: SiteLab) -> None:
    everyone = nmn(lab, "ncn-w001", "ncn-w002", "ncn-w003")
    moved = ("-e", "speaker_api_listen=127.0.0.1:7475", "--limit", "ncn-w001")
    with RouteWatch(lab, ECMP_SERVICE) as watch:
        output = lab.playbook("site.yml", *moved)
    assert "ncn-w001 drained: sw-spine-001 routed 15 prefixes through it" in output
    assert "no spine routes through it now" in output
    assert "ncn-w001 is back: sw-spine-001 routes 15 prefixes through it" in output
    assert changed(output)["ncn-w001"] > 0
    for spine, sets in watch.seen.items():
        assert frozenset() not in sets, f"{spine} lost every next hop: {sets}"
        assert frozenset(nmn(lab, "ncn-w002", "ncn-w003")) in sets, f"{spine}: {sets}"
        assert sets[0] == sets[-1] == everyone, f"{spine}: {sets}"
    for spine in lab.site.spines.values():
        assert lab.kernel_next_hops(spine, TFTP) == nmn(lab, "ncn-w001")

    again = lab.playbook("site.yml", *moved)
    assert set(changed(again).values()) == {0}, again
    assert "ncn-w001 drained" not in again

    # back to the inventory's settings: drained and restarted once more
    back = lab.playbook("site.yml", "--limit", "ncn-w001")
    assert "ncn-w001 drained" in back and "ncn-w001 is back" in back
    assert lab.wait_converged(30, "spinelb"), lab.show()


def test_decommission_removes_a_worker_and_site_brings_it_back(lab: SiteLab) -> None:
    site = lab.site
    w003 = site.workers["ncn-w003"]
    with pytest.raises(LabError, match="decommission needs -e worker=NAME"):
        lab.playbook("decommission.yml")
    with pytest.raises(LabError, match=r"got sw-spine-001\. Nothing was changed"):
        lab.playbook("decommission.yml", "-e", "worker=sw-spine-001")
    assert lab.worker_speaker("spinelb", w003).running()

    output = lab.playbook("decommission.yml", "-e", "worker=ncn-w003", "--diff")
    assert "ncn-w003 drained:" in output
    assert changed(output)["ncn-w003"] > 0
    assert changed(output)["sw-spine-001"] == changed(output)["sw-spine-002"] == 1
    assert not lab.worker_speaker("spinelb", w003).running()
    assert not (lab.run_dir / lab.ns(w003).name / "speaker.yaml").exists()
    gone = {str(address) for address in w003.addresses.values()}
    for spine in site.spines.values():
        assert not gone & set(lab.spine_router(spine).bgp_peers())
        assert "ncn-w003" not in lab.spine_router(spine).vtysh("show running-config")
        assert lab.kernel_next_hops(spine, ECMP_SERVICE) == nmn(lab, "ncn-w001", "ncn-w002")

    again = lab.playbook("decommission.yml", "-e", "worker=ncn-w003")
    assert set(changed(again).values()) == {0}, again

    lab.playbook("site.yml")
    assert lab.wait_converged(60, "spinelb"), lab.show()
    for spine in site.spines.values():
        assert lab.kernel_next_hops(spine, ECMP_SERVICE) == nmn(
            lab, "ncn-w001", "ncn-w002", "ncn-w003")


def test_uninstall_leaves_nothing_behind(lab: SiteLab) -> None:
    site = lab.site
    checked = lab.playbook("uninstall.yml", "--check", "--diff")
    assert changed(checked)["ncn-w001"] > 0 and changed(checked)["sw-spine-001"] > 0
    assert all(lab.worker_speaker("spinelb", w).running() for w in site.workers.values())
    assert lab.cluster.controller_running()

    lab.playbook("uninstall.yml")
    assert not any(lab.worker_speaker("spinelb", w).running() for w in site.workers.values())
    wait_for(lambda: not lab.cluster.controller_running(), timeout=10,
             what="the controller to exit")
    for spine in site.spines.values():
        router = lab.spine_router(spine)
        assert router.bgp_peers() == {}
        config = router.vtysh("show running-config")
        assert "route-map" not in config and "prefix-list" not in config, config
        assert "neighbor" not in config, config
        assert lab.kernel_next_hops(spine, ECMP_SERVICE) == set()
    for host in [*site.workers.values(), *site.masters.values()]:
        left = {p.name for p in (lab.run_dir / lab.ns(host).name).iterdir()}
        assert left <= {"speaker.log", "controller.log"}, left

    again = lab.playbook("uninstall.yml")
    assert set(changed(again).values()) == {0}, again


@pytest.mark.asyncio
async def test_kubernetes_mode_uninstall_deletes_every_object(
        tmp_path: Path, collections_path: str) -> None:
    playbook = tmp_path / "kubernetes.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    uninstall = Path(__file__).resolve().parents[2] / "playbooks" / "uninstall.yml"
    limit = ("--limit", "workers:masters")  # the reference site's spines are not reachable here
    async with running_apiserver(host="127.0.0.1") as server:
        await run_playbook(playbook, server, collections_path)
        applied = stored(server)
        assert ("daemonsets", "spinelb-system", "spinelb-speaker") in applied

        revision = server.emulator.revision
        report, checked = await run_playbook(uninstall, server, collections_path, "--check", *limit)
        assert sum(c["changed"] for c in report.values()) > 0
        assert server.emulator.revision == revision and stored(server) == applied

        report, output = await run_playbook(uninstall, server, collections_path, *limit)
        assert stored(server) == set()
        assert "spinelb-system" not in {
            n["metadata"]["name"] for n in server.emulator.objects_of("namespaces")}
        assert PASSWORD not in output and PASSWORD not in checked

        report, again = await run_playbook(uninstall, server, collections_path, *limit)
        assert sum(c["changed"] for c in report.values()) == 0, again
