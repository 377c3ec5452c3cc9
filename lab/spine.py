"""Render a spine's FRR config from the site, the CSM way (a stand-in for the spine role).

Per spine: ``router bgp <switch_asn>`` with the loopback as router-id, iBGP to
the other spines over the first peering network, one passive neighbor per
worker per peering network, prefix-lists per pool (host routes only), and a
per-worker, per-network inbound route-map that

1. pins the single-path prefixes with local-preference in the listed order,
2. permits the pools carried by that session, rewriting the next hop to the
   worker's address on the pool's delivery network when it differs,
3. refuses everything else (a route-map's implicit deny).

The kernel running the lab has no VRF devices, so the VRFs collapse into one
table; the per-session filtering is what keeps the pools apart.
"""

from __future__ import annotations

from lab.site import Host, Network, Pool, Site

LOCAL_PREF_STEP = 100
LOCAL_PREF_BASE = 1000


def prefix_list_name(pool: Pool) -> str:
    return f"pl-{pool.name}"


def single_path_list_name(index: int) -> str:
    return f"single-path-{index + 1}"


def route_map_name(worker: Host, network: Network) -> str:
    return f"{worker.name}-{network.name}"


def single_path_local_pref(position: int, count: int) -> int:
    """Local preference of the worker at ``position`` in a list of ``count`` (first highest)."""
    return LOCAL_PREF_BASE + LOCAL_PREF_STEP * (count - 1 - position)


def _route_map(site: Site, worker: Host, network: Network) -> list[str]:
    name = route_map_name(worker, network)
    carried = [pool for pool in site.pools.values() if pool.peering == network.name]
    lines: list[str] = []
    seq = 10

    def next_hop(pool: Pool) -> list[str]:
        if pool.network == network.name:
            return []
        return [f" set ip next-hop {worker.addresses[pool.network]}"]

    for index, single in enumerate(site.single_path):
        pool = site.pool_of(single.prefix.network_address)
        if pool is None or pool not in carried or worker.name not in single.workers:
            continue
        pref = single_path_local_pref(single.workers.index(worker.name), len(single.workers))
        lines += [
            f"route-map {name} permit {seq}",
            f" match ip address prefix-list {single_path_list_name(index)}",
            f" set local-preference {pref}",
            *next_hop(pool),
            "exit",
        ]
        seq += 10
    for pool in carried:
        lines += [
            f"route-map {name} permit {seq}",
            f" match ip address prefix-list {prefix_list_name(pool)}",
            *next_hop(pool),
            "exit",
        ]
        seq += 10
    if not lines:
        lines = [f"route-map {name} deny 10", "exit"]
    return lines


def render_spine(site: Site, spine: Host, *, soft_reconfiguration: bool = True) -> str:
    """The integrated frr.conf of ``spine``.

    ``soft_reconfiguration`` keeps what each worker sent before the route-map,
    so the lab can show that a refused prefix really arrived and was refused.
    """
    assert spine.loopback is not None, f"{spine.name} has no loopback"
    peering = site.peering_networks
    ibgp_net = peering[0]
    lines = [
        "frr defaults datacenter",
        f"hostname {spine.name}",
        "!",
    ]
    for pool in site.pools.values():
        lines.append(
            f"ip prefix-list {prefix_list_name(pool)} seq 10 permit {pool.cidr} ge 32 le 32"
        )
    for index, single in enumerate(site.single_path):
        lines.append(f"ip prefix-list {single_path_list_name(index)} seq 10 permit {single.prefix}")
    lines.append("!")
    for worker in site.workers.values():
        for network in peering:
            lines += _route_map(site, worker, network)
            lines.append("!")
    lines += [
        f"router bgp {site.switch_asn}",
        f" bgp router-id {spine.loopback}",
        " no bgp ebgp-requires-policy",
        " no bgp default ipv4-unicast",
        " no bgp default show-hostname",
        " bgp bestpath as-path multipath-relax",
        f" timers bgp {site.keepalive} {site.hold}",
    ]
    neighbors: list[tuple[str, str | None]] = []  # (address, inbound route-map)
    for other in site.spines.values():
        if other.name == spine.name:
            continue
        address = str(other.addresses[ibgp_net.name])
        lines += [
            f" neighbor {address} remote-as {site.switch_asn}",
            f" neighbor {address} description {other.name}",
            f" neighbor {address} update-source {spine.addresses[ibgp_net.name]}",
        ]
        neighbors.append((address, None))
    for worker in site.workers.values():
        for network in peering:
            address = str(worker.addresses[network.name])
            lines += [
                f" neighbor {address} remote-as {network.speaker_asn}",
                f" neighbor {address} description {worker.name}-{network.name}",
                f" neighbor {address} passive",
            ]
            neighbors.append((address, route_map_name(worker, network)))
    lines += [
        " address-family ipv4 unicast",
        f"  maximum-paths {site.maximum_paths}",
        f"  maximum-paths ibgp {site.maximum_paths}",
        f"  distance bgp {site.distance_ebgp} {site.distance_ibgp} {site.distance_ebgp}",
    ]
    for address, route_map in neighbors:
        lines.append(f"  neighbor {address} activate")
        if route_map is not None:
            lines.append(f"  neighbor {address} route-map {route_map} in")
            if soft_reconfiguration:
                lines.append(f"  neighbor {address} soft-reconfiguration inbound")
    lines += [" exit-address-family", "exit", "!", "end", ""]
    return "\n".join(lines)
