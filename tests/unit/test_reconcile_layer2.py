"""spinelb.reconcile for a layer2 pool's addresses: the owner, who answers, what the spines resolve.

The site is the reference inventory with a layer2 pool ``lab-l2`` on the CAN
segment.  Two Services use it: ``web`` (Cluster policy) and ``kea`` (Local
policy, ready endpoints on ncn-w002 and ncn-w003).  The expected owner is the
speakers' own rule, :func:`spinelb.l2.owner.owner`, over the workers allowed to
answer; the speakers' ``/status`` and the spines' neighbor tables are written
here the way a healthy segment shows them, then each fault test changes them
the way the fault shows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_spine_validate import layer2_site

from spinelb.k8s.objects import EXCLUDE_LABEL
from spinelb.l2.owner import owner
from spinelb.reconcile import (
    VERDICTS,
    Report,
    Resolution,
    SpineObservation,
    compare,
    plan,
)
from spinelb.spine import Site, load_site

WORKERS = ("ncn-w001", "ncn-w002", "ncn-w003")
SPINES = ("sw-spine-001", "sw-spine-002")
WEB, KEA = "10.102.10.241", "10.102.10.242"
ENDPOINTS = {KEA: ("ncn-w002", "ncn-w003")}  # Local policy: the nodes with a ready endpoint
MACS = {"ncn-w001": "02:00:0a:66:0a:0a", "ncn-w002": "02:00:0a:66:0a:0b",
        "ncn-w003": "02:00:0a:66:0a:0c"}


def service(name: str, address: str, local: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "demo", "name": name},
        "spec": {"type": "LoadBalancer", "loadBalancerIP": address,
                 "externalTrafficPolicy": "Local" if local else "Cluster"},
        "status": {"loadBalancer": {"ingress": [{"ip": address}]}},
    }


def endpoint_slice(name: str, nodes: tuple[str, ...]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "demo", "name": f"{name}-abcde",
                     "labels": {"kubernetes.io/service-name": name}},
        "endpoints": [{"conditions": {"ready": True}, "nodeName": node} for node in nodes],
    }


class Segment:
    """The inputs of a healthy layer2 segment, to be changed by a fault."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.services = [service("web", WEB), service("kea", KEA, local=True)]
        self.nodes: list[dict[str, Any]] = [
            {"metadata": {"name": name, "labels": {}},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
            for name in WORKERS
        ]
        self.slices = [endpoint_slice("kea", ENDPOINTS[KEA])]
        self.owners = {address: owner(address, ENDPOINTS.get(address, WORKERS))
                       for address in (WEB, KEA)}
        self.speakers: dict[str, dict[str, Any] | None] = {
            worker: self.status(worker) for worker in WORKERS}
        self.resolved: dict[str, dict[str, Resolution] | None] = {
            spine: {address: Resolution(MACS[node], "REACHABLE")
                    for address, node in self.owners.items()}
            for spine in SPINES
        }

    def status(self, worker: str) -> dict[str, Any]:
        addresses = [
            {"address": address, "pool": "lab-l2", "owner": node,
             "answered_here": node == worker, "mac": MACS[worker] if node == worker else None,
             "interfaces": ["bond0.can0"] if node == worker else []}
            for address, node in self.owners.items()
        ]
        return {"node_name": worker, "peers": [], "announced": [], "services": [],
                "layer2": {"eligible": True, "live": list(WORKERS), "addresses": addresses,
                           "interfaces": [{"interface": "bond0.can0", "mac": MACS[worker]}]}}

    def answer(self, worker: str, address: str, answering: bool) -> None:
        """``worker``'s speaker says it answers ``address`` (or does not)."""
        status = self.speakers[worker]
        assert status is not None
        for entry in status["layer2"]["addresses"]:
            if entry["address"] == address:
                entry.update(answered_here=answering, mac=MACS[worker] if answering else None)

    def report(self) -> Report:
        spines = {name: SpineObservation(resolved=resolved)
                  for name, resolved in self.resolved.items()}
        return compare(self.site, services=self.services, nodes=self.nodes, slices=self.slices,
                       speakers=self.speakers, spines=spines)


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(*layer2_site())


@pytest.fixture
def segment(site: Site) -> Segment:
    return Segment(site)


def row(report: Report, address: str) -> Any:
    found = [prefix for prefix in report.prefixes if prefix.address == address]
    assert len(found) == 1, [prefix.address for prefix in report.prefixes]
    return found[0]


def actions(report: Report) -> list[str]:
    return [str(action) for action in plan(report)]


def other(worker: str) -> str:
    """A worker that is not ``worker``."""
    return next(w for w in WORKERS if w != worker)


# --- healthy ----------------------------------------------------------------------------------


def test_each_address_is_answered_by_its_owner_and_resolves_to_its_mac(segment: Segment) -> None:
    report = segment.report()
    for address, node in segment.owners.items():
        entry = row(report, address)
        assert (entry.verdict, entry.pool) == ("ok", "lab-l2")
        assert entry.layer2.owner == node and entry.layer2.mac == MACS[node]
        assert dict(entry.layer2.answering) == {node: MACS[node]}
        assert f"sw-spine-001: resolves it to {MACS[node]} ({node}'s), the owner's" in (
            entry.evidence)
    assert not report.problems()
    assert plan(report) == []
    # Local policy: the owner is one of the endpoint nodes, chosen among them only
    assert row(report, KEA).workers == ENDPOINTS[KEA]
    assert row(report, WEB).workers == WORKERS


def test_report_json_and_table_show_the_owner_and_its_mac(segment: Segment) -> None:
    report = segment.report()
    data = json.loads(json.dumps(report.to_dict()))
    assert {"no_owner", "several_owners", "wrong_owner", "resolved_elsewhere"} <= set(VERDICTS)
    assert set(data["summary"]) == set(VERDICTS)
    web = next(p for p in data["prefixes"] if p["address"] == WEB)
    node = segment.owners[WEB]
    assert web["layer2"] == {
        "owner": node, "mac": MACS[node], "eligible": list(WORKERS),
        "answering": {node: MACS[node]},
        "resolved": {spine: {"mac": MACS[node], "state": "REACHABLE"} for spine in SPINES},
    }
    lines = report.table().splitlines()
    assert lines[0].split()[:5] == ["ADDRESS", "VERDICT", "POOL", "SW-SPINE-001", "SW-SPINE-002"]
    assert lines_of(lines, WEB) == [WEB, "ok", "lab-l2", "ok", "ok", node, MACS[node], "demo/web"]
    assert any(line.startswith("(layer2 rows:") for line in lines)


def lines_of(lines: list[str], address: str) -> list[str]:
    return next(line for line in lines if line.startswith(address + " ")).split()


# --- one test per verdict -----------------------------------------------------------------------


def test_owner_that_does_not_answer_is_no_owner_and_its_speaker_is_resynchronised(
        segment: Segment) -> None:
    node = segment.owners[WEB]
    segment.answer(node, WEB, False)
    report = segment.report()
    entry = row(report, WEB)
    assert entry.verdict == "no_owner"
    assert "nobody answers it" in entry.evidence
    assert actions(report) == [f"resync_speaker(worker {node}): it should answer {WEB}"]
    assert row(report, KEA).verdict == "ok"
    assert "none" in lines_of(report.table().splitlines(), WEB)


def test_local_service_without_ready_endpoints_has_no_owner_and_needs_a_person(
        segment: Segment) -> None:
    segment.slices = []
    node = segment.owners[KEA]
    segment.answer(node, KEA, False)
    report = segment.report()
    entry = row(report, KEA)
    assert entry.verdict == "no_owner" and entry.layer2.owner is None
    assert "no eligible live node: nobody should answer it" in entry.evidence
    assert f"{node}: may not answer (Local policy: no ready endpoint on {node})" in entry.evidence
    assert [a.kind for a in plan(report)] == ["needs_person"]


def test_two_nodes_answering_is_several_owners_and_points_at_the_mesh(segment: Segment) -> None:
    node = segment.owners[WEB]
    intruder = other(node)
    segment.answer(intruder, WEB, True)
    report = segment.report()
    entry = row(report, WEB)
    assert entry.verdict == "several_owners"
    assert f"{intruder}: answers it with {MACS[intruder]}" in entry.evidence
    (action,) = plan(report)
    assert action.kind == "needs_person" and "BFD mesh" in action.reason
    assert intruder in action.reason and node in action.reason


def test_another_node_answering_is_wrong_owner_and_the_owner_is_resynchronised(
        segment: Segment) -> None:
    node = segment.owners[WEB]
    intruder = other(node)
    segment.answer(node, WEB, False)
    segment.answer(intruder, WEB, True)
    status = segment.speakers[intruder]
    assert status is not None
    for entry in status["layer2"]["addresses"]:  # it believes itself the owner
        if entry["address"] == WEB:
            entry["owner"] = intruder
    report = segment.report()
    entry = row(report, WEB)
    assert entry.verdict == "wrong_owner"
    assert f"{intruder}: says the owner is {intruder}" in entry.evidence
    assert [a.kind for a in plan(report)] == ["resync_speaker", "needs_person"]
    assert plan(report)[0].worker == node


def test_an_unreachable_speaker_is_not_eligible_and_the_owner_moves(segment: Segment) -> None:
    node = segment.owners[WEB]
    segment.speakers[node] = None
    rest = tuple(w for w in WORKERS if w != node)
    successor = owner(WEB, rest)
    assert successor is not None
    segment.answer(successor, WEB, True)
    for resolved in segment.resolved.values():
        assert resolved is not None
        resolved[WEB] = Resolution(MACS[successor], "REACHABLE")
    entry = row(segment.report(), WEB)
    assert (entry.verdict, entry.layer2.owner, entry.workers) == ("ok", successor, rest)
    assert f"{node}: speaker unreachable; it may answer (Cluster policy, node Ready)" in (
        entry.evidence)


def test_an_excluded_node_is_not_eligible(segment: Segment) -> None:
    node = segment.owners[WEB]
    segment.nodes[WORKERS.index(node)]["metadata"]["labels"] = {EXCLUDE_LABEL: ""}
    entry = row(segment.report(), WEB)
    assert node not in entry.workers
    assert entry.layer2.owner == owner(WEB, entry.workers)
    # the excluded node still answers: the node the rule picks now does not
    assert entry.verdict == "wrong_owner"


def test_a_speaker_without_the_layer2_section_is_not_eligible(segment: Segment) -> None:
    node = segment.owners[WEB]
    status = segment.speakers[node]
    assert status is not None
    status["layer2"] = None
    entry = row(segment.report(), WEB)
    assert node not in entry.workers
    assert f"{node}: its /status has no layer2 section" in entry.evidence


def test_spine_resolving_to_another_mac_is_resolved_elsewhere_naming_its_node(
        segment: Segment) -> None:
    node = segment.owners[WEB]
    stale = other(node)
    resolved = segment.resolved["sw-spine-002"]
    assert resolved is not None
    resolved[WEB] = Resolution(MACS[stale].upper(), "STALE")
    report = segment.report()
    entry = row(report, WEB)
    assert entry.verdict == "resolved_elsewhere"
    assert (f"sw-spine-002: resolves it to {MACS[stale].upper()} ({stale}'s) (STALE), "
            f"not the owner's {MACS[node]}") in entry.evidence
    (action,) = plan(report)
    assert action.kind == "needs_person" and "sw-spine-002" in action.reason
    cells = lines_of(report.table().splitlines(), WEB)
    assert cells[3:5] == ["ok", MACS[stale].upper()]


def test_spine_that_cannot_resolve_is_resolved_elsewhere_one_off_the_segment_is_not(
        segment: Segment) -> None:
    for spine, state in zip(SPINES, ("FAILED", "NONE"), strict=True):
        resolved = segment.resolved[spine]
        assert resolved is not None
        resolved[WEB] = Resolution(None, state)
    entry = row(segment.report(), WEB)
    assert entry.verdict == "resolved_elsewhere"
    assert "sw-spine-001: does not resolve it (FAILED)" in entry.evidence
    assert "sw-spine-002: has no neighbor entry (NONE: not on its segment?)" in entry.evidence


def test_a_spine_that_cannot_say_leaves_the_verdict_to_the_speakers(segment: Segment) -> None:
    segment.resolved = dict.fromkeys(SPINES)  # AOS-CX over REST: no ARP table
    report = segment.report()
    assert {row(report, a).verdict for a in (WEB, KEA)} == {"ok"}
    node = segment.owners[WEB]
    lines = report.table().splitlines()
    assert "SW-SPINE-001" not in lines[0]  # no spine said anything of any address
    assert lines_of(lines, WEB) == [WEB, "ok", "lab-l2", node, MACS[node], "demo/web"]
