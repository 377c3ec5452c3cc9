"""Which node answers for each Layer 2 address: rendezvous (highest random weight) hashing.

Every speaker computes the owner of an address from the address and the set
of eligible node names alone, so all of them agree without talking to each
other or to Kubernetes.  Each (node, address) pair gets a weight from SHA-256
(stable across processes, hosts and Python versions, unlike ``hash()``); the
node with the highest weight owns the address.  That spreads addresses evenly,
and a change in the node set moves only what it must: a node leaving gives up
exactly its own addresses, a node joining takes only the addresses for which
it now has the highest weight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address

__all__ = ["Address", "owner", "owners", "weight"]

Address = IPv4Address | IPv6Address


def weight(node: str, address: Address | str) -> int:
    """The weight of ``node`` for ``address``: the first 8 octets of SHA-256(node NUL address)."""
    canonical = str(ip_address(address))  # "10.0.0.1" and IPv4Address("10.0.0.1") hash alike
    digest = hashlib.sha256(f"{node}\0{canonical}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def owner(address: Address | str, nodes: Iterable[str]) -> str | None:
    """The node that answers for ``address`` among ``nodes``, or None when there is none.

    Ties (never seen with 64-bit weights, but possible) go to the greater name,
    so the answer never depends on the order of ``nodes``.
    """
    best: tuple[int, str] | None = None
    for node in nodes:
        candidate = (weight(node, address), node)
        if best is None or candidate > best:
            best = candidate
    return None if best is None else best[1]


def owners(addresses: Iterable[Address | str], nodes: Iterable[str]) -> dict[Address, str]:
    """The owner of each address; empty when there are no nodes.  Keys are ip_address objects."""
    eligible = sorted(set(nodes))
    result: dict[Address, str] = {}
    if not eligible:
        return result
    for address in addresses:
        key = ip_address(address)
        chosen = owner(key, eligible)
        if chosen is not None:
            result[key] = chosen
    return result
