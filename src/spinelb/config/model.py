"""The speaker's configuration as frozen, validated values.

Everything here has already been checked by :func:`spinelb.config.parse_config`:
addresses are :mod:`ipaddress` objects, defaults are filled in (a peer's
``local_asn``, ``keepalive`` and ``families``; an announcement's ``peers``),
and a BGP password lives only in :attr:`PeerConfig.password`, which is never
part of a repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from spinelb.bgp.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    Address,
    Family,
    LargeCommunity,
    Prefix,
)

DEFAULT_API_PORT = 7473
DEFAULT_BGP_PORT = 179
DEFAULT_HOLD_TIME = 90
DEFAULT_CONNECT_RETRY = 5.0
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_API_ADDRESS = IPv4Address("127.0.0.1")
DEFAULT_CONTROLLER_API_PORT = 7474
DEFAULT_K8S_NAMESPACE = "spinelb-system"
DEFAULT_LEASE_NAME = "spinelb-controller"

#: The config's names for the address families (AFI, SAFI) the speaker carries.
FAMILY_NAMES: dict[str, Family] = {"ipv4-unicast": IPV4_UNICAST, "ipv6-unicast": IPV6_UNICAST}


def family_name(family: Family) -> str:
    """The config's name of ``family`` ("ipv4-unicast"), or "afi/safi" for any other."""
    for name, value in FAMILY_NAMES.items():
        if value == family:
            return name
    return f"{family[0]}/{family[1]}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config: where (``peers[1].hold_time``), what was there, and why.

    ``value`` is the offending scalar; mappings and lists are summarised
    (``<mapping>``, ``<list>``) and secrets are stored as ``<redacted>``, so a
    problem can be logged or printed as it is.
    """

    path: str
    value: object
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message} (got {self.value!r})"


class ConfigError(Exception):
    """A config that cannot be used; :attr:`problems` lists every problem found, in file order."""

    def __init__(self, problems: list[Problem], source: str = "<config>") -> None:
        self.problems = problems
        self.source = source
        super().__init__(self._summary())

    #: At most this many problems are spelled out; a file wrong everywhere says how many more.
    SHOWN = 100

    def _summary(self) -> str:
        count = len(self.problems)
        lines = [f"{self.source}: {count} problem{'s' if count != 1 else ''}"]
        lines.extend(f"  {problem}" for problem in self.problems[: self.SHOWN])
        if count > self.SHOWN:
            lines.append(f"  ... and {count - self.SHOWN} more")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Where the local HTTP API listens; ``address`` None means the API is disabled."""

    address: Address | None
    port: int = DEFAULT_API_PORT
    allow_remote: bool = False  # serve on an address that is not loopback (checked at load)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def listen(self) -> str | None:
        """``host:port`` (``[v6]:port`` for IPv6), as written in the config; None when disabled."""
        if self.address is None:
            return None
        if self.address.version == 6:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """The optional BGP listener for passive peers (and collisions with active ones)."""

    address: Address
    port: int = DEFAULT_BGP_PORT


#: Where a planned restart is recorded unless ``graceful_restart.state_file`` says otherwise:
#: /run is emptied by a reboot, which must never pass for a planned restart.
DEFAULT_RESTART_STATE_DIR = Path("/run/spinelb")


@dataclass(frozen=True, slots=True)
class GracefulRestartConfig:
    """Graceful restart (RFC 4724): the restart time (seconds) the spines are told, and
    the file a planned restart is recorded in (None: :data:`DEFAULT_RESTART_STATE_DIR`)."""

    restart_time: int
    state_file: Path | None = None

    def state_path(self, node_name: str) -> Path:
        """The record's path: ``state_file``, or one per node under /run/spinelb (the lab
        runs several speakers on one file system)."""
        if self.state_file is not None:
            return self.state_file
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in node_name)
        return DEFAULT_RESTART_STATE_DIR / f"graceful-restart-{safe}.json"


@dataclass(frozen=True, slots=True)
class BfdConfig:
    """BFD on a peer's path (RFC 5880/5881): the intervals we ask for and the multiplier."""

    min_tx_ms: int = 300
    min_rx_ms: int = 300
    multiplier: int = 3


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One BGP neighbor (a spine switch), with every default resolved.

    ``password`` is the TCP MD5 key (RFC 2385), read from ``password_file``
    when that was given; it is excluded from the repr and from comparisons'
    output, and must never be logged.
    """

    name: str
    address: Address
    asn: int
    local_asn: int
    families: tuple[Family, ...]
    source_address: Address | None = None
    port: int = DEFAULT_BGP_PORT
    hold_time: int = DEFAULT_HOLD_TIME
    keepalive: int = DEFAULT_HOLD_TIME // 3
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    passive: bool = False
    multihop_ttl: int = 1
    connect_retry: float = DEFAULT_CONNECT_RETRY
    send_hold_time: int | None = None  # RFC 9687; None = max(480, 2 x negotiated hold time)
    bfd: BfdConfig | None = None  # BFD on the path: Down tears the session down at once

    @property
    def ibgp(self) -> bool:
        """True when the peer is in our own AS (LOCAL_PREF is sent only then)."""
        return self.asn == self.local_asn

    @property
    def has_password(self) -> bool:
        return self.password is not None

    def carries(self, family: Family) -> bool:
        return family in self.families


@dataclass(frozen=True, slots=True)
class RouteAttributes:
    """The path attributes an announcement asks for, shared by every announcement that asks the same.

    Announcements with equal attributes share one object (the config loader
    makes sure of it), which is what the Adj-RIB-Out groups by when it packs
    many prefixes into one UPDATE.  ``next_hop`` None means "self" (the
    session's own address).  ``local_pref`` is sent on iBGP sessions only.
    """

    next_hop: Address | None = None
    communities: tuple[int, ...] = ()
    large_communities: tuple[LargeCommunity, ...] = ()
    local_pref: int | None = None
    med: int | None = None


DEFAULT_ROUTE_ATTRIBUTES = RouteAttributes()


@dataclass(frozen=True, slots=True)
class Announcement:
    """A prefix to announce, to which peers, with which attributes.

    ``peers`` is resolved: the names given, or every peer whose families
    include the prefix's family, in config order.
    """

    prefix: Prefix
    peers: tuple[str, ...]
    attributes: RouteAttributes = DEFAULT_ROUTE_ATTRIBUTES

    @property
    def family(self) -> Family:
        return IPV4_UNICAST if self.prefix.version == 4 else IPV6_UNICAST

    @property
    def next_hop(self) -> Address | None:
        """The next hop to send, or None for "self" (the session's local address)."""
        return self.attributes.next_hop

    @property
    def communities(self) -> tuple[int, ...]:
        return self.attributes.communities

    @property
    def large_communities(self) -> tuple[LargeCommunity, ...]:
        return self.attributes.large_communities

    @property
    def local_pref(self) -> int | None:
        return self.attributes.local_pref

    @property
    def med(self) -> int | None:
        return self.attributes.med


@dataclass(frozen=True, slots=True)
class KubernetesConfig:
    """How to reach the Kubernetes API, and which Services are ours.

    ``kubeconfig`` None means the in-cluster service account.  Services with no
    ``spec.loadBalancerClass`` are always ours; with ``load_balancer_class`` set,
    Services of that class are ours too.  The controller's Lease lives in
    ``namespace`` under ``lease_name``.
    """

    kubeconfig: Path | None = None
    context: str | None = None
    load_balancer_class: str | None = None
    namespace: str = DEFAULT_K8S_NAMESPACE
    lease_name: str = DEFAULT_LEASE_NAME


#: A pool's modes: announced over BGP (the default) or answered by ARP/NDP on a segment.
MODE_BGP = "bgp"
MODE_LAYER2 = "layer2"
POOL_MODES = (MODE_BGP, MODE_LAYER2)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """An address pool: where Service addresses come from and which sessions carry them.

    ``ranges`` are inclusive ``(first, last)`` pairs in config order (a CIDR is
    its network and broadcast address).  ``peers`` is resolved: the names
    given, or every peer.  ``attributes`` carries the pool's communities and
    local preference for its announcements (the next hop is always "self").
    A ``layer2`` pool's addresses are answered by ARP/NDP on ``interfaces``
    (docs/layer2.md); its ``peers`` and ``attributes`` are unused.
    """

    name: str
    ranges: tuple[tuple[Address, Address], ...]
    auto_assign: bool = True
    avoid_buggy_ips: bool = False
    peers: tuple[str, ...] = ()
    attributes: RouteAttributes = DEFAULT_ROUTE_ATTRIBUTES
    mode: str = MODE_BGP  # MODE_BGP or MODE_LAYER2
    interfaces: tuple[str, ...] = ()  # layer2: where this node answers the pool's addresses

    @property
    def layer2(self) -> bool:
        """True when the pool's addresses are answered by ARP/NDP, never announced over BGP."""
        return self.mode == MODE_LAYER2

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, IPv4Address | IPv6Address):
            return False
        return any(
            first.version == address.version and first <= address <= last  # type: ignore[operator]
            for first, last in self.ranges
        )

    def size(self) -> int:
        """How many addresses the pool holds (before avoid_buggy_ips)."""
        return sum(int(last) - int(first) + 1 for first, last in self.ranges)

    @property
    def versions(self) -> frozenset[int]:
        """The IP versions the pool has addresses of."""
        return frozenset(first.version for first, _ in self.ranges)


#: The speakers' BFD mesh on a layer2 segment: 100 ms x 3, failover well under a second.
DEFAULT_LAYER2_BFD = BfdConfig(min_tx_ms=100, min_rx_ms=100, multiplier=3)


@dataclass(frozen=True, slots=True)
class Layer2Peer:
    """Another speaker on a layer2 segment: its node name and its address there."""

    node: str
    address: Address


@dataclass(frozen=True, slots=True)
class Layer2Config:
    """The speakers' BFD mesh for layer2 pools: our address on the segment, the other
    speakers there, and the BFD timers (a peer whose session is Up is live)."""

    source_address: Address
    peers: tuple[Layer2Peer, ...] = ()
    bfd: BfdConfig = DEFAULT_LAYER2_BFD


@dataclass(frozen=True, slots=True)
class SpeakerConfig:
    """The whole file: identity, API, optional listener, peers and announcements."""

    node_name: str
    router_id: Address
    local_asn: int | None
    peers: tuple[PeerConfig, ...]
    announcements: tuple[Announcement, ...] = ()
    api: ApiConfig = field(default_factory=lambda: ApiConfig(DEFAULT_API_ADDRESS))
    listen: ListenConfig | None = None
    log_level: str = "info"
    graceful_restart: GracefulRestartConfig | None = None
    kubernetes: KubernetesConfig | None = None
    pools: tuple[PoolConfig, ...] = ()
    layer2: Layer2Config | None = None  # required when a pool is layer2

    def peer(self, name: str) -> PeerConfig:
        """The peer called ``name``; KeyError if there is none."""
        for peer in self.peers:
            if peer.name == name:
                return peer
        raise KeyError(name)

    def announcements_for(self, peer: str) -> list[Announcement]:
        """The announcements that go to the peer called ``peer``, in config order."""
        return [ann for ann in self.announcements if peer in ann.peers]

    def pool(self, name: str) -> PoolConfig:
        """The pool called ``name``; KeyError if there is none."""
        return pool_named(self.pools, name)

    def pool_of(self, address: Address) -> PoolConfig | None:
        """The pool that contains ``address`` (pools never overlap), or None."""
        return pool_containing(self.pools, address)


@dataclass(frozen=True, slots=True)
class ControllerConfig:
    """What ``spinelb controller`` needs: the API, the pools, its own local API and log level.

    It reads the speaker's file format; BGP settings in it are checked but unused.
    """

    kubernetes: KubernetesConfig
    pools: tuple[PoolConfig, ...]
    api: ApiConfig = field(
        default_factory=lambda: ApiConfig(DEFAULT_API_ADDRESS, DEFAULT_CONTROLLER_API_PORT)
    )
    log_level: str = "info"

    def pool(self, name: str) -> PoolConfig:
        return pool_named(self.pools, name)

    def pool_of(self, address: Address) -> PoolConfig | None:
        return pool_containing(self.pools, address)


def pool_named(pools: tuple[PoolConfig, ...], name: str) -> PoolConfig:
    for pool in pools:
        if pool.name == name:
            return pool
    raise KeyError(name)


def pool_containing(pools: tuple[PoolConfig, ...], address: Address) -> PoolConfig | None:
    for pool in pools:
        if address in pool:
            return pool
    return None
