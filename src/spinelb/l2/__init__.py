"""Layer 2 mode: answering ARP and NDP for service addresses, and choosing who answers.

Imports go one way: packet <- responder; owner stands alone.  ``packet`` and
``owner`` are pure; ``responder`` is the one asyncio adapter (raw packet
sockets on one interface, ``CAP_NET_RAW``).
"""

from spinelb.l2.owner import owner, owners, weight
from spinelb.l2.packet import (
    ArpPacket,
    EthernetFrame,
    MacAddress,
    NeighborAdvertisement,
    NeighborSolicitation,
    announcement,
    reply,
    solicited_node,
)
from spinelb.l2.responder import ANNOUNCE_DELAYS, L2Counters, Responder

__all__ = [
    "ANNOUNCE_DELAYS",
    "ArpPacket",
    "EthernetFrame",
    "L2Counters",
    "MacAddress",
    "NeighborAdvertisement",
    "NeighborSolicitation",
    "Responder",
    "announcement",
    "owner",
    "owners",
    "reply",
    "solicited_node",
    "weight",
]
