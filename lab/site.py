"""The reference site read from site.yaml, services.yaml and endpointslices.yaml.

A plain, typed model of the facts the lab needs: hosts and their addresses,
networks, pools, BGP settings, and the service announcements each worker
makes.  The address a service without ``loadBalancerIP`` gets here is a
deterministic stand-in for the controller's allocation: the first address of
its pool that no other service uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SITE_DIR = REPO.parent / "shared" / "reference-site"

POOL_ANNOTATIONS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")


def site_dir() -> Path:
    """Where the site's files are: ``$SPINELB_SITE`` or ``../shared/reference-site``."""
    return Path(os.environ.get("SPINELB_SITE", str(DEFAULT_SITE_DIR)))


@dataclass(frozen=True)
class Network:
    name: str
    cidr: IPv4Network
    vrf: str
    speaker_asn: int | None
    peering: bool


@dataclass(frozen=True)
class Pool:
    name: str
    cidr: IPv4Network
    peering: str  # network whose sessions carry the pool
    network: str  # network where the traffic is delivered
    auto_assign: bool = True


@dataclass(frozen=True)
class Host:
    name: str
    role: str  # spine, master, worker
    addresses: dict[str, IPv4Address]  # network name -> address
    loopback: IPv4Address | None = None

    def cidr(self, network: Network) -> str:
        """This host's address on ``network`` with the network's prefix length."""
        return f"{self.addresses[network.name]}/{network.cidr.prefixlen}"


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    pool: str
    address: IPv4Address | None
    local: bool  # externalTrafficPolicy: Local
    ready_nodes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SinglePath:
    prefix: IPv4Network
    workers: tuple[str, ...]


@dataclass(frozen=True)
class Announcement:
    """A /32 a worker announces, on the sessions of one peering network."""

    prefix: IPv4Network
    pool: str
    peering: str
    service: str


@dataclass
class Site:
    name: str
    switch_asn: int
    spines: dict[str, Host]
    masters: dict[str, Host]
    workers: dict[str, Host]
    networks: dict[str, Network]
    pools: dict[str, Pool]
    keepalive: int
    hold: int
    maximum_paths: int
    distance_ebgp: int
    distance_ibgp: int
    single_path: list[SinglePath]
    services: list[Service] = field(default_factory=list)
    # workers that must not announce: Node not Ready, or labelled for exclusion
    ineligible: frozenset[str] = frozenset()

    @property
    def hosts(self) -> dict[str, Host]:
        return {**self.spines, **self.masters, **self.workers}

    @property
    def peering_networks(self) -> list[Network]:
        return [net for net in self.networks.values() if net.peering]

    def pool_of(self, address: IPv4Address) -> Pool | None:
        """The pool containing ``address`` (the most specific one)."""
        found = [pool for pool in self.pools.values() if address in pool.cidr]
        return max(found, key=lambda pool: pool.cidr.prefixlen) if found else None

    def service_addresses(self) -> dict[IPv4Address, Service]:
        """Every service address (shared addresses once), resolved, with a service using it."""
        result: dict[IPv4Address, Service] = {}
        for service in self.services:
            assert service.address is not None
            result.setdefault(service.address, service)
        return result

    def announcers(self, service: Service) -> list[str]:
        """Workers that announce ``service``'s address (Local policy: ready endpoints only)."""
        eligible = [name for name in self.workers if name not in self.ineligible]
        if service.local:
            return [name for name in eligible if name in service.ready_nodes]
        return eligible

    def expected_next_hops(self, address: IPv4Address) -> set[IPv4Address]:
        """The next hops a converged spine has for a service address."""
        service = self.service_addresses()[address]
        pool = self.pools[service.pool]
        announcers = self.announcers(service)
        prefix = IPv4Network(f"{address}/32")
        for single in self.single_path:
            if single.prefix == prefix:
                first = [w for w in single.workers if w in announcers][:1]
                return {self.workers[w].addresses[pool.network] for w in first}
        return {self.workers[w].addresses[pool.network] for w in announcers}

    def announcements(self, worker: str) -> list[Announcement]:
        """The /32s ``worker`` announces, each on its pool's peering network."""
        seen: set[IPv4Address] = set()
        result: list[Announcement] = []
        for service in self.services:
            assert service.address is not None
            if service.address in seen or worker not in self.announcers(service):
                continue
            seen.add(service.address)
            pool = self.pools[service.pool]
            result.append(
                Announcement(
                    IPv4Network(f"{service.address}/32"),
                    pool.name,
                    pool.peering,
                    f"{service.namespace}/{service.name}",
                )
            )
        return result


def _host(name: str, role: str, data: dict[str, Any]) -> Host:
    addresses = {
        key: IPv4Address(value)
        for key, value in data.items()
        if key not in ("loopback", "api_port")
    }
    loopback = IPv4Address(data["loopback"]) if "loopback" in data else None
    return Host(name, role, addresses, loopback)


def _services(docs: list[dict[str, Any]], slices: list[dict[str, Any]]) -> list[Service]:
    ready: dict[tuple[str, str], set[str]] = {}
    for doc in slices:
        meta = doc.get("metadata", {})
        owner = meta.get("labels", {}).get("kubernetes.io/service-name")
        if not owner:
            continue
        nodes = ready.setdefault((meta.get("namespace", "default"), owner), set())
        for endpoint in doc.get("endpoints") or []:
            if endpoint.get("conditions", {}).get("ready", True) and endpoint.get("nodeName"):
                nodes.add(endpoint["nodeName"])
    services: list[Service] = []
    for doc in docs:
        spec = doc.get("spec", {})
        if doc.get("kind") != "Service" or spec.get("type") != "LoadBalancer":
            continue
        meta = doc["metadata"]
        annotations = meta.get("annotations") or {}
        pool = next((annotations[k] for k in POOL_ANNOTATIONS if k in annotations), "")
        namespace = meta.get("namespace", "default")
        lb_ip = spec.get("loadBalancerIP")
        services.append(
            Service(
                namespace,
                meta["name"],
                pool,
                IPv4Address(lb_ip) if lb_ip else None,
                spec.get("externalTrafficPolicy") == "Local",
                frozenset(ready.get((namespace, meta["name"]), set())),
            )
        )
    return services


def _assign(services: list[Service], pools: dict[str, Pool]) -> list[Service]:
    """Give services without an address the first unused address of their pool."""
    used = {service.address for service in services if service.address is not None}
    result: list[Service] = []
    for service in services:
        if service.address is None:
            free = next(addr for addr in pools[service.pool].cidr if addr not in used)
            used.add(free)
            service = Service(service.namespace, service.name, service.pool, free,
                              service.local, service.ready_nodes)
        result.append(service)
    return result


def load_site(directory: Path | None = None) -> Site:
    """Read the site's three files from ``directory`` (default: :func:`site_dir`)."""
    directory = directory or site_dir()
    data = yaml.safe_load((directory / "site.yaml").read_text())
    networks = {
        name: Network(name, IPv4Network(net["cidr"]), str(net.get("vrf", "default")),
                      net.get("speaker_asn"), bool(net.get("peering", False)))
        for name, net in data["networks"].items()
    }
    pools = {
        name: Pool(name, IPv4Network(pool["cidr"]), pool["peering"], pool["network"],
                   bool(pool.get("auto_assign", True)))
        for name, pool in data["pools"].items()
    }
    bgp = data["bgp"]
    docs: list[dict[str, Any]] = []
    slices: list[dict[str, Any]] = []
    if (directory / "services.yaml").exists():
        docs = [d for d in yaml.safe_load_all((directory / "services.yaml").read_text()) if d]
    if (directory / "endpointslices.yaml").exists():
        slices = [d for d in yaml.safe_load_all((directory / "endpointslices.yaml").read_text()) if d]
    services = _assign(_services(docs, slices), pools)
    for service in services:
        assert service.address is not None
        if service.pool not in pools or service.address not in pools[service.pool].cidr:
            raise ValueError(f"service {service.namespace}/{service.name}: "
                             f"{service.address} is not in pool {service.pool!r}")
    return Site(
        name=str(data.get("name", directory.name)),
        switch_asn=int(data["switch_asn"]),
        spines={n: _host(n, "spine", h) for n, h in data.get("spines", {}).items()},
        masters={n: _host(n, "master", h) for n, h in (data.get("masters") or {}).items()},
        workers={n: _host(n, "worker", h) for n, h in data.get("workers", {}).items()},
        networks=networks,
        pools=pools,
        keepalive=int(bgp["timers"]["keepalive"]),
        hold=int(bgp["timers"]["hold"]),
        maximum_paths=int(bgp.get("maximum_paths", 32)),
        distance_ebgp=int(bgp.get("distance", {}).get("ebgp", 20)),
        distance_ibgp=int(bgp.get("distance", {}).get("ibgp", 200)),
        single_path=[
            SinglePath(IPv4Network(entry["prefix"]), tuple(entry["workers"]))
            for entry in bgp.get("single_path", [])
        ],
        services=services,
    )

