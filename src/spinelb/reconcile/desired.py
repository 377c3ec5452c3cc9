"""The desired state of every Service address: its pool, who announces it, what the spines install.

The workers that should announce an address follow the speaker's own rule:
:func:`spinelb.speaker.k8s_source.decide` is called once per worker, so this
check and the speakers cannot disagree about policy, readiness, the exclusion
label or local endpoints.  The spines' expectation then follows from the site:
the pool's peering network carries the /32 from each announcing worker, and
the spine installs the worker's address on the pool's delivery network as
the next hop (next-hop rewrite), every one of them (ECMP) or, for a
single-path prefix, only the first announcing worker of its list.

A layer2 pool's addresses are not routed (the workers answer ARP for them on
its network), so they have no desired BGP state: :func:`desired_addresses`
leaves them out and :func:`layer2_addresses` gives them, each with the workers
that may answer it by the same rule (``announcers``); which of those answers
is the comparison's (:mod:`spinelb.reconcile.layer2`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_network

from spinelb.bgp.wire import Address, Prefix
from spinelb.config import PoolConfig
from spinelb.deploy.documents import peer_name
from spinelb.k8s.objects import NodeInfo, ServiceInfo, SliceInfo
from spinelb.speaker.k8s_source import Decision, decide
from spinelb.spine.model import Network, Pool, SinglePath, Site


@dataclass(frozen=True, slots=True)
class DesiredAddress:
    """One Service address as the site should route it.

    ``decisions`` holds every worker's announce decision (with the reason a
    person reads); ``announcers`` the workers that should announce it, in the
    site's order.  ``pool`` is None for an address in no pool.
    """

    address: Address
    services: tuple[str, ...]
    pool: Pool | None
    decisions: Mapping[str, Decision]
    announcers: tuple[str, ...]
    single_path: SinglePath | None = None

    @property
    def prefix(self) -> Prefix:
        """The host route the speakers announce."""
        return ip_network(self.address)


def host_pool(site: Site, address: Address) -> Pool | None:
    """The site pool holding ``address`` (the site's pools are IPv4 only)."""
    if not isinstance(address, IPv4Address):
        return None
    return site.pool_of(IPv4Network(address))


def pool_configs(site: Site) -> list[PoolConfig]:
    """The site's pools as the speakers' config has them, each BGP pool on its peering
    network's sessions, each layer2 pool on its interfaces."""
    return [
        PoolConfig(
            pool.name,
            ((pool.cidr.network_address, pool.cidr.broadcast_address),),
            auto_assign=pool.auto_assign,
            peers=() if pool.layer2 else tuple(
                peer_name(spine, site.networks[pool.peering]) for spine in site.spines.values()
            ),
            mode=pool.mode,
            interfaces=pool.interfaces,
        )
        for pool in site.pools.values()
    ]


def desired_addresses(
    site: Site,
    services: Sequence[ServiceInfo],
    nodes: Mapping[str, NodeInfo],
    slices: Sequence[SliceInfo],
) -> dict[Address, DesiredAddress]:
    """Every address in the ingress of ``services`` (the Services spinelb serves), decided;
    but a layer2 pool's: those no BGP session carries."""
    return {
        address: entry
        for address, entry in _decided(site, services, nodes, slices).items()
        if entry.pool is None or not entry.pool.layer2
    }


def layer2_addresses(
    site: Site,
    services: Sequence[ServiceInfo],
    nodes: Mapping[str, NodeInfo],
    slices: Sequence[SliceInfo],
) -> dict[Address, DesiredAddress]:
    """The addresses of ``services`` in a layer2 pool; ``announcers``: the workers that may
    answer each by policy (Ready, not excluded and, for Local, with a ready endpoint)."""
    return {
        address: entry
        for address, entry in _decided(site, services, nodes, slices).items()
        if entry.pool is not None and entry.pool.layer2
    }


def _decided(
    site: Site,
    services: Sequence[ServiceInfo],
    nodes: Mapping[str, NodeInfo],
    slices: Sequence[SliceInfo],
) -> dict[Address, DesiredAddress]:
    pools = pool_configs(site)
    per_worker = {
        worker: decide(worker, services, nodes, slices, pools) for worker in site.workers
    }
    users: dict[Address, set[str]] = {}
    for service in services:
        for address in service.ingress:
            users.setdefault(address, set()).add(service.key)
    desired: dict[Address, DesiredAddress] = {}
    for address in sorted(users, key=lambda a: (a.version, a)):
        decisions = {
            worker: found[address] for worker, found in per_worker.items() if address in found
        }
        desired[address] = DesiredAddress(
            address=address,
            services=tuple(sorted(users[address])),
            pool=host_pool(site, address),
            decisions=decisions,
            announcers=tuple(w for w, d in decisions.items() if d.announce),
            single_path=_single_path(site, address),
        )
    return desired


def _single_path(site: Site, address: Address) -> SinglePath | None:
    prefix = ip_network(address)
    return next((single for single in site.single_path if single.prefix == prefix), None)


def peering_network(site: Site, pool: Pool) -> Network:
    """The network whose sessions carry ``pool``'s host routes."""
    return site.networks[pool.peering]


def carrying_vrf(site: Site, pool: Pool) -> str:
    """The VRF the spines install ``pool``'s routes in: the one of the sessions that carry them."""
    return peering_network(site, pool).vrf


def delivery_hop(site: Site, pool: Pool, worker: str) -> str:
    """The next hop a spine installs for ``worker``'s announcement (after next-hop rewrite)."""
    return str(site.workers[worker].addresses[pool.network])


def eligible_hops(site: Site, desired: DesiredAddress) -> tuple[str, ...]:
    """The next hops of every worker that should announce the address."""
    if desired.pool is None:
        return ()
    pool = desired.pool
    return tuple(delivery_hop(site, pool, worker) for worker in desired.announcers)


def wanted_hops(site: Site, desired: DesiredAddress) -> tuple[str, ...]:
    """The next hops each spine should install: all eligible ones, or one for a single-path prefix.

    A single-path prefix goes through the first worker of its list that
    announces it; when none of the list does, the others' routes compete as usual.
    """
    single = desired.single_path
    if single is not None and desired.pool is not None:
        first = next((w for w in single.workers if w in desired.announcers), None)
        if first is not None:
            return (delivery_hop(site, desired.pool, first),)
    return eligible_hops(site, desired)


def worker_sessions(site: Site) -> dict[str, tuple[str, Network]]:
    """Every worker session a spine has, by the worker's address: (worker, peering network)."""
    return {
        str(host.addresses[net.name]): (name, net)
        for name, host in site.workers.items()
        for net in site.peering_networks
    }


def hop_names(site: Site) -> dict[str, str]:
    """Each worker address as a person names it (``10.252.1.10`` -> ``ncn-w001 nmn``)."""
    return {
        str(address): f"{name} {network}"
        for name, host in site.workers.items()
        for network, address in host.addresses.items()
    }

