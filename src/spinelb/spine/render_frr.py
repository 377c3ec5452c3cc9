"""A spine's BGP intent in FRR 8.4 syntax (an integrated ``frr.conf`` that ``vtysh -C`` accepts).

One ``router bgp`` per VRF (``router bgp ASN vrf NAME`` for the non-default
ones), or a single instance when the spine collapses the VRFs (the lab's
kernel has no VRF devices); the per-session route-maps are the same either
way, so the pools stay apart.  FRR specifics: ``no bgp ebgp-requires-policy``
(the route-maps are the policy), ``bgp bestpath as-path multipath-relax`` (ECMP
across workers of different ASes), maximum-paths and distance inside the
address family.  BFD's timers are one ``bfd`` profile, ``spinelb`` (bfdd must
run); each neighbor names it with ``neighbor X bfd`` and ``neighbor X bfd
profile spinelb``, both lines as FRR shows them, so a re-read compares equal.
Graceful restart: FRR is a helper by default, so only ``bgp graceful-restart
stalepath-time N`` (the site's restart time) is rendered, and not at FRR's
default (360), which ``show running-config`` leaves out.
"""

from __future__ import annotations

from spinelb.bfd.session import BfdSettings

from .model import DEFAULT_VRF, BgpInstance, Neighbor, PrefixList, RouteMap, SpineIntent

MASK = "<redacted>"
BFD_PROFILE = "spinelb"  # the one bfd profile spinelb owns (plugins/module_utils/frr_config.py)
STALEPATH_TIME_DEFAULT = 360  # FRR 8.4's; not shown in the running configuration


def _prefix_list(plist: PrefixList) -> str:
    bounds = "" if plist.ge is None else f" ge {plist.ge} le {plist.le}"
    return f"ip prefix-list {plist.name} seq 10 permit {plist.prefix}{bounds}"


def _route_map(route_map: RouteMap) -> list[str]:
    if not route_map.entries:
        return [f"route-map {route_map.name} deny 10", "exit", "!"]
    lines: list[str] = []
    for entry in route_map.entries:
        lines.append(f"route-map {route_map.name} permit {entry.seq}")
        lines.append(f" match ip address prefix-list {entry.prefix_list}")
        if entry.local_preference is not None:
            lines.append(f" set local-preference {entry.local_preference}")
        if entry.next_hop is not None:
            lines.append(f" set ip next-hop {entry.next_hop}")
        lines += ["exit", "!"]
    return lines


def _neighbor(intent: SpineIntent, neighbor: Neighbor, password: str | None) -> list[str]:
    lines = [
        f" neighbor {neighbor.address} remote-as {neighbor.remote_as}",
        f" neighbor {neighbor.address} description {neighbor.description}",
    ]
    if neighbor.passive:
        lines.append(f" neighbor {neighbor.address} passive")
    if neighbor.update_source is not None:
        lines.append(f" neighbor {neighbor.address} update-source {neighbor.update_source}")
    if password is not None:
        lines.append(f" neighbor {neighbor.address} password {password}")
    if intent.bgp.bfd:
        lines.append(f" neighbor {neighbor.address} bfd")
        lines.append(f" neighbor {neighbor.address} bfd profile {BFD_PROFILE}")
    return lines


def _bfd_profile(bfd: BfdSettings) -> list[str]:
    return [
        "bfd",
        f" profile {BFD_PROFILE}",
        f"  receive-interval {bfd.min_rx_ms}",
        f"  transmit-interval {bfd.min_tx_ms}",
        f"  detect-multiplier {bfd.multiplier}",
        " exit",
        "exit",
        "!",
    ]


def _instance(intent: SpineIntent, instance: BgpInstance, password: str | None) -> list[str]:
    bgp = intent.bgp
    suffix = "" if instance.vrf == DEFAULT_VRF else f" vrf {instance.vrf}"
    lines = [
        f"router bgp {intent.switch_asn}{suffix}",
        f" bgp router-id {intent.router_id}",
        " no bgp ebgp-requires-policy",
        " no bgp default ipv4-unicast",
        " bgp bestpath as-path multipath-relax",
        f" timers bgp {bgp.keepalive} {bgp.hold}",
    ]
    stalepath = bgp.graceful_restart_time
    if stalepath is not None and stalepath != STALEPATH_TIME_DEFAULT:
        lines.append(f" bgp graceful-restart stalepath-time {stalepath}")
    for neighbor in instance.neighbors:
        lines += _neighbor(intent, neighbor, password)
    lines += [
        " !",
        " address-family ipv4 unicast",
        f"  maximum-paths {bgp.maximum_paths}",
        f"  maximum-paths ibgp {bgp.maximum_paths}",
        f"  distance bgp {bgp.distance_ebgp} {bgp.distance_ibgp} {bgp.distance_ebgp}",
    ]
    for neighbor in instance.neighbors:
        address = neighbor.address
        lines.append(f"  neighbor {address} activate")
        if neighbor.route_map is not None:
            lines.append(f"  neighbor {address} route-map {neighbor.route_map} in")
            if intent.spine.soft_reconfiguration:
                lines.append(f"  neighbor {address} soft-reconfiguration inbound")
        if neighbor.maximum_prefix is not None:
            lines.append(f"  neighbor {address} maximum-prefix {neighbor.maximum_prefix}")
    lines += [" exit-address-family", "exit", "!"]
    return lines


def render_frr(intent: SpineIntent, *, mask_secrets: bool = False) -> str:
    """The FRR configuration of ``intent``; ``mask_secrets`` replaces the password for diffs and logs."""
    password = intent.bgp.password
    if password is not None and mask_secrets:
        password = MASK
    lines = [
        "frr defaults datacenter",
        f"hostname {intent.spine.name}",
        "!",
        *(_prefix_list(plist) for plist in intent.prefix_lists),
        "!",
    ]
    for route_map in intent.route_maps:
        lines += _route_map(route_map)
    if intent.bgp.bfd is not None:
        lines += _bfd_profile(intent.bgp.bfd)
    for instance in intent.instances:
        lines += _instance(intent, instance, password)
    lines += ["end", ""]
    return "\n".join(lines)
