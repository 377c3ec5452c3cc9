"""Which layer2 addresses this node answers: the owner choice over the live, eligible nodes.

Pure: the speaker gives it the layer2 addresses (each with the nodes that may
answer it, or None when any node may: externalTrafficPolicy Cluster), this
node's name, whether this node may answer anything at all (its Node Ready and
not excluded), and the other speakers whose BFD session with us is Up.  Every
speaker that sees the same inputs computes the same owners
(:func:`spinelb.l2.owner.owner`), so exactly one answers each address without
a round trip.  A node counts as live only through BFD (the others) or its own
Node status (this one): a speaker that is not eligible takes its BFD sessions
AdminDown, so the others drop it as soon as they hear that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from spinelb.l2.owner import Address, owner

__all__ = ["Assignment", "assign", "candidates"]


@dataclass(frozen=True, slots=True)
class Assignment:
    """The owner of every layer2 address (None: no live eligible node), seen from ``node``."""

    node: str
    live: frozenset[str]  # every node counted live, this one included when it is eligible
    owners: Mapping[Address, str | None]

    @property
    def owned(self) -> frozenset[Address]:
        """The addresses this node answers."""
        return frozenset(a for a, chosen in self.owners.items() if chosen == self.node)


def candidates(live: frozenset[str], allowed: frozenset[str] | None) -> frozenset[str]:
    """The nodes that may answer an address: the live ones, restricted to ``allowed`` (Local)."""
    return live if allowed is None else live & allowed


def assign(
    addresses: Mapping[Address, frozenset[str] | None],
    node: str,
    eligible: bool,
    live_peers: Iterable[str],
) -> Assignment:
    """Choose the owner of each address in ``addresses`` (address -> allowed nodes or None).

    ``live_peers`` are the other speakers whose BFD session is Up; ``node`` joins
    them when ``eligible``.  With Local policy an address goes to a live node
    with a ready endpoint; when there is none the address has no owner (nobody
    answers, as no node could deliver the traffic).
    """
    live = set(live_peers)
    live.discard(node)
    if eligible:
        live.add(node)
    frozen = frozenset(live)
    return Assignment(
        node=node,
        live=frozen,
        owners={address: owner(address, candidates(frozen, allowed))
                for address, allowed in addresses.items()},
    )
