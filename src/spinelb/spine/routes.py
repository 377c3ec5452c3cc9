"""A spine's installed routes to the site's pool addresses, read from FRR's or AOS-CX's JSON.

Draining a worker waits until no spine forwards through it any more, so what
counts is the forwarding table, not the BGP paths: a route counts when the
spine selected and installed it, and a next hop when it is active in that
route.  Both platforms' answers become one :data:`RouteTable`, ``{prefix:
next hops}``, which :func:`pool_routes` restricts to the site's pools and
:func:`routed_through` to the prefixes a worker's addresses carry.

- FRR: ``show ip route [vrf NAME] json`` (``{prefix: [route, ...]}``; FRR 9 and
  later answer ``vrf all`` with ``{vrf: {prefix: [...]}}``, read too).
- AOS-CX: ``GET /rest/v10.09/system/vrfs/NAME/routes?depth=2`` (``{key: route}``,
  each route with ``prefix`` and ``nexthops``; a next hop the switch left as a
  URI is fetched by :class:`AoscxRouteReader`).

A layer2 pool's addresses are not routed: a spine on their segment reaches
them as hosts, so what it has is a neighbor entry (the MAC the address
resolved to).  :func:`layer2_neighbors` picks those addresses,
:func:`linux_neighbor` reads an FRR spine's ``ip -j neigh show ADDRESS``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

from .aoscx_rest import AoscxClient, AoscxError
from .model import Site

Prefix = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
#: Installed prefixes and their next hops (sorted, without duplicates).
RouteTable = dict[Prefix, tuple[Address, ...]]


def frr_route_table(data: Mapping[str, Any]) -> RouteTable:
    """The installed routes of FRR's ``show ip route ... json`` answer.

    A route counts when FRR ``selected`` and ``installed`` it; its next hops are
    those with an ``ip`` that are ``active`` (in the FIB: ``fib`` when FRR says).
    Connected routes (no ``ip``) have no next hop and are left out.
    """
    table: dict[Prefix, set[Address]] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):  # {vrf: {prefix: [...]}}
            _merge_into(table, frr_route_table(value))
            continue
        if not isinstance(value, list):
            continue
        for route in value:
            if not isinstance(route, Mapping) or not route.get("selected"):
                continue
            if route.get("installed") is False:
                continue
            hops = {
                hop
                for nexthop in route.get("nexthops") or []
                if isinstance(nexthop, Mapping) and _frr_forwards(nexthop)
                for hop in [_address(nexthop.get("ip"))]
                if hop is not None
            }
            prefix = _prefix(route.get("prefix", key))
            if prefix is not None and hops:
                table.setdefault(prefix, set()).update(hops)
    return _sorted(table)


def _frr_forwards(nexthop: Mapping[str, Any]) -> bool:
    if "fib" in nexthop:
        return bool(nexthop["fib"])
    return bool(nexthop.get("active"))


def aoscx_route_table(data: Mapping[str, Any]) -> RouteTable:
    """The installed routes of AOS-CX's ``system/vrfs/NAME/routes?depth=2`` answer.

    Each route has ``prefix`` and ``nexthops`` (a mapping or a list of next-hop
    objects with ``ip_address``); a route or next hop whose ``selected`` is false
    is not forwarded on and is left out, as are next hops without an address.
    """
    table: dict[Prefix, set[Address]] = {}
    for route in data.values():
        if not isinstance(route, Mapping) or route.get("selected") is False:
            continue
        prefix = _prefix(route.get("prefix"))
        nexthops = route.get("nexthops") or {}
        if isinstance(nexthops, Mapping):
            nexthops = list(nexthops.values())
        hops = {
            hop
            for nexthop in nexthops
            if isinstance(nexthop, Mapping) and nexthop.get("selected") is not False
            for hop in [_address(nexthop.get("ip_address"))]
            if hop is not None
        }
        if prefix is not None and hops:
            table.setdefault(prefix, set()).update(hops)
    return _sorted(table)


def pool_routes(table: RouteTable, pools: Iterable[IPv4Network]) -> RouteTable:
    """The routes of ``table`` to prefixes inside one of ``pools``."""
    cidrs = list(pools)
    return {
        prefix: hops
        for prefix, hops in table.items()
        if isinstance(prefix, IPv4Network) and any(prefix.subnet_of(cidr) for cidr in cidrs)
    }


def routed_through(table: RouteTable, addresses: Iterable[str | Address]) -> RouteTable:
    """The routes of ``table`` with a next hop among ``addresses`` (every next hop kept)."""
    wanted = {ip_address(str(a)) for a in addresses}
    return {prefix: hops for prefix, hops in table.items() if wanted & set(hops)}


def merge(tables: Iterable[RouteTable]) -> RouteTable:
    """One table with every prefix of ``tables`` and the union of its next hops."""
    table: dict[Prefix, set[Address]] = {}
    for part in tables:
        _merge_into(table, part)
    return _sorted(table)


def route_vrfs(site: Site, spine: str) -> list[str]:
    """The VRFs of ``spine`` that hold the pools' routes (one when its VRFs are collapsed)."""
    return site.vrfs(collapse=site.spines[spine].collapse_vrfs)


def layer2_neighbors(site: Site, addresses: Iterable[str]) -> list[str]:
    """The addresses among ``addresses`` that are in a layer2 pool of ``site``, sorted, once each
    (anything else, a BGP pool's address or text that is no address, is left out)."""
    found: set[Address] = set()
    for text in addresses:
        address = _address(text)
        if isinstance(address, IPv4Address):
            pool = site.pool_of(IPv4Network(address))
            if pool is not None and pool.layer2:
                found.add(address)
    return [str(address) for address in sorted(found)]


#: Linux neighbor states whose entry holds the MAC the address resolved to.
RESOLVED_STATES = frozenset({"REACHABLE", "STALE", "DELAY", "PROBE", "PERMANENT", "NOARP"})


def linux_neighbor(data: object, address: str | Address) -> dict[str, str | None]:
    """What ``ip -j neigh show ADDRESS`` says of ``address``: ``{"mac": ..., "state": ...}``.

    ``mac`` is the entry's link-layer address in a state that has one (None
    otherwise); ``state`` the kernel's word (``REACHABLE``, ``FAILED``, ...), or
    ``NONE`` when there is no entry: the spine is not on the address's segment.
    """
    wanted = ip_address(str(address))
    entries = [
        entry for entry in (data if isinstance(data, list) else [])
        if isinstance(entry, Mapping) and _address(entry.get("dst")) == wanted
    ]
    if not entries:
        return {"mac": None, "state": "NONE"}
    states = [(_neighbor_state(entry), entry) for entry in entries]
    state, entry = next(((s, e) for s, e in states if s in RESOLVED_STATES and e.get("lladdr")),
                        states[0])
    mac = entry.get("lladdr") if state in RESOLVED_STATES else None
    return {"mac": str(mac).lower() if mac else None, "state": state}


def _neighbor_state(entry: Mapping[str, Any]) -> str:
    """The entry's state: iproute2 gives a list (``["REACHABLE"]``), older ones a word."""
    state = entry.get("state")
    if isinstance(state, list):
        state = next((word for word in state if isinstance(word, str)), None)
    return state.upper() if isinstance(state, str) else "NONE"


def as_data(table: RouteTable) -> dict[str, list[str]]:
    """``table`` as plain data (``{"10.92.100.71/32": ["10.252.1.10", ...]}``), sorted."""
    ordered = sorted(table, key=lambda p: (p.version, p.network_address, p.prefixlen))
    return {str(prefix): [str(hop) for hop in table[prefix]] for prefix in ordered}


class AoscxRouteReader(AoscxClient):
    """An AOS-CX REST session that reads route tables (use it as a context manager)."""

    def routes(self, vrf: str) -> dict[str, Any]:
        """VRF ``vrf``'s routes with their next hops expanded (``?depth=2``).

        Next hops the switch left as URIs are fetched one by one, so the answer
        always suits :func:`aoscx_route_table`.
        """
        name = urllib.parse.quote(vrf, safe="")
        data = self._get_json(f"system/vrfs/{name}/routes?depth=2",
                              what=f"read the routes of VRF {vrf!r}")
        for route in data.values():
            if not isinstance(route, dict):
                continue
            nexthops = route.get("nexthops")
            if isinstance(nexthops, dict):
                route["nexthops"] = {key: self._expanded(value) for key, value in nexthops.items()}
            elif isinstance(nexthops, list):
                route["nexthops"] = [self._expanded(value) for value in nexthops]
        return data

    def _expanded(self, nexthop: object) -> object:
        if not isinstance(nexthop, str):
            return nexthop
        prefix = f"/rest/{self.api_version}/"
        if not nexthop.startswith(prefix):
            raise AoscxError(f"a next hop's URI {nexthop!r} is outside {prefix}")
        return self._get_json(nexthop[len(prefix):], what="read a route's next hop")


def _merge_into(table: dict[Prefix, set[Address]], part: RouteTable) -> None:
    for prefix, hops in part.items():
        table.setdefault(prefix, set()).update(hops)


def _sorted(table: Mapping[Prefix, set[Address]]) -> RouteTable:
    return {
        prefix: tuple(sorted(hops, key=lambda a: (a.version, a))) for prefix, hops in table.items()
    }


def _prefix(value: object) -> Prefix | None:
    if not isinstance(value, str):
        return None
    try:
        return ip_network(urllib.parse.unquote(value), strict=False)
    except ValueError:
        return None


def _address(value: object) -> Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ip_address(value)
    except ValueError:
        return None
