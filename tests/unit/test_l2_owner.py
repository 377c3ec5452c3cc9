"""Owner choice for Layer 2 addresses (spinelb.l2.owner): agreement, spread, minimal movement."""

from __future__ import annotations

import hashlib
import random
import subprocess
import sys
from collections import Counter
from ipaddress import IPv4Address, IPv6Address, ip_address

from hypothesis import given
from hypothesis import strategies as st

from spinelb.l2.owner import Address, owner, owners, weight

POOL = [IPv4Address("10.250.0.0") + i for i in range(300)]
NODES = ["worker-1", "worker-2", "worker-3"]

addresses = st.one_of(
    st.integers(0, 2**32 - 1).map(IPv4Address), st.integers(0, 2**128 - 1).map(IPv6Address)
)
node_names = st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=8, unique=True)


def test_the_weight_is_sha256_of_node_and_address() -> None:
    digest = hashlib.sha256(b"worker-1\x0010.250.0.7").digest()
    assert weight("worker-1", IPv4Address("10.250.0.7")) == int.from_bytes(digest[:8], "big")
    assert weight("worker-1", "10.250.0.7") == weight("worker-1", IPv4Address("10.250.0.7"))
    assert weight("w", "fd00:250:0:0::1") == weight("w", IPv6Address("fd00:250::1"))


def test_another_process_computes_the_same_owners() -> None:
    """No ``hash()`` (randomised per process): a fresh interpreter agrees, whatever its seed."""
    code = ("from spinelb.l2.owner import owners; from ipaddress import IPv4Address as A;"
            "print(sorted((str(k), v) for k, v in owners([A('10.250.0.0') + i for i in range(300)],"
            " ['worker-3', 'worker-1', 'worker-2']).items()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345"}).stdout.strip()
    assert out == str(sorted((str(k), v) for k, v in owners(POOL, NODES).items()))


def test_no_nodes_no_owner() -> None:
    assert owner("10.250.0.1", []) is None
    assert owners(POOL, []) == {}


def test_owners_spread_over_the_nodes() -> None:
    counts = Counter(owners(POOL, NODES).values())
    assert set(counts) == set(NODES)
    assert all(70 <= count <= 130 for count in counts.values()), counts


def test_owners_keys_are_addresses_and_cover_every_one() -> None:
    chosen = owners(["10.250.0.1", "fd00:250::1"], NODES)
    assert set(chosen) == {ip_address("10.250.0.1"), ip_address("fd00:250::1")}


@given(address=addresses, nodes=node_names, seed=st.randoms(use_true_random=False))
def test_every_node_computes_the_same_owner_whatever_the_order(
    address: Address, nodes: list[str], seed: random.Random
) -> None:
    shuffled = list(nodes)
    seed.shuffle(shuffled)
    assert owner(address, nodes) == owner(address, shuffled) == owner(str(address), reversed(nodes))
    assert owner(address, nodes) in nodes
    assert owner(address, nodes + nodes) == owner(address, nodes)  # duplicates change nothing


@given(pool=st.lists(addresses, max_size=40, unique=True), nodes=node_names, data=st.data())
def test_a_node_leaving_moves_only_its_own_addresses(
    pool: list[Address], nodes: list[str], data: st.DataObject
) -> None:
    leaving = data.draw(st.sampled_from(nodes))
    before = owners(pool, nodes)
    after = owners(pool, [node for node in nodes if node != leaving])
    for address, node in before.items():
        if node != leaving:
            assert after[address] == node
        else:
            assert after.get(address) != leaving


@given(pool=st.lists(addresses, max_size=40, unique=True), nodes=node_names,
       joining=st.text(min_size=1, max_size=20))
def test_a_node_joining_takes_only_what_moves_to_it(
    pool: list[Address], nodes: list[str], joining: str
) -> None:
    if joining in nodes:
        return
    before = owners(pool, nodes)
    after = owners(pool, [*nodes, joining])
    for address, node in after.items():
        assert node in (before[address], joining)


def test_a_node_leaving_the_pool_of_300_moves_about_a_third() -> None:
    before = owners(POOL, NODES)
    after = owners(POOL, NODES[:2])
    moved = {address for address in POOL if before[address] != after[address]}
    assert moved == {address for address, node in before.items() if node == "worker-3"}
