"""What a spine's BGP has: the paths it accepted from each neighbor, and its sessions.

Parsing of FRR's JSON (``show bgp vrf NAME ipv4|ipv6 unicast json`` and
``show bgp vrf all summary json``) and of AOS-CX's REST answer
(``system/vrfs/NAME/bgp_routers/ASN/bgp_neighbors?depth=2``), the observations
service-prefix reconciliation compares with the desired state: a prefix
*accepted* from a session that should not carry it is a leak, and a session
that is not Established explains a missing next hop.  Paths FRR refused by
policy are not in the table at all, so everything here passed the spine's
inbound route-maps.  :class:`AoscxBgpReader` reads the AOS-CX answers.

AOS-CX documents no REST resource for a neighbor's accepted paths: over REST
only the sessions are known (state, remote AS, description; no uptime and no
prefix count, which its neighbor resource does not document either).  Where
the spine is also reached over its CLI, ``show ip bgp neighbors N routes [vrf
V]`` lists what it accepted from N (:func:`aoscx_cli_command`,
:func:`aoscx_cli_accepted`).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Any

from spinelb.bgp.wire import Address, Prefix

from .routes import AoscxRouteReader

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
    accepted: int | None  # prefixes accepted from it; None when the spine does not say

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


def aoscx_sessions(data: Mapping[str, Any], vrf: str) -> dict[Address, Session]:
    """The neighbors of AOS-CX's ``bgp_neighbors?depth=2`` answer for ``vrf``.

    Keys are neighbor addresses (peer groups, keyed by name and marked
    ``is_peer_group``, are left out); the state is ``status.bgp_peer_state``,
    the field CSM's ``canu validate network bgp`` reads.  A neighbor without a
    status has not started: Idle.
    """
    sessions: dict[Address, Session] = {}
    for key, neighbor in data.items():
        if not isinstance(neighbor, Mapping) or neighbor.get("is_peer_group") is True:
            continue
        try:
            address = ip_address(urllib.parse.unquote(str(key)))
        except ValueError:  # a peer group or an interface name
            continue
        status = neighbor.get("status")
        state = status.get("bgp_peer_state") if isinstance(status, Mapping) else None
        remote_as = neighbor.get("remote_as")
        sessions[address] = Session(
            neighbor=address,
            vrf=vrf,
            state=str(state or "Idle"),
            uptime_seconds=None,
            remote_asn=remote_as if isinstance(remote_as, int) else None,
            description=neighbor.get("description") or None,
            accepted=None,
        )
    return sessions


#: A path line of AOS-CX's ``show ip bgp ... routes``: its status codes, then the network.
_AOSCX_PATH = re.compile(r"^\s*(?P<codes>[sdh*>=ieSR][sdh*>=ieSR ]{0,7}?)\s+"
                         r"(?P<network>[0-9A-Fa-f:.]+/\d{1,3})\s")


def aoscx_cli_command(neighbor: Address, vrf: str) -> str:
    """AOS-CX's command for the IPv4 routes received and accepted from ``neighbor`` in ``vrf``."""
    return f"show ip bgp neighbors {neighbor} routes" + ("" if vrf == "default" else f" vrf {vrf}")


def aoscx_cli_accepted(text: str) -> set[Prefix]:
    """The networks of the valid paths (status ``*``, not ``R`` removed) in the output of
    :func:`aoscx_cli_command`: what the spine accepted from that neighbor after its policy."""
    accepted: set[Prefix] = set()
    for line in text.splitlines():
        match = _AOSCX_PATH.match(line)
        if match is None or "*" not in match["codes"] or "R" in match["codes"]:
            continue
        try:
            accepted.add(ip_network(match["network"]))
        except ValueError:
            continue
    return accepted


def merge_accepted(parts: Iterable[Accepted]) -> Accepted:
    """One :data:`Accepted` with every neighbor of ``parts`` and the union of its prefixes."""
    accepted: Accepted = {}
    for part in parts:
        for neighbor, prefixes in part.items():
            accepted.setdefault(neighbor, set()).update(prefixes)
    return accepted


def accepted_as_data(accepted: Accepted) -> dict[str, list[str]]:
    """``accepted`` as plain data: ``{"10.252.1.10": ["10.92.100.71/32", ...]}``, sorted."""
    return {
        str(neighbor): [
            str(p) for p in sorted(accepted[neighbor], key=lambda p: (p.version, p))
        ]
        for neighbor in sorted(accepted, key=lambda a: (a.version, a))
    }


def sessions_as_data(sessions: Mapping[Address, Session]) -> dict[str, dict[str, Any]]:
    """``sessions`` as plain data keyed by neighbor address, sorted."""
    return {
        str(neighbor): {
            "state": session.state,
            "vrf": session.vrf,
            "uptime_seconds": session.uptime_seconds,
            "remote_asn": session.remote_asn,
            "description": session.description,
            "accepted": session.accepted,
        }
        for neighbor, session in sorted(sessions.items(), key=lambda i: (i[0].version, i[0]))
    }


class AoscxBgpReader(AoscxRouteReader):
    """An AOS-CX REST session that reads route tables and BGP neighbors (a context manager)."""

    def neighbors(self, vrf: str, asn: int) -> dict[str, Any]:
        """The BGP neighbors of VRF ``vrf``'s router ``asn``, with their status (``?depth=2``)."""
        name = urllib.parse.quote(vrf, safe="")
        return self._get_json(f"system/vrfs/{name}/bgp_routers/{int(asn)}/bgp_neighbors?depth=2",
                              what=f"read the BGP neighbors of VRF {vrf!r}")
