"""The speaker's announce decision table (spinelb.speaker.k8s_source.decide), exhaustively.

Every combination of: traffic policy, node readiness, exclusion label, node
missing from the API, where the Service's ready endpoints are, a second
Service sharing the address (and whether it is eligible), and the address
being in a pool or not.  The expected outcome is the issue's rule, written
once below as a plain boolean expression; the reasons are checked for each
deciding fact.
"""

from __future__ import annotations

import asyncio
import itertools
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest

from spinelb.config import PoolConfig
from spinelb.k8s.objects import EXCLUDE_LABEL, NodeInfo, ServiceInfo, SliceInfo
from spinelb.speaker.k8s_source import Decision, decide

NODE = "ncn-w001"
OTHER = "ncn-w002"
IN_POOL = IPv4Address("10.102.10.130")
OUTSIDE = IPv4Address("10.1.2.3")
POOLS = (
    PoolConfig("customer-access", ((IPv4Address("10.102.10.128"), IPv4Address("10.102.10.191")),)),
    PoolConfig("v6", ((IPv6Address("fd00:10::"), IPv6Address("fd00:10::ff")),)),
)


def service(name: str, *ingress: str, local: bool = False, namespace: str = "services") -> ServiceInfo:
    return ServiceInfo(
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        load_balancer=True,
        load_balancer_class=None,
        requested=(),
        pool=None,
        sharing_key="shared" if len(ingress) else None,
        ports=frozenset({("TCP", 80)}),
        local=local,
        selector=(("app", name),),
        families=(4,),
        require_all_families=False,
        ingress=tuple(ip_address(a) for a in ingress),
    )


def node(name: str = NODE, *, ready: bool = True, excluded: bool = False) -> NodeInfo:
    return NodeInfo(name=name, ready=ready, excluded=excluded)


def endpoints(service_name: str, *nodes: str, namespace: str = "services") -> SliceInfo:
    return SliceInfo(namespace, f"{service_name}-abcde", service_name, frozenset(nodes))


POLICIES = ("Cluster", "Local")
ENDPOINTS = ("none", "here", "elsewhere", "here-and-elsewhere")
SHARING = ("alone", "shared-with-cluster", "shared-with-local-here", "shared-with-local-elsewhere")


@pytest.mark.parametrize(
    ("policy", "ready", "excluded", "node_missing", "where", "sharing", "in_pool"),
    list(itertools.product(POLICIES, (True, False), (True, False), (True, False), ENDPOINTS,
                           SHARING, (True, False))),
)
def test_decision_table(
    policy: str, ready: bool, excluded: bool, node_missing: bool, where: str, sharing: str,
    in_pool: bool,
) -> None:
    address = IN_POOL if in_pool else OUTSIDE
    services = [service("web", str(address), local=policy == "Local")]
    slices = []
    here = {"none": (), "here": (NODE,), "elsewhere": (OTHER,),
            "here-and-elsewhere": (NODE, OTHER)}[where]
    if here:
        slices.append(endpoints("web", *here))
    if sharing != "alone":
        services.append(service("web-udp", str(address), local=sharing != "shared-with-cluster"))
        if sharing == "shared-with-local-here":
            slices.append(endpoints("web-udp", NODE))
        elif sharing == "shared-with-local-elsewhere":
            slices.append(endpoints("web-udp", OTHER))
    nodes = {} if node_missing else {NODE: node(ready=ready, excluded=excluded)}
    nodes[OTHER] = node(OTHER)  # another node's facts never matter

    decisions = decide(NODE, services, nodes, slices, POOLS)

    node_fit = not node_missing and ready and not excluded
    eligible_web = policy == "Cluster" or NODE in here
    eligible_other = sharing in ("shared-with-cluster", "shared-with-local-here")
    expected = in_pool and node_fit and (eligible_web or eligible_other)
    assert set(decisions) == {address}
    decision = decisions[address]
    assert decision.announce is expected
    assert decision.address == address
    keys = ("services/web",) if sharing == "alone" else ("services/web", "services/web-udp")
    assert decision.services == keys
    assert decision.pool == ("customer-access" if in_pool else None)
    # The reason names the deciding fact.
    if not in_pool:
        assert decision.reason == "10.1.2.3 is in no pool"
    elif node_missing:
        assert decision.reason == "node unknown to the API"
    elif not node_fit:
        assert ("node not Ready" in decision.reason) is (not ready)
        assert (f"node {NODE} labelled {EXCLUDE_LABEL}" in decision.reason) is excluded
    elif policy == "Cluster" or sharing == "shared-with-cluster":
        assert decision.reason == "Cluster policy, node Ready"
    elif expected:
        assert decision.reason == f"Local policy, ready endpoint on {NODE}"
    else:
        assert decision.reason == f"Local policy: no ready endpoint on {NODE}"


def test_reasons_spelled_for_a_person() -> None:
    """The exact texts /status and `spinelb status` show."""
    web = service("web", "10.102.10.130")
    local = service("kea", "10.102.10.131", local=True)
    outside = service("stray", "10.1.2.3")
    cases: list[tuple[dict[str, NodeInfo], IPv4Address, str]] = [
        ({NODE: node()}, IN_POOL, "Cluster policy, node Ready"),
        ({NODE: node()}, IPv4Address("10.102.10.131"),
         "Local policy: no ready endpoint on ncn-w001"),
        ({NODE: node(excluded=True)}, IN_POOL,
         "node ncn-w001 labelled node.kubernetes.io/exclude-from-external-load-balancers"),
        ({NODE: node(ready=False)}, IN_POOL, "node not Ready"),
        ({NODE: node(ready=False, excluded=True)}, IN_POOL,
         "node not Ready; node ncn-w001 labelled "
         "node.kubernetes.io/exclude-from-external-load-balancers"),
        ({}, IN_POOL, "node unknown to the API"),
        ({NODE: node()}, OUTSIDE, "10.1.2.3 is in no pool"),
    ]
    for nodes, address, reason in cases:
        decisions = decide(NODE, [web, local, outside], nodes, [], POOLS)
        assert decisions[address].reason == reason


def test_each_address_of_a_service_is_decided_on_its_own() -> None:
    """A dual-stack Service: each address gets its own pool; one outside any pool is refused alone."""
    dual = service("dual", "10.102.10.140", "fd00:10::5", "fd00:99::1")
    decisions = decide(NODE, [dual], {NODE: node()}, [], POOLS)
    assert decisions[IPv4Address("10.102.10.140")].pool == "customer-access"
    assert decisions[IPv6Address("fd00:10::5")] == Decision(
        IPv6Address("fd00:10::5"), ("services/dual",), "v6", True, "Cluster policy, node Ready"
    )
    refused = decisions[IPv6Address("fd00:99::1")]
    assert (refused.announce, refused.pool, refused.reason) == (
        False, None, "fd00:99::1 is in no pool"
    )


def test_endpoints_of_another_service_with_the_same_name_elsewhere_do_not_count() -> None:
    """EndpointSlices belong to a Service by namespace and name."""
    kea = service("kea", "10.102.10.131", local=True, namespace="services")
    foreign = SliceInfo("other", "kea-xyz", "kea", frozenset({NODE}))
    unlabelled = SliceInfo("services", "kea-manual", None, frozenset({NODE}))
    decisions = decide(NODE, [kea], {NODE: node()}, [foreign, unlabelled], POOLS)
    assert decisions[IPv4Address("10.102.10.131")].announce is False
    split = [endpoints("kea", OTHER), SliceInfo("services", "kea-2", "kea", frozenset({NODE}))]
    decisions = decide(NODE, [kea], {NODE: node()}, split, POOLS)
    assert decisions[IPv4Address("10.102.10.131")].announce is True


def test_no_services_no_decisions() -> None:
    assert decide(NODE, [], {NODE: node()}, [endpoints("web", NODE)], POOLS) == {}
    assert decide(NODE, [service("pending")], {NODE: node()}, [], POOLS) == {}


# --- layer2 pools (issue 8): the same rule, plus the nodes that may answer ----------------

L2_POOLS = (
    PoolConfig("lab-l2", ((IPv4Address("10.102.10.128"), IPv4Address("10.102.10.191")),),
               mode="layer2", interfaces=("can",)),
)


@pytest.mark.parametrize(
    ("policy", "ready", "excluded", "where", "sharing"),
    list(itertools.product(POLICIES, (True, False), (True, False), ENDPOINTS, SHARING)),
)
def test_layer2_decision_is_the_bgp_rule_with_the_answering_nodes(
    policy: str, ready: bool, excluded: bool, where: str, sharing: str,
) -> None:
    """``announce`` and the reason are the BGP table's; ``nodes`` is None as soon as one
    Service using the address has Cluster policy, else every node with a ready endpoint
    of any of them (this node's own fitness does not change that set)."""
    services = [service("web", str(IN_POOL), local=policy == "Local")]
    here = {"none": (), "here": (NODE,), "elsewhere": (OTHER,),
            "here-and-elsewhere": (NODE, OTHER)}[where]
    slices = [endpoints("web", *here)] if here else []
    if sharing != "alone":
        services.append(service("web-udp", str(IN_POOL), local=sharing != "shared-with-cluster"))
        if sharing == "shared-with-local-here":
            slices.append(endpoints("web-udp", NODE))
        elif sharing == "shared-with-local-elsewhere":
            slices.append(endpoints("web-udp", "ncn-w003"))
    nodes = {NODE: node(ready=ready, excluded=excluded), OTHER: node(OTHER)}

    as_bgp = decide(NODE, services, nodes, slices, POOLS)[IN_POOL]
    as_l2 = decide(NODE, services, nodes, slices, L2_POOLS)[IN_POOL]

    assert (as_l2.announce, as_l2.reason, as_l2.services) == (
        as_bgp.announce, as_bgp.reason, as_bgp.services)
    assert (as_l2.mode, as_l2.pool) == ("layer2", "lab-l2")
    assert (as_bgp.mode, as_bgp.nodes) == ("bgp", None)
    if policy == "Cluster" or sharing == "shared-with-cluster":
        assert as_l2.nodes is None
    else:
        expected = set(here)
        if sharing == "shared-with-local-here":
            expected.add(NODE)
        elif sharing == "shared-with-local-elsewhere":
            expected.add("ncn-w003")
        assert as_l2.nodes == frozenset(expected)


def test_layer2_nodes_count_only_ready_endpoints_of_the_services_using_the_address() -> None:
    """Slices of another Service, or of a same-named Service in another namespace, or
    endpoints that are not ready (SliceInfo holds only ready ones) give no node."""
    kea = service("kea", "10.102.10.131", local=True)
    other = service("dhcp", "10.102.10.132", local=True)
    slices = [
        endpoints("kea", OTHER),
        SliceInfo("services", "kea-2", "kea", frozenset({"ncn-w003"})),
        SliceInfo("other", "kea-x", "kea", frozenset({"ncn-w004"})),
        endpoints("dhcp", "ncn-w005"),
        SliceInfo("services", "kea-3", "kea", frozenset()),
    ]
    decisions = decide(NODE, [kea, other], {NODE: node()}, slices, L2_POOLS)
    kea_decision = decisions[IPv4Address("10.102.10.131")]
    assert kea_decision.nodes == frozenset({OTHER, "ncn-w003"})
    assert kea_decision.announce is False  # no ready endpoint here
    assert kea_decision.reason == f"Local policy: no ready endpoint on {NODE}"
    assert decisions[IPv4Address("10.102.10.132")].nodes == frozenset({"ncn-w005"})
    # no ready endpoint anywhere: nobody may answer
    lonely = decide(NODE, [kea], {NODE: node()}, [], L2_POOLS)
    assert lonely[IPv4Address("10.102.10.131")].nodes == frozenset()


def test_layer2_and_bgp_pools_side_by_side() -> None:
    """Each address takes its own pool's mode; one outside every pool is plain "no pool"."""
    pools = (*L2_POOLS, PoolConfig("bgp", ((IPv4Address("10.102.11.0"),
                                            IPv4Address("10.102.11.255")),)))
    web = service("web", "10.102.10.140", "10.102.11.5", "10.1.2.3")
    decisions = decide(NODE, [web], {NODE: node()}, [], pools)
    assert decisions[IPv4Address("10.102.10.140")] == Decision(
        IPv4Address("10.102.10.140"), ("services/web",), "lab-l2", True,
        "Cluster policy, node Ready", "layer2", None,
    )
    assert decisions[IPv4Address("10.102.11.5")].mode == "bgp"
    stray = decisions[IPv4Address("10.1.2.3")]
    assert (stray.mode, stray.nodes, stray.pool, stray.announce) == ("bgp", None, None, False)


def test_source_reports_a_layer2_address_when_an_endpoint_elsewhere_changes() -> None:
    """For BGP only this node's endpoints matter; for a layer2 Local Service an endpoint
    appearing on another node changes who may answer, so the source reports it."""
    from spinelb.config import KubernetesConfig
    from spinelb.speaker.k8s_source import KubernetesSource

    class Synced:
        def __init__(self) -> None:
            self.synced = asyncio.Event()
            self.synced.set()

    slice_object = {
        "metadata": {"name": "kea-abcde", "namespace": "services",
                     "labels": {"kubernetes.io/service-name": "kea"}},
        "endpoints": [{"addresses": ["10.40.0.10"], "conditions": {"ready": True},
                       "nodeName": OTHER}],
    }
    service_object = {
        "metadata": {"name": "kea", "namespace": "services"},
        "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                 "ports": [{"port": 67, "protocol": "UDP"}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "10.102.10.131"}]}},
    }
    node_object = {"metadata": {"name": NODE, "labels": {}},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}]}}

    async def scenario() -> list[dict[Any, Any]]:
        reports: list[dict[Any, Any]] = []
        source = KubernetesSource(KubernetesConfig(), NODE, L2_POOLS,
                                  lambda changed, full: reports.append(dict(changed)))
        source._reflectors = [Synced(), Synced(), Synced()]  # type: ignore[list-item]
        source._services_changed({"services/kea": service_object})
        source._nodes_changed({NODE: node_object})
        await asyncio.sleep(0)  # one loop turn: the first, complete report
        source._slices_changed({"services/kea-abcde": slice_object})
        await asyncio.sleep(0)
        return reports

    reports = asyncio.run(scenario())
    address = IPv4Address("10.102.10.131")
    assert len(reports) == 2
    assert reports[0][address].nodes == frozenset()
    assert reports[1][address].nodes == frozenset({OTHER})
    assert reports[1][address].announce is False
