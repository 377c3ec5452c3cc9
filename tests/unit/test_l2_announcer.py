"""The layer2 owner choice as each speaker makes it: same inputs, same owners, on every node."""

from __future__ import annotations

from ipaddress import ip_address

from spinelb.l2.announcer import assign
from spinelb.l2.owner import Address

NODES = ("ncn-w001", "ncn-w002", "ncn-w003")
ADDRESSES: list[Address] = [ip_address(f"10.102.10.{i}") for i in range(1, 61)]
CLUSTER: dict[Address, frozenset[str] | None] = dict.fromkeys(ADDRESSES)


def views(addresses: dict[Address, frozenset[str] | None], live: set[str]) -> dict[str, dict]:
    """Each live node's own view: itself eligible, the other live nodes as its BFD peers."""
    return {node: dict(assign(addresses, node, True, live - {node}).owners) for node in live}


def test_every_node_computes_the_same_owners_and_they_spread() -> None:
    seen = views(CLUSTER, set(NODES))
    first = seen[NODES[0]]
    assert all(view == first for view in seen.values())
    assert set(first) == set(ADDRESSES)
    counts = {node: sum(1 for o in first.values() if o == node) for node in NODES}
    assert all(count >= 10 for count in counts.values()), counts
    owned = [assign(CLUSTER, node, True, set(NODES) - {node}).owned for node in NODES]
    assert sum(len(o) for o in owned) == len(ADDRESSES)  # each answered exactly once
    assert frozenset().union(*owned) == frozenset(ADDRESSES)


def test_local_policy_restricts_the_owner_to_the_endpoint_nodes() -> None:
    endpoints = frozenset({"ncn-w002"})
    addresses = {a: endpoints for a in ADDRESSES[:20]}
    for node in NODES:
        result = assign(addresses, node, True, set(NODES) - {node})
        assert set(result.owners.values()) == {"ncn-w002"}
        assert result.owned == (frozenset(addresses) if node == "ncn-w002" else frozenset())
    # the endpoint node is down: nobody answers rather than a node without an endpoint
    result = assign(addresses, "ncn-w001", True, {"ncn-w003"})
    assert set(result.owners.values()) == {None}


def test_a_peer_going_down_moves_only_its_addresses() -> None:
    before = assign(CLUSTER, "ncn-w001", True, {"ncn-w002", "ncn-w003"}).owners
    after = assign(CLUSTER, "ncn-w001", True, {"ncn-w002"}).owners
    moved = {a for a in ADDRESSES if before[a] != after[a]}
    assert moved == {a for a in ADDRESSES if before[a] == "ncn-w003"}
    assert "ncn-w003" not in after.values()
    # and back: exactly those return
    again = assign(CLUSTER, "ncn-w001", True, {"ncn-w002", "ncn-w003"}).owners
    assert again == before


def test_no_live_eligible_node_means_no_owner() -> None:
    result = assign(CLUSTER, "ncn-w001", False, set())
    assert set(result.owners.values()) == {None}
    assert result.owned == frozenset() and result.live == frozenset()
    local = assign({ADDRESSES[0]: frozenset()}, "ncn-w001", True, {"ncn-w002"})
    assert local.owners[ADDRESSES[0]] is None  # Local policy, no ready endpoint anywhere


def test_a_node_that_is_not_eligible_owns_nothing_and_others_agree() -> None:
    result = assign(CLUSTER, "ncn-w001", False, {"ncn-w002", "ncn-w003"})
    assert result.owned == frozenset()
    assert "ncn-w001" not in result.live
    assert set(result.owners.values()) == {"ncn-w002", "ncn-w003"}
    # the others, having heard its AdminDown, no longer count it live: the same owners
    peer_view = assign(CLUSTER, "ncn-w002", True, {"ncn-w003"}).owners
    assert peer_view == result.owners
    # even listed among the live peers (a stale view), this node does not answer
    stale = assign(CLUSTER, "ncn-w001", False, {"ncn-w001", "ncn-w002"})
    assert stale.owned == frozenset()
