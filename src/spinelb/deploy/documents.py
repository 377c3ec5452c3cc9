"""The speaker's and the controller's config documents, from the site the spines are built from.

One inventory feeds both sides of every BGP session: the spine role renders
the spines' neighbors from :class:`spinelb.spine.Site`, and this module
renders each worker's speaker config (and the controller's) from the same
Site, so a worker's peers are exactly the neighbors its spines expect.

The documents are plain data in the config file's format
(docs/speaker-config.md, docs/kubernetes.md), ready for ``yaml.safe_dump``;
the BGP password never appears in them: a speaker document names the file
that holds it (``password_file``), which the deployment writes separately.
BFD is the site's too: with ``spinelb_bgp.bfd`` on, every peer gets the timers
the spines are configured with, so both ends of a session agree.  So is graceful
restart: with ``spinelb_bgp.graceful_restart`` on, every speaker advertises the
restart time the spines keep stale paths for (``SpeakerOptions.graceful_restart_time``
still overrides it for one speaker).  A layer2 pool (``spinelb_pools.<name>.mode:
layer2``) goes to the speakers with its interfaces and no peers, and each speaker
gets a ``layer2`` section: its address on the pool's network and every other
worker's there, the mesh its BFD sessions run over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spinelb.config.model import DEFAULT_BGP_PORT, DEFAULT_K8S_NAMESPACE, DEFAULT_LEASE_NAME
from spinelb.config.values import parse_host_port
from spinelb.spine.model import Host, Network, Site

DEFAULT_SPEAKER_API = "127.0.0.1:7473"
DEFAULT_CONTROLLER_API = "127.0.0.1:7474"
FAMILIES = ("ipv4-unicast",)


@dataclass(frozen=True)
class SpeakerOptions:
    """How one worker's speaker runs; the site decides everything about its sessions."""

    kubeconfig: str | None = None  # path on the worker; None: the in-cluster service account
    api_listen: str = DEFAULT_SPEAKER_API
    listen: str | None = None  # "0.0.0.0:179": also accept the spines' connections
    password_file: str | None = None  # where the MD5 key is on the worker (never inline)
    log_level: str = "info"
    graceful_restart_time: int | None = None
    announce: tuple[dict[str, Any], ...] = ()  # extra static announcements, as in the file
    load_balancer_class: str | None = None
    connect_retry: float | None = None


@dataclass(frozen=True)
class ControllerOptions:
    """How the controller runs: its API access, local API, Lease and log level."""

    kubeconfig: str | None = None
    api_listen: str = DEFAULT_CONTROLLER_API
    namespace: str = DEFAULT_K8S_NAMESPACE
    lease_name: str = DEFAULT_LEASE_NAME
    load_balancer_class: str | None = None
    log_level: str = "info"


class DocumentError(ValueError):
    """The site and options cannot make a document (a host that is no worker, a missing key file)."""


def peering_order(site: Site) -> list[Network]:
    """The peering networks by speaker AS, then name: the first gives the router id.

    CSM numbers its speaker ASes NMN first (65531) and CMN next (65532), so a
    worker's identity is its NMN address, as the site's own documents have it.
    """
    return sorted(site.peering_networks, key=lambda net: (net.speaker_asn or 0, net.name))


def peer_name(spine: Host, network: Network) -> str:
    """The speaker's name for its session with ``spine`` on ``network`` (``sw-spine-001-nmn``)."""
    return f"{spine.name}-{network.name}"


def speaker_document(site: Site, worker: str, options: SpeakerOptions) -> dict[str, Any]:
    """The speaker config of ``worker``: one peer per spine per peering network, and the pools.

    Each pool's addresses are carried by the sessions on its peering network.
    Raises :class:`DocumentError` when ``worker`` is not one of the site's
    workers, or the site has a BGP password and ``options.password_file`` is
    not set.
    """
    host = site.workers.get(worker)
    if host is None:
        raise DocumentError(
            f"{worker!r} is not a worker of site {site.name} "
            f"(workers: {', '.join(site.workers) or 'none'})"
        )
    networks = peering_order(site)
    if not networks:
        raise DocumentError(f"site {site.name} has no peering network (peering: true)")
    if site.bgp.password is not None and not options.password_file:
        raise DocumentError(
            "the site has a BGP password (spinelb_bgp_password): set password_file, "
            "where the key is on the worker; the document never holds the key itself"
        )
    peers: list[dict[str, Any]] = []
    names: dict[str, list[str]] = {}
    for network in networks:
        for spine in site.spines.values():
            peer = _peer(site, host, spine, network, options)
            names.setdefault(network.name, []).append(peer["name"])
            peers.append(peer)
    first = networks[0]
    document: dict[str, Any] = {
        "node_name": host.name,
        "router_id": str(host.addresses[first.name]),
        "local_asn": first.speaker_asn,
        "api": {"listen": options.api_listen},
        "log_level": options.log_level,
    }
    if options.listen is not None:
        document["listen"] = _listen(options.listen)
    restart_time = options.graceful_restart_time
    if restart_time is None:
        restart_time = site.bgp.graceful_restart_time
    if restart_time is not None:
        document["graceful_restart"] = {"restart_time": restart_time}
    document["peers"] = peers
    if options.announce:
        document["announce"] = [dict(entry) for entry in options.announce]
    document["kubernetes"] = _kubernetes(options.kubeconfig, options.load_balancer_class)
    document["pools"] = _pools(site, names)
    layer2 = _layer2(site, host)
    if layer2 is not None:
        document["layer2"] = layer2
    return document


def controller_document(site: Site, options: ControllerOptions) -> dict[str, Any]:
    """The controller's config: the API, its Lease, its local API and the site's pools."""
    kubernetes = _kubernetes(options.kubeconfig, options.load_balancer_class)
    kubernetes["namespace"] = options.namespace
    kubernetes["lease_name"] = options.lease_name
    return {
        "kubernetes": kubernetes,
        "controller": {"listen": options.api_listen},
        "log_level": options.log_level,
        "pools": _pools(site, None),
    }


def _peer(
    site: Site, worker: Host, spine: Host, network: Network, options: SpeakerOptions
) -> dict[str, Any]:
    peer: dict[str, Any] = {
        "name": peer_name(spine, network),
        "address": str(spine.addresses[network.name]),
        "asn": site.switch_asn,
        "local_asn": network.speaker_asn,
        "source_address": str(worker.addresses[network.name]),
        "hold_time": site.bgp.hold,
        "keepalive": site.bgp.keepalive,
        "passive": False,
        "families": list(FAMILIES),
    }
    if site.bgp.password is not None:
        peer["password_file"] = options.password_file
    if site.bgp.bfd is not None:
        peer["bfd"] = {
            "min_rx_ms": site.bgp.bfd.min_rx_ms,
            "min_tx_ms": site.bgp.bfd.min_tx_ms,
            "multiplier": site.bgp.bfd.multiplier,
        }
    if options.connect_retry is not None:
        peer["connect_retry"] = options.connect_retry
    return peer


def _listen(text: str) -> dict[str, Any]:
    """``"ADDRESS:PORT"`` as the file's ``listen`` section."""
    try:
        address, port = parse_host_port(text, DEFAULT_BGP_PORT)
    except ValueError as exc:
        raise DocumentError(f"listen {text!r}: {exc}") from None
    return {"address": str(address), "port": port}


def _kubernetes(kubeconfig: str | None, load_balancer_class: str | None) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if kubeconfig is not None:
        section["kubeconfig"] = kubeconfig
    if load_balancer_class is not None:
        section["load_balancer_class"] = load_balancer_class
    return section


def _pools(site: Site, peer_names: dict[str, list[str]] | None) -> list[dict[str, Any]]:
    """The site's pools; with ``peer_names`` (a speaker's), each BGP pool on its peering
    network's sessions and each layer2 pool with the interfaces it is answered on."""
    pools: list[dict[str, Any]] = []
    for pool in site.pools.values():
        entry: dict[str, Any] = {"name": pool.name, "addresses": [str(pool.cidr)]}
        if not pool.auto_assign:
            entry["auto_assign"] = False
        if pool.layer2:
            entry["mode"] = "layer2"
            if peer_names is not None:
                entry["interfaces"] = list(pool.interfaces)
        elif peer_names is not None and peer_names.get(pool.peering):
            entry["peers"] = list(peer_names[pool.peering])
        pools.append(entry)
    return pools


def _layer2(site: Site, worker: Host) -> dict[str, Any] | None:
    """The speakers' mesh on the layer2 pools' network: this worker's address there and
    every other worker's (None when no pool is layer2; the site puts them all on one network)."""
    segment = next((pool.network for pool in site.pools.values() if pool.layer2), None)
    if segment is None:
        return None
    return {
        "source_address": str(worker.addresses[segment]),
        "peers": [
            {"node": other.name, "address": str(other.addresses[segment])}
            for other in site.workers.values()
            if other.name != worker.name
        ],
    }
