"""The site as the spines see it: hosts, networks, pools and BGP settings, and what follows from them.

A :class:`Site` is built (and validated) by :func:`spinelb.spine.validate.load_site`
from inventory-shaped data.  Everything a renderer needs is derived here, once,
platform-neutrally: the spine's BGP instances (one per VRF, or one when the VRFs
are collapsed), their neighbors, the prefix-lists, and each worker session's
inbound policy.  The renderers only spell that intent in a platform's syntax,
so FRR and AOS-CX cannot drift apart in what they permit.

Ordering is fixed so that output is deterministic: hosts, networks, pools and
VRFs are sorted by name; single-path prefixes keep the order of the inventory
(it is the order of their prefix-lists' names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

from spinelb.bfd.session import BfdSettings

PLATFORMS = ("aoscx", "frr")
DEFAULT_VRF = "default"

#: Local preference of the last worker of a single-path list; each earlier one gets one step more.
LOCAL_PREF_BASE = 1000
LOCAL_PREF_STEP = 100
#: Route-map and prefix-list entries are numbered in steps of 10, leaving room for hand edits.
SEQ_STEP = 10


@dataclass(frozen=True, slots=True)
class Network:
    """An L3 network of the site; ``speaker_asn`` is set where speakers peer with the spines."""

    name: str
    cidr: IPv4Network
    vrf: str = DEFAULT_VRF
    speaker_asn: int | None = None
    peering: bool = False
    vlan: int | None = None  # the spines' SVI on it (AOS-CX sets BFD timers on the interface)


#: A pool's modes (as the speaker's config has them): announced over BGP, or answered by
#: ARP on its network's segment (docs/layer2.md).
POOL_MODES = ("bgp", "layer2")


@dataclass(frozen=True, slots=True)
class Pool:
    """A LoadBalancer address pool: carried by ``peering``'s sessions, delivered on ``network``.

    A ``layer2`` pool is carried by no BGP session (``peering`` is empty): the
    workers answer ARP for its addresses on ``network``, on the worker
    interfaces named by ``interfaces``, and the spines reach them as any host
    on that segment.
    """

    name: str
    cidr: IPv4Network
    peering: str
    network: str
    auto_assign: bool = True
    mode: str = "bgp"
    interfaces: tuple[str, ...] = ()

    @property
    def layer2(self) -> bool:
        return self.mode == "layer2"


@dataclass(frozen=True, slots=True)
class SinglePath:
    """A prefix the spines must route through one worker: the first of ``workers`` announcing it."""

    prefix: IPv4Network
    workers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Host:
    """A spine, master or worker with its address per network name (``loopback`` apart)."""

    name: str
    role: str  # "spine", "master" or "worker"
    addresses: dict[str, IPv4Address]
    loopback: IPv4Address | None = None
    platform: str | None = None  # spines only: "aoscx" or "frr"
    collapse_vrfs: bool = False  # FRR spines without VRF devices (the lab)
    soft_reconfiguration: bool = False  # FRR: keep what workers sent before the route-map


@dataclass(frozen=True, slots=True)
class BgpSettings:
    """Site-wide BGP settings of the spines; ``password`` never appears in a repr.

    ``bfd`` is None when BFD is off; otherwise the timers of every session, the
    same numbers for the spines' end and the speakers' (``bool(bfd)``: BFD is on).
    ``graceful_restart_time`` is None when graceful restart is off; otherwise the
    restart time every speaker advertises and the spines' stale-path bound
    (docs/graceful-restart.md).
    """

    keepalive: int = 1
    hold: int = 3
    maximum_paths: int = 32
    distance_ebgp: int = 20
    distance_ibgp: int = 70
    bfd: BfdSettings | None = None
    graceful_restart_time: int | None = None
    maximum_prefix: int | None = None  # None: the number of host routes the session's pools hold
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class PrefixList:
    """A one-entry prefix-list; ``ge``/``le`` are None when ``prefix`` is itself a host route."""

    name: str
    prefix: IPv4Network
    ge: int | None
    le: int | None


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """One permit entry of a worker's inbound route-map."""

    seq: int
    prefix_list: str
    local_preference: int | None = None
    next_hop: IPv4Address | None = None


@dataclass(frozen=True, slots=True)
class Neighbor:
    """A BGP neighbor of a spine: the other spine (iBGP) or a worker on a peering network."""

    address: IPv4Address
    remote_as: int
    description: str
    passive: bool = False
    route_map: str | None = None  # inbound; None for the iBGP session
    maximum_prefix: int | None = None
    update_source: IPv4Address | None = None


@dataclass(frozen=True, slots=True)
class BgpInstance:
    """The neighbors a spine has in one VRF (``vrf`` is ``default`` for the global table)."""

    vrf: str
    neighbors: tuple[Neighbor, ...]


@dataclass(frozen=True, slots=True)
class RouteMap:
    """A worker session's inbound route-map; anything no entry permits is refused (implicit deny)."""

    name: str
    entries: tuple[PolicyEntry, ...]


@dataclass(frozen=True, slots=True)
class SpineIntent:
    """Everything a spine's BGP configuration says, before any platform's syntax."""

    spine: Host
    switch_asn: int
    router_id: IPv4Address
    bgp: BgpSettings
    instances: tuple[BgpInstance, ...]  # the default VRF first
    prefix_lists: tuple[PrefixList, ...]
    route_maps: tuple[RouteMap, ...]
    session_vlans: tuple[int, ...] = ()  # the SVIs the sessions run over, by network name


def prefix_list_name(pool: Pool) -> str:
    """Name of the prefix-list of ``pool``'s host routes."""
    return f"pl-{pool.name}"


def single_path_list_name(index: int) -> str:
    """Name of the prefix-list of the ``index``-th (0-based) single-path prefix."""
    return f"single-path-{index + 1}"


def route_map_name(worker: Host, network: Network) -> str:
    """Name of the inbound route-map of ``worker``'s session on ``network``."""
    return f"{worker.name}-{network.name}"


def single_path_local_pref(position: int, count: int) -> int:
    """Local preference of the worker at ``position`` in a list of ``count`` (the first highest)."""
    return LOCAL_PREF_BASE + LOCAL_PREF_STEP * (count - 1 - position)


def host_route_bounds(prefix: IPv4Network) -> tuple[int | None, int | None]:
    """``ge``/``le`` that admit only /32s inside ``prefix`` (None, None for a /32 itself)."""
    if prefix.prefixlen == prefix.max_prefixlen:
        return None, None
    return prefix.max_prefixlen, prefix.max_prefixlen


@dataclass(frozen=True, slots=True)
class Site:
    """A validated site; build it with :func:`spinelb.spine.validate.load_site`."""

    name: str
    switch_asn: int
    spines: dict[str, Host]
    masters: dict[str, Host]
    workers: dict[str, Host]
    networks: dict[str, Network]
    pools: dict[str, Pool]
    bgp: BgpSettings
    single_path: tuple[SinglePath, ...] = ()

    @property
    def peering_networks(self) -> list[Network]:
        """Networks whose addresses the speakers peer from, by name."""
        return [net for net in self.networks.values() if net.peering]

    @property
    def bgp_pools(self) -> list[Pool]:
        """The pools whose addresses the spines learn over BGP (every pool but layer2 ones)."""
        return [pool for pool in self.pools.values() if not pool.layer2]

    def pools_carried_by(self, network: Network) -> list[Pool]:
        """The pools whose /32s arrive over sessions on ``network``, by name."""
        return [pool for pool in self.bgp_pools if pool.peering == network.name]

    def pool_of(self, prefix: IPv4Network) -> Pool | None:
        """The pool holding ``prefix`` (pools never overlap, so there is at most one)."""
        return next((pool for pool in self.pools.values() if prefix.subnet_of(pool.cidr)), None)

    def maximum_prefix(self, network: Network) -> int:
        """The maximum-prefix limit of a worker session on ``network``.

        The configured ``maximum_prefix``, or else the number of host routes the
        session's pools can hold: more than that means a misbehaving speaker.
        """
        if self.bgp.maximum_prefix is not None:
            return self.bgp.maximum_prefix
        return sum(pool.cidr.num_addresses for pool in self.pools_carried_by(network))

    def vrfs(self, *, collapse: bool = False) -> list[str]:
        """The VRFs with BGP: the default VRF first, then the others by name (one if ``collapse``)."""
        if collapse:
            return [DEFAULT_VRF]
        named = {net.vrf for net in self.peering_networks} - {DEFAULT_VRF}
        return [DEFAULT_VRF, *sorted(named)]

    def prefix_lists(self) -> list[PrefixList]:
        """One prefix-list per BGP pool (host routes only), then one per single-path prefix."""
        lists = [
            PrefixList(prefix_list_name(pool), pool.cidr, *host_route_bounds(pool.cidr))
            for pool in self.bgp_pools
        ]
        lists += [
            PrefixList(
                single_path_list_name(index), single.prefix, *host_route_bounds(single.prefix)
            )
            for index, single in enumerate(self.single_path)
        ]
        return lists

    def inbound_policy(self, worker: Host, network: Network) -> RouteMap:
        """The route-map of ``worker``'s session on ``network``.

        First the single-path prefixes this session carries, each with the
        worker's local preference from its list; then one entry per pool the
        session carries.  An entry whose pool is delivered on another network
        sets the next hop to the worker's address there.
        """
        carried = self.pools_carried_by(network)
        entries: list[PolicyEntry] = []

        def next_hop(pool: Pool) -> IPv4Address | None:
            return None if pool.network == network.name else worker.addresses[pool.network]

        for index, single in enumerate(self.single_path):
            pool = self.pool_of(single.prefix)
            if pool is None or pool not in carried or worker.name not in single.workers:
                continue
            position = single.workers.index(worker.name)
            entries.append(
                PolicyEntry(
                    seq=SEQ_STEP * (len(entries) + 1),
                    prefix_list=single_path_list_name(index),
                    local_preference=single_path_local_pref(position, len(single.workers)),
                    next_hop=next_hop(pool),
                )
            )
        for pool in carried:
            entries.append(
                PolicyEntry(
                    seq=SEQ_STEP * (len(entries) + 1),
                    prefix_list=prefix_list_name(pool),
                    next_hop=next_hop(pool),
                )
            )
        return RouteMap(route_map_name(worker, network), tuple(entries))

    def intent(self, spine_name: str, *, collapse_vrfs: bool | None = None) -> SpineIntent:
        """What ``spine_name``'s BGP configuration must say.

        ``collapse_vrfs`` puts every session into the default VRF (None: the
        spine's own ``spinelb_frr_collapse_vrfs`` setting).
        """
        spine = self.spines[spine_name]
        collapse = spine.collapse_vrfs if collapse_vrfs is None else collapse_vrfs
        assert spine.loopback is not None  # load_site requires it
        instances: list[BgpInstance] = []
        route_maps: list[RouteMap] = []
        for vrf in self.vrfs(collapse=collapse):
            networks = [net for net in self.peering_networks if collapse or net.vrf == vrf]
            neighbors: list[Neighbor] = []
            if networks:
                ibgp = networks[0]
                for other in self.spines.values():
                    if other.name != spine.name:
                        neighbors.append(
                            Neighbor(
                                address=other.addresses[ibgp.name],
                                remote_as=self.switch_asn,
                                description=other.name,
                                update_source=spine.addresses[ibgp.name],
                            )
                        )
            for worker in self.workers.values():
                for net in networks:
                    assert net.speaker_asn is not None  # load_site requires it
                    policy = self.inbound_policy(worker, net)
                    route_maps.append(policy)
                    neighbors.append(
                        Neighbor(
                            address=worker.addresses[net.name],
                            remote_as=net.speaker_asn,
                            description=f"{worker.name}-{net.name}",
                            passive=True,
                            route_map=policy.name,
                            maximum_prefix=self.maximum_prefix(net),
                        )
                    )
            instances.append(BgpInstance(vrf, tuple(neighbors)))
        return SpineIntent(
            spine=spine,
            switch_asn=self.switch_asn,
            router_id=spine.loopback,
            bgp=self.bgp,
            instances=tuple(instances),
            prefix_lists=tuple(self.prefix_lists()),
            route_maps=tuple(sorted(route_maps, key=lambda rm: rm.name)),
            session_vlans=tuple(net.vlan for net in self.peering_networks if net.vlan is not None),
        )
