"""Build a :class:`Site` from inventory-shaped data, checking it before any device is contacted.

Input is what Ansible has: the site's variables (``spinelb_*`` from
``group_vars/all``), each host's variables, and the groups ``spines``,
``workers`` and ``masters``.  Every problem is collected, each naming the
variable path and the value found (``spinelb_pools.x.cidr: 10.0.0.0/24 overlaps
...``), and :class:`SiteError` lists them all, so one run shows everything to
fix.  The BGP password is never quoted: a problem about it names the variable
only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from typing import Any

from spinelb.bfd.session import INTERVAL_MS_MAX, INTERVAL_MS_MIN, BfdSettings

from .model import (
    DEFAULT_VRF,
    PLATFORMS,
    POOL_MODES,
    BgpSettings,
    Host,
    Network,
    Pool,
    SinglePath,
    Site,
)

MAX_ASN = 4294967295
MAX_HOLD_TIME = 65535
MAX_DISTANCE = 255
MAX_PASSWORD_LENGTH = 80  # Linux TCP_MD5SIG key field; AOS-CX and FRR accept at most this too
#: maximum-paths each platform accepts: AOS-CX 10.x 1..32; FRR 8.4 as built by Debian 12
#: (``--enable-multipath=256``; ``vtysh -C`` refuses 257).
MAXIMUM_PATHS = {"aoscx": (1, 32), "frr": (1, 256)}
MAX_VLAN = 4094
#: BFD timers as spinelb.bfd.BfdSettings (and FRR bfdd) accept them, by key.
BFD_RANGES = {
    "min_rx_ms": (INTERVAL_MS_MIN, INTERVAL_MS_MAX),
    "min_tx_ms": (INTERVAL_MS_MIN, INTERVAL_MS_MAX),
    "multiplier": (1, 255),
}
#: What AOS-CX 10.x accepts on an interface (``bfd min-receive-interval``,
#: ``bfd min-transmit-interval``, ``bfd detect-multiplier``), the widest over its
#: platforms: the 6300, 6400, 8360 and 8400 take no interval below 500 ms.
AOSCX_BFD_RANGES = {"min_rx_ms": (100, 20000), "min_tx_ms": (50, 20000), "multiplier": (1, 5)}
#: Graceful restart: the restart time speakers advertise (RFC 4724: 12 bits) and the spines'
#: stale-path time, within what both take (AOS-CX ``bgp graceful-restart stalepath-time``
#: 1..3600; FRR 1..4095).  The default: long enough for a supervised restart, short enough
#: that a crashed worker's stale routes (docs/graceful-restart.md) do not live long.
GRACEFUL_RESTART_TIME_RANGE = (1, 3600)
DEFAULT_GRACEFUL_RESTART_TIME = 30
GRACEFUL_RESTART_KEYS = ("restart_time",)

SPINES, WORKERS, MASTERS = "spines", "workers", "masters"
#: Pools an inventory layer adds to ``spinelb_pools`` (the lab inventory's layer2 pool).
EXTRA_POOLS = "spinelb_extra_pools"
#: Linux interface names: at most IFNAMSIZ - 1 octets, no '/', no whitespace.
_INTERFACE_NAME = re.compile(r"[^/\s]{1,15}")


class SiteError(ValueError):
    """Inventory data that cannot configure a spine; :attr:`problems` lists every problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"site data: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


class _Checker:
    """Collects problems while reading values; each reader returns None when the value is wrong."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def mapping(self, path: str, value: Any, *, required: bool = True) -> Mapping[str, Any]:
        if value is None:
            if required:
                self.add(path, "is required (a mapping)")
            return {}
        if not isinstance(value, Mapping):
            self.add(path, f"{_show(value)} is not a mapping")
            return {}
        return value

    def integer(self, path: str, value: Any, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            else:
                self.add(path, f"{_show(value)} is not an integer")
                return None
        if not low <= value <= high:
            self.add(path, f"{value} is outside {low}..{high}")
            return None
        return int(value)

    def asn(self, path: str, value: Any) -> int | None:
        return self.integer(path, value, 1, MAX_ASN)

    def boolean(self, path: str, value: Any, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(path, f"{_show(value)} is not a boolean (true or false)")
            return default
        return value

    def network(self, path: str, value: Any) -> IPv4Network | None:
        if value is None:
            self.add(path, "is required (an IPv4 network, e.g. 10.92.100.0/24)")
            return None
        if not isinstance(value, str):
            self.add(path, f"{_show(value)} is not an IPv4 network (a {type(value).__name__})")
            return None
        try:
            return IPv4Network(value)
        except (AddressValueError, NetmaskValueError, ValueError) as exc:
            self.add(path, f"{_show(value)} is not an IPv4 network ({_reason(exc)})")
            return None

    def address(self, path: str, value: Any) -> IPv4Address | None:
        try:
            if isinstance(value, str):
                return IPv4Address(value)
        except AddressValueError:
            pass
        self.add(path, f"{_show(value)} is not an IPv4 address")
        return None

    def name(self, path: str, value: Any) -> str | None:
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            self.add(path, f"{_show(value)} is not a name (a string without spaces)")
            return None
        return value


def _reason(exc: Exception) -> str:
    return str(exc).split(" (", 1)[0] or type(exc).__name__


def _show(value: Any) -> str:
    """A value as a problem quotes it: scalars as written, containers by kind."""
    if isinstance(value, Mapping):
        return "<mapping>"
    if isinstance(value, list | tuple):
        return "<list>"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _networks(check: _Checker, data: Mapping[str, Any]) -> dict[str, Network]:
    networks: dict[str, Network] = {}
    raw = check.mapping("spinelb_networks", data.get("spinelb_networks"))
    for name in sorted(raw):
        path = f"spinelb_networks.{name}"
        entry = check.mapping(path, raw[name])
        cidr = check.network(f"{path}.cidr", entry.get("cidr"))
        vrf = entry.get("vrf", DEFAULT_VRF)
        if check.name(f"{path}.vrf", vrf) is None:
            vrf = DEFAULT_VRF
        peering = check.boolean(f"{path}.peering", entry.get("peering"), False)
        speaker_asn = None
        if entry.get("speaker_asn") is not None:
            speaker_asn = check.asn(f"{path}.speaker_asn", entry["speaker_asn"])
        elif peering:
            check.add(f"{path}.speaker_asn", "is required on a peering network (peering: true)")
        vlan = None
        if entry.get("vlan") is not None:
            vlan = check.integer(f"{path}.vlan", entry["vlan"], 1, MAX_VLAN)
        if cidr is not None:
            networks[name] = Network(name, cidr, str(vrf), speaker_asn, peering, vlan)
    for name, net in networks.items():
        for other in networks.values():
            if other.name > name and net.cidr.overlaps(other.cidr):
                check.add(
                    f"spinelb_networks.{name}.cidr",
                    f"{net.cidr} overlaps spinelb_networks.{other.name}.cidr ({other.cidr})",
                )
            if other.name > name and net.vlan is not None and net.vlan == other.vlan:
                check.add(
                    f"spinelb_networks.{other.name}.vlan",
                    f"{other.vlan} is also spinelb_networks.{name}.vlan",
                )
    return networks


def _pools(
    check: _Checker, data: Mapping[str, Any], networks: Mapping[str, Network]
) -> tuple[dict[str, Pool], dict[str, IPv4Network]]:
    """The valid pools, and every pool's CIDR that parses (for checks that need no more)."""
    pools: dict[str, Pool] = {}
    cidrs: dict[str, IPv4Network] = {}
    raw = check.mapping("spinelb_pools", data.get("spinelb_pools"))
    known = ", ".join(sorted(networks)) or "none"
    for name in sorted(raw):
        path = f"spinelb_pools.{name}"
        entry = check.mapping(path, raw[name])
        cidr = check.network(f"{path}.cidr", entry.get("cidr"))
        ok = cidr is not None
        if cidr is not None:
            cidrs[name] = cidr
        mode = entry.get("mode", "bgp")
        if mode not in POOL_MODES:
            check.add(f"{path}.mode", f"{_show(mode)} is not a pool mode (bgp or layer2)")
            continue  # which other keys it needs depends on the mode
        interfaces = _interfaces(check, path, entry, mode)
        if mode == "layer2" and entry.get("peering") is not None:
            check.add(f"{path}.peering", f"{_show(entry['peering'])}: a layer2 pool is carried "
                      "by no BGP session; remove it (network is where its addresses are answered)")
            ok = False
        for key in ("peering", "network") if mode == "bgp" else ("network",):
            target = entry.get(key)
            if target not in networks:
                check.add(
                    f"{path}.{key}",
                    f"{_show(target)} is not a network in spinelb_networks (known: {known})",
                )
                ok = False
        if ok and mode == "layer2":
            segment = networks[entry["network"]]
            if cidr is not None and not cidr.subnet_of(segment.cidr):
                check.add(f"{path}.cidr", f"{cidr} is outside spinelb_networks.{segment.name}.cidr "
                          f"({segment.cidr}): clients there ARP only for addresses on their subnet")
                ok = False
        elif ok and networks[entry["peering"]].speaker_asn is None:
            check.add(
                f"{path}.peering",
                f"{entry['peering']!r} has no speaker AS "
                f"(set spinelb_networks.{entry['peering']}.speaker_asn and peering: true)",
            )
            ok = False
        elif ok and not networks[entry["peering"]].peering:
            check.add(
                f"{path}.peering",
                f"{entry['peering']!r} is not a peering network "
                f"(set spinelb_networks.{entry['peering']}.peering: true)",
            )
            ok = False
        if interfaces is None:
            ok = False
        auto_assign = check.boolean(f"{path}.auto_assign", entry.get("auto_assign"), True)
        if ok and cidr is not None:
            for net in networks.values():
                if cidr.overlaps(net.cidr) and not cidr.subnet_of(net.cidr):
                    check.add(
                        f"{path}.cidr",
                        f"{cidr} straddles spinelb_networks.{net.name}.cidr ({net.cidr})",
                    )
            pools[name] = Pool(
                name, cidr, entry["peering"] if mode == "bgp" else "", entry["network"],
                auto_assign, mode, interfaces or (),
            )
    segments = {pool.network: pool.name for pool in pools.values() if pool.layer2}
    if len(segments) > 1:
        first, *others = sorted(segments.items(), key=lambda item: item[1])
        for network, name in others:
            check.add(f"spinelb_pools.{name}.network",
                      f"{network!r}: every layer2 pool must be on one network (spinelb_pools."
                      f"{first[1]} is on {first[0]!r}): the speakers run one mesh")
    for name, cidr in cidrs.items():
        for other, other_cidr in cidrs.items():
            if other > name and cidr.overlaps(other_cidr):
                check.add(
                    f"spinelb_pools.{name}.cidr",
                    f"{cidr} overlaps spinelb_pools.{other}.cidr ({other_cidr})",
                )
    return pools, cidrs


def _interfaces(
    check: _Checker, path: str, entry: Mapping[str, Any], mode: str
) -> tuple[str, ...] | None:
    """A layer2 pool's ``interfaces`` (required: the workers' interfaces on its segment)."""
    value = entry.get("interfaces")
    where = f"{path}.interfaces"
    if mode != "layer2":
        if value is not None:
            check.add(where, f"{_show(value)}: only a layer2 pool has interfaces "
                      f"(set {path}.mode: layer2)")
            return None
        return ()
    if not isinstance(value, list) or not value:
        check.add(where, f"{_show(value)} is not a list of interface names (a layer2 pool "
                  "needs the workers' interfaces its addresses are answered on)")
        return None
    names: list[str] = []
    for index, name in enumerate(value):
        if not isinstance(name, str) or not _INTERFACE_NAME.fullmatch(name) or name in (".", ".."):
            check.add(f"{where}[{index}]",
                      f"{_show(name)} is not an interface name (1-15 characters, no '/' or spaces)")
        elif name in names:
            check.add(f"{where}[{index}]", f"{_show(name)} is listed twice")
        else:
            names.append(name)
    return tuple(names) if len(names) == len(value) else None


def _bgp(check: _Checker, data: Mapping[str, Any]) -> BgpSettings:
    raw = check.mapping("spinelb_bgp", data.get("spinelb_bgp"), required=False)
    defaults = BgpSettings()
    timers = check.mapping("spinelb_bgp.timers", raw.get("timers"), required=False)
    hold = check.integer(
        "spinelb_bgp.timers.hold", timers.get("hold", defaults.hold), 0, MAX_HOLD_TIME
    )
    if hold in (1, 2):
        check.add(
            "spinelb_bgp.timers.hold", f"{hold} is not allowed (0 or 3..{MAX_HOLD_TIME}, RFC 4271)"
        )
        hold = None
    keepalive = check.integer(
        "spinelb_bgp.timers.keepalive",
        timers.get("keepalive", defaults.keepalive),
        0,
        MAX_HOLD_TIME,
    )
    if keepalive is not None and hold is not None and hold and keepalive >= hold:
        check.add(
            "spinelb_bgp.timers.keepalive", f"{keepalive} is not below the hold time ({hold})"
        )
    distance = check.mapping("spinelb_bgp.distance", raw.get("distance"), required=False)
    ebgp = check.integer(
        "spinelb_bgp.distance.ebgp", distance.get("ebgp", defaults.distance_ebgp), 1, MAX_DISTANCE
    )
    ibgp = check.integer(
        "spinelb_bgp.distance.ibgp", distance.get("ibgp", defaults.distance_ibgp), 1, MAX_DISTANCE
    )
    paths = raw.get("maximum_paths", defaults.maximum_paths)
    # The range depends on each spine's platform: checked in load_site.
    maximum_paths = check.integer("spinelb_bgp.maximum_paths", paths, 0, MAX_ASN)
    maximum_prefix = None
    if raw.get("maximum_prefix") is not None:
        maximum_prefix = check.integer(
            "spinelb_bgp.maximum_prefix", raw["maximum_prefix"], 1, MAX_ASN
        )
    if "spinelb_bgp_bfd" in data:  # an inventory layer (the lab's) turning BFD on or off
        bfd = _bfd(check, data["spinelb_bgp_bfd"], "spinelb_bgp_bfd")
    else:
        bfd = _bfd(check, raw.get("bfd"))
    if "spinelb_bgp_graceful_restart" in data:  # an inventory layer turning it on or off
        graceful_restart = _graceful_restart(
            check, data["spinelb_bgp_graceful_restart"], "spinelb_bgp_graceful_restart")
    else:
        graceful_restart = _graceful_restart(check, raw.get("graceful_restart"))
    password = _password(check, data.get("spinelb_bgp_password"))
    return BgpSettings(
        keepalive=defaults.keepalive if keepalive is None else keepalive,
        hold=defaults.hold if hold is None else hold,
        maximum_paths=defaults.maximum_paths if maximum_paths is None else maximum_paths,
        distance_ebgp=defaults.distance_ebgp if ebgp is None else ebgp,
        distance_ibgp=defaults.distance_ibgp if ibgp is None else ibgp,
        bfd=bfd,
        graceful_restart_time=graceful_restart,
        maximum_prefix=maximum_prefix,
        password=password,
    )


def _bfd(check: _Checker, value: Any, path: str = "spinelb_bgp.bfd") -> BfdSettings | None:
    """``spinelb_bgp.bfd`` (or ``spinelb_bgp_bfd``, which wins): false or absent (off), true
    (the defaults) or some of the timers."""
    if value is None or value is False:
        return None
    if value is True:
        return BfdSettings()
    if not isinstance(value, Mapping):
        check.add(
            path, f"{_show(value)} is not true, false or a mapping of {', '.join(BFD_RANGES)}"
        )
        return None
    unknown = sorted(set(value) - set(BFD_RANGES), key=str)
    for key in unknown:
        check.add(f"{path}.{key}", f"is not a BFD setting ({', '.join(BFD_RANGES)})")
    defaults = BfdSettings()
    checked = {
        key: check.integer(f"{path}.{key}", value.get(key, getattr(defaults, key)), low, high)
        for key, (low, high) in BFD_RANGES.items()
    }
    timers = {key: timer for key, timer in checked.items() if timer is not None}
    if unknown or len(timers) < len(BFD_RANGES):
        return None
    return BfdSettings(**timers)


def _graceful_restart(
    check: _Checker, value: Any, path: str = "spinelb_bgp.graceful_restart"
) -> int | None:
    """``spinelb_bgp.graceful_restart`` (or ``spinelb_bgp_graceful_restart``, which wins):
    false or absent (off), true (the default restart time) or ``{restart_time: N}``."""
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_GRACEFUL_RESTART_TIME
    if not isinstance(value, Mapping):
        check.add(path, f"{_show(value)} is not true, false or a mapping of restart_time")
        return None
    unknown = sorted(set(value) - set(GRACEFUL_RESTART_KEYS), key=str)
    for key in unknown:
        check.add(f"{path}.{key}", "is not a graceful restart setting (restart_time)")
    low, high = GRACEFUL_RESTART_TIME_RANGE
    restart_time = check.integer(
        f"{path}.restart_time", value.get("restart_time", DEFAULT_GRACEFUL_RESTART_TIME), low, high
    )
    return None if unknown else restart_time


def _aoscx_bfd(
    check: _Checker, bfd: BfdSettings, spine: Host, networks: Mapping[str, Network]
) -> None:
    """What BFD on an AOS-CX spine needs: timers it accepts, and each session's interface."""
    for key, (low, high) in AOSCX_BFD_RANGES.items():
        timer = getattr(bfd, key)
        if not low <= timer <= high:
            check.add(
                f"spinelb_bgp.bfd.{key}",
                f"{timer} is outside {low}..{high} for platform aoscx ({spine.name})",
            )
    for net in networks.values():
        if net.peering and net.vlan is None:
            check.add(
                f"spinelb_networks.{net.name}.vlan",
                f"is required with spinelb_bgp.bfd on AOS-CX spines ({spine.name}): "
                "AOS-CX sets BFD timers on the interface (interface vlan N)",
            )


def _password(check: _Checker, value: Any) -> str | None:
    """The MD5 password, checked without ever quoting it."""
    if value is None or value == "":
        return None
    path = "spinelb_bgp_password"
    if not isinstance(value, str):
        check.add(path, f"is not a string (got a {type(value).__name__}; value not shown)")
    elif len(value.encode()) > MAX_PASSWORD_LENGTH:
        check.add(path, f"is longer than {MAX_PASSWORD_LENGTH} octets (value not shown)")
    elif not value.isprintable() or any(c.isspace() for c in value):
        check.add(path, "contains spaces or unprintable characters (value not shown)")
    else:
        return value
    return None


def _single_path(
    check: _Checker,
    data: Mapping[str, Any],
    pool_cidrs: Mapping[str, IPv4Network],
    workers: Sequence[str],
    layer2_pools: Sequence[str] = (),
) -> tuple[SinglePath, ...]:
    raw = check.mapping("spinelb_bgp", data.get("spinelb_bgp"), required=False).get("single_path")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.add("spinelb_bgp.single_path", f"{_show(raw)} is not a list")
        return ()
    result: list[SinglePath] = []
    seen: dict[IPv4Network, int] = {}
    for index, item in enumerate(raw):
        path = f"spinelb_bgp.single_path[{index}]"
        entry = check.mapping(path, item)
        prefix = check.network(f"{path}.prefix", entry.get("prefix"))
        names = entry.get("workers")
        ok = prefix is not None
        if not isinstance(names, list) or not names:
            check.add(f"{path}.workers", f"{_show(names)} is not a non-empty list of workers")
            ok = False
        else:
            for position, worker in enumerate(names):
                if worker not in workers:
                    check.add(
                        f"{path}.workers[{position}]",
                        f"{_show(worker)} is not a host in group {WORKERS}",
                    )
                    ok = False
            if len(set(names)) != len(names):
                check.add(f"{path}.workers", "names a worker twice")
                ok = False
        if prefix is not None:
            if not any(prefix.subnet_of(cidr) for cidr in pool_cidrs.values()):
                check.add(f"{path}.prefix", f"{prefix} is outside every pool in spinelb_pools")
                ok = False
            for name in layer2_pools:
                if prefix.overlaps(pool_cidrs[name]):
                    check.add(f"{path}.prefix", f"{prefix} is in spinelb_pools.{name}, a layer2 "
                              "pool: no BGP route to choose a path for")
                    ok = False
            if prefix in seen:
                check.add(
                    f"{path}.prefix",
                    f"{prefix} is listed already at spinelb_bgp.single_path[{seen[prefix]}]",
                )
                ok = False
            seen.setdefault(prefix, index)
        if ok and prefix is not None and isinstance(names, list):
            result.append(SinglePath(prefix, tuple(str(n) for n in names)))
    return tuple(result)


def _host(
    check: _Checker,
    name: str,
    role: str,
    hostvars: Mapping[str, Any],
    site_vars: Mapping[str, Any],
    networks: Mapping[str, Network],
) -> Host:
    path = f"{name}.spinelb_addresses"
    raw = check.mapping(path, hostvars.get("spinelb_addresses"))
    addresses: dict[str, IPv4Address] = {}
    loopback = None
    for key in sorted(raw):
        address = check.address(f"{path}.{key}", raw[key])
        if address is None:
            continue
        if key == "loopback":
            loopback = address
        elif key not in networks:
            check.add(f"{path}.{key}", f"{key!r} is not a network in spinelb_networks")
        elif address not in networks[key].cidr:
            check.add(
                f"{path}.{key}",
                f"{address} is outside spinelb_networks.{key}.cidr ({networks[key].cidr})",
            )
        else:
            addresses[key] = address
    platform = None
    collapse_vrfs = soft_reconfiguration = False
    if role == "spine":

        def setting(key: str) -> Any:
            return hostvars.get(key, site_vars.get(key))

        platform = setting("spinelb_platform")
        if platform not in PLATFORMS:
            check.add(
                f"{name}.spinelb_platform",
                f"{_show(platform)} is not one of {', '.join(PLATFORMS)}",
            )
            platform = None
        collapse_vrfs = check.boolean(
            f"{name}.spinelb_frr_collapse_vrfs", setting("spinelb_frr_collapse_vrfs"), False
        )
        soft_reconfiguration = check.boolean(
            f"{name}.spinelb_frr_soft_reconfiguration",
            setting("spinelb_frr_soft_reconfiguration"),
            False,
        )
        if collapse_vrfs and platform == "aoscx":
            check.add(
                f"{name}.spinelb_frr_collapse_vrfs", "true is for FRR spines only (platform aoscx)"
            )
        if loopback is None and "loopback" not in raw:
            check.add(f"{path}.loopback", "is required on a spine (its router-id)")
        for net in networks.values():
            if net.peering and net.name not in addresses and net.name not in raw:
                check.add(
                    f"{path}.{net.name}", f"is required: spines peer on spinelb_networks.{net.name}"
                )
    return Host(name, role, addresses, loopback, platform, collapse_vrfs, soft_reconfiguration)


def _worker_reaches_pools(
    check: _Checker,
    worker: Host,
    networks: Mapping[str, Network],
    pools: Mapping[str, Pool],
    raw: Mapping[str, Any],
) -> None:
    """A worker needs an address on every peering network and where its pools are delivered."""
    reasons: dict[str, str] = {}
    for pool in pools.values():
        for key in ("peering", "network") if not pool.layer2 else ("network",):
            net = getattr(pool, key)
            reasons.setdefault(
                net,
                f"{worker.name} delivers pool {pool.name} (spinelb_pools.{pool.name}.{key}: {net})",
            )
    for net in networks.values():
        if net.peering:
            reasons.setdefault(net.name, f"workers peer on spinelb_networks.{net.name}")
    for net_name, reason in sorted(reasons.items()):
        if net_name not in worker.addresses and net_name not in raw:
            check.add(f"{worker.name}.spinelb_addresses.{net_name}", f"is missing; {reason}")


def _raw_pools(data: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """``spinelb_pools`` as written, only its well-formed entries (already checked)."""
    raw = data.get("spinelb_pools")
    if not isinstance(raw, Mapping):
        return {}
    return {name: entry for name, entry in raw.items() if isinstance(entry, Mapping)}


def _with_extra_pools(check: _Checker, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with ``spinelb_extra_pools`` added to ``spinelb_pools``: an inventory layer (the
    lab's layer2 pool) adds pools without restating the site's, which Ansible would replace
    whole.  A name in both is a problem; either one malformed is left for :func:`_pools`."""
    extra = data.get(EXTRA_POOLS)
    if extra is None:
        return data
    extra = check.mapping(EXTRA_POOLS, extra)
    pools = data.get("spinelb_pools")
    if not isinstance(pools, Mapping):
        return data
    for name in sorted(set(extra) & set(pools)):
        check.add(f"{EXTRA_POOLS}.{name}", "is a pool of spinelb_pools already; rename one")
    return {**data, "spinelb_pools": {**extra, **pools}}


def _layer2_addresses_free(check: _Checker, pools: Mapping[str, Pool], hosts: list[Host]) -> None:
    """A host's own address inside a layer2 pool would be answered for by two machines."""
    for pool in pools.values():
        if not pool.layer2:
            continue
        for host in hosts:
            for key, address in sorted(host.addresses.items()):
                if address in pool.cidr:
                    check.add(f"{host.name}.spinelb_addresses.{key}",
                              f"{address} is in spinelb_pools.{pool.name} ({pool.cidr}), a layer2 "
                              "pool whose addresses the speakers answer ARP for")


def _group(
    check: _Checker, groups: Mapping[str, Sequence[str]], name: str, hosts: Mapping[str, Any]
) -> list[str]:
    members = groups.get(name) or []
    result = []
    for host in sorted(set(members)):
        if host not in hosts:
            check.add(f"groups.{name}", f"{host!r} has no host variables")
        else:
            result.append(host)
    return result


def load_site(
    inventory_vars: Mapping[str, Any],
    hosts: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
) -> Site:
    """Build and validate the site, or raise :class:`SiteError` listing every problem.

    ``inventory_vars`` holds the site's variables (``spinelb_site_name``,
    ``spinelb_switch_asn``, ``spinelb_networks``, ``spinelb_pools``,
    ``spinelb_bgp``, ``spinelb_bgp_password``, and the layers ``spinelb_extra_pools``,
    ``spinelb_bgp_bfd``, ``spinelb_bgp_graceful_restart``); ``hosts`` each host's variables
    (``spinelb_addresses``, and on spines ``spinelb_platform``...); ``groups``
    the members of ``spines``, ``workers`` and ``masters``.
    """
    check = _Checker()
    inventory_vars = _with_extra_pools(check, inventory_vars)
    name = inventory_vars.get("spinelb_site_name", "site")
    if check.name("spinelb_site_name", name) is None:
        name = "site"
    switch_asn = None
    if inventory_vars.get("spinelb_switch_asn") is None:
        check.add("spinelb_switch_asn", "is required (the spines' AS)")
    else:
        switch_asn = check.asn("spinelb_switch_asn", inventory_vars["spinelb_switch_asn"])
    networks = _networks(check, inventory_vars)
    pools, pool_cidrs = _pools(check, inventory_vars, networks)
    bgp = _bgp(check, inventory_vars)

    spine_names = _group(check, groups, SPINES, hosts)
    worker_names = _group(check, groups, WORKERS, hosts)
    master_names = _group(check, groups, MASTERS, hosts)
    if not spine_names:
        check.add(f"groups.{SPINES}", "has no hosts")
    for both in sorted(set(spine_names) & set(worker_names)):
        check.add(f"groups.{SPINES}", f"{both!r} is in group {WORKERS} too")

    def build(names: list[str], role: str) -> dict[str, Host]:
        return {n: _host(check, n, role, hosts[n], inventory_vars, networks) for n in names}

    spines = build(spine_names, "spine")
    workers = build(worker_names, "worker")
    masters = build(master_names, "master")
    for worker in workers.values():
        raw = hosts[worker.name].get("spinelb_addresses")
        _worker_reaches_pools(
            check, worker, networks, pools, raw if isinstance(raw, Mapping) else {}
        )
    owners: dict[IPv4Address, str] = {}
    for host in [*spines.values(), *workers.values(), *masters.values()]:
        for key, address in sorted(host.addresses.items()):
            where = f"{host.name}.spinelb_addresses.{key}"
            if address in owners:
                check.add(where, f"{address} is also {owners[address]}")
            owners.setdefault(address, where)
    for spine in spines.values():
        if spine.platform is None:
            continue  # reported already
        low, high = MAXIMUM_PATHS[spine.platform]
        if not low <= bgp.maximum_paths <= high:
            check.add(
                "spinelb_bgp.maximum_paths",
                f"{bgp.maximum_paths} is outside {low}..{high} for platform {spine.platform} ({spine.name})",
            )
    aoscx = [spine for spine in spines.values() if spine.platform == "aoscx"]
    if bgp.bfd is not None and aoscx:
        _aoscx_bfd(check, bgp.bfd, aoscx[0], networks)  # the same problems for every such spine
    layer2_pools = [name for name, entry in _raw_pools(inventory_vars).items()
                    if entry.get("mode") == "layer2" and name in pool_cidrs]
    single_path = _single_path(check, inventory_vars, pool_cidrs, worker_names, layer2_pools)
    _layer2_addresses_free(check, pools, [*spines.values(), *workers.values(), *masters.values()])

    if check.problems or switch_asn is None:
        raise SiteError(check.problems)
    return Site(
        name=str(name),
        switch_asn=switch_asn,
        spines=spines,
        masters=masters,
        workers=workers,
        networks=networks,
        pools=pools,
        bgp=bgp,
        single_path=single_path,
    )


def site_from_inventory(listing: Mapping[str, Any]) -> Site:
    """The site of an ``ansible-inventory --list`` document (hostvars merged with group vars).

    The site's variables are read from the first spine's variables: ``group_vars/all``
    reaches every host, so any host holds them.
    """
    hostvars = listing.get("_meta", {}).get("hostvars", {})
    groups = {
        group: list(listing.get(group, {}).get("hosts", [])) for group in (SPINES, WORKERS, MASTERS)
    }
    first = next(iter(sorted(groups[SPINES])), None)
    site_vars = hostvars.get(first, {}) if first else {}
    return load_site(site_vars, hostvars, groups)
