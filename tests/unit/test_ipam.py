"""The allocator: pools, requests, keeping, sharing, dual stack, errors, and property tests."""

from __future__ import annotations

from ipaddress import ip_address, ip_network
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spinelb.config import PoolConfig
from spinelb.ipam import AllocationError, Allocator, PoolSpan, sharing_conflict
from spinelb.k8s.objects import ServiceInfo, service_info


def pool(name: str, *specs: str, auto_assign: bool = True, avoid_buggy: bool = False) -> PoolConfig:
    ranges = []
    for spec in specs:
        if "/" in spec:
            net = ip_network(spec)
            ranges.append((net.network_address, net.broadcast_address))
        elif "-" in spec:
            first, last = spec.split("-")
            ranges.append((ip_address(first), ip_address(last)))
        else:
            ranges.append((ip_address(spec), ip_address(spec)))
    return PoolConfig(name, tuple(ranges), auto_assign=auto_assign, avoid_buggy_ips=avoid_buggy)


def svc(
    name: str,
    *,
    ns: str = "default",
    requested: tuple[str, ...] = (),
    pool: str | None = None,
    key: str | None = None,
    ports: tuple[tuple[str, int], ...] = (("TCP", 80),),
    local: bool = False,
    selector: tuple[tuple[str, str], ...] = (("app", "x"),),
    families: tuple[int, ...] | None = None,
    require_all: bool = False,
    ingress: tuple[str, ...] = (),
) -> ServiceInfo:
    wanted = tuple(ip_address(a) for a in requested)
    if families is None:
        families = tuple(sorted({a.version for a in wanted})) or (4,)
    return ServiceInfo(
        namespace=ns,
        name=name,
        uid=f"uid-{name}",
        load_balancer=True,
        load_balancer_class=None,
        requested=wanted,
        pool=pool,
        sharing_key=key,
        ports=frozenset(ports),
        local=local,
        selector=selector,
        families=families,
        require_all_families=require_all,
        ingress=tuple(ip_address(a) for a in ingress),
    )


def ips(*texts: str) -> tuple[Any, ...]:
    return tuple(ip_address(t) for t in texts)


REFERENCE_POOLS = (
    pool("node-management", "10.92.100.0/24"),
    pool("hardware-management", "10.94.100.0/24"),
    pool("customer-management-static", "10.102.5.60/30", auto_assign=False),
    pool("customer-management", "10.102.5.64/26"),
    pool("customer-access", "10.102.10.128/26"),
)


def fail(allocator: Allocator, service: ServiceInfo) -> AllocationError:
    with pytest.raises(AllocationError) as caught:
        allocator.assign(service)
    return caught.value


# --- auto-assignment ---------------------------------------------------------------------


def test_auto_assign_takes_lowest_free_in_range_order() -> None:
    allocator = Allocator([pool("p", "10.0.0.10-10.0.0.11", "10.0.0.1-10.0.0.2")])
    got = [allocator.assign(svc(f"s{i}"))[0] for i in range(4)]
    assert got == list(ips("10.0.0.10", "10.0.0.11", "10.0.0.1", "10.0.0.2"))


def test_auto_assign_uses_the_first_auto_pool_with_room_and_skips_manual_pools() -> None:
    allocator = Allocator(
        [pool("manual", "10.0.0.1", auto_assign=False), pool("a", "10.0.1.1"), pool("b", "10.0.2.1")]
    )
    assert allocator.assign(svc("one")) == ips("10.0.1.1")
    assert allocator.assign(svc("two")) == ips("10.0.2.1")
    err = fail(allocator, svc("three"))
    assert err.reason == "pool-exhausted"
    assert "a (1 IPv4 addresses)" in err.message and "b (1 IPv4 addresses)" in err.message
    assert "manual" not in err.message


def test_release_then_reuse_gives_back_the_lowest() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/29")])
    for i in range(8):
        allocator.assign(svc(f"s{i}"))
    assert allocator.release("default/s3") == ips("10.0.0.3")
    assert allocator.release("default/s1") == ips("10.0.0.1")
    assert allocator.holder(ip_address("10.0.0.1")) == []
    assert allocator.assign(svc("new1")) == ips("10.0.0.1")
    assert allocator.assign(svc("new2")) == ips("10.0.0.3")
    assert allocator.release("default/nothing") == ()


def test_avoid_buggy_ips_skips_dot_zero_and_dot_255() -> None:
    allocator = Allocator([pool("p", "10.0.0.254-10.0.1.1", avoid_buggy=True)])
    assert allocator.assign(svc("a")) == ips("10.0.0.254")
    assert allocator.assign(svc("b")) == ips("10.0.1.1")
    err = fail(allocator, svc("c"))
    assert err.reason == "pool-exhausted"
    assert err.message == "default/c: pool p is exhausted: all 2 IPv4 addresses are in use"
    # a requested .255 is still given: avoiding is about choosing, not refusing
    assert allocator.assign(svc("d", requested=("10.0.0.255",))) == ips("10.0.0.255")


def test_pool_annotation_picks_the_pool_even_when_not_auto_assign() -> None:
    allocator = Allocator(REFERENCE_POOLS)
    assert allocator.assign(svc("s", pool="customer-management-static")) == ips("10.102.5.60")
    assert allocator.assign(svc("c", pool="customer-management")) == ips("10.102.5.64")
    assert allocator.assign(svc("plain")) == ips("10.92.100.0")


def test_unknown_pool_names_the_known_ones() -> None:
    err = fail(Allocator(REFERENCE_POOLS), svc("s", pool="nope"))
    assert err.reason == "unknown-pool"
    assert "'nope'" in err.message and "node-management" in err.message
    assert "default/s" in err.message


def test_only_manual_pools_for_a_family() -> None:
    allocator = Allocator([pool("v4", "10.0.0.0/30"), pool("v6", "fd00::/126", auto_assign=False)])
    err = fail(allocator, svc("s", families=(6,)))
    assert err.reason == "not-auto-assign" and "v6" in err.message
    err = fail(Allocator([pool("v4", "10.0.0.0/30")]), svc("s", families=(6,)))
    assert err.reason == "family-unavailable"
    err = fail(allocator, svc("s", families=(6,), pool="v4"))
    assert err.reason == "family-unavailable" and "'v4' has no IPv6" in err.message


# --- requested addresses ------------------------------------------------------------------


def test_requested_address_wins_and_auto_assignment_skips_it() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/30")])
    assert allocator.assign(svc("pinned", requested=("10.0.0.0",))) == ips("10.0.0.0")
    assert allocator.assign(svc("auto")) == ips("10.0.0.1")
    assert allocator.assign(svc("pinned2", requested=("10.0.0.3",))) == ips("10.0.0.3")
    assert allocator.assign(svc("auto2")) == ips("10.0.0.2")


def test_requested_address_from_a_manual_pool() -> None:
    allocator = Allocator(REFERENCE_POOLS)
    got = allocator.assign(svc("dns", requested=("10.102.5.61",)))
    assert got == ips("10.102.5.61")
    assert allocator.pool_of(got[0]) == "customer-management-static"


def test_requested_outside_pools() -> None:
    err = fail(Allocator(REFERENCE_POOLS), svc("s", requested=("192.0.2.1",)))
    assert err.reason == "outside-pools"
    assert "192.0.2.1" in err.message and "customer-access" in err.message


def test_requested_in_another_pool_than_annotated() -> None:
    err = fail(Allocator(REFERENCE_POOLS), svc("s", requested=("10.92.100.5",),
                                                  pool="customer-access"))
    assert err.reason == "bad-request"
    assert "'node-management'" in err.message and "'customer-access'" in err.message


def test_requested_in_use_names_the_holder_and_why() -> None:
    allocator = Allocator(REFERENCE_POOLS)
    allocator.assign(svc("first", requested=("10.92.100.71",)))
    err = fail(allocator, svc("second", requested=("10.92.100.71",)))
    assert err.reason == "in-use"
    assert "default/first" in err.message and "allow-shared-ip" in err.message
    assert allocator.holder(ip_address("10.92.100.71")) == ["default/first"]
    assert allocator.assigned("default/second") == ()


def test_bad_requests() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/24", "fd00::/120")])
    err = fail(allocator, svc("two-v4", requested=("10.0.0.1", "10.0.0.2")))
    assert err.reason == "bad-request" and "one per family" in err.message
    err = fail(allocator, svc("wrong-family", requested=("fd00::1",), families=(4,)))
    assert err.reason == "bad-request" and "IPv6" in err.message
    err = fail(allocator, svc("need-both", requested=("10.0.0.1",), families=(4, 6),
                              require_all=True))
    assert err.reason == "bad-request" and "RequireDualStack" in err.message


# --- keeping ---------------------------------------------------------------------------


def test_current_ingress_is_kept_after_a_restart() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/24")])
    assert allocator.assign(svc("s", ingress=("10.0.0.77",))) == ips("10.0.0.77")
    assert allocator.assign(svc("t")) == ips("10.0.0.0")


def test_assign_again_keeps_the_address_even_when_lower_ones_are_free() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/24")])
    allocator.assign(svc("a"))
    allocator.assign(svc("b"))
    allocator.release("default/a")
    assert allocator.assign(svc("b", ports=(("TCP", 443),))) == ips("10.0.0.1")


def test_ingress_not_fitting_the_request_is_replaced() -> None:
    allocator = Allocator(REFERENCE_POOLS)
    # outside every pool, another pool than annotated, or a manual pool without asking
    assert allocator.assign(svc("a", ingress=("192.0.2.1",))) == ips("10.92.100.0")
    assert allocator.assign(svc("b", ingress=("10.92.100.9",), pool="customer-access")) == ips(
        "10.102.10.128")
    assert allocator.assign(svc("c", ingress=("10.102.5.62",))) == ips("10.92.100.1")


def test_ingress_held_by_an_incompatible_service_is_in_use() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/24")])
    allocator.assign(svc("old", ingress=("10.0.0.5",)))
    err = fail(allocator, svc("new", ingress=("10.0.0.5",)))
    assert err.reason == "in-use" and "default/old" in err.message


def test_pool_annotation_change_moves_the_service() -> None:
    allocator = Allocator(REFERENCE_POOLS)
    assert allocator.assign(svc("s", pool="node-management")) == ips("10.92.100.0")
    assert allocator.assign(svc("s", pool="hardware-management")) == ips("10.94.100.0")
    assert allocator.holder(ip_address("10.92.100.0")) == []


def test_an_error_on_reassign_changes_nothing() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/24")])
    allocator.assign(svc("s"))
    fail(allocator, svc("s", pool="nope"))
    assert allocator.assigned("default/s") == ips("10.0.0.0")


# --- sharing --------------------------------------------------------------------------


def unbound(name: str, protocol: str, key: str = "cray-dns-unbound-nmn", **kw: Any) -> ServiceInfo:
    return svc(name, ns="services", requested=("10.92.100.225",), pool="node-management",
               key=key, ports=((protocol, 53),), selector=(("app", name),), **kw)


def test_the_two_unbound_services_share_their_address() -> None:
    allocator = Allocator(REFERENCE_POOLS)
    assert allocator.assign(unbound("udp", "UDP")) == ips("10.92.100.225")
    assert allocator.assign(unbound("tcp", "TCP")) == ips("10.92.100.225")
    assert allocator.holder(ip_address("10.92.100.225")) == ["services/udp", "services/tcp"]
    assert allocator.usage()["node-management"] == (1, 256)


@pytest.mark.parametrize(
    ("third", "why"),
    [
        (unbound("clash", "UDP"), "port clash: both use UDP/53"),
        (unbound("other-key", "SCTP", key="elsewhere"), "different sharing key"),
        (unbound("no-key", "SCTP", key=None), "no allow-shared-ip annotation on services/no-key"),
        (unbound("local", "SCTP", local=True), "externalTrafficPolicy differs"),
    ],
)
def test_an_incompatible_third_service_is_refused(third: ServiceInfo, why: str) -> None:
    allocator = Allocator(REFERENCE_POOLS)
    allocator.assign(unbound("udp", "UDP"))
    allocator.assign(unbound("tcp", "TCP"))
    err = fail(allocator, third)
    assert err.reason == "in-use"
    assert why in err.message
    assert allocator.holder(ip_address("10.92.100.225")) == ["services/udp", "services/tcp"]


def test_local_services_share_only_with_the_same_selector() -> None:
    a = svc("a", key="k", local=True, selector=(("app", "x"),), ports=(("TCP", 1),))
    b = svc("b", key="k", local=True, selector=(("app", "x"),), ports=(("TCP", 2),))
    c = svc("c", key="k", local=True, selector=(("app", "y"),), ports=(("TCP", 3),))
    assert sharing_conflict(a, b) is None
    assert sharing_conflict(a, c) == "externalTrafficPolicy Local with different selectors"


def test_auto_assignment_joins_a_compatible_sharer() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/24")])
    allocator.assign(svc("filler"))
    first = allocator.assign(svc("dns-udp", key="dns", ports=(("UDP", 53),)))
    second = allocator.assign(svc("dns-tcp", key="dns", ports=(("TCP", 53),)))
    clash = allocator.assign(svc("dns-udp2", key="dns", ports=(("UDP", 53),)))
    assert first == second == ips("10.0.0.1")
    assert clash == ips("10.0.0.2")
    # released by both sharers, the address is free again
    allocator.release("default/dns-udp")
    assert allocator.assign(svc("x")) == ips("10.0.0.3")
    allocator.release("default/dns-tcp")
    assert allocator.assign(svc("y")) == ips("10.0.0.1")


# --- dual stack --------------------------------------------------------------------------


def test_dual_stack_gives_one_address_per_family_in_the_asked_order() -> None:
    allocator = Allocator([pool("v4", "10.0.0.0/30"), pool("v6", "fd00::/126")])
    assert allocator.assign(svc("a", families=(4, 6), require_all=True)) == ips("10.0.0.0",
                                                                                "fd00::")
    assert allocator.assign(svc("b", families=(6, 4))) == ips("fd00::1", "10.0.0.1")


def test_dual_stack_requested_pair() -> None:
    allocator = Allocator([pool("p", "10.0.0.0/30", "fd00::/126")])
    got = allocator.assign(svc("a", requested=("fd00::3", "10.0.0.2"), families=(4, 6),
                               require_all=True))
    assert got == ips("10.0.0.2", "fd00::3")


def test_require_dual_stack_fails_without_a_family_prefer_gives_what_exists() -> None:
    allocator = Allocator([pool("v4", "10.0.0.0/30")])
    err = fail(allocator, svc("req", families=(4, 6), require_all=True))
    assert err.reason == "family-unavailable"
    assert allocator.assigned("default/req") == ()
    assert allocator.assign(svc("pref", families=(4, 6))) == ips("10.0.0.0")


def test_prefer_dual_stack_with_nothing_at_all_fails() -> None:
    allocator = Allocator([pool("v4", "10.0.0.0/32")])
    allocator.assign(svc("a"))
    err = fail(allocator, svc("pref", families=(4, 6)))
    assert err.reason == "pool-exhausted"


# --- annotations through service_info ------------------------------------------------------


@pytest.mark.parametrize("prefix", ["metallb.universe.tf", "metallb.io"])
def test_annotations_through_service_info(prefix: str) -> None:
    allocator = Allocator(REFERENCE_POOLS)
    obj = {
        "metadata": {"name": "s", "namespace": "n", "annotations": {
            f"{prefix}/loadBalancerIPs": "10.102.5.62",
            f"{prefix}/address-pool": "customer-management-static",
            f"{prefix}/allow-shared-ip": "k",
        }},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 53, "protocol": "UDP"}]},
    }
    info = service_info(obj)
    assert allocator.assign(info) == ips("10.102.5.62")
    assert info.sharing_key == "k"


# --- queries and scale -------------------------------------------------------------------


def test_pool_of_and_usage() -> None:
    allocator = Allocator(REFERENCE_POOLS)
    assert allocator.pool_of(ip_address("10.102.5.63")) == "customer-management-static"
    assert allocator.pool_of(ip_address("10.102.5.64")) == "customer-management"
    assert allocator.pool_of(ip_address("10.102.5.59")) is None
    assert allocator.pool_of(ip_address("fd00::1")) is None
    allocator.assign(svc("a", pool="customer-access"))
    assert allocator.usage()["customer-access"] == (1, 64)
    assert allocator.usage()["node-management"] == (0, 256)


def test_span_positions_and_huge_ipv6_pools() -> None:
    span = PoolSpan("p", 6, [(ip_address("fd00::"), ip_address("fd00::ffff:ffff:ffff:ffff"))])
    assert span.size == 2**64
    assert span.position(ip_address("fd00::10")) == 16
    assert span.position(ip_address("fd01::")) is None
    allocator = Allocator([pool("v6", "fd00::/64")])
    assert allocator.assign(svc("a", families=(6,))) == ips("fd00::")


def test_a_thousand_services_cost_a_few_address_lookups_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked_at = 0
    address_at = PoolSpan.address

    def counting(self: PoolSpan, position: int) -> Any:
        nonlocal looked_at
        looked_at += 1
        return address_at(self, position)

    monkeypatch.setattr(PoolSpan, "address", counting)
    allocator = Allocator([pool("big", "10.0.0.0/16")])
    got = [allocator.assign(svc(f"s{i}"))[0] for i in range(1000)]
    for i in range(0, 1000, 2):
        allocator.release(f"default/s{i}")
    again = [allocator.assign(svc(f"t{i}"))[0] for i in range(500)]
    assert got[:3] == list(ips("10.0.0.0", "10.0.0.1", "10.0.0.2"))
    assert again[:2] == list(ips("10.0.0.0", "10.0.0.2"))
    assert sorted(again) == sorted(got[0::2])
    # a scan from the pool's start per Service would look at ~750,000 addresses
    assert looked_at < 20 * 1500


# --- properties ---------------------------------------------------------------------------

PROPERTY_POOLS = (
    pool("a", "10.0.0.0-10.0.0.3", "fd00::-fd00::1"),
    pool("b", "10.0.1.0-10.0.1.2", auto_assign=False),
)
ADDRESSES = [*ips("10.0.0.0", "10.0.0.2", "10.0.0.3", "10.0.1.1", "fd00::1", "192.0.2.1")]

service_strategy = st.builds(
    lambda n, req, pool_, key, ports, local, sel, families: svc(
        f"s{n}", requested=req, pool=pool_, key=key, ports=ports, local=local,
        selector=(("app", sel),), families=families,
    ),
    st.integers(0, 5),
    st.one_of(st.just(()), st.sampled_from(ADDRESSES).map(lambda a: (str(a),))),
    st.sampled_from([None, None, "a", "b", "zz"]),
    st.sampled_from([None, "k1", "k2"]),
    st.lists(st.tuples(st.sampled_from(["TCP", "UDP"]), st.integers(1, 3)), max_size=2).map(tuple),
    st.booleans(),
    st.sampled_from(["x", "y"]),
    st.sampled_from([(4,), (6,), (4, 6)]),
).filter(lambda s: all(a.version in s.families for a in s.requested))

operations = st.lists(
    st.one_of(
        st.tuples(st.just("assign"), service_strategy),
        st.tuples(st.just("release"), st.integers(0, 5).map(lambda n: f"default/s{n}")),
    ),
    max_size=30,
)


def snapshot(allocator: Allocator) -> dict[str, tuple[Any, ...]]:
    return {f"default/s{n}": allocator.assigned(f"default/s{n}") for n in range(6)}


def run(ops: list[tuple[str, Any]]) -> list[object]:
    allocator = Allocator(PROPERTY_POOLS)
    services: dict[str, ServiceInfo] = {}
    outcomes: list[object] = []
    for op, arg in ops:
        if op == "release":
            outcomes.append(allocator.release(arg))
            services.pop(arg, None)
            continue
        before = snapshot(allocator)
        taken = any(set(allocator.holder(a)) - {arg.key} for a in arg.requested)
        try:
            got = allocator.assign(arg)
        except AllocationError as err:
            assert snapshot(allocator) == before  # all or nothing
            outcomes.append(err.reason)
            # a request for free addresses of the right pool never fails
            pools = {allocator.pool_of(a) for a in arg.requested}
            if (arg.requested and not taken and None not in pools
                    and (arg.pool is None or pools == {arg.pool})):
                raise AssertionError(f"free request refused: {err.message}") from None
            continue
        services[arg.key] = arg
        outcomes.append(got)
        if arg.requested:
            assert set(got) == set(arg.requested)  # requested addresses win
        assert len({a.version for a in got}) == len(got)
        for address in got:
            assert allocator.pool_of(address) is not None
        check_no_incompatible_holders(allocator, services)
    return outcomes


def check_no_incompatible_holders(allocator: Allocator, services: dict[str, ServiceInfo]) -> None:
    for address in {a for key in services for a in allocator.assigned(key)}:
        holders = allocator.holder(address)
        for i, first in enumerate(holders):
            for second in holders[i + 1:]:
                assert sharing_conflict(services[first], services[second]) is None


@settings(max_examples=300, deadline=None)
@given(operations)
def test_property_no_incompatible_sharing_and_all_or_nothing(ops: list[tuple[str, Any]]) -> None:
    run(ops)


@settings(max_examples=100, deadline=None)
@given(operations)
def test_property_replay_is_deterministic(ops: list[tuple[str, Any]]) -> None:
    assert run(ops) == run(ops)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_property_release_then_reuse(order: list[int]) -> None:
    allocator = Allocator([pool("p", "10.0.0.0-10.0.0.5")])
    for n in range(6):
        allocator.assign(svc(f"s{n}"))
    released = {allocator.release(f"default/s{n}")[0] for n in set(order)}
    regained = {allocator.assign(svc(f"new{n}"))[0] for n in range(len(released))}
    assert regained == released
    assert fail(allocator, svc("one-too-many")).reason == "pool-exhausted"
