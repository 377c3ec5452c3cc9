"""The speaker's announce decision table (spinelb.speaker.k8s_source.decide), exhaustively.

Every combination of: traffic policy, node readiness, exclusion label, node
missing from the API, where the Service's ready endpoints are, a second
Service sharing the address (and whether it is eligible), and the address
being in a pool or not.  The expected outcome is the issue's rule, written
once below as a plain boolean expression; the reasons are checked for each
deciding fact.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address, IPv6Address, ip_address

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
