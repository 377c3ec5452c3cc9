"""The facts spinelb reads off Kubernetes objects, from their JSON as the API server sends it.

Pure functions over plain dicts: no client, no I/O.  A Service's MetalLB
annotations are honoured as CSM writes them (``metallb.universe.tf/...``) and
as MetalLB 0.13+ writes them (``metallb.io/...``), so existing manifests work
unchanged.  A value that cannot be used is not guessed at: it lands in
:attr:`ServiceInfo.problems`, naming the field and the value, and the
controller reports it on the Service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from spinelb.bgp.wire import Address

POOL_ANNOTATIONS = ("metallb.universe.tf/address-pool", "metallb.io/address-pool")
IPS_ANNOTATIONS = ("metallb.universe.tf/loadBalancerIPs", "metallb.io/loadBalancerIPs")
SHARING_ANNOTATIONS = ("metallb.universe.tf/allow-shared-ip", "metallb.io/allow-shared-ip")
EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"

_FAMILY_VERSIONS = {"IPv4": 4, "IPv6": 6}


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    """What allocation and announcement need to know of one Service."""

    namespace: str
    name: str
    uid: str
    load_balancer: bool
    load_balancer_class: str | None
    requested: tuple[Address, ...]
    pool: str | None
    sharing_key: str | None
    ports: frozenset[tuple[str, int]]
    local: bool
    selector: tuple[tuple[str, str], ...]
    families: tuple[int, ...]
    require_all_families: bool
    ingress: tuple[Address, ...]
    created: str = ""
    deleting: bool = False
    problems: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _first(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for key in keys:
        if key in mapping:
            return key, mapping[key]
    return None


def _addresses(text: str, where: str, problems: list[str]) -> tuple[Address, ...]:
    found: list[Address] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            found.append(ip_address(part))
        except ValueError:
            problems.append(f"{where}: {part!r} is not an IP address")
    return tuple(found)


def service_info(obj: Mapping[str, Any]) -> ServiceInfo:
    """Read a Service's JSON (as listed or watched) into a :class:`ServiceInfo`."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    annotations: Mapping[str, Any] = meta.get("annotations") or {}
    problems: list[str] = []

    requested: tuple[Address, ...] = ()
    ips = _first(annotations, IPS_ANNOTATIONS)
    lb_ip = spec.get("loadBalancerIP")
    if ips is not None:
        key, value = ips
        requested = _addresses(str(value), f"annotation {key}", problems)
        if lb_ip and ip_address_or_none(str(lb_ip)) not in requested:
            problems.append(
                f"spec.loadBalancerIP {lb_ip!r} and annotation {key} {value!r} disagree"
            )
    elif lb_ip:
        requested = _addresses(str(lb_ip), "spec.loadBalancerIP", problems)

    pool_entry = _first(annotations, POOL_ANNOTATIONS)
    pool = str(pool_entry[1]).strip() or None if pool_entry is not None else None
    sharing_entry = _first(annotations, SHARING_ANNOTATIONS)
    sharing = str(sharing_entry[1]).strip() or None if sharing_entry is not None else None

    ports = frozenset(
        (str(port.get("protocol") or "TCP"), int(port["port"]))
        for port in spec.get("ports") or []
        if isinstance(port, Mapping) and isinstance(port.get("port"), int)
    )
    selector = tuple(sorted((str(k), str(v)) for k, v in (spec.get("selector") or {}).items()))

    families: list[int] = []
    for name in spec.get("ipFamilies") or []:
        version = _FAMILY_VERSIONS.get(str(name))
        if version is None:
            problems.append(f"spec.ipFamilies: {name!r} is not IPv4 or IPv6")
        elif version not in families:
            families.append(version)
    policy = spec.get("ipFamilyPolicy") or "SingleStack"
    if not families:
        # no ipFamilies: the requested addresses say, else the cluster's default (IPv4)
        families = sorted({address.version for address in requested}) or [4]
    elif policy == "SingleStack":
        families = families[:1]

    ingress: list[Address] = []
    for entry in (status.get("loadBalancer") or {}).get("ingress") or []:
        if isinstance(entry, Mapping) and entry.get("ip"):
            address = ip_address_or_none(str(entry["ip"]))
            if address is not None:
                ingress.append(address)

    return ServiceInfo(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        load_balancer=spec.get("type") == "LoadBalancer",
        load_balancer_class=spec.get("loadBalancerClass") or None,
        requested=requested,
        pool=pool,
        sharing_key=sharing,
        ports=ports,
        local=spec.get("externalTrafficPolicy") == "Local",
        selector=selector,
        families=tuple(families),
        require_all_families=policy == "RequireDualStack",
        ingress=tuple(ingress),
        created=str(meta.get("creationTimestamp") or ""),
        deleting=bool(meta.get("deletionTimestamp")),
        problems=tuple(problems),
    )


def ip_address_or_none(text: str) -> Address | None:
    try:
        return ip_address(text.strip())
    except ValueError:
        return None


def owned(info: ServiceInfo, load_balancer_class: str | None) -> bool:
    """Whether spinelb serves ``info``: a LoadBalancer of no class or of the configured class."""
    if not info.load_balancer or info.deleting:
        return False
    return info.load_balancer_class is None or info.load_balancer_class == load_balancer_class


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A Node's fitness to announce: Ready, and not excluded from external load balancers."""

    name: str
    ready: bool
    excluded: bool
    unschedulable: bool = False


def node_info(obj: Mapping[str, Any]) -> NodeInfo:
    meta = obj.get("metadata") or {}
    labels: Mapping[str, Any] = meta.get("labels") or {}
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = any(
        isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
        for c in conditions
    )
    return NodeInfo(
        name=str(meta.get("name") or ""),
        ready=ready,
        excluded=EXCLUDE_LABEL in labels,
        unschedulable=bool((obj.get("spec") or {}).get("unschedulable")),
    )


@dataclass(frozen=True, slots=True)
class SliceInfo:
    """An EndpointSlice: which Service it belongs to, and the nodes with a ready endpoint."""

    namespace: str
    name: str
    service: str | None
    ready_nodes: frozenset[str]

    @property
    def service_key(self) -> str | None:
        return None if self.service is None else f"{self.namespace}/{self.service}"


def slice_info(obj: Mapping[str, Any]) -> SliceInfo:
    """Nodes of endpoints that are ready (absent ``ready`` counts as ready) and not terminating."""
    meta = obj.get("metadata") or {}
    labels: Mapping[str, Any] = meta.get("labels") or {}
    nodes: set[str] = set()
    for endpoint in obj.get("endpoints") or []:
        if not isinstance(endpoint, Mapping):
            continue
        conditions = endpoint.get("conditions") or {}
        if conditions.get("ready") is False or conditions.get("terminating") is True:
            continue
        node = endpoint.get("nodeName")
        if node:
            nodes.add(str(node))
    service = labels.get(SERVICE_NAME_LABEL)
    return SliceInfo(
        namespace=str(meta.get("namespace") or "default"),
        name=str(meta.get("name") or ""),
        service=str(service) if service else None,
        ready_nodes=frozenset(nodes),
    )
