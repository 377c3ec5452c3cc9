"""A spine's BGP intent in Aruba AOS-CX 10.x CLI, in the structure of CANU's 1.6 templates.

Prefix-lists (``ip prefix-list NAME seq N permit P ge L le L``), then the
per-worker route-maps (``route-map NAME permit seq N`` blocks, five-space
indented bodies), then ``router bgp`` with the default VRF's neighbors at the
top level and the other VRFs in ``vrf NAME`` sections that repeat the router
settings, as CANU writes them.  Neighbors are ``passive`` toward workers, BFD is
``fall-over bfd`` and the MD5 password is ``password plaintext``.

AOS-CX has no BFD timers per neighbor or per profile, only per interface: with
BFD on, the configuration starts with ``bfd`` (BFD enabled on the switch) and an
``interface vlan N`` block per peering network's SVI carrying
``bfd min-transmit-interval``, ``bfd min-receive-interval`` and ``bfd
detect-multiplier`` (AOS-CX 10.x High Availability Guide, BFD chapter).

Graceful restart (the switch is a helper): ``bgp graceful-restart
stalepath-time N`` with the site's restart time, in every VRF section
(AOS-CX 10.x command reference, config-router; changing it restarts the VRF's
BGP sessions).
"""

from __future__ import annotations

from .model import DEFAULT_VRF, BgpInstance, PrefixList, RouteMap, SpineIntent

MASK = "<redacted>"
INDENT = "    "
ROUTE_MAP_INDENT = "     "  # AOS-CX shows route-map bodies with five spaces


def _prefix_list(plist: PrefixList) -> str:
    # AOS-CX takes ge/le equal to a /32's own length (CANU writes "P/32 ge 32 le 32").
    length = plist.prefix.max_prefixlen
    return f"ip prefix-list {plist.name} seq 10 permit {plist.prefix} ge {length} le {length}"


def _route_map(route_map: RouteMap) -> list[str]:
    if not route_map.entries:
        return [f"route-map {route_map.name} deny seq 10"]
    lines: list[str] = []
    for entry in route_map.entries:
        lines.append(f"route-map {route_map.name} permit seq {entry.seq}")
        lines.append(f"{ROUTE_MAP_INDENT}match ip address prefix-list {entry.prefix_list}")
        if entry.local_preference is not None:
            lines.append(f"{ROUTE_MAP_INDENT}set local-preference {entry.local_preference}")
        if entry.next_hop is not None:
            lines.append(f"{ROUTE_MAP_INDENT}set ip next-hop {entry.next_hop}")
    return lines


def _bfd(intent: SpineIntent) -> list[str]:
    """``bfd`` and the timers on each session's interface (none when BFD is off)."""
    bfd = intent.bgp.bfd
    if bfd is None:
        return []
    lines = ["bfd"]
    for vlan in intent.session_vlans:
        lines += [
            f"interface vlan {vlan}",
            f"{INDENT}bfd min-transmit-interval {bfd.min_tx_ms}",
            f"{INDENT}bfd min-receive-interval {bfd.min_rx_ms}",
            f"{INDENT}bfd detect-multiplier {bfd.multiplier}",
        ]
    return lines


def _instance(
    intent: SpineIntent, instance: BgpInstance, password: str | None, indent: str
) -> list[str]:
    bgp = intent.bgp
    lines = [
        f"{indent}bgp router-id {intent.router_id}",
        f"{indent}maximum-paths {bgp.maximum_paths}",
        f"{indent}timers bgp {bgp.keepalive} {bgp.hold}",
        f"{indent}distance bgp {bgp.distance_ebgp} {bgp.distance_ibgp}",
    ]
    if bgp.graceful_restart_time is not None:
        lines.append(f"{indent}bgp graceful-restart stalepath-time {bgp.graceful_restart_time}")
    for neighbor in instance.neighbors:
        address = neighbor.address
        lines.append(f"{indent}neighbor {address} remote-as {neighbor.remote_as}")
        lines.append(f"{indent}neighbor {address} description {neighbor.description}")
        if neighbor.passive:
            lines.append(f"{indent}neighbor {address} passive")
        if password is not None:
            lines.append(f"{indent}neighbor {address} password plaintext {password}")
        if bgp.bfd:
            lines.append(f"{indent}neighbor {address} fall-over bfd")
    family = indent + INDENT
    lines.append(f"{indent}address-family ipv4 unicast")
    for neighbor in instance.neighbors:
        lines.append(f"{family}neighbor {neighbor.address} activate")
        if neighbor.route_map is not None:
            lines.append(f"{family}neighbor {neighbor.address} route-map {neighbor.route_map} in")
        if neighbor.maximum_prefix is not None:
            lines.append(
                f"{family}neighbor {neighbor.address} maximum-prefix {neighbor.maximum_prefix}"
            )
    lines.append(f"{indent}exit-address-family")
    return lines


def render_aoscx(intent: SpineIntent, *, mask_secrets: bool = False) -> str:
    """The AOS-CX configuration lines of ``intent``; ``mask_secrets`` replaces the password."""
    password = intent.bgp.password
    if password is not None and mask_secrets:
        password = MASK
    lines = _bfd(intent)
    lines += [_prefix_list(plist) for plist in intent.prefix_lists]
    for route_map in intent.route_maps:
        lines += _route_map(route_map)
    lines.append(f"router bgp {intent.switch_asn}")
    for instance in intent.instances:
        if instance.vrf == DEFAULT_VRF:
            lines += _instance(intent, instance, password, INDENT)
        else:
            lines.append(f"{INDENT}vrf {instance.vrf}")
            lines += _instance(intent, instance, password, INDENT * 2)
    lines.append("")
    return "\n".join(lines)
