"""spinelb.reconcile: the reference site, healthy, then each verdict from the fault that causes it.

The site is the reference inventory; the Services are the seed Services with
their status ingress set (loadBalancerIP, or 10.102.5.64 for the CMN istio
gateway the controller gives the pool's first address), the three workers'
Nodes Ready, and KEA's EndpointSlice (a ready endpoint on ncn-w002 only).
The speakers' /status and the spines' observations are written here from the
site's addressing, independently of the code under test: every worker announces
every address except KEA's (Local policy: ncn-w002 only); each spine installs
the announcers' addresses on the pool's delivery network, TFTP through
ncn-w001 alone.  Each fault test mutates those the way the real fault shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_spine_model import reference_site

from spinelb.bgp.wire import Prefix
from spinelb.reconcile import VERDICTS, Report, SpineObservation, compare, plan
from spinelb.reconcile.observations import SessionState
from spinelb.spine import Site
from spinelb.spine.routes import RouteTable

SHARED = Path("/work/shared/reference-site")
WORKERS = ("ncn-w001", "ncn-w002", "ncn-w003")
SPINES = ("sw-spine-001", "sw-spine-002")
KEA = "10.92.100.222"
CMN_ISTIO = "10.102.5.64"
#: pool -> (peering network, delivery network, VRF of the carrying sessions)
POOLS = {
    "node-management": ("nmn", "nmn", "CSM"),
    "hardware-management": ("nmn", "hmn", "CSM"),
    "customer-management-static": ("cmn", "cmn", "default"),
    "customer-management": ("cmn", "cmn", "default"),
    "customer-access": ("cmn", "can", "default"),
}
SINGLE_PATH = {"10.92.100.60", "10.94.100.60"}


def seed_services() -> list[dict[str, Any]]:
    """The seed Services with the addresses the controller gave them in their status."""
    services = list(yaml.safe_load_all((SHARED / "services.yaml").read_text()))
    for service in services:
        address = service["spec"].get("loadBalancerIP", CMN_ISTIO)
        service["status"] = {"loadBalancer": {"ingress": [{"ip": address}]}}
    return services


def ready_nodes() -> list[dict[str, Any]]:
    return [
        {"metadata": {"name": name}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        for name in WORKERS
    ]


def seed_slices() -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((SHARED / "endpointslices.yaml").read_text()))


def pool_name(address: str) -> str:
    pools = {
        "10.92.100.": "node-management",
        "10.94.100.": "hardware-management",
        "10.102.10.": "customer-access",
    }
    for start, name in pools.items():
        if address.startswith(start):
            return name
    return "customer-management-static" if int(address.split(".")[3]) < 64 else "customer-management"


@dataclass
class SpineState:
    """A spine's routes, accepted paths and sessions, as a fault test edits them."""

    routes: dict[str, RouteTable]
    received: dict[str, set[Prefix]]
    sessions: dict[str, SessionState]

    def observation(self) -> SpineObservation:
        return SpineObservation(routes=self.routes, received=self.received,
                                sessions=self.sessions)


class Healthy:
    """The inputs of a healthy reference site, to be mutated by a fault."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.services = seed_services()
        self.nodes = ready_nodes()
        self.slices = seed_slices()
        self.addresses: dict[str, list[str]] = {}  # address -> services
        for service in self.services:
            key = f"{service['metadata']['namespace']}/{service['metadata']['name']}"
            address = service["status"]["loadBalancer"]["ingress"][0]["ip"]
            self.addresses.setdefault(address, []).append(key)
        self.speakers: dict[str, dict[str, Any] | None] = {
            worker: self.speaker_status(worker) for worker in WORKERS
        }
        self.spines: dict[str, SpineState] = {spine: self.spine_state() for spine in SPINES}

    def announcers(self, address: str) -> list[str]:
        return ["ncn-w002"] if address == KEA else list(WORKERS)

    def speaker_status(self, worker: str) -> dict[str, Any]:
        entries = []
        for address, services in sorted(self.addresses.items()):
            pool = pool_name(address)
            announced = worker in self.announcers(address)
            peering = POOLS[pool][0]
            entries.append({
                "address": address, "pool": pool, "services": sorted(services),
                "announced": announced,
                "reason": "Cluster policy, node Ready" if announced
                else f"Local policy: no ready endpoint on {worker}",
                "peers": [f"{spine}-{peering}" for spine in SPINES] if announced else [],
            })
        peers = [{"name": f"{spine}-{net}", "state": "Established"}
                 for net in ("nmn", "cmn") for spine in SPINES]
        return {"node_name": worker, "peers": peers, "announced": [], "services": entries}

    def address_of(self, worker: str, network: str) -> IPv4Address:
        return self.site.workers[worker].addresses[network]

    def spine_state(self) -> SpineState:
        routes: dict[str, RouteTable] = {"default": {}, "CSM": {}}
        received: dict[str, set[Prefix]] = {}
        sessions: dict[str, SessionState] = {}
        for worker in WORKERS:
            for net in ("nmn", "cmn"):
                address = str(self.address_of(worker, net))
                received[address] = set()
                sessions[address] = ("Established", 3600.0)
        for spine in SPINES:  # iBGP: one session per VRF (one when the VRFs collapse)
            for net in ("nmn", "cmn"):
                address = str(self.site.spines[spine].addresses[net])
                sessions[address] = ("Established", 3600.0)
        for address in self.addresses:
            peering, delivery, vrf = POOLS[pool_name(address)]
            prefix = ip_network(address)
            workers = self.announcers(address)
            for worker in workers:
                received[str(self.address_of(worker, peering))].add(prefix)
            if address in SINGLE_PATH:
                workers = workers[:1]
            routes[vrf][prefix] = tuple(sorted(self.address_of(w, delivery) for w in workers))
        return SpineState(routes, received, sessions)

    def report(self) -> Report:
        spines = {name: state.observation() for name, state in self.spines.items()}
        return compare(self.site, services=self.services, nodes=self.nodes, slices=self.slices,
                       speakers=self.speakers, spines=spines)

    # --- faults, as they show -------------------------------------------------------

    def spine(self, name: str) -> SpineState:
        return self.spines[name]

    def without_worker_on_spines(self, worker: str) -> None:
        """The spines as they are when ``worker``'s speaker stopped: its paths and sessions gone."""
        for spine in SPINES:
            obs = self.spine(spine)
            for net in ("nmn", "cmn"):
                address = str(self.address_of(worker, net))
                obs.received[address].clear()
                obs.sessions[address] = ("Active", None)
            gone = {self.address_of(worker, net) for net in ("nmn", "hmn", "cmn", "can")}
            for table in obs.routes.values():
                for prefix, hops in list(table.items()):
                    kept = tuple(hop for hop in hops if hop not in gone)
                    if kept:
                        table[prefix] = kept
                    else:
                        del table[prefix]


@pytest.fixture(scope="module")
def site() -> Site:
    return reference_site()


@pytest.fixture
def healthy(site: Site) -> Healthy:
    return Healthy(site)


def entry(report: Report, address: str) -> Any:
    found = [prefix for prefix in report.prefixes if prefix.address == address]
    assert len(found) == 1, f"{address}: {[p.address for p in report.prefixes]}"
    return found[0]


def verdicts(report: Report) -> dict[str, str]:
    return {prefix.address: prefix.verdict for prefix in report.prefixes}


def actions(report: Report) -> list[str]:
    return [str(action) for action in plan(report)]


def other_verdicts(report: Report, *faulty: str) -> Iterator[tuple[str, str]]:
    return ((a, v) for a, v in verdicts(report).items() if a not in faulty and v != "ok")


# --- the healthy site ---------------------------------------------------------------


def test_healthy_site_every_seed_address_ok(healthy: Healthy) -> None:
    report = healthy.report()
    assert verdicts(report) == dict.fromkeys(healthy.addresses, "ok")
    assert len(report.prefixes) == 16
    assert report.ok
    assert report.summary["ok"] == 16
    assert sum(report.summary.values()) == 16
    assert plan(report) == []
    assert all(session.established for session in report.sessions)
    # per spine: 3 workers x 2 peering networks + the other spine in each VRF
    assert len(report.sessions) == 2 * (3 * 2 + 2)


def test_desired_next_hops_follow_the_pools_delivery_network_and_single_path(
    healthy: Healthy,
) -> None:
    report = healthy.report()
    hmn = entry(report, "10.94.100.71")
    assert hmn.workers == WORKERS
    assert hmn.spines["sw-spine-001"].want == ("10.254.1.16", "10.254.1.18", "10.254.1.20")
    assert hmn.spines["sw-spine-001"].vrf == "CSM"
    can = entry(report, "10.102.10.129")
    assert can.spines["sw-spine-002"].want == ("10.102.10.10", "10.102.10.11", "10.102.10.12")
    assert can.spines["sw-spine-002"].vrf == "default"
    tftp = entry(report, "10.92.100.60")
    assert tftp.spines["sw-spine-001"].want == ("10.252.1.10",)
    kea = entry(report, KEA)
    assert kea.workers == ("ncn-w002",)
    assert kea.spines["sw-spine-001"].have == ("10.252.1.11",)
    unbound = entry(report, "10.92.100.225")
    assert unbound.services == ("services/cray-dns-unbound-tcp-nmn",
                                "services/cray-dns-unbound-udp-nmn")


def test_collapsed_vrfs_accept_the_route_in_any_table() -> None:
    site = reference_site("lab")
    assert all(spine.collapse_vrfs for spine in site.spines.values())
    healthy = Healthy(site)
    for name in SPINES:
        obs = healthy.spine(name)
        obs.routes = {"default": {**obs.routes["default"], **obs.routes["CSM"]}}
    report = healthy.report()
    assert report.ok, report.table()
    assert len(report.sessions) == 2 * (3 * 2 + 1)  # one table: one iBGP session
    assert entry(report, "10.94.100.71").spines["sw-spine-001"].vrf is None


def test_report_json_and_table(healthy: Healthy) -> None:
    report = healthy.report()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True
    assert set(data["summary"]) == set(VERDICTS)
    first = data["prefixes"][0]
    assert set(first) == {"address", "verdict", "pool", "services", "workers", "spines",
                          "evidence"}
    assert first["spines"]["sw-spine-001"]["have"] == first["spines"]["sw-spine-001"]["want"]
    text = report.table()
    lines = text.splitlines()
    assert lines[0].split() == ["ADDRESS", "VERDICT", "POOL", "SW-SPINE-001", "SW-SPINE-002",
                                "NEXT", "HOPS", "SERVICES"]
    kea_line = next(line for line in lines if line.startswith(KEA))
    assert kea_line.split() == [KEA, "ok", "node-management", "1/1", "1/1", "10.252.1.11",
                                "services/cray-dhcp-kea-udp-nmn"]
    istio = next(line for line in lines if line.startswith("10.92.100.71 "))
    assert "10.252.1.10 10.252.1.11 10.252.1.12" in istio
    # columns aligned: every address row has its verdict where the header has VERDICT
    column = lines[0].index("VERDICT")
    assert all(line[column:].startswith("ok") for line in lines[1:17])
    assert "(per spine: next hops installed/wanted; NEXT HOPS: those installed" in text
    assert "sessions: 16 of 16 established" in text
    assert text.rstrip().endswith("16 addresses: ok 16")


# --- one test per verdict --------------------------------------------------------------


def test_speaker_stopped_is_not_announced_and_its_speaker_needs_starting(
    healthy: Healthy,
) -> None:
    healthy.speakers["ncn-w003"] = None
    healthy.without_worker_on_spines("ncn-w003")
    report = healthy.report()
    announced_by_w003 = [a for a in healthy.addresses if a != KEA]
    for address in announced_by_w003:
        prefix = entry(report, address)
        assert prefix.verdict == "not_announced"
        assert any(line.startswith("ncn-w003: speaker unreachable") for line in prefix.evidence)
    assert entry(report, KEA).verdict == "ok"
    # the effect on the spines is in the evidence too
    istio = entry(report, "10.92.100.71")
    assert "sw-spine-001: 2 of 3 next hops; lacks 10.252.1.12 (ncn-w003 nmn)" in istio.evidence
    assert "sw-spine-001: session with ncn-w003-nmn (10.252.1.12) is Active" in istio.evidence
    assert not report.ok
    assert report.unreachable_speakers == ("ncn-w003",)
    down = {(s.spine, s.neighbor) for s in report.sessions if not s.established}
    assert down == {(spine, f"ncn-w003-{net}") for spine in SPINES for net in ("nmn", "cmn")}
    assert actions(report) == [
        "needs_person: the speaker on ncn-w003 does not answer: start it (playbooks/reconcile.yml starts a stopped one)"
    ]
    assert set(plan(report)[0].addresses) == set(announced_by_w003)


def test_speaker_that_disagrees_with_its_decision_is_resynchronised(healthy: Healthy) -> None:
    status = healthy.speakers["ncn-w001"]
    assert status is not None
    kea_entry = next(e for e in status["services"] if e["address"] == "10.92.100.71")
    kea_entry.update(announced=False, reason="node not Ready", peers=[])
    report = healthy.report()
    prefix = entry(report, "10.92.100.71")
    assert prefix.verdict == "not_announced"
    assert ("ncn-w001: /status says not announced (node not Ready); it should be "
            "(Cluster policy, node Ready)") in prefix.evidence
    assert [(a.kind, a.worker) for a in plan(report)] == [("resync_speaker", "ncn-w001")]


def test_spine_without_the_route_is_missing_and_gets_a_soft_clear(healthy: Healthy) -> None:
    obs = healthy.spine("sw-spine-002")
    prefix = ip_network("10.92.100.71/32")
    del obs.routes["CSM"][prefix]
    for paths in obs.received.values():
        paths.discard(prefix)
    report = healthy.report()
    istio = entry(report, "10.92.100.71")
    assert istio.verdict == "missing"
    assert istio.spines["sw-spine-002"].have == ()
    assert istio.spines["sw-spine-001"].have == istio.spines["sw-spine-001"].want
    assert istio.evidence[0] == ("sw-spine-002: not installed (want 10.252.1.10 (ncn-w001 nmn), "
                                 "10.252.1.11 (ncn-w002 nmn), 10.252.1.12 (ncn-w003 nmn))")
    assert "sw-spine-002: not received from ncn-w001-nmn (10.252.1.10)" in istio.evidence
    assert list(other_verdicts(report, "10.92.100.71")) == []
    assert [(a.kind, a.spine, a.neighbor) for a in plan(report)] == [
        ("soft_clear", "sw-spine-002", f"10.252.1.1{n}") for n in range(3)
    ]


def test_neighbor_deleted_on_a_spine_is_missing_and_needs_the_spines_playbook(
    healthy: Healthy,
) -> None:
    obs = healthy.spine("sw-spine-002")
    prefix = ip_network(KEA)
    del obs.sessions["10.252.1.11"]
    obs.received["10.252.1.11"].clear()
    for table in obs.routes.values():
        for other in [p for p, hops in table.items() if IPv4Address("10.252.1.11") in hops
                      or IPv4Address("10.254.1.18") in hops]:
            remaining = tuple(h for h in table[other]
                              if h not in (IPv4Address("10.252.1.11"), IPv4Address("10.254.1.18")))
            table[other] = remaining
            if not remaining:
                del table[other]
    report = healthy.report()
    kea = entry(report, KEA)
    assert kea.verdict == "missing"
    assert "sw-spine-002: no neighbor ncn-w002-nmn (10.252.1.11) configured" in kea.evidence
    assert prefix not in obs.routes["CSM"]
    assert entry(report, "10.92.100.71").verdict == "not_ecmp"
    absent = [s for s in report.sessions if s.state == "absent"]
    assert [(s.spine, s.neighbor) for s in absent] == [("sw-spine-002", "ncn-w002-nmn")]
    assert ("needs_person: sw-spine-002: neighbor ncn-w002-nmn (10.252.1.11) is missing: "
            "run playbooks/spines.yml -e spine_state=replaced") in actions(report)
    # once the neighbor is back, the speaker connects at once instead of after its backoff
    assert ("resync_speaker(worker ncn-w002): connect to sw-spine-002 now, not after its "
            "backoff") in actions(report)


def test_static_route_for_a_pool_address_is_stale(healthy: Healthy) -> None:
    obs = healthy.spine("sw-spine-001")
    obs.routes["CSM"][ip_network("10.92.100.99/32")] = (
        ip_address("10.252.1.10"),
    )
    report = healthy.report()
    stale = entry(report, "10.92.100.99")
    assert stale.verdict == "stale"
    assert stale.pool == "node-management"
    assert stale.evidence == (
        "sw-spine-001: installed via 10.252.1.10 (ncn-w001 nmn) and received from no BGP "
        "neighbor (a static route)",
    )
    assert report.summary["stale"] == 1
    assert not report.ok
    assert actions(report) == [
        "needs_person: sw-spine-001: remove the static route to 10.92.100.99/32, which no "
        "Service has: run playbooks/spines.yml (spinelb owns static routes to pool addresses) "
        "or delete it by hand"
    ]


def test_speaker_announcing_an_address_no_service_has_is_stale(healthy: Healthy) -> None:
    status = healthy.speakers["ncn-w002"]
    assert status is not None
    status["services"].append({
        "address": "10.102.10.150", "pool": "customer-access",
        "services": ["ims/gone-service"], "announced": True,
        "reason": "Cluster policy, node Ready", "peers": ["sw-spine-001-cmn"],
    })
    healthy.spine("sw-spine-001").received["10.102.5.15"].add(
        ip_network("10.102.10.150/32")
    )
    report = healthy.report()
    stale = entry(report, "10.102.10.150")
    assert stale.verdict == "stale"
    assert stale.evidence == (
        "ncn-w002: its speaker announces it for ims/gone-service",
        "sw-spine-001: received from ncn-w002-cmn (10.102.5.15), which announces it",
    )
    assert [(a.kind, a.worker) for a in plan(report)] == [("resync_speaker", "ncn-w002")]


def test_static_announcement_of_a_pool_address_no_service_has_is_stale_and_withdrawn(
        healthy: Healthy) -> None:
    status = healthy.speakers["ncn-w003"]
    assert status is not None
    status["announced"] = [{"prefix": "10.102.10.177/32", "peers": ["sw-spine-001-cmn"],
                            "next_hop": "self"}]
    report = healthy.report()
    stale = entry(report, "10.102.10.177")
    assert stale.verdict == "stale"
    assert stale.evidence == ("ncn-w003: a static announcement to sw-spine-001-cmn",)
    assert actions(report) == [
        "withdraw_static(worker ncn-w003, prefix 10.102.10.177/32): a pool's address no "
        "Service has",
        "needs_person: ncn-w003: remove 10.102.10.177/32 from the speaker's static "
        "announcements (speaker_announce) and run playbooks/site.yml, or it returns when the "
        "speaker's config is next loaded",
    ]
    assert plan(report)[0].to_dict()["prefix"] == "10.102.10.177/32"


def test_service_without_ingress_is_pending_and_the_controller_is_asked(
    healthy: Healthy,
) -> None:
    cmn = next(s for s in healthy.services
               if s["metadata"]["name"] == "istio-ingressgateway-cmn")
    del cmn["status"]
    report = healthy.report()
    pending = entry(report, "istio-system/istio-ingressgateway-cmn")
    assert pending.verdict == "pending"
    assert pending.evidence == ("no address in status",)
    assert next((a.kind, a.service) for a in plan(report)) == (
        "assign", "istio-system/istio-ingressgateway-cmn"
    )
    # the spines still carry the old address: stale, learned over BGP from the speakers
    assert entry(report, CMN_ISTIO).verdict == "stale"


def test_pending_says_what_it_can_about_why(healthy: Healthy) -> None:
    healthy.services.append({
        "metadata": {"namespace": "services", "name": "lost",
                     "annotations": {"metallb.universe.tf/address-pool": "no-such-pool"}},
        "spec": {"type": "LoadBalancer", "loadBalancerIP": "10.1.2.3"},
    })
    report = healthy.report()
    assert entry(report, "services/lost").evidence == (
        "no address in status",
        "asks for pool no-such-pool, which site reference-site does not have",
        "requests 10.1.2.3, which is in no pool",
    )


@pytest.mark.parametrize("address", [
    "10.92.100.71",  # istio-ingressgateway's: a Service address
    "10.92.100.255",  # the lab's refusal probe: in the pool, no Service has it
])
def test_nmn_pool_address_accepted_on_a_cmn_session_is_leaked(healthy: Healthy,
                                                                address: str) -> None:
    """A pool's address accepted on a session of another network is a leak, a Service's or
    not, repaired by the spines' playbook and then a soft clear of that session."""
    obs = healthy.spine("sw-spine-001")
    obs.received["10.102.5.14"].add(ip_network(f"{address}/32"))
    report = healthy.report()
    leaked = entry(report, address)
    assert leaked.verdict == "leaked"
    assert leaked.evidence == (
        "sw-spine-001: received from ncn-w001-cmn (10.102.5.14), a cmn session; pool "
        "node-management is carried by nmn sessions only",
    )
    assert actions(report) == [
        "needs_person: sw-spine-001: its configuration differs from the site's: "
        "run playbooks/spines.yml -e spine_state=replaced",
        "soft_clear(spine sw-spine-001, neighbor 10.102.5.14): re-apply the route-map of "
        "ncn-w001-cmn",
    ]


def test_route_in_the_wrong_vrf_is_leaked(healthy: Healthy) -> None:
    obs = healthy.spine("sw-spine-002")
    prefix = ip_network("10.92.100.71/32")
    obs.routes["default"][prefix] = obs.routes["CSM"][prefix]
    istio = entry(healthy.report(), "10.92.100.71")
    assert istio.verdict == "leaked"
    assert istio.evidence == (
        "sw-spine-002: installed in VRF default; pool node-management belongs in VRF CSM",
    )


def test_nmn_next_hops_for_an_hmn_delivered_pool_are_wrong(healthy: Healthy) -> None:
    obs = healthy.spine("sw-spine-002")
    obs.routes["CSM"][ip_network("10.94.100.71/32")] = tuple(
        healthy.address_of(worker, "nmn") for worker in WORKERS
    )
    report = healthy.report()
    hmn = entry(report, "10.94.100.71")
    assert hmn.verdict == "wrong_next_hop"
    assert hmn.spines["sw-spine-002"].have == ("10.252.1.10", "10.252.1.11", "10.252.1.12")
    assert hmn.spines["sw-spine-002"].want == ("10.254.1.16", "10.254.1.18", "10.254.1.20")
    assert hmn.evidence[0].startswith(
        "sw-spine-002: next hops 10.252.1.10 (ncn-w001 nmn), 10.252.1.11 (ncn-w002 nmn), "
        "10.252.1.12 (ncn-w003 nmn) are not among the eligible 10.254.1.16 (ncn-w001 hmn)"
    )
    # the next-hop rewrite is the route-map's: spines.yml, then a soft clear of each session
    assert [a.kind for a in plan(report)] == ["needs_person", *["soft_clear"] * 3]
    assert "run playbooks/spines.yml" in plan(report)[0].reason
    assert [(a.spine, a.neighbor) for a in plan(report)[1:]] == [
        ("sw-spine-002", hop) for hop in ("10.252.1.10", "10.252.1.11", "10.252.1.12")]


def test_two_next_hops_for_tftp_is_not_ecmp(healthy: Healthy) -> None:
    obs = healthy.spine("sw-spine-001")
    obs.routes["CSM"][ip_network("10.92.100.60/32")] = (
        ip_address("10.252.1.10"), ip_address("10.252.1.11"),
    )
    report = healthy.report()
    tftp = entry(report, "10.92.100.60")
    assert tftp.verdict == "not_ecmp"
    assert tftp.evidence == (
        "sw-spine-001: 2 next hops 10.252.1.10 (ncn-w001 nmn), 10.252.1.11 (ncn-w002 nmn) for "
        "a single-path prefix; want 10.252.1.10 (ncn-w001 nmn) only",
    )
    assert [a.kind for a in plan(report)] == ["needs_person"]


def test_fewer_next_hops_than_eligible_workers_is_not_ecmp(healthy: Healthy) -> None:
    obs = healthy.spine("sw-spine-001")
    prefix = ip_network("10.102.10.129/32")
    obs.routes["default"][prefix] = (
        ip_address("10.102.10.10"), ip_address("10.102.10.11"),
    )
    report = healthy.report()
    s3 = entry(report, "10.102.10.129")
    assert s3.verdict == "not_ecmp"
    assert s3.evidence == (
        "sw-spine-001: 2 of 3 next hops; lacks 10.102.10.12 (ncn-w003 can)",
        "sw-spine-001: received from ncn-w003-cmn (10.102.5.16) but not installed",
    )
    assert [(a.kind, a.spine, a.neighbor) for a in plan(report)] == [
        ("soft_clear", "sw-spine-001", "10.102.5.16")
    ]


def test_address_in_no_pool_is_outside_pools(healthy: Healthy) -> None:
    s3 = next(s for s in healthy.services if s["metadata"]["name"] == "cray-s3")
    s3["status"]["loadBalancer"]["ingress"] = [{"ip": "10.1.2.3"}]
    report = healthy.report()
    outside = entry(report, "10.1.2.3")
    assert outside.verdict == "outside_pools"
    assert outside.services == ("ceph-rgw/cray-s3",)
    assert outside.evidence == ("10.1.2.3 is in no pool of site reference-site",)
    # what the spines and speakers still have for the old address is stale
    assert entry(report, "10.102.10.129").verdict == "stale"
    assert next(a.kind for a in plan(report)) == "needs_person"


def test_unobserved_spine_makes_the_report_not_ok(healthy: Healthy) -> None:
    del healthy.spines["sw-spine-002"]
    report = healthy.report()
    assert all(v == "ok" for v in verdicts(report).values())
    assert not report.ok
    assert report.unobserved_spines == ("sw-spine-002",)
    assert "spines not observed: sw-spine-002" in report.table()


def test_table_lists_the_evidence_of_each_problem(healthy: Healthy) -> None:
    healthy.speakers["ncn-w003"] = None
    healthy.without_worker_on_spines("ncn-w003")
    text = healthy.report().table()
    assert "10.92.100.71: not_announced\n  ncn-w003: speaker unreachable" in text
    assert "sw-spine-001  ncn-w003-nmn  10.252.1.12  CSM      active" in text
    assert "sessions: 12 of 16 established" in text
    assert "speakers unreachable: ncn-w003" in text


def test_worker_announcing_against_its_decision_is_a_wrong_next_hop_fixed_by_resync(
    healthy: Healthy,
) -> None:
    status = healthy.speakers["ncn-w001"]
    assert status is not None
    kea_entry = next(e for e in status["services"] if e["address"] == KEA)
    kea_entry.update(announced=True, peers=["sw-spine-001-nmn", "sw-spine-002-nmn"])
    obs = healthy.spine("sw-spine-001")
    obs.received["10.252.1.10"].add(ip_network(KEA))
    obs.routes["CSM"][ip_network(KEA)] = (ip_address("10.252.1.10"), ip_address("10.252.1.11"))
    report = healthy.report()
    kea = entry(report, KEA)
    assert kea.verdict == "wrong_next_hop"
    assert ("ncn-w001: announces it, but should not (Local policy: no ready endpoint on "
            "ncn-w001)") in kea.evidence
    assert [(a.kind, a.worker) for a in plan(report)] == [("resync_speaker", "ncn-w001")]


def test_path_refused_by_the_route_map_is_missing_and_needs_the_spines_playbook(
    healthy: Healthy,
) -> None:
    obs = healthy.spine("sw-spine-002")
    prefix = ip_network("10.102.5.61/32")
    del obs.routes["default"][prefix]
    for paths in obs.received.values():
        paths.discard(prefix)
    spines = {name: state.observation() for name, state in healthy.spines.items()}
    spines["sw-spine-002"] = SpineObservation(
        routes=obs.routes, received=obs.received, sessions=obs.sessions,
        rejected={str(healthy.address_of(w, "cmn")): {prefix} for w in WORKERS},
    )
    report = compare(healthy.site, services=healthy.services, nodes=healthy.nodes,
                     slices=healthy.slices, speakers=healthy.speakers, spines=spines)
    static = entry(report, "10.102.5.61")
    assert static.verdict == "missing"
    assert ("sw-spine-002: received from ncn-w001-cmn (10.102.5.14) but refused by its "
            "route-map") in static.evidence
    assert actions(report) == ["needs_person: sw-spine-002: route-map drift: "
                               "run playbooks/spines.yml -e spine_state=replaced"]
