"""Check the config's data and build the :class:`SpeakerConfig` from it.

Every problem is collected (with its key path, the value found and why it is
wrong) before :class:`ConfigError` is raised, so a person fixes a file in one
round.  Secrets never reach a problem: a password's value is stored as
``<redacted>``, an unknown key is reported by its name (a misspelt
``pasword: s3cret`` must not print the secret) and a password file is named,
never quoted.

Announcements are checked in one tight loop with caches for the values that
repeat (next hops, community lists, peer lists), because 100,000 of them must
load in well under a second.
"""

from __future__ import annotations

import difflib
import gc
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from ipaddress import IPv4Address, ip_address, ip_network
from pathlib import Path
from typing import Any, TypeVar

from spinelb.bgp.wire import AS_TRANS, IPV4_UNICAST, IPV6_UNICAST, Address, Family, Prefix

from .model import (
    DEFAULT_API_ADDRESS,
    DEFAULT_API_PORT,
    DEFAULT_BGP_PORT,
    DEFAULT_CONNECT_RETRY,
    DEFAULT_CONTROLLER_API_PORT,
    DEFAULT_HOLD_TIME,
    DEFAULT_K8S_NAMESPACE,
    DEFAULT_LAYER2_BFD,
    DEFAULT_LEASE_NAME,
    DEFAULT_ROUTE_ATTRIBUTES,
    FAMILY_NAMES,
    LOG_LEVELS,
    MODE_BGP,
    MODE_LAYER2,
    POOL_MODES,
    Announcement,
    ApiConfig,
    BfdConfig,
    ConfigError,
    ControllerConfig,
    GracefulRestartConfig,
    KubernetesConfig,
    Layer2Config,
    Layer2Peer,
    ListenConfig,
    PeerConfig,
    PoolConfig,
    Problem,
    RouteAttributes,
    SpeakerConfig,
    family_name,
)
from .values import (
    MAX_ASN,
    MAX_UINT32,
    parse_address,
    parse_community,
    parse_host_port,
    parse_large_community,
    parse_prefix,
)

MAX_PASSWORD_OCTETS = 80  # struct tcp_md5sig's key field (RFC 2385 sets no limit; Linux does)
MAX_HOLD_TIME = 65535
MAX_RESTART_TIME = 4095  # 12 bits in the capability (RFC 4724)
MAX_CONNECT_RETRY = 3600
MAX_SEND_HOLD_TIME = 2 * MAX_HOLD_TIME  # RFC 9687's default for the largest hold time
REDACTED = "<redacted>"
_SECRET_KEYS = frozenset({"password"})

TOP_KEYS = (
    "node_name",
    "router_id",
    "local_asn",
    "api",
    "listen",
    "log_level",
    "graceful_restart",
    "peers",
    "announce",
    "kubernetes",
    "pools",
    "layer2",
    "controller",
)
KUBERNETES_KEYS = ("kubeconfig", "context", "load_balancer_class", "namespace", "lease_name")
POOL_KEYS = (
    "name",
    "addresses",
    "auto_assign",
    "avoid_buggy_ips",
    "peers",
    "communities",
    "large_communities",
    "local_pref",
    "mode",
    "interfaces",
)
#: A pool's keys that only a BGP pool uses (a layer2 pool's addresses are never announced).
BGP_POOL_KEYS = ("peers", "communities", "large_communities", "local_pref")
LAYER2_KEYS = ("source_address", "peers", "bfd")
LAYER2_PEER_KEYS = ("node", "address")
#: Linux interface names: at most IFNAMSIZ - 1 octets, no '/', no whitespace, not "." or "..".
_INTERFACE_NAME = re.compile(r"[^/\s]{1,15}")
CONTROLLER_KEYS = ("listen", "allow_remote")
API_KEYS = ("listen", "allow_remote")
LISTEN_KEYS = ("address", "port")
GRACEFUL_RESTART_KEYS = ("restart_time", "state_file")
PEER_KEYS = (
    "name",
    "address",
    "asn",
    "local_asn",
    "source_address",
    "port",
    "hold_time",
    "keepalive",
    "password",
    "password_file",
    "passive",
    "multihop_ttl",
    "families",
    "connect_retry",
    "send_hold_time",
    "bfd",
)
BFD_KEYS = ("min_tx_ms", "min_rx_ms", "multiplier")
#: BFD intervals accepted, milliseconds (FRR's range; spinelb.bfd.BfdSettings checks the same)
BFD_INTERVAL_MS = (10, 60000)
ANNOUNCE_KEYS = (
    "prefix",
    "peers",
    "next_hop",
    "communities",
    "large_communities",
    "local_pref",
    "med",
)
_ANNOUNCE_KEY_SET = frozenset(ANNOUNCE_KEYS)
_MISSING: Any = object()
# RFC 1123 label (a namespace) and subdomain (an object name), as Kubernetes checks them
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_T = TypeVar("_T")


def parse_controller_config(
    data: object, *, source: str = "<config>", base_dir: Path | None = None
) -> ControllerConfig:
    """Validate ``data`` for ``spinelb controller``; raises :class:`ConfigError`.

    The same file format as the speaker's; ``node_name``, ``router_id`` and
    ``peers`` are optional, and when ``peers`` is present the whole file is
    checked as a speaker's would be.
    """
    checker = _Checker(base_dir)
    config = checker.controller(data)
    if checker.problems or config is None:
        raise ConfigError(checker.problems, source)
    return config


def parse_config(
    data: object,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    consume: bool = False,
) -> SpeakerConfig:
    """Validate ``data`` (the file's parsed YAML/JSON) and return the config.

    ``base_dir`` is where a relative ``password_file`` is looked for (the config
    file's directory); the current directory when None.  With ``consume``, each
    ``announce`` entry of ``data`` is dropped (set to None) once it is read, so a
    large document and the config built from it are never both whole in memory.
    Raises :class:`ConfigError` listing every problem.
    """
    checker = _Checker(base_dir, consume=consume)
    with collector_paused():
        config = checker.speaker(data)
    if checker.problems or config is None:
        raise ConfigError(checker.problems, source)
    return config


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large config is built.

    Building 100,000 announcements allocates a few hundred thousand objects
    and none of them form cycles; the collector's repeated passes over them
    cost about 40% of the load time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _shown(path: str, value: object) -> object:
    """What a problem may show of ``value``: secrets redacted, containers summarised."""
    if path.rpartition(".")[2] in _SECRET_KEYS:
        return REDACTED
    if isinstance(value, Mapping):
        return "<mapping>"
    if isinstance(value, list | tuple):
        return "<list>"
    return value


def _type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _suggestion(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def parse_range(text: str) -> tuple[Address, Address]:
    """A pool's ``addresses`` entry: ``a.b.c.d/n``, ``first-last`` or one address."""
    text = text.strip()
    if "-" in text:
        first_text, _, last_text = text.partition("-")
        try:
            first, last = ip_address(first_text.strip()), ip_address(last_text.strip())
        except ValueError:
            raise ValueError("expected CIDR, FIRST-LAST or an address") from None
        if first.version != last.version:
            raise ValueError("the two ends of a range must be the same IP version")
        if last < first:  # type: ignore[operator]
            raise ValueError("the range ends before it starts")
        return first, last
    try:
        network = ip_network(text, strict=True)
    except ValueError as exc:
        message = str(exc)
        if "has host bits set" in message:
            fixed = ip_network(text, strict=False)
            raise ValueError(f"host bits set: the network is {fixed}") from None
        raise ValueError("expected CIDR, FIRST-LAST or an address") from None
    return network.network_address, network.broadcast_address


class _Checker:
    """Collects problems while building the config; never stops at the first."""

    def __init__(self, base_dir: Path | None, *, consume: bool = False) -> None:
        self.consume = consume
        self.base_dir = base_dir
        self.problems: list[Problem] = []
        # invalid peers cause no follow-on problems in the announcements that name them
        self.broken_peers: set[str] = set()
        self.peers_incomplete = False
        # one object per distinct set of attributes (the Adj-RIB-Out groups prefixes by it)
        self.shared_attributes: dict[RouteAttributes, RouteAttributes] = {
            DEFAULT_ROUTE_ATTRIBUTES: DEFAULT_ROUTE_ATTRIBUTES
        }

    # --- primitives -----------------------------------------------------

    def problem(self, path: str, value: object, message: str) -> None:
        self.problems.append(Problem(path, _shown(path, value), message))

    def mapping(
        self, value: object, path: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[Any, Any] | None:
        """``value`` as a mapping after reporting unknown and missing keys; None if not a mapping."""
        if not isinstance(value, dict):
            self.problem(path or "<top>", value, f"expected a mapping, got {_type_name(value)}")
            return None
        prefix = f"{path}." if path else ""
        for key in value:
            if key not in allowed:
                name = str(key)
                self.problems.append(
                    Problem(
                        f"{prefix}{name}",
                        name,
                        "unknown key" + _suggestion(name, allowed),
                    )
                )
        for key in required:
            if key not in value:
                self.problems.append(Problem(f"{prefix}{key}", None, "missing required key"))
        return value

    def integer(
        self, m: dict[Any, Any], key: str, path: str, low: int, high: int, default: int
    ) -> int:
        value = m.get(key, _MISSING)
        if value is _MISSING:
            return default
        where = f"{path}.{key}" if path else key
        if type(value) is not int:
            self.problem(where, value, f"expected an integer, got {_type_name(value)}")
            return default
        if not low <= value <= high:
            self.problem(where, value, f"must be {low}..{high}")
            return default
        return value

    def asn(self, m: dict[Any, Any], key: str, path: str) -> int | None:
        if key not in m:
            return None
        value = self.integer(m, key, path, 1, MAX_ASN, 0)
        if value == AS_TRANS:
            where = f"{path}.{key}" if path else key
            self.problem(where, value, "23456 is AS_TRANS (RFC 6793), not an AS to configure")
            return None
        return value or None

    def boolean(self, m: dict[Any, Any], key: str, path: str, default: bool) -> bool:
        value = m.get(key, _MISSING)
        if value is _MISSING:
            return default
        if type(value) is not bool:
            self.problem(f"{path}.{key}", value, f"expected true or false, got {_type_name(value)}")
            return default
        return value

    def string(self, m: dict[Any, Any], key: str, path: str) -> str | None:
        value = m.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = f"{path}.{key}" if path else key
        if type(value) is not str:
            self.problem(where, value, f"expected a string, got {_type_name(value)}")
            return None
        if not value.strip():
            self.problem(where, value, "must not be empty")
            return None
        return value

    def parsed(
        self, m: dict[Any, Any], key: str, path: str, parse: Callable[[str], _T]
    ) -> _T | None:
        text = self.string(m, key, path)
        if text is None:
            return None
        try:
            return parse(text)
        except ValueError as exc:
            self.problem(f"{path}.{key}" if path else key, text, str(exc))
            return None

    def string_list(self, m: dict[Any, Any], key: str, path: str) -> list[tuple[str, str]] | None:
        """The list's strings with their paths; None when absent or not a list."""
        value = m.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = f"{path}.{key}"
        if not isinstance(value, list):
            self.problem(where, value, f"expected a list, got {_type_name(value)}")
            return None
        items = []
        for index, item in enumerate(value):
            if type(item) is not str:
                self.problem(
                    f"{where}[{index}]", item, f"expected a string, got {_type_name(item)}"
                )
            else:
                items.append((f"{where}[{index}]", item))
        return items

    # --- sections ---------------------------------------------------------

    def speaker(self, data: object) -> SpeakerConfig | None:
        top = self.mapping(data, "", TOP_KEYS, ("node_name", "router_id", "peers"))
        if top is None:
            return None
        node_name = self.string(top, "node_name", "")
        router_id = self.parsed(top, "router_id", "", parse_address)
        if router_id is not None and (
            not isinstance(router_id, IPv4Address) or router_id.is_unspecified
        ):
            self.problem(
                "router_id", str(router_id), "the BGP identifier must be a non-zero IPv4 address"
            )
        local_asn = self.asn(top, "local_asn", "")
        api = self.api(top.get("api", _MISSING))
        listen = self.listen(top.get("listen", _MISSING))
        log_level = "info"
        if "log_level" in top:
            level = top["log_level"]
            if level not in LOG_LEVELS:
                self.problem(
                    "log_level",
                    level,
                    "must be one of " + ", ".join(LOG_LEVELS) + _suggestion(str(level), LOG_LEVELS),
                )
            else:
                log_level = level
        graceful_restart = self.graceful_restart(top.get("graceful_restart", _MISSING))
        peers = self.peers(top.get("peers", []), local_asn, "local_asn" in top)
        if listen is None:
            for index, peer in enumerate(top.get("peers") or []):
                if isinstance(peer, dict) and peer.get("passive") is True:
                    self.problem(
                        f"peers[{index}].passive",
                        True,
                        "a passive peer needs a BGP listener: add a top-level listen section",
                    )
        announcements = self.announcements(top.get("announce", []), peers)
        kubernetes = self.kubernetes(top.get("kubernetes", _MISSING))
        pools = self.pools(top.get("pools", _MISSING), peers)
        layer2 = self.layer2(top, node_name)
        if "controller" in top:
            self.controller_api(top["controller"])
        if node_name is None or router_id is None:
            return None
        return SpeakerConfig(
            node_name=node_name,
            router_id=router_id,
            local_asn=local_asn,
            peers=tuple(peers),
            announcements=tuple(announcements),
            api=api,
            listen=listen,
            log_level=log_level,
            graceful_restart=graceful_restart,
            kubernetes=kubernetes,
            pools=tuple(pools),
            layer2=layer2,
        )

    def controller(self, data: object) -> ControllerConfig | None:
        """The controller's view of a file: the speaker's keys are checked when present."""
        if isinstance(data, dict) and "peers" in data:
            speaker = self.speaker(data)
            kubernetes = speaker.kubernetes if speaker is not None else None
            pools: tuple[PoolConfig, ...] = speaker.pools if speaker is not None else ()
            top: dict[Any, Any] = data
        else:
            checked = self.mapping(data, "", TOP_KEYS)
            if checked is None:
                return None
            top = checked
            kubernetes = self.kubernetes(top.get("kubernetes", _MISSING))
            pools = tuple(self.pools(top.get("pools", _MISSING), None))
            self.log_level(top)  # the speaker's check reports it in the other branch
        api = self.controller_api(top.get("controller", _MISSING))
        if "pools" not in top:
            self.problems.append(Problem("pools", None, "missing required key: the controller "
                                         "assigns addresses from pools"))
        level = top.get("log_level", "info")
        return ControllerConfig(
            kubernetes=kubernetes or KubernetesConfig(),
            pools=pools,
            api=api,
            log_level=level if level in LOG_LEVELS else "info",
        )

    def log_level(self, top: dict[Any, Any]) -> str:
        level = top.get("log_level", "info")
        if level not in LOG_LEVELS:
            self.problem(
                "log_level",
                level,
                "must be one of " + ", ".join(LOG_LEVELS) + _suggestion(str(level), LOG_LEVELS),
            )
            return "info"
        return str(level)

    def controller_api(self, value: object) -> ApiConfig:
        return self.local_api(value, "controller", CONTROLLER_KEYS, DEFAULT_CONTROLLER_API_PORT)

    # --- Kubernetes and pools ---------------------------------------------------

    def kubernetes(self, value: object) -> KubernetesConfig | None:
        if value is _MISSING or value is None:
            return None
        section = self.mapping(value, "kubernetes", KUBERNETES_KEYS)
        if section is None:
            return None
        kubeconfig: Path | None = None
        text = self.string(section, "kubeconfig", "kubernetes")
        if text is not None:
            kubeconfig = Path(text)
            if not kubeconfig.is_absolute() and self.base_dir is not None:
                kubeconfig = self.base_dir / kubeconfig
            if not kubeconfig.is_file():
                self.problem("kubernetes.kubeconfig", text, f"no such file: {kubeconfig}")
        namespace = self.string(section, "namespace", "kubernetes") or DEFAULT_K8S_NAMESPACE
        if not _DNS_LABEL.fullmatch(namespace):
            self.problem("kubernetes.namespace", namespace,
                         "not a namespace name (lowercase letters, digits and '-', at most 63)")
        lease = self.string(section, "lease_name", "kubernetes") or DEFAULT_LEASE_NAME
        if not _DNS_SUBDOMAIN.fullmatch(lease):
            self.problem("kubernetes.lease_name", lease,
                         "not an object name (lowercase letters, digits, '-' and '.')")
        return KubernetesConfig(
            kubeconfig=kubeconfig,
            context=self.string(section, "context", "kubernetes"),
            load_balancer_class=self.string(section, "load_balancer_class", "kubernetes"),
            namespace=namespace,
            lease_name=lease,
        )

    def pools(self, value: object, peers: list[PeerConfig] | None) -> list[PoolConfig]:
        """The pools; ``peers`` None (a controller file without peers) skips the peer checks."""
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list):
            self.problem("pools", value, f"expected a list, got {_type_name(value)}")
            return []
        pools: list[PoolConfig] = []
        names: dict[str, int] = {}
        # (first, last, version, pool index) of every range seen, to find overlaps
        seen: list[tuple[int, int, int, int, str]] = []
        for index, item in enumerate(value):
            path = f"pools[{index}]"
            pool_map = self.mapping(item, path, POOL_KEYS, ("name", "addresses"))
            if pool_map is None:
                continue
            before = len(self.problems)
            name = self.string(pool_map, "name", path)
            if name is not None:
                if name in names:
                    self.problem(f"{path}.name", name,
                                 f"duplicate pool name (also pools[{names[name]}])")
                else:
                    names[name] = index
            ranges = self.pool_ranges(pool_map, path, index, seen)
            auto_assign = self.boolean(pool_map, "auto_assign", path, True)
            avoid_buggy = self.boolean(pool_map, "avoid_buggy_ips", path, False)
            mode = self.pool_mode(pool_map, path)
            interfaces = self.pool_interfaces(pool_map, path, mode, speaker=peers is not None)
            if mode == MODE_LAYER2:
                for key in BGP_POOL_KEYS:
                    if key in pool_map:
                        self.problem(f"{path}.{key}", pool_map[key],
                                     "a layer2 pool is never announced over BGP; remove it "
                                     "or set mode: bgp")
            targets = () if mode == MODE_LAYER2 else self.pool_peers(pool_map, path, peers)
            communities = self.cached_list(pool_map, "communities", path, {}, parse_community)
            large = self.cached_list(pool_map, "large_communities", path, {},
                                     parse_large_community)
            local_pref = self.integer(pool_map, "local_pref", path, 0, MAX_UINT32, -1)
            if len(self.problems) != before or name is None or not ranges:
                continue
            attributes = RouteAttributes(
                None, communities or (), large or (), local_pref if local_pref >= 0 else None
            )
            pools.append(PoolConfig(
                name=name,
                ranges=tuple(ranges),
                auto_assign=auto_assign,
                avoid_buggy_ips=avoid_buggy,
                peers=targets,
                attributes=self.shared_attributes.setdefault(attributes, attributes),
                mode=mode or MODE_BGP,
                interfaces=interfaces,
            ))
        return pools

    def pool_mode(self, pool_map: dict[Any, Any], path: str) -> str | None:
        """``mode``: bgp (the default) or layer2; None (reported) for anything else."""
        mode = pool_map.get("mode", MODE_BGP)
        if mode not in POOL_MODES:
            self.problem(f"{path}.mode", mode, "must be one of " + ", ".join(POOL_MODES)
                         + _suggestion(str(mode), POOL_MODES))
            return None
        return str(mode)

    def pool_interfaces(
        self, pool_map: dict[Any, Any], path: str, mode: str | None, *, speaker: bool
    ) -> tuple[str, ...]:
        """A layer2 pool's ``interfaces`` (a speaker's are required; the controller's unused)."""
        if mode is None:
            return ()  # the mode is wrong already; which keys go with it is unknown
        items = self.string_list(pool_map, "interfaces", path)
        if mode != MODE_LAYER2:
            if "interfaces" in pool_map:
                self.problem(f"{path}.interfaces", pool_map["interfaces"],
                             "only a layer2 pool has interfaces (set mode: layer2)")
            return ()
        if items is None:
            if speaker and "interfaces" not in pool_map:
                self.problem(f"{path}.interfaces", None,
                             "missing: a layer2 pool names the interfaces its addresses are "
                             "answered on")
            return ()
        if not items:
            self.problem(f"{path}.interfaces", "<list>", "must name at least one interface")
        names: list[str] = []
        for where, name in items:
            if not _INTERFACE_NAME.fullmatch(name) or name in (".", ".."):
                self.problem(where, name, "not an interface name (1-15 characters, no '/' "
                                          "or whitespace)")
            elif name in names:
                self.problem(where, name, "listed twice")
            else:
                names.append(name)
        return tuple(names)

    def layer2(
        self, top: dict[Any, Any], node_name: str | None
    ) -> Layer2Config | None:
        """The speakers' mesh: required when a pool is layer2, refused when none is."""
        value = top.get("layer2", _MISSING)
        raw_pools = top.get("pools")
        wanted = [  # as written, so a layer2 pool with other problems counts too
            str(item.get("name")) for item in (raw_pools if isinstance(raw_pools, list) else [])
            if isinstance(item, dict) and item.get("mode") == MODE_LAYER2
        ]
        if value is _MISSING or value is None:
            if wanted:
                self.problem("layer2", None, f"missing: pool {wanted[0]} is layer2, and its "
                             "speakers need source_address and peers to find each other")
            return None
        if not wanted and all(  # a pool whose mode is wrong may be meant as layer2
            item.get("mode", MODE_BGP) in POOL_MODES
            for item in (raw_pools if isinstance(raw_pools, list) else [])
            if isinstance(item, dict)
        ):
            self.problem("layer2", value,
                         "no pool has mode: layer2; remove this section or add a layer2 pool")
        section = self.mapping(value, "layer2", LAYER2_KEYS, ("source_address",))
        if section is None:
            return None
        before = len(self.problems)
        source = self.parsed(section, "source_address", "layer2", parse_address)
        if source is not None and (source.is_unspecified or source.is_multicast):
            self.problem("layer2.source_address", str(source), "not a usable unicast address")
        peers = self.layer2_peers(section.get("peers", _MISSING), source, node_name)
        bfd = self.bfd(section, "layer2", DEFAULT_LAYER2_BFD) if "bfd" in section else None
        if section.get("bfd", True) is False:
            self.problem("layer2.bfd", False, "the layer2 speakers always run BFD between "
                         "themselves: it is how they see a speaker die; give timers or leave it out")
        if len(self.problems) != before or source is None:
            return None
        return Layer2Config(source, peers, bfd or DEFAULT_LAYER2_BFD)

    def layer2_peers(
        self, value: object, source: Address | None, node_name: str | None
    ) -> tuple[Layer2Peer, ...]:
        """The other speakers on the segment: one per node, same family as ``source``."""
        if value is _MISSING or value is None:
            return ()  # a segment with one speaker: it answers every address
        if not isinstance(value, list):
            self.problem("layer2.peers", value, f"expected a list, got {_type_name(value)}")
            return ()
        peers: list[Layer2Peer] = []
        nodes: dict[str, int] = {}
        addresses: dict[Address, int] = {}
        for index, item in enumerate(value):
            path = f"layer2.peers[{index}]"
            m = self.mapping(item, path, LAYER2_PEER_KEYS, LAYER2_PEER_KEYS)
            if m is None:
                continue
            before = len(self.problems)
            node = self.string(m, "node", path)
            address = self.parsed(m, "address", path, parse_address)
            if node is not None:
                if node == node_name:
                    self.problem(f"{path}.node", node,
                                 "is this node (node_name); list only the other speakers")
                elif node in nodes:
                    self.problem(f"{path}.node", node,
                                 f"duplicate node (also layer2.peers[{nodes[node]}])")
                else:
                    nodes[node] = index
            if address is not None:
                if address.is_unspecified or address.is_multicast:
                    self.problem(f"{path}.address", str(address), "not a usable unicast address")
                elif source is not None and address.version != source.version:
                    self.problem(f"{path}.address", str(address),
                                 f"must be IPv{source.version} like layer2.source_address")
                elif address == source:
                    self.problem(f"{path}.address", str(address),
                                 "is layer2.source_address (this node's own address)")
                elif address in addresses:
                    self.problem(f"{path}.address", str(address),
                                 f"duplicate address (also layer2.peers[{addresses[address]}])")
                else:
                    addresses[address] = index
            if len(self.problems) == before and node is not None and address is not None:
                peers.append(Layer2Peer(node, address))
        return tuple(peers)

    def pool_ranges(
        self,
        pool_map: dict[Any, Any],
        path: str,
        index: int,
        seen: list[tuple[int, int, int, int, str]],
    ) -> list[tuple[Address, Address]]:
        items = self.string_list(pool_map, "addresses", path)
        if items is None:
            return []
        if not items and isinstance(pool_map.get("addresses"), list):
            self.problem(f"{path}.addresses", "<list>", "must list at least one address range")
        ranges: list[tuple[Address, Address]] = []
        for where, text in items:
            try:
                first, last = parse_range(text)
            except ValueError as exc:
                self.problem(where, text, str(exc))
                continue
            lo, hi = int(first), int(last)
            for other_lo, other_hi, version, other_index, other_text in seen:
                if version == first.version and lo <= other_hi and other_lo <= hi:
                    other = "this pool" if other_index == index else f"pools[{other_index}]"
                    self.problem(where, text, f"overlaps {other_text} of {other}")
                    break
            seen.append((lo, hi, first.version, index, text))
            ranges.append((first, last))
        return ranges

    def pool_peers(
        self, pool_map: dict[Any, Any], path: str, peers: list[PeerConfig] | None
    ) -> tuple[str, ...]:
        every = tuple(peer.name for peer in peers) if peers is not None else ()
        if "peers" not in pool_map:
            return every
        items = self.string_list(pool_map, "peers", path)
        if items is None:
            return every
        if not items:
            self.problem(f"{path}.peers", "<list>",
                         "must name at least one peer (leave peers out to mean every peer)")
        names = tuple(text for _, text in items)
        if peers is None:
            return names
        known = {peer.name for peer in peers}
        for position, (where, name) in enumerate(items):
            if name in known or name in self.broken_peers or self.peers_incomplete:
                if name in names[:position]:
                    self.problem(where, name, "listed twice")
                continue
            self.problem(where, name, "unknown peer" + _suggestion(name, sorted(known)))
        return names

    def api(self, value: object) -> ApiConfig:
        return self.local_api(value, "api", API_KEYS, DEFAULT_API_PORT, missing_is_default=False)

    def local_api(
        self, value: object, section: str, keys: tuple[str, ...], port: int,
        *, missing_is_default: bool = True,
    ) -> ApiConfig:
        """A ``{listen: "ADDRESS:PORT"}`` section (``null`` disables the API)."""
        default = ApiConfig(DEFAULT_API_ADDRESS, port)
        if value is _MISSING or (missing_is_default and value is None):
            return default
        found = self.mapping(value, section, keys)
        if found is None or "listen" not in found:
            return default
        listen = found["listen"]
        if listen is None:
            return ApiConfig(None, port)  # the API is disabled
        if type(listen) is not str:
            self.problem(
                f"{section}.listen", listen,
                f"expected ADDRESS:PORT or null, got {_type_name(listen)}",
            )
            return default
        try:
            address, parsed_port = parse_host_port(listen, port)
        except ValueError as exc:
            self.problem(f"{section}.listen", listen, str(exc))
            return default
        allow_remote = self.boolean(found, "allow_remote", section, False)
        if not address.is_loopback and not allow_remote:
            self.problem(
                f"{section}.listen", listen,
                "is not a loopback address: the API can change what is announced (POST "
                f"actions); set {section}.allow_remote: true to serve it there",
            )
            return default
        return ApiConfig(address, parsed_port, allow_remote)

    def listen(self, value: object) -> ListenConfig | None:
        if value is _MISSING or value is None:
            return None
        listen = self.mapping(value, "listen", LISTEN_KEYS)
        if listen is None:
            return None
        address = self.parsed(listen, "address", "listen", parse_address)
        port = self.integer(listen, "port", "listen", 1, 65535, DEFAULT_BGP_PORT)
        return ListenConfig(address or IPv4Address("0.0.0.0"), port)

    def graceful_restart(self, value: object) -> GracefulRestartConfig | None:
        if value is _MISSING or value is None:
            return None
        section = self.mapping(value, "graceful_restart", GRACEFUL_RESTART_KEYS, ("restart_time",))
        if section is None or "restart_time" not in section:
            return None
        restart_time = self.integer(
            section, "restart_time", "graceful_restart", 0, MAX_RESTART_TIME, -1
        )
        state_file = self.string(section, "state_file", "graceful_restart")
        state_path = None
        if state_file is not None:
            state_path = Path(state_file)
            if not state_path.is_absolute():
                self.problem("graceful_restart.state_file", state_file,
                             "must be an absolute path (the speaker's working directory varies)")
                state_path = None
        return GracefulRestartConfig(restart_time, state_path) if restart_time >= 0 else None

    def peers(
        self, value: object, local_asn: int | None, local_asn_given: bool
    ) -> list[PeerConfig]:
        if not isinstance(value, list):
            self.problem("peers", value, f"expected a list, got {_type_name(value)}")
            self.peers_incomplete = True
            return []
        peers: list[PeerConfig] = []
        names: dict[str, int] = {}
        endpoints: dict[tuple[Address, int], int] = {}
        for index, item in enumerate(value):
            path = f"peers[{index}]"
            # Names are checked for duplicates even on peers with other problems.
            name = item.get("name") if isinstance(item, dict) else None
            duplicate = False
            if isinstance(name, str):
                if name in names:
                    duplicate = True
                    self.problem(
                        f"{path}.name", name, f"duplicate peer name (also peers[{names[name]}])"
                    )
                else:
                    names[name] = index
            peer = self.peer(item, path, local_asn, local_asn_given)
            if peer is None:
                self.peers_incomplete = True
                continue
            if duplicate:
                continue
            endpoint = (peer.address, peer.port)
            if endpoint in endpoints:
                self.problem(
                    f"{path}.address",
                    str(peer.address),
                    f"duplicate peer address and port {peer.port} (also peers[{endpoints[endpoint]}])",
                )
                continue
            endpoints[endpoint] = index
            peers.append(peer)
        return peers

    def peer(
        self, value: object, path: str, default_local_asn: int | None, local_asn_given: bool
    ) -> PeerConfig | None:
        m = self.mapping(value, path, PEER_KEYS, ("name", "address", "asn"))
        if m is None:
            return None
        before = len(self.problems)
        name = self.string(m, "name", path)
        address = self.parsed(m, "address", path, parse_address)
        asn = self.asn(m, "asn", path)
        local_asn = self.asn(m, "local_asn", path)
        if local_asn is None and "local_asn" not in m:
            local_asn = default_local_asn
            if local_asn is None and not local_asn_given:
                self.problem(
                    f"{path}.local_asn", None, "missing: set local_asn here or at the top level"
                )
        source = self.parsed(m, "source_address", path, parse_address)
        if source is not None and address is not None and source.version != address.version:
            self.problem(
                f"{path}.source_address",
                str(source),
                f"must be IPv{address.version} like the peer's address",
            )
        port = self.integer(m, "port", path, 1, 65535, DEFAULT_BGP_PORT)
        hold_time = self.integer(m, "hold_time", path, 0, MAX_HOLD_TIME, DEFAULT_HOLD_TIME)
        if hold_time in (1, 2):
            self.problem(f"{path}.hold_time", hold_time, "must be 0 or at least 3 (RFC 4271)")
            hold_time = DEFAULT_HOLD_TIME
        keepalive = self.integer(m, "keepalive", path, 0, MAX_HOLD_TIME, hold_time // 3)
        if hold_time and "keepalive" in m and not 1 <= keepalive < hold_time:
            self.problem(
                f"{path}.keepalive",
                m["keepalive"],
                f"must be at least 1 and less than hold_time ({hold_time})",
            )
        password, password_file = self.password(m, path)
        passive = self.boolean(m, "passive", path, False)
        multihop_ttl = self.integer(m, "multihop_ttl", path, 1, 255, 1)
        families = self.families(m, path, address)
        connect_retry = DEFAULT_CONNECT_RETRY
        if "connect_retry" in m:
            retry = m["connect_retry"]
            if type(retry) not in (int, float) or not 0 < retry <= MAX_CONNECT_RETRY:
                self.problem(
                    f"{path}.connect_retry",
                    retry,
                    f"must be a number of seconds, more than 0 and at most {MAX_CONNECT_RETRY}",
                )
            else:
                connect_retry = float(retry)
        send_hold_time = self.send_hold_time(m, path, hold_time)
        bfd = self.bfd(m, path)
        if bfd is not None and source is None and "source_address" not in m:
            self.problem(f"{path}.bfd", m.get("bfd"),
                         "needs source_address: the BFD session binds it (RFC 5881 single hop)")
        if (
            len(self.problems) != before
            or name is None
            or address is None
            or asn is None
            or local_asn is None
        ):
            if name is not None:
                self.broken_peers.add(name)
            return None
        return PeerConfig(
            name=name,
            address=address,
            asn=asn,
            local_asn=local_asn,
            families=families,
            source_address=source,
            port=port,
            hold_time=hold_time,
            keepalive=keepalive,
            password=password,
            password_file=password_file,
            passive=passive,
            multihop_ttl=multihop_ttl,
            connect_retry=connect_retry,
            send_hold_time=send_hold_time,
            bfd=bfd,
        )

    def bfd(
        self, m: dict[Any, Any], path: str, defaults: BfdConfig | None = None
    ) -> BfdConfig | None:
        """``bfd: true`` (the defaults) or ``{min_tx_ms, min_rx_ms, multiplier}``; absent/false: off."""
        defaults = defaults or BfdConfig()
        value = m.get("bfd", False)
        if value is False:
            return None
        if value is True:
            return defaults
        where = f"{path}.bfd"
        raw = self.mapping(value, where, BFD_KEYS)
        if raw is None:
            return None
        low, high = BFD_INTERVAL_MS
        return BfdConfig(
            min_tx_ms=self.integer(raw, "min_tx_ms", where, low, high, defaults.min_tx_ms),
            min_rx_ms=self.integer(raw, "min_rx_ms", where, low, high, defaults.min_rx_ms),
            multiplier=self.integer(raw, "multiplier", where, 1, 255, defaults.multiplier),
        )

    def send_hold_time(self, m: dict[Any, Any], path: str, hold_time: int) -> int | None:
        """RFC 9687 SendHoldTime: more than ``hold_time`` ("MUST be greater than HoldTime")."""
        if "send_hold_time" not in m:
            return None
        value = self.integer(m, "send_hold_time", path, 1, MAX_SEND_HOLD_TIME, 0)
        if value and value <= hold_time:
            self.problem(
                f"{path}.send_hold_time",
                value,
                f"must be more than hold_time ({hold_time}) (RFC 9687)",
            )
        return value if value > hold_time else None

    def password(self, m: dict[Any, Any], path: str) -> tuple[str | None, Path | None]:
        """The TCP MD5 key, from ``password`` or read from ``password_file`` (never echoed)."""
        if "password" in m and "password_file" in m:
            self.problem(
                f"{path}.password", m["password"], "set password or password_file, not both"
            )
            return None, None
        if "password" in m:
            password = self.string(m, "password", path)
            if password is not None:
                self.check_password(password, f"{path}.password")
            return password, None
        file_text = self.string(m, "password_file", path)
        if file_text is None:
            return None, None
        file_path = Path(file_text)
        if not file_path.is_absolute() and self.base_dir is not None:
            file_path = self.base_dir / file_path
        where = f"{path}.password_file"
        try:
            password = file_path.read_bytes().decode("utf-8").rstrip("\r\n")
        except OSError as exc:
            self.problem(
                where,
                str(file_path),
                f"cannot read {file_path}: {exc.strerror or type(exc).__name__}",
            )
            return None, file_path
        except UnicodeDecodeError:
            self.problem(where, str(file_path), f"{file_path} is not UTF-8 text")
            return None, file_path
        self.check_password(password, where, f"the password in {file_path}")
        return password, file_path

    def check_password(self, password: str, where: str, what: str = "the password") -> None:
        if not password:
            self.problems.append(Problem(where, REDACTED, f"{what} is empty"))
        elif len(password.encode("utf-8")) > MAX_PASSWORD_OCTETS:
            self.problems.append(
                Problem(
                    where,
                    REDACTED,
                    f"{what} is longer than {MAX_PASSWORD_OCTETS} octets (TCP MD5 limit)",
                )
            )

    def families(self, m: dict[Any, Any], path: str, address: Address | None) -> tuple[Family, ...]:
        default = (IPV4_UNICAST if address is None or address.version == 4 else IPV6_UNICAST,)
        names = self.string_list(m, "families", path)
        if names is None:
            return default
        if not names and "families" in m and isinstance(m["families"], list) and not m["families"]:
            self.problem(f"{path}.families", "<list>", "must name at least one family")
            return default
        families: list[Family] = []
        for where, name in names:
            family = FAMILY_NAMES.get(name)
            if family is None:
                choices = list(FAMILY_NAMES)
                self.problem(
                    where,
                    name,
                    "unknown family; use " + " or ".join(choices) + _suggestion(name, choices),
                )
            elif family in families:
                self.problem(where, name, "listed twice")
            else:
                families.append(family)
        return tuple(families) or default

    # --- announcements ----------------------------------------------------

    def announcements(self, value: object, peers: list[PeerConfig]) -> list[Announcement]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem("announce", value, f"expected a list, got {_type_name(value)}")
            return []
        by_family: dict[Family, tuple[str, ...]] = {
            family: tuple(peer.name for peer in peers if family in peer.families)
            for family in (IPV4_UNICAST, IPV6_UNICAST)
        }
        peer_families = {peer.name: peer.families for peer in peers}
        announcements: list[Announcement] = []
        # prefix -> (index, announcement) of its entries; several only if their peers differ
        first_of: dict[Prefix, tuple[int, Announcement]] = {}
        later_of: dict[Prefix, list[tuple[int, Announcement]]] = {}
        next_hops: dict[str, Address | str] = {}
        peer_lists: dict[tuple[tuple[str, ...], Family], tuple[str, ...] | None] = {}
        community_lists: dict[tuple[str, ...], tuple[int, ...] | None] = {}
        large_lists: dict[tuple[str, ...], tuple[Any, ...] | None] = {}
        problems_before = len(self.problems)
        consume = self.consume
        for index, item in enumerate(value):
            if consume:
                value[index] = None  # the loop holds ``item``; the document no longer does
            if type(item) is not dict:
                self.problem(
                    f"announce[{index}]", item, f"expected a mapping, got {_type_name(item)}"
                )
                continue
            if not item.keys() <= _ANNOUNCE_KEY_SET or "prefix" not in item:
                self.mapping(item, f"announce[{index}]", ANNOUNCE_KEYS, ("prefix",))
                if "prefix" not in item:
                    continue
            text = item["prefix"]
            if type(text) is not str:
                self.problem(
                    f"announce[{index}].prefix", text, f"expected a string, got {_type_name(text)}"
                )
                continue
            try:
                prefix = parse_prefix(text)
            except ValueError as exc:
                self.problem(f"announce[{index}].prefix", text, str(exc))
                continue
            family = IPV4_UNICAST if prefix.version == 4 else IPV6_UNICAST
            if len(item) == 1:  # the common case: a prefix with every default
                targets = by_family[family]
                if not targets:
                    self.no_peer_carries(f"announce[{index}].prefix", text, family)
                    continue
                announcement = Announcement(prefix, targets)
            else:
                built = self.announcement(
                    item,
                    index,
                    prefix,
                    family,
                    by_family,
                    peer_families,
                    next_hops,
                    peer_lists,
                    community_lists,
                    large_lists,
                )
                if built is None:
                    continue
                announcement = built
            first = first_of.setdefault(prefix, (index, announcement))
            if first[1] is not announcement:
                earlier = [first, *later_of.get(prefix, ())]
                if not self.distinct_peers(announcement, index, earlier):
                    continue
                later_of.setdefault(prefix, []).append((index, announcement))
            announcements.append(announcement)
        if len(self.problems) != problems_before:
            return []
        return announcements

    def distinct_peers(
        self,
        new: Announcement,
        index: int,
        earlier_entries: list[tuple[int, Announcement]],
    ) -> bool:
        """Whether ``new`` goes to other peers than every earlier announcement of its prefix.

        One peer gets one path per prefix (no ADD-PATH), so two entries of a
        prefix may only differ in their peers, and those must not overlap.
        """
        for earlier_index, earlier in earlier_entries:
            shared = [name for name in new.peers if name in earlier.peers]
            if shared:
                self.problem(
                    f"announce[{index}].prefix",
                    str(new.prefix),
                    f"duplicate prefix: announce[{earlier_index}] already announces it to "
                    + ", ".join(shared),
                )
                return False
        return True

    def announcement(
        self,
        item: dict[Any, Any],
        index: int,
        prefix: Prefix,
        family: Family,
        by_family: dict[Family, tuple[str, ...]],
        peer_families: dict[str, tuple[Family, ...]],
        next_hops: dict[str, Address | str],
        peer_lists: dict[tuple[tuple[str, ...], Family], tuple[str, ...] | None],
        community_lists: dict[tuple[str, ...], tuple[int, ...] | None],
        large_lists: dict[tuple[str, ...], tuple[Any, ...] | None],
    ) -> Announcement | None:
        path = f"announce[{index}]"
        before = len(self.problems)
        # peers
        names = item.get("peers", _MISSING)
        if names is _MISSING:
            targets: tuple[str, ...] | None = by_family[family]
            if not targets:
                self.no_peer_carries(f"{path}.prefix", str(prefix), family)
        elif type(names) is list and all(type(name) is str for name in names):
            key = (tuple(names), family)
            if key in peer_lists:
                targets = peer_lists[key]
                if targets is None:  # same problem as before, reported again at this path
                    self.announce_peers(key[0], f"{path}.peers", family, peer_families)
            else:
                targets = peer_lists[key] = self.announce_peers(
                    key[0], f"{path}.peers", family, peer_families
                )
        else:
            targets = None
            self.string_list(item, "peers", path)  # reports each bad item
        # next hop
        next_hop: Address | None = None
        hop = item.get("next_hop", "self")
        if hop != "self":
            if type(hop) is not str:
                self.problem(
                    f"{path}.next_hop", hop, f'expected "self" or an address, got {_type_name(hop)}'
                )
            else:
                found = next_hops.get(hop)
                if found is None:
                    try:
                        address = parse_address(hop)
                        found = (
                            address
                            if not (address.is_unspecified or address.is_multicast)
                            else "not a usable next hop"
                        )
                    except ValueError as exc:
                        found = f'{exc}, nor "self"'
                    next_hops[hop] = found
                if isinstance(found, str):
                    self.problem(f"{path}.next_hop", hop, found)
                elif found.version != prefix.version:
                    self.problem(
                        f"{path}.next_hop",
                        hop,
                        f"an IPv{found.version} next hop for an IPv{prefix.version} prefix is not supported",
                    )
                else:
                    next_hop = found
        communities = self.cached_list(item, "communities", path, community_lists, parse_community)
        large = self.cached_list(
            item, "large_communities", path, large_lists, parse_large_community
        )
        local_pref = self.integer(item, "local_pref", path, 0, MAX_UINT32, -1)
        med = self.integer(item, "med", path, 0, MAX_UINT32, -1)
        if len(self.problems) != before or targets is None:
            return None
        attributes = RouteAttributes(
            next_hop,
            communities or (),
            large or (),
            local_pref if local_pref >= 0 else None,
            med if med >= 0 else None,
        )
        return Announcement(
            prefix, targets, self.shared_attributes.setdefault(attributes, attributes)
        )

    def no_peer_carries(self, path: str, prefix: str, family: Family) -> None:
        if not self.peers_incomplete:  # else an invalid peer may be the one that does
            self.problem(
                path, prefix, f"no peer carries {family_name(family)}; add it to a peer's families"
            )

    def announce_peers(
        self,
        names: tuple[str, ...],
        where: str,
        family: Family,
        peer_families: dict[str, tuple[Family, ...]],
    ) -> tuple[str, ...] | None:
        before = len(self.problems)
        if not names:
            self.problem(
                where, "<list>", "must name at least one peer (leave peers out to mean every peer)"
            )
        for position, name in enumerate(names):
            families = peer_families.get(name)
            if families is None and (name in self.broken_peers or self.peers_incomplete):
                continue
            if families is None:
                self.problem(
                    f"{where}[{position}]",
                    name,
                    "unknown peer" + _suggestion(name, list(peer_families)),
                )
            elif family not in families:
                self.problem(
                    f"{where}[{position}]",
                    name,
                    f"this peer does not carry {family_name(family)} (its families: "
                    + ", ".join(family_name(f) for f in families)
                    + ")",
                )
            elif name in names[:position]:
                self.problem(f"{where}[{position}]", name, "listed twice")
        return names if len(self.problems) == before else None

    def cached_list(
        self,
        item: dict[Any, Any],
        key: str,
        path: str,
        cache: dict[tuple[str, ...], Any],
        parse: Callable[[str], _T],
    ) -> tuple[_T, ...] | None:
        """A list of strings parsed with ``parse``, cached by its text (lists repeat)."""
        value = item.get(key, _MISSING)
        if value is _MISSING:
            return ()
        if type(value) is list and all(type(text) is str for text in value):
            texts = tuple(value)
            found = cache.get(texts, _MISSING)
            if found is not _MISSING and found is not None:
                return found  # type: ignore[no-any-return]
            before = len(self.problems)
            parsed: list[_T] = []
            for position, text in enumerate(texts):
                try:
                    parsed.append(parse(text))
                except ValueError as exc:
                    self.problem(f"{path}.{key}[{position}]", text, str(exc))
            result = tuple(parsed) if len(self.problems) == before else None
            cache[texts] = result
            return result
        if not isinstance(value, list):
            self.problem(f"{path}.{key}", value, f"expected a list, got {_type_name(value)}")
            return None
        for position, text in enumerate(value):
            if type(text) is not str:
                hint = ""
                if type(text) is int:
                    hint = '; quote it ("65533:10"): YAML 1.1 reads some unquoted A:B as base-60 numbers'
                self.problem(
                    f"{path}.{key}[{position}]",
                    text,
                    f"expected a string, got {_type_name(text)}{hint}",
                )
        return None
