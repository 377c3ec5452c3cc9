"""playbooks/spines.yml against the lab's FRR spines, started empty: only the collection configures them.

The reference site is built under ``sbp<pid>-`` namespace names (so a running lab is
not disturbed); each spine's FRR runs in the pathspace of its namespace and starts
with no configuration at all.  The playbook reaches it through
``spine_frr_pathspace``.  No speakers run: the assertions are about the spines'
configuration, read back from FRR's JSON.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.netns import sh, wait_for
from lab.reference_site import SiteLab
from lab.site import load_site

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
PREFIX = f"sbp{os.getpid()}-"
SPINES = ("sw-spine-001", "sw-spine-002")
# ncn-w003's sessions: NMN and CMN
W003 = {"10.252.1.12", "10.102.5.16"}
# Static routes added by hand on sw-spine-001 (next hop ncn-w001's CMN address, connected):
# to addresses of the node-management (NMN) and customer-management (CMN) pools, which
# spines.yml removes, and beside them a pool's /24 and a /32 outside every pool, which it keeps.
HOP = "10.102.5.14"
STALE = ("10.92.100.71/32", "10.102.5.71/32")
KEPT = ("10.92.100.0/24", "192.0.2.71/32")


@pytest.fixture(scope="module")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path where ``spinelb.fabric`` is this repository."""
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "spinelb").mkdir(parents=True)
    (root / "ansible_collections" / "spinelb" / "fabric").symlink_to(REPO)
    return root


@pytest.fixture
def empty_spines(netns_ready: None, tmp_path: Path) -> Iterator[SiteLab]:
    """The site's namespaces and links, with FRR on each spine running no configuration."""
    lab = SiteLab(load_site(), prefix=PREFIX, run_dir=tmp_path)
    lab.down()
    try:
        lab.build_network()
        for spine in lab.site.spines.values():
            lab.spine_router(spine).start("")
        yield lab
    finally:
        lab.down()


def playbook(collections: Path, inventory: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    pathspace = json.dumps({"spine_frr_pathspace": PREFIX + "{{ inventory_hostname }}"})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_RETRY_FILES_ENABLED="0")
    return subprocess.run(
        [PLAYBOOK, "-i", str(inventory), "playbooks/spines.yml", "-e", pathspace, *args],
        cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=240,
    )


def recap(run: subprocess.CompletedProcess[str]) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host; fails the test with the output when the play failed."""
    assert run.returncode == 0, run.stdout + run.stderr
    counters: dict[str, dict[str, int]] = {}
    for host, rest in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", run.stdout, re.MULTILINE):
        counters[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", rest)}
    assert set(counters) == set(SPINES), run.stdout
    return counters


def bgpd_json(lab: SiteLab, spine: str, command: str) -> Any:
    return json.loads(sh(["vtysh", "-N", lab.ns(spine).name, "-d", "bgpd", "-c", command]))


def neighbors(lab: SiteLab, spine: str) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = bgpd_json(lab, spine, "show bgp neighbors json")
    return data


def route_maps(lab: SiteLab, spine: str) -> set[str]:
    return set(bgpd_json(lab, spine, "show route-map json").get("BGP", {}))


def running(lab: SiteLab, spine: str) -> str:
    return sh(["vtysh", "-N", lab.ns(spine).name, "-c", "show running-config"])


def without_worker(tmp_path: Path, worker: str) -> Path:
    """A copy of inventories/lab with ``worker`` decommissioned (and off the single-path lists)."""
    inventory = tmp_path / "inventory"
    shutil.copytree(REPO / "inventories" / "lab", inventory)
    hosts = inventory / "hosts.yml"
    hosts.write_text(hosts.read_text().replace(f"        {worker}:\n", ""))
    (inventory / "host_vars" / f"{worker}.yml").unlink()
    site = inventory / "group_vars" / "all" / "site.yml"
    site.write_text(site.read_text().replace(f", {worker}]", "]"))
    return inventory


def test_spines_playbook_configures_keeps_and_prunes_the_lab_spines(
        empty_spines: SiteLab, collections: Path, tmp_path: Path) -> None:
    lab = empty_spines
    site = lab.site
    workers = {str(w.addresses[n.name]): f"{w.name}-{n.name}"
               for w in site.workers.values() for n in site.peering_networks}

    # from nothing
    first = recap(playbook(collections, "inventories/lab"))
    assert all(first[s]["changed"] == 1 for s in SPINES), first
    for spine, other in (SPINES, SPINES[::-1]):
        peers = neighbors(lab, spine)
        ibgp = str(site.spines[other].addresses["cmn"])
        assert set(peers) == set(workers) | {ibgp}
        assert peers[ibgp]["remoteAs"] == site.switch_asn
        for address, route_map in workers.items():
            network = route_map.rsplit("-", 1)[1]
            assert peers[address]["remoteAs"] == site.networks[network].speaker_asn
            assert peers[address]["nbrDesc"] == route_map
            family = peers[address]["addressFamilyInfo"]["ipv4Unicast"]
            assert family["routeMapForIncomingAdvertisements"] == route_map
        assert route_maps(lab, spine) == set(workers.values())

    # a second run changes nothing
    again = recap(playbook(collections, "inventories/lab"))
    assert all(again[s]["changed"] == 0 for s in SPINES), again

    # someone else's objects on the spine, which spinelb must leave alone
    spine1 = lab.ns(SPINES[0]).name
    sh(["vtysh", "-N", spine1, "-c", "configure terminal",
        "-c", "ip prefix-list their-list seq 5 permit 192.0.2.0/24",
        "-c", "route-map their-policy permit 10",
        "-c", "exit", "-c", "router bgp 65533",
        "-c", "neighbor 192.0.2.1 remote-as 64999",
        "-c", "neighbor 192.0.2.1 description someone-elses-peer"])
    decommissioned = without_worker(tmp_path, "ncn-w003")

    # check mode with the worker gone: reports the diff, changes nothing
    before = {s: running(lab, s) for s in SPINES}
    check = playbook(collections, decommissioned, "-e", "spine_state=overridden",
                     "--check", "--diff")
    counters = recap(check)
    assert all(counters[s]["changed"] == 1 for s in SPINES), counters
    assert "-route-map ncn-w003-nmn permit 10" in check.stdout
    assert "- neighbor 10.252.1.12 remote-as 65531" in check.stdout
    assert {s: running(lab, s) for s in SPINES} == before

    # overridden removes exactly the worker's neighbors and route-maps
    pruned = recap(playbook(collections, decommissioned, "-e", "spine_state=overridden"))
    assert all(pruned[s]["changed"] == 1 for s in SPINES), pruned
    for spine, other in (SPINES, SPINES[::-1]):
        ibgp = str(site.spines[other].addresses["cmn"])
        kept = (set(workers) - W003) | {ibgp}
        if spine == SPINES[0]:
            kept.add("192.0.2.1")
        assert set(neighbors(lab, spine)) == kept
        expected_maps = {m for m in workers.values() if not m.startswith("ncn-w003-")}
        if spine == SPINES[0]:
            expected_maps.add("their-policy")
        # bgpd drops a deleted route-map on its route-map delay timer (5 s by default)
        wait_for(lambda spine=spine, want=expected_maps: route_maps(lab, spine) == want,
                 timeout=20, what=f"{spine}'s route-maps to be {sorted(expected_maps)}")
    assert "ip prefix-list their-list seq 5 permit 192.0.2.0/24" in running(lab, SPINES[0])

    # and the pruned site is stable too
    final = recap(playbook(collections, decommissioned, "-e", "spine_state=overridden"))
    assert all(final[s]["changed"] == 0 for s in SPINES), final


def test_spines_playbook_removes_static_routes_to_pool_addresses_only(
        empty_spines: SiteLab, collections: Path) -> None:
    lab = empty_spines
    spine = lab.ns(SPINES[0])
    recap(playbook(collections, "inventories/lab"))

    config = ["configure terminal"]
    config += [f"ip route {prefix} {HOP}" for prefix in STALE + KEPT]
    config += ["vrf CSM", f"ip route 10.92.100.72/32 {HOP}", "exit-vrf"]  # FRR keeps it unused
    sh(["vtysh", "-N", spine.name, *(arg for line in config for arg in ("-c", line))])
    for prefix in STALE + KEPT:
        wait_for(lambda prefix=prefix: spine.route(prefix) is not None, timeout=10,
                 what=f"the static route to {prefix} in {spine.name}'s kernel table")

    before = running(lab, SPINES[0])
    check = playbook(collections, "inventories/lab", "--check", "--diff")
    assert recap(check)[SPINES[0]]["changed"] == 1 and recap(check)[SPINES[1]]["changed"] == 0
    for prefix in STALE:
        assert f"-ip route {prefix} {HOP}" in check.stdout, check.stdout
    assert f"- ip route 10.92.100.72/32 {HOP}" in check.stdout, check.stdout
    assert not [line for line in check.stdout.splitlines()
                if line.startswith(("-", "+")) and any(k in line for k in KEPT)]
    assert running(lab, SPINES[0]) == before

    done = recap(playbook(collections, "inventories/lab"))
    assert done[SPINES[0]]["changed"] == 1 and done[SPINES[1]]["changed"] == 0
    after = running(lab, SPINES[0])
    for prefix in (*STALE, "10.92.100.72/32"):
        assert f"route {prefix} " not in after, after
    for prefix in KEPT:
        assert f"ip route {prefix} {HOP}" in after, after
    for prefix in STALE:
        wait_for(lambda prefix=prefix: spine.route(prefix) is None, timeout=10,
                 what=f"the static route to {prefix} to leave {spine.name}'s kernel table")
    assert all(spine.route(prefix) is not None for prefix in KEPT)
    assert recap(playbook(collections, "inventories/lab"))[SPINES[0]]["changed"] == 0
