"""What a spine's BGP has: the paths it accepted from each neighbor, and its sessions.

Pure parsing of FRR's JSON (``show bgp vrf NAME ipv4|ipv6 unicast json`` and
``show bgp vrf all summary json``), the observations service-prefix
reconciliation compares with the desired state: a prefix *accepted* from a
session that should not carry it is a leak, and a session that is not
Established explains a missing next hop.  Paths FRR refused by policy are not
in the table at all, so everything here passed the spine's inbound route-maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

from spinelb.bgp.wire import Address, Prefix

#: neighbor address -> the prefixes the spine accepted from it
Accepted = dict[Address, set[Prefix]]


@dataclass(frozen=True, slots=True)
class Session:
    """One BGP neighbor of a spine as the spine sees it."""

    neighbor: Address
    vrf: str
    state: str  # RFC 4271 name: Established, Active, Idle, Connect, OpenSent, OpenConfirm
    uptime_seconds: float | None  # time in Established; None when not Established
    remote_asn: int | None
    description: str | None
    accepted: int  # prefixes accepted from it

    @property
    def established(self) -> bool:
        return self.state == "Established"


def frr_accepted(data: Mapping[str, Any]) -> Accepted:
    """Per neighbor, the prefixes in the BGP table learned from it (``peerId`` of each path)."""
    accepted: Accepted = {}
    for text, paths in (data.get("routes") or {}).items():
        try:
            prefix = ip_network(text)
        except ValueError:
            continue
        for path in paths if isinstance(paths, list) else []:
            peer = path.get("peerId") if isinstance(path, Mapping) else None
            if not peer or path.get("valid") is False:
                continue
            try:
                neighbor = ip_address(peer)
            except ValueError:  # "(unspec)" for locally originated paths
                continue
            accepted.setdefault(neighbor, set()).add(prefix)
    return accepted


def frr_sessions(data: Mapping[str, Any]) -> dict[Address, Session]:
    """Every neighbor of every VRF and family in ``show bgp vrf all summary json``."""
    sessions: dict[Address, Session] = {}
    for vrf, families in data.items():
        if not isinstance(families, Mapping):
            continue
        for family in families.values():
            peers = family.get("peers") if isinstance(family, Mapping) else None
            for text, peer in (peers or {}).items():
                try:
                    neighbor = ip_address(text)
                except ValueError:  # an interface-named (unnumbered) neighbor
                    continue
                state = str(peer.get("state") or "Idle")
                uptime = peer.get("peerUptimeMsec")
                sessions[neighbor] = Session(
                    neighbor=neighbor,
                    vrf=str(vrf),
                    state=state,
                    uptime_seconds=uptime / 1000 if state == "Established"
                    and isinstance(uptime, int | float) else None,
                    remote_asn=peer.get("remoteAs") if isinstance(peer.get("remoteAs"), int)
                    else None,
                    description=peer.get("desc") or None,
                    accepted=int(peer.get("pfxRcd") or 0),
                )
    return sessions


def accepted_from(accepted: Accepted, neighbors: set[IPv4Address | IPv6Address]) -> set[Prefix]:
    """Every prefix accepted from any of ``neighbors``."""
    found: set[Prefix] = set()
    for neighbor in neighbors:
        found |= accepted.get(neighbor, set())
    return found
