"""The lab's Layer 2 pool: which it is, the Service that uses it, and who answers its addresses.

The lab inventory adds one pool to the site's (``spinelb_extra_pools`` in
``inventories/lab/group_vars/all/lab.yml``): ``lab-layer2`` on the CAN, whose
addresses the speakers answer ARP for on their ``can`` interface.  The lab's API
server is loaded with one Service naming it (:func:`layer2_service`), so the
controller gives it an address and every speaker decides it; the reference
site's own files are left as they are.

The verdict (:func:`layer2_verdicts`) asks every worker's speaker for its
``/status``: exactly one speaker answers each layer2 address (``answered_here``,
with its MAC), and every speaker names that one as the owner.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path
from typing import Any

import yaml

from lab.netns import LabError, Namespace

REPO = Path(__file__).resolve().parent.parent
LAB_VARS = REPO / "inventories" / "lab" / "group_vars" / "all" / "lab.yml"
PYTHON = REPO / ".venv" / "bin" / "python"
POOL_ANNOTATION = "metallb.universe.tf/address-pool"
#: The Service the lab loads into its API server for the layer2 pool.
SERVICE_NAMESPACE = "spinelb-lab"
SERVICE_NAME = "layer2-echo"
SERVICE_PORT = 8080


@dataclass(frozen=True)
class Layer2Pool:
    """A ``mode: layer2`` pool of the lab inventory."""

    name: str
    cidr: IPv4Network
    network: str
    interfaces: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    """Who answers one layer2 address, as the speakers report it; ``problem`` when they
    do not agree on exactly one."""

    address: str
    owner: str | None
    mac: str | None
    problem: str = ""


def layer2_pools(path: Path = LAB_VARS) -> list[Layer2Pool]:
    """The layer2 pools the lab inventory adds (``spinelb_extra_pools``)."""
    data = yaml.safe_load(path.read_text()) or {}
    pools: list[Layer2Pool] = []
    for name, entry in (data.get("spinelb_extra_pools") or {}).items():
        if entry.get("mode") == "layer2":
            pools.append(Layer2Pool(name, IPv4Network(entry["cidr"]), str(entry["network"]),
                                    tuple(entry.get("interfaces") or ())))
    return pools


def layer2_service(pool: Layer2Pool) -> dict[str, Any]:
    """A Cluster-policy LoadBalancer Service taking its address from ``pool``."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE_NAME, "namespace": SERVICE_NAMESPACE,
                     "annotations": {POOL_ANNOTATION: pool.name}},
        "spec": {
            "type": "LoadBalancer",
            "clusterIP": "10.16.0.200",
            "ports": [{"port": SERVICE_PORT, "nodePort": 30880, "protocol": "TCP",
                       "targetPort": SERVICE_PORT}],
            "selector": {"app.kubernetes.io/name": SERVICE_NAME},
            "externalTrafficPolicy": "Cluster",
        },
    }


def layer2_addresses(services: Iterable[Mapping[str, Any]],
                     pools: Iterable[Layer2Pool]) -> list[str]:
    """The ingress addresses of ``services`` (API objects) inside a layer2 pool, sorted."""
    cidrs = [pool.cidr for pool in pools]
    found: set[IPv4Address] = set()
    for obj in services:
        ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        for entry in ingress:
            address = ip_address(entry.get("ip", ""))
            if isinstance(address, IPv4Address) and any(address in c for c in cidrs):
                found.add(address)
    return [str(a) for a in sorted(found)]


def speaker_status(ns: Namespace, config_path: Path) -> dict[str, Any]:
    """``GET /status`` of the speaker whose config is ``config_path``, asked inside ``ns``."""
    listen = yaml.safe_load(config_path.read_text())["api"]["listen"]
    code = ("import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
            f"'http://{listen}/status', timeout=2).read().decode())")
    status: dict[str, Any] = json.loads(ns.run([str(PYTHON), "-c", code], timeout=10))
    return status


def judge(address: str, statuses: Mapping[str, Mapping[str, Any] | str]) -> Answer:
    """Who answers ``address``, from each speaker's ``/status`` (or why it has none)."""
    unreachable = {node: s for node, s in statuses.items() if isinstance(s, str)}
    if unreachable:
        return Answer(address, None, None, "; ".join(
            f"{node}: no /status ({reason})" for node, reason in sorted(unreachable.items())))
    answering: dict[str, str | None] = {}
    owners: dict[str, str | None] = {}
    for node, status in statuses.items():
        assert not isinstance(status, str)
        entry = next((e for e in ((status.get("layer2") or {}).get("addresses") or [])
                      if e.get("address") == address), None)
        if entry is None:
            owners[node] = None
            continue
        owners[node] = entry.get("owner")
        if entry.get("answered_here"):
            answering[node] = entry.get("mac")
    if len(answering) != 1:
        return Answer(address, None, None,
                      f"answered by {', '.join(sorted(answering)) or 'nobody'}, owners "
                      + ", ".join(f"{n}: {o}" for n, o in sorted(owners.items())))
    (owner, mac), = answering.items()
    disagree = {node: seen for node, seen in owners.items() if seen != owner}
    if disagree or not mac:
        return Answer(address, owner, mac, f"answered by {owner} ({mac}), but owners "
                      + ", ".join(f"{n}: {o}" for n, o in sorted(disagree.items())))
    return Answer(address, owner, mac)


def gather_statuses(speakers: Mapping[str, tuple[Namespace, Path]]
                    ) -> dict[str, Mapping[str, Any] | str]:
    """Each worker's ``/status`` (by node name), or why it could not be had."""
    statuses: dict[str, Mapping[str, Any] | str] = {}
    for node, (ns, config_path) in speakers.items():
        try:
            statuses[node] = speaker_status(ns, config_path)
        except (LabError, OSError, ValueError, KeyError) as exc:
            statuses[node] = str(exc).splitlines()[-1] if str(exc) else type(exc).__name__
    return statuses
