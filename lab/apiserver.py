"""The lab's Kubernetes API server: kmock's emulator made faithful where spinelb and kubectl look.

kmock's ``KubernetesEmulator`` stores objects and streams changes, but has no
resourceVersion semantics, no selectors, no status subresource and no
server-side tables, its URL parser fails on ``/api/v1/namespaces`` and its
discovery names the core group "/v1".  :class:`LabApiServer` keeps kmock's
handler (the aiohttp entry point, the resource registry, ``async with``) and
parses URLs, serves discovery and stores objects itself, the way
kube-apiserver does:

- one global resourceVersion counter stamped on every write; a list returns
  it; a watch from a resourceVersion replays the later events, and one older
  than the kept history gets an ERROR event with code 410 (Expired);
- uid, creationTimestamp and generation on create; ClusterIP and node ports
  allocated for Services; a write that changes nothing bumps nothing;
- PUT with a stale resourceVersion is a 409 Conflict;
- equality label selectors (``a=b``, ``a!=b``, ``a``, ``!a``) and field
  selectors on any dotted path (``metadata.name``, ``involvedObject.uid``);
  a watch reports an object leaving its selector as DELETED;
- the status subresource: PATCH/PUT of ``.../status`` changes only status, a
  PATCH/PUT of the object cannot change status;
- JSON merge patch, strategic merge patch (as kubectl sends it) and JSON patch;
- server-side Table responses for ``kubectl get``, with kube-apiserver's
  columns for services, nodes, endpointslices, leases, events, namespaces;
- a Namespace created implicitly for an object in a new namespace;
- ``dryRun=All`` on a write (``kubectl --dry-run=server``, Ansible's check mode):
  the answer of the write, with nothing stored and nothing sent to watchers;
- a Secret's ``stringData`` folded into ``data``, and null fields dropped (a
  real server's typed decoding does that to a merge patch's nulls in lists).

Test knobs: ``POST /_lab/watches/expire`` ends every open watch stream;
``POST /_lab/history/compact`` forgets history (the next resume gets 410);
``GET /_lab/healthz``.

The lab serves plain HTTP: there is no certificate authority in the lab and the
emulator holds nothing secret; the kubeconfig still carries a dummy bearer
token so the clients' authentication path runs.  Run it as a process with
``python -m lab.apiserver --listen HOST:PORT --load FILE.yaml --kubeconfig OUT``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import dataclasses
import datetime
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import yaml
from kmock import KubernetesEmulator, Request, ResourceInfo, resource

log = logging.getLogger("lab.apiserver")

HISTORY_LIMIT = 50_000  # events kept for watch resumption (kube-apiserver keeps ~5 minutes)
DEFAULT_WATCH_TIMEOUT = 1800.0
BOOKMARK_INTERVAL = 60.0
LAB_TOKEN = "spinelb-lab-token"  # not a secret: the lab's API server checks nothing
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclasses.dataclass(frozen=True)
class Served:
    """A resource the emulator serves from its store, with what discovery says about it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    status: bool = False  # has the status subresource

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


SERVED: tuple[Served, ...] = (
    Served("", "v1", "services", "Service", True, ("svc",), status=True),
    Served("", "v1", "nodes", "Node", False, ("no",), status=True),
    Served("", "v1", "namespaces", "Namespace", False, ("ns",), status=True),
    Served("", "v1", "events", "Event", True, ("ev",)),
    Served("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    Served("", "v1", "pods", "Pod", True, ("po",), status=True),
    Served("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Served("", "v1", "secrets", "Secret", True),
    Served("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",)),
    Served("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    Served("coordination.k8s.io", "v1", "leases", "Lease", True),
    # What spinelb's own manifests create (spinelb.deploy.manifests): stored, never run.
    Served("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), status=True),
    Served("apps", "v1", "deployments", "Deployment", True, ("deploy",), status=True),
    Served("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Served("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Served("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Served("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Served(
        "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), status=True
    ),
)
BY_PATH = {(s.group, s.version, s.plural): s for s in SERVED}
BY_KIND = {(s.api_version, s.kind): s for s in SERVED}
NAMESPACES = BY_PATH["", "v1", "namespaces"]
VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


class Failure(Exception):
    """An API failure, rendered as a meta/v1 Status like kube-apiserver's."""

    def __init__(
        self, code: int, reason: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = dict(details or {})

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def _not_found(served: Served, name: str) -> Failure:
    return Failure(
        404,
        "NotFound",
        f'{served.plural} "{name}" not found',
        {"name": name, "kind": served.plural},
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """One write, as the history keeps it: the object after and before."""

    revision: int
    served: Served
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


@dataclasses.dataclass(eq=False)
class Watcher:
    served: Served
    namespace: str | None
    labels: list[tuple[str, str, str | None]]
    fields: list[tuple[str, str, str]]
    queue: asyncio.Queue[Change | None] = dataclasses.field(default_factory=asyncio.Queue)
    revision: int = 0  # every change up to here has been sent (or did not match)

    def matches(self, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return matches_labels(meta.get("labels") or {}, self.labels) and matches_fields(
            obj, self.fields
        )


# --- selectors -------------------------------------------------------------------------------


def parse_label_selector(text: str) -> list[tuple[str, str, str | None]]:
    """Equality-based label selector: ``a=b``, ``a==b``, ``a!=b``, ``a`` (exists), ``!a``."""
    terms: list[tuple[str, str, str | None]] = []
    for raw in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "==" in raw or "=" in raw:
            key, value = raw.split("==", 1) if "==" in raw else raw.split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        elif raw.startswith("!"):
            terms.append((raw[1:].strip(), "!", None))
        elif " in " in raw or " notin " in raw or "(" in raw:
            raise Failure(400, "BadRequest", f"unsupported set-based label selector: {raw}")
        else:
            terms.append((raw, "exists", None))
    return terms


def matches_labels(labels: Mapping[str, str], terms: Sequence[tuple[str, str, str | None]]) -> bool:
    for key, op, value in terms:
        if op == "=" and labels.get(key) != value:
            return False
        if op == "!=" and labels.get(key) == value:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
    return True


def parse_field_selector(text: str) -> list[tuple[str, str, str]]:
    terms: list[tuple[str, str, str]] = []
    for raw in filter(None, (t.strip() for t in text.split(","))):
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "=" in raw:
            key, value = raw.split("==", 1) if "==" in raw else raw.split("=", 1)
            terms.append((key.strip(), "=", value.strip()))
        else:
            raise Failure(400, "BadRequest", f"invalid field selector: {raw}")
    return terms


def field_value(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def matches_fields(obj: Mapping[str, Any], terms: Sequence[tuple[str, str, str]]) -> bool:
    return all((field_value(obj, path) == value) == (op == "=") for path, op, value in terms)


# --- patches ---------------------------------------------------------------------------------

# Strategic merge patch: lists merged by key (from the Kubernetes API's patchMergeKey tags).
MERGE_KEYS: dict[str, str] = {
    "spec.ports": "port",
    "status.conditions": "type",
    "status.addresses": "type",
    "metadata.ownerReferences": "uid",
    "spec.taints": "key",
    "spec.containers": "name",
    "status.loadBalancer.ingress.ports": "port",
    # Pod templates of DaemonSets and Deployments.
    "spec.template.spec.containers": "name",
    "spec.template.spec.initContainers": "name",
    "spec.template.spec.volumes": "name",
    "spec.template.spec.imagePullSecrets": "name",
    "spec.template.spec.containers.env": "name",
    "spec.template.spec.containers.volumeMounts": "mountPath",
    "spec.template.spec.containers.ports": "containerPort",
}
MERGED_PRIMITIVE_LISTS = frozenset({"metadata.finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, path: str = "") -> Any:
    """Strategic merge patch as kubectl sends it: merge patch plus keyed lists and directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith(("$setElementOrder/", "$retainKeys", "$patch")):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            result[name] = [v for v in result.get(name) or [] if v not in value]
            continue
        sub = f"{path}.{key}" if path else key
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and sub in MERGE_KEYS and isinstance(result.get(key), list):
            result[key] = _merge_keyed_list(result[key], value, MERGE_KEYS[sub], sub)
        elif isinstance(value, list) and sub in MERGED_PRIMITIVE_LISTS:
            old = list(result.get(key) or [])
            result[key] = old + [v for v in value if v not in old]
        else:
            result[key] = strategic_merge_patch(result.get(key), value, sub)
    return result


def _merge_keyed_list(old: list[Any], patch: list[Any], key: str, path: str) -> list[Any]:
    merged = [copy.deepcopy(item) for item in old]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            merged.append(copy.deepcopy(item))
            continue
        index = next(
            (i for i, o in enumerate(merged) if isinstance(o, dict) and o.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            merged[index] = strategic_merge_patch(merged[index], item, path)
    return merged


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test, move, copy)."""
    doc = copy.deepcopy(target)
    if not isinstance(operations, list):
        raise Failure(400, "BadRequest", "a JSON patch must be a list of operations")

    def split(pointer: str) -> list[str]:
        return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]

    def parent(parts: list[str]) -> tuple[Any, str]:
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def get(pointer: str) -> Any:
        node, last = parent(split(pointer))
        return node[int(last)] if isinstance(node, list) else node[last]

    def remove(pointer: str) -> Any:
        node, last = parent(split(pointer))
        return node.pop(int(last)) if isinstance(node, list) else node.pop(last)

    def add(pointer: str, value: Any) -> None:
        node, last = parent(split(pointer))
        if isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), value)
        else:
            node[last] = value

    try:
        for op in operations:
            kind, pointer = op["op"], op["path"]
            if kind == "add":
                add(pointer, copy.deepcopy(op["value"]))
            elif kind == "remove":
                remove(pointer)
            elif kind == "replace":
                remove(pointer)
                add(pointer, copy.deepcopy(op["value"]))
            elif kind == "test":
                if get(pointer) != op["value"]:
                    raise Failure(422, "Invalid", f"test operation failed at {pointer}")
            elif kind in ("move", "copy"):
                value = remove(op["from"]) if kind == "move" else copy.deepcopy(get(op["from"]))
                add(pointer, value)
            else:
                raise Failure(400, "BadRequest", f"unknown JSON patch operation {kind!r}")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise Failure(422, "Invalid", f"JSON patch cannot be applied: {exc!r}") from exc
    return doc


# --- tables ----------------------------------------------------------------------------------


def human_duration(seconds: float) -> str:
    """kube's ``duration.HumanDuration``: the AGE column."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return human_duration((datetime.datetime.now(datetime.UTC) - then).total_seconds())


def service_external_ip(obj: Mapping[str, Any]) -> str:
    """kube-apiserver's EXTERNAL-IP cell (printers.go getServiceExternalIP, wide)."""
    spec = obj.get("spec", {})
    external = list(spec.get("externalIPs") or [])
    kind = spec.get("type", "ClusterIP")
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    if kind != "LoadBalancer":
        return "<unknown>"
    ingress = (obj.get("status", {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [
        i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")
    ]
    joined = addresses + external
    return ",".join(joined) if joined else "<pending>"


def service_ports(obj: Mapping[str, Any]) -> str:
    cells = []
    for port in obj.get("spec", {}).get("ports") or []:
        protocol = port.get("protocol", "TCP")
        if port.get("nodePort"):
            cells.append(f"{port['port']}:{port['nodePort']}/{protocol}")
        else:
            cells.append(f"{port['port']}/{protocol}")
    return ",".join(cells) if cells else "<none>"


def node_status(obj: Mapping[str, Any]) -> str:
    conditions = {
        c.get("type"): c.get("status") for c in obj.get("status", {}).get("conditions") or []
    }
    ready = conditions.get("Ready")
    status = ["Ready" if ready == "True" else "NotReady" if ready == "False" else "Unknown"]
    if obj.get("spec", {}).get("unschedulable"):
        status.append("SchedulingDisabled")
    return ",".join(status)


def node_roles(obj: Mapping[str, Any]) -> str:
    labels = obj.get("metadata", {}).get("labels") or {}
    roles = sorted(
        k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k
    )
    if labels.get("kubernetes.io/role"):
        roles.append(labels["kubernetes.io/role"])
    return ",".join(r for r in roles if r) or "<none>"


def _limited(values: list[str], limit: int = 3) -> str:
    if not values:
        return "<unset>"
    shown = ",".join(values[:limit])
    return shown if len(values) <= limit else f"{shown} + {len(values) - limit} more..."


def endpointslice_ports(obj: Mapping[str, Any]) -> str:
    ports = obj.get("ports")
    if not ports:
        return "<unset>"
    return _limited([str(p["port"]) if p.get("port") is not None else "<unset>" for p in ports])


def endpointslice_endpoints(obj: Mapping[str, Any]) -> str:
    return _limited([a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []])


def endpoints_cell(obj: Mapping[str, Any]) -> str:
    cells = []
    for subset in obj.get("subsets") or []:
        ports = [p.get("port") for p in subset.get("ports") or []] or [None]
        for address in subset.get("addresses") or []:
            cells += [f"{address.get('ip')}:{p}" if p else str(address.get("ip")) for p in ports]
    return _limited(cells) if cells else "<none>"


Column = tuple[str, str, Callable[[Mapping[str, Any]], Any], int]  # name, type, cell, priority


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))


def _age(obj: Mapping[str, Any]) -> str:
    return age(obj.get("metadata", {}).get("creationTimestamp"))


def _event_last_seen(obj: Mapping[str, Any]) -> str:
    return age(
        obj.get("lastTimestamp")
        or obj.get("eventTime")
        or obj.get("metadata", {}).get("creationTimestamp")
    )


def _event_object(obj: Mapping[str, Any]) -> str:
    involved = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


COLUMNS: dict[str, list[Column]] = {
    "services": [
        ("Name", "string", _name, 0),
        ("Type", "string", lambda o: o.get("spec", {}).get("type", "ClusterIP"), 0),
        ("Cluster-IP", "string", lambda o: o.get("spec", {}).get("clusterIP") or "<none>", 0),
        ("External-IP", "string", service_external_ip, 0),
        ("Port(s)", "string", service_ports, 0),
        ("Age", "string", _age, 0),
        (
            "Selector",
            "string",
            lambda o: (
                ",".join(
                    f"{k}={v}" for k, v in sorted((o.get("spec", {}).get("selector") or {}).items())
                )
                or "<none>"
            ),
            1,
        ),
    ],
    "nodes": [
        ("Name", "string", _name, 0),
        ("Status", "string", node_status, 0),
        ("Roles", "string", node_roles, 0),
        ("Age", "string", _age, 0),
        (
            "Version",
            "string",
            lambda o: o.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", ""),
            0,
        ),
        (
            "Internal-IP",
            "string",
            lambda o: next(
                (
                    a["address"]
                    for a in o.get("status", {}).get("addresses") or []
                    if a.get("type") == "InternalIP"
                ),
                "<none>",
            ),
            1,
        ),
    ],
    "namespaces": [
        ("Name", "string", _name, 0),
        ("Status", "string", lambda o: o.get("status", {}).get("phase", ""), 0),
        ("Age", "string", _age, 0),
    ],
    "endpointslices": [
        ("Name", "string", _name, 0),
        ("AddressType", "string", lambda o: o.get("addressType", ""), 0),
        ("Ports", "string", endpointslice_ports, 0),
        ("Endpoints", "string", endpointslice_endpoints, 0),
        ("Age", "string", _age, 0),
    ],
    "endpoints": [
        ("Name", "string", _name, 0),
        ("Endpoints", "string", endpoints_cell, 0),
        ("Age", "string", _age, 0),
    ],
    "leases": [
        ("Name", "string", _name, 0),
        ("Holder", "string", lambda o: o.get("spec", {}).get("holderIdentity") or "", 0),
        ("Age", "string", _age, 0),
    ],
    "events": [
        ("Last Seen", "string", _event_last_seen, 0),
        ("Type", "string", lambda o: o.get("type", ""), 0),
        ("Reason", "string", lambda o: o.get("reason", ""), 0),
        ("Object", "string", _event_object, 0),
        (
            "Source",
            "string",
            lambda o: (o.get("source") or {}).get("component") or o.get("reportingComponent", ""),
            1,
        ),
        ("Message", "string", lambda o: o.get("message") or o.get("note", ""), 0),
        ("First Seen", "string", lambda o: age(o.get("firstTimestamp")), 1),
        ("Count", "integer", lambda o: o.get("count") or 1, 1),
        ("Name", "string", _name, 1),
    ],
}
DEFAULT_COLUMNS: list[Column] = [("Name", "string", _name, 0), ("Age", "string", _age, 0)]


def table(
    served: Served, objects: Iterable[Mapping[str, Any]], revision: int, include: str
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table, as kube-apiserver renders one for ``kubectl get``."""
    columns = COLUMNS.get(served.plural, DEFAULT_COLUMNS)
    rows = []
    for obj in objects:
        if include == "Object":
            row_object: dict[str, Any] | None = dict(obj)
        elif include == "None":
            row_object = None
        else:
            row_object = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append({"cells": [cell(obj) for _, _, cell, _ in columns], "object": row_object})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": str(revision)},
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": "",
                "priority": priority,
            }
            for name, kind, _, priority in columns
        ],
        "rows": rows,
    }


# --- the emulator ----------------------------------------------------------------------------


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fold_string_data(served: Served, obj: dict[str, Any]) -> None:
    """A Secret's ``stringData`` goes into ``data`` (base64), as kube-apiserver stores it."""
    if served.plural == "secrets" and isinstance(obj.get("stringData"), Mapping):
        data = obj.setdefault("data", {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _without_nulls(value: Any) -> Any:
    """The object as kube-apiserver stores it: a null field is an absent one.

    (A JSON merge patch replaces a list whole, nulls inside included; the typed
    decoding of a real server drops them.)
    """
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _stripped(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object without the fields the server stamps, to tell a no-op write."""
    meta = {
        k: v
        for k, v in obj.get("metadata", {}).items()
        if k not in ("resourceVersion", "generation")
    }
    return {**obj, "metadata": meta}


@attrs.define(kw_only=True, repr=False)
class LabApiServer(KubernetesEmulator):
    """kmock's emulator with kube-apiserver's semantics for the resources in :data:`SERVED`.

    Tests change objects directly with :meth:`create_object`, :meth:`put_object`,
    :meth:`patch_object` and :meth:`delete_object` (watchers see those changes like any other), read them
    with :meth:`get_object` and :meth:`objects_of`, and use :meth:`expire_watches`,
    :meth:`compact`, :meth:`hold_watches` / :meth:`release_watches` as knobs.
    ``counts[(verb, plural)]`` counts the API requests served (verb: list, watch,
    get, create, update, patch, delete).
    """

    revision: int = attrs.field(default=0, init=False)
    counts: Counter[tuple[str, str]] = attrs.field(factory=Counter, init=False)
    _store: dict[Served, dict[tuple[str, str], dict[str, Any]]] = attrs.field(
        factory=dict, init=False
    )
    _history: deque[Change] = attrs.field(factory=deque, init=False)
    _floor: int = attrs.field(default=0, init=False)  # resume from a revision below this: 410
    _watchers: set[Watcher] = attrs.field(factory=set, init=False)
    _watch_gate: asyncio.Event | None = attrs.field(default=None, init=False)
    _cluster_ips: set[str] = attrs.field(factory=set, init=False)
    _node_ports: set[int] = attrs.field(factory=set, init=False)
    history_limit: int = HISTORY_LIMIT
    bookmark_interval: float = BOOKMARK_INTERVAL
    first_revision: int = 0  # a restarted process starts above its predecessor (see main)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.revision = self._floor = self.first_revision
        for served in SERVED:
            self._store[served] = {}
            self.resources[resource(served.group, served.version, served.plural)] = ResourceInfo(
                namespaced=served.namespaced,
                kind=served.kind,
                singular=served.kind.lower(),
                verbs=set(VERBS),
                shortnames=set(served.short_names),
                subresources={"status"} if served.status else set(),
            )
        for name in DEFAULT_NAMESPACES:
            self.create_object(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )

    def __repr__(self) -> str:
        return f"LabApiServer(revision={self.revision}, watches={len(self._watchers)})"

    # --- direct access (tests, the loader) ---

    def served_for(self, obj: Mapping[str, Any]) -> Served:
        try:
            return BY_KIND[obj.get("apiVersion", ""), obj.get("kind", "")]
        except KeyError:
            raise Failure(
                400,
                "BadRequest",
                f"the lab does not serve {obj.get('apiVersion')} {obj.get('kind')}",
            ) from None

    def objects_of(self, served: Served | str) -> list[dict[str, Any]]:
        """Every stored object of a resource (given as a Served or its plural)."""
        served = self._served(served)
        return [copy.deepcopy(o) for o in self._store[served].values()]

    def get_object(self, served: Served | str, namespace: str | None, name: str) -> dict[str, Any]:
        served = self._served(served)
        obj = self._store[served].get((namespace or "", name))
        if obj is None:
            raise _not_found(served, name)
        return copy.deepcopy(obj)

    def create_object(self, obj: Mapping[str, Any], *, keep_status: bool = True) -> dict[str, Any]:
        """Create an object (a dict with apiVersion and kind); 409 AlreadyExists when present."""
        served = self.served_for(obj)
        return self._create(served, dict(copy.deepcopy(obj)), None, keep_status=keep_status)

    def put_object(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace an object unconditionally, status included."""
        served = self.served_for(obj)
        meta = obj.get("metadata", {})
        key = (meta.get("namespace", "default") if served.namespaced else "", meta["name"])
        if key not in self._store[served]:
            return self.create_object(obj)
        body = copy.deepcopy(dict(obj))
        body["metadata"] = {**body.get("metadata", {}), "resourceVersion": None}
        return self._replace(served, key, body, status_only=False, keep_status=False)

    def patch_object(
        self, served: Served | str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """JSON merge patch of the whole object (status included)."""
        served = self._served(served)
        key = (namespace or "", name)
        old = self._existing(served, key)
        return self._replace(
            served,
            key,
            merge_patch(old, dict(patch)),
            status_only=False,
            keep_status=False,
            patch=True,
        )

    def delete_object(
        self, served: Served | str, namespace: str | None, name: str
    ) -> dict[str, Any]:
        served = self._served(served)
        return self._delete(served, (namespace or "", name), {})

    def load(self, documents: Iterable[Mapping[str, Any] | None]) -> int:
        """Create (or replace) every object of a multi-document YAML stream; returns how many."""
        count = 0
        for doc in documents:
            if not doc:
                continue
            if doc.get("kind", "").endswith("List") and "items" in doc:
                count += self.load(doc["items"])
                continue
            self.put_object(doc)
            count += 1
        return count

    # --- knobs ---

    def expire_watches(self) -> int:
        """End every open watch stream cleanly; returns how many."""
        for watcher in self._watchers:
            watcher.queue.put_nowait(None)
        return len(self._watchers)

    def compact(self) -> None:
        """Forget the history: a watch resuming from any earlier revision gets 410 Expired."""
        self._history.clear()
        self._floor = self.revision

    def hold_watches(self) -> None:
        """New watch requests wait (headers unsent) until :meth:`release_watches`."""
        if self._watch_gate is None:
            self._watch_gate = asyncio.Event()

    def release_watches(self) -> None:
        if self._watch_gate is not None:
            self._watch_gate.set()
            self._watch_gate = None

    @contextlib.contextmanager
    def _rolled_back(self) -> Iterator[None]:
        """Undo every write made inside (a dry run): the store, revisions, history, allocations.

        Watchers are set aside meanwhile, so they never see a change that did not happen.
        """
        stores = {served: dict(objects) for served, objects in self._store.items()}
        revision, floor, history = self.revision, self._floor, deque(self._history)
        cluster_ips, node_ports = set(self._cluster_ips), set(self._node_ports)
        watchers, self._watchers = self._watchers, set()
        try:
            yield
        finally:
            self._store.update(stores)
            self.revision, self._floor, self._history = revision, floor, history
            self._cluster_ips, self._node_ports = cluster_ips, node_ports
            self._watchers = watchers

    # --- the store ---

    def _served(self, served: Served | str) -> Served:
        if isinstance(served, Served):
            return served
        for candidate in SERVED:
            if candidate.plural == served:
                return candidate
        raise KeyError(served)

    def _existing(self, served: Served, key: tuple[str, str]) -> dict[str, Any]:
        obj = self._store[served].get(key)
        if obj is None:
            raise _not_found(served, key[1])
        return obj

    def _record(
        self, served: Served, kind: str, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        change = Change(self.revision, served, kind, obj, old)
        self._history.append(change)
        while len(self._history) > self.history_limit:
            self._floor = self._history.popleft().revision
        for watcher in self._watchers:
            if watcher.served == served:
                watcher.queue.put_nowait(change)

    def _bump(self, obj: dict[str, Any]) -> None:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)

    def _create(
        self, served: Served, obj: dict[str, Any], url_namespace: str | None, *, keep_status: bool
    ) -> dict[str, Any]:
        obj = _without_nulls(obj)
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"], obj["kind"] = served.api_version, served.kind
        _fold_string_data(served, obj)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise Failure(
                    422,
                    "Invalid",
                    f"{served.kind} is invalid: metadata.name: Required value: name or generateName is required",
                )
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if served.namespaced:
            if url_namespace and meta.get("namespace") not in (None, url_namespace):
                raise Failure(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = url_namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        key = (meta.get("namespace", ""), meta["name"])
        if key in self._store[served]:
            raise Failure(
                409,
                "AlreadyExists",
                f'{served.plural} "{meta["name"]}" already exists',
                {"name": meta["name"], "kind": served.plural},
            )
        if served.namespaced and ("", meta["namespace"]) not in self._store[NAMESPACES]:
            self.create_object(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": meta["namespace"]}}
            )
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        for stamped in ("deletionTimestamp", "resourceVersion", "managedFields"):
            meta.pop(stamped, None)
        if "spec" in obj and served.plural != "nodes":
            meta["generation"] = 1
        if served.plural == "services":
            if not keep_status:
                obj["status"] = {"loadBalancer": {}}
            self._default_service(obj)
        elif served.plural == "namespaces":
            obj["status"] = {"phase": "Active"}
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        self._bump(obj)
        self._store[served][key] = obj
        self._record(served, "ADDED", obj, None)
        return copy.deepcopy(obj)

    def _default_service(self, obj: dict[str, Any]) -> None:
        """Defaults and allocations kube-apiserver makes for a Service (dual-stack cluster)."""
        spec = obj.setdefault("spec", {})
        kind = spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        obj.setdefault("status", {"loadBalancer": {}})
        if kind == "ExternalName":
            return
        policy = spec.setdefault("ipFamilyPolicy", "SingleStack")
        families = spec.get("ipFamilies") or (
            ["IPv4", "IPv6"] if policy != "SingleStack" else ["IPv4"]
        )
        spec["ipFamilies"] = families
        if spec.get("clusterIP") != "None":
            ips = list(
                spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
            )
            for family in families[len(ips) :]:
                ips.append(self._allocate_cluster_ip(family))
            spec["clusterIPs"], spec["clusterIP"] = ips, ips[0]
            self._cluster_ips.update(ips)
        spec.setdefault("internalTrafficPolicy", "Cluster")
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
            if spec.get("allocateLoadBalancerNodePorts", True):
                if kind == "LoadBalancer":
                    spec.setdefault("allocateLoadBalancerNodePorts", True)
                for port in spec.get("ports") or []:
                    port.setdefault("protocol", "TCP")
                    if not port.get("nodePort"):
                        port["nodePort"] = next(
                            p for p in range(30000, 32768) if p not in self._node_ports
                        )
                    self._node_ports.add(port["nodePort"])
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))

    def _allocate_cluster_ip(self, family: str) -> str:
        network = ipaddress.ip_network("10.96.0.0/16" if family == "IPv4" else "fd00:96::/112")
        for host in network.hosts():
            if str(host) not in self._cluster_ips and host != network.network_address + 1:
                return str(host)
        raise Failure(500, "InternalError", f"the {family} service network is full")

    def _replace(
        self,
        served: Served,
        key: tuple[str, str],
        body: dict[str, Any],
        *,
        status_only: bool,
        keep_status: bool,
        patch: bool = False,
    ) -> dict[str, Any]:
        old = self._existing(served, key)
        meta = body.setdefault("metadata", {})
        wanted = meta.get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise Failure(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {served.plural}.{served.group or "core"} "{key[1]}": '
                "the object has been modified; please apply your changes to the latest version and try again",
                {"name": key[1], "kind": served.plural},
            )
        if not patch and (
            meta.get("name") not in (None, key[1])
            or (served.namespaced and meta.get("namespace") not in (None, key[0]))
        ):
            raise Failure(
                400, "BadRequest", "the name or namespace of the object does not match the request"
            )
        if status_only:
            new = copy.deepcopy(old)
            if "status" in body:
                new["status"] = _without_nulls(body["status"])
            else:
                new.pop("status", None)
        else:
            new = _without_nulls(body)
            new["apiVersion"], new["kind"] = served.api_version, served.kind
            _fold_string_data(served, new)
            meta = new["metadata"]
            for kept in ("uid", "creationTimestamp", "name", "deletionTimestamp", "generation"):
                if kept in old["metadata"]:
                    meta[kept] = old["metadata"][kept]
                else:
                    meta.pop(kept, None)
            if served.namespaced:
                meta["namespace"] = key[0]
            if served.status and keep_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            if served.plural == "services":
                for field in ("clusterIP", "clusterIPs", "ipFamilies"):
                    if field in old.get("spec", {}) and field not in new.setdefault("spec", {}):
                        new["spec"][field] = old["spec"][field]
                self._default_service(new)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if _stripped(new) == _stripped(old):
            return copy.deepcopy(old)  # a no-op write changes nothing, not even resourceVersion
        if "generation" in old["metadata"] and new.get("spec") != old.get("spec"):
            new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(served, key, new)
        self._bump(new)
        self._store[served][key] = new
        self._record(served, "MODIFIED", new, old)
        return copy.deepcopy(new)

    def _delete(
        self, served: Served, key: tuple[str, str], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        old = self._existing(served, key)
        preconditions = options.get("preconditions") or {}
        for field in ("uid", "resourceVersion"):
            if preconditions.get(field) and preconditions[field] != old["metadata"].get(field):
                raise Failure(
                    409,
                    "Conflict",
                    f"Precondition failed: {field} in precondition: {preconditions[field]}, {field} in object meta: {old['metadata'].get(field)}",
                )
        if old["metadata"].get("finalizers"):
            if old["metadata"].get("deletionTimestamp"):
                return copy.deepcopy(old)
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            self._bump(new)
            self._store[served][key] = new
            self._record(served, "MODIFIED", new, old)
            return copy.deepcopy(new)
        return self._remove(served, key, copy.deepcopy(old))

    def _remove(self, served: Served, key: tuple[str, str], obj: dict[str, Any]) -> dict[str, Any]:
        old = self._store[served].pop(key)
        self._bump(obj)
        if served.plural == "services":
            spec = obj.get("spec", {})
            self._cluster_ips.difference_update(spec.get("clusterIPs") or [])
            self._node_ports.difference_update(p.get("nodePort") for p in spec.get("ports") or [])
        self._record(served, "DELETED", obj, old)
        return copy.deepcopy(obj)

    # --- HTTP ---

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Parse kube-apiserver's URL layout ourselves (kmock's parser breaks on /api/v1/namespaces)."""
        body = await raw_request.read()
        try:
            request = self._parse(raw_request, body)
            return await self._handle(request)
        except Failure as failure:
            return aiohttp.web.json_response(failure.status(), status=failure.code)

    def _parse(self, raw: aiohttp.web.BaseRequest, body: bytes) -> Request:
        parts = raw.path.strip("/").split("/")
        group = version = plural = namespace = name = subresource = None
        rest: list[str] = []
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        namespace_subresource = (
            len(rest) == 3 and rest[0] == "namespaces" and rest[2] in ("status", "finalize")
        )
        if len(rest) >= 3 and rest[0] == "namespaces" and not namespace_subresource:
            namespace, rest = rest[1], rest[2:]
        if rest:
            plural = rest[0]
            name = rest[1] if len(rest) > 1 else None
            subresource = "/".join(rest[2:]) or None
        return Request(
            method=raw.method,
            url=raw.url,
            params=dict(raw.query),
            headers=dict(raw.headers),
            body=body,
            text=body.decode("utf-8", "replace"),
            resource=None if group is None else resource(group, version, plural),
            namespace=namespace,
            name=name,
            subresource=subresource,
            raw_request=raw,
        )

    async def _handle(self, request: Request) -> aiohttp.web.StreamResponse:
        path = request.url.path
        if path.startswith("/_lab/"):
            return await self._serve_lab(request, path)
        discovery = self._discovery(path, request)
        if discovery is not None:
            return aiohttp.web.json_response(discovery)
        res = request.resource
        served = (
            None
            if res is None
            else BY_PATH.get((res.group or "", res.version or "", res.plural or ""))
        )
        if served is None:
            raise Failure(
                404,
                "NotFound",
                f"the server could not find the requested resource ({request.method.value} {path})",
            )
        return await self._serve(request, served)

    def _discovery(self, path: str, request: Request) -> dict[str, Any] | None:
        """Legacy discovery documents, as kube-apiserver serves them (kubectl falls back to these)."""
        if request.method.value != "GET":
            return None
        parts = path.strip("/").split("/")
        groups: dict[str, list[Served]] = {}
        for served in SERVED:
            groups.setdefault(served.group, []).append(served)
        if path == "/openapi/v3":
            return {
                "paths": {
                    gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash=lab"}
                    for gv in self._openapi_group_versions()
                }
            }
        if path.startswith("/openapi/v3/"):
            return self._openapi_document(path.removeprefix("/openapi/v3/"))
        if path == "/version":
            return {
                "major": "1",
                "minor": "32",
                "gitVersion": "v1.32.4-spinelb-lab",
                "platform": "linux/amd64",
            }
        if parts == ["api"]:
            address = request.headers.get("Host", "")
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": address}
                ],
            }
        if parts == ["apis"]:
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, v) for g, v in groups.items() if g],
            }
        if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
            return self._group(parts[1], groups[parts[1]])
        if parts == ["api", "v1"] or (
            len(parts) == 3 and parts[0] == "apis" and parts[1] in groups
        ):
            group = "" if parts[0] == "api" else parts[1]
            version = parts[-1]
            members = [s for s in groups[group] if s.version == version]
            if not members:
                return None
            resources: list[dict[str, Any]] = []
            for served in members:
                resources.append(
                    {
                        "name": served.plural,
                        "singularName": served.kind.lower(),
                        "namespaced": served.namespaced,
                        "kind": served.kind,
                        "verbs": list(VERBS),
                        "shortNames": list(served.short_names),
                    }
                )
                if served.status:
                    resources.append(
                        {
                            "name": f"{served.plural}/status",
                            "singularName": "",
                            "namespaced": served.namespaced,
                            "kind": served.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": members[0].api_version,
                "resources": resources,
            }
        return None

    @staticmethod
    def _openapi_group_versions() -> list[str]:
        return list(
            dict.fromkeys(
                f"apis/{s.group}/{s.version}" if s.group else f"api/{s.version}" for s in SERVED
            )
        )

    @staticmethod
    def _openapi_document(group_version: str) -> dict[str, Any] | None:
        """Just enough OpenAPI v3 for kubectl to see that the server takes ``fieldValidation``.

        kubectl create/apply/patch look for a PATCH operation of the kind with that
        query parameter; finding it, they leave validation to the server (the lab
        validates nothing) instead of downloading the full schema.
        """
        members = [
            s
            for s in SERVED
            if (f"apis/{s.group}/{s.version}" if s.group else f"api/{s.version}") == group_version
        ]
        if not members:
            return None
        paths = {}
        for served in members:
            scope = "/namespaces/{namespace}" if served.namespaced else ""
            paths[f"/{group_version}{scope}/{served.plural}/{{name}}"] = {
                "patch": {
                    "x-kubernetes-group-version-kind": {
                        "group": served.group,
                        "version": served.version,
                        "kind": served.kind,
                    },
                    "parameters": [
                        {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
                    ],
                    "responses": {},
                }
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.4"},
            "paths": paths,
        }

    @staticmethod
    def _group(name: str, members: list[Served]) -> dict[str, Any]:
        versions = [
            {"groupVersion": f"{name}/{v}", "version": v}
            for v in dict.fromkeys(s.version for s in members)
        ]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": name,
            "versions": versions,
            "preferredVersion": versions[0],
        }

    async def _serve_lab(self, request: Request, path: str) -> aiohttp.web.StreamResponse:
        if path == "/_lab/healthz":
            return aiohttp.web.json_response({"ok": True, "revision": self.revision})
        if path == "/_lab/watches/expire" and request.method == "POST":
            return aiohttp.web.json_response({"expired": self.expire_watches()})
        if path == "/_lab/history/compact" and request.method == "POST":
            self.compact()
            return aiohttp.web.json_response({"floor": self._floor})
        raise Failure(404, "NotFound", f"no lab knob at {request.method} {path}")

    async def _serve(self, request: Request, served: Served) -> aiohttp.web.StreamResponse:
        method = str(request.method.value).upper()
        params = request.params
        if request.subresource not in (None, "status") or (
            request.subresource == "status" and not served.status
        ):
            raise Failure(
                404,
                "NotFound",
                f"the server could not find the requested resource ({request.subresource})",
            )
        if method == "GET" and params.get("watch") in ("true", "1"):
            self.counts["watch", served.plural] += 1
            return await self._serve_watch_stream(request, served)
        if method in ("POST", "PUT", "PATCH", "DELETE") and params.get("dryRun") == "All":
            with self._rolled_back():
                return self._serve_request(request, served, method)
        return self._serve_request(request, served, method)

    def _serve_request(
        self, request: Request, served: Served, method: str
    ) -> aiohttp.web.StreamResponse:
        """Everything but a watch: list, get, create, update, patch, delete.

        Synchronous, so a dry run's rollback can never undo another request's write.
        """
        params = request.params
        name, namespace = request.name, request.namespace
        key = (namespace or "", name or "")
        body = self._body(request) if method in ("POST", "PUT", "PATCH", "DELETE") else None
        status = 200
        if method == "GET" and name is None:
            self.counts["list", served.plural] += 1
            objects = self._select(served, namespace, params)
            if self._wants_table(request):
                return aiohttp.web.json_response(
                    table(served, objects, self.revision, params.get("includeObject", "Metadata"))
                )
            result: dict[str, Any] = {
                "kind": f"{served.kind}List",
                "apiVersion": served.api_version,
                "metadata": {"resourceVersion": str(self.revision)},
                "items": objects,
            }
        elif method == "GET":
            self.counts["get", served.plural] += 1
            result = self._existing(served, key)
            if self._wants_table(request):
                return aiohttp.web.json_response(
                    table(served, [result], self.revision, params.get("includeObject", "Metadata"))
                )
        elif method == "POST" and name is None:
            self.counts["create", served.plural] += 1
            if not isinstance(body, dict):
                raise Failure(400, "BadRequest", "the body must be a JSON object")
            result, status = (
                self._create(served, body, namespace, keep_status=served.plural != "services"),
                201,
            )
        elif method == "PUT" and name is not None:
            self.counts["update", served.plural] += 1
            if not isinstance(body, dict):
                raise Failure(400, "BadRequest", "the body must be a JSON object")
            result = self._replace(
                served, key, body, status_only=request.subresource == "status", keep_status=True
            )
        elif method == "PATCH" and name is not None:
            self.counts["patch", served.plural] += 1
            result = self._serve_patch(request, served, key, body)
        elif method == "DELETE" and name is not None:
            self.counts["delete", served.plural] += 1
            result = self._delete(served, key, body if isinstance(body, dict) else {})
        else:
            raise Failure(
                405, "MethodNotAllowed", f"{method} is not supported on {request.url.path}"
            )
        return aiohttp.web.json_response(result, status=status)

    def _body(self, request: Request) -> Any:
        if not request.body:
            return None
        try:
            return json.loads(request.body)
        except ValueError:
            try:
                return yaml.safe_load(request.body)
            except yaml.YAMLError as exc:
                raise Failure(
                    400, "BadRequest", f"the body is neither JSON nor YAML: {exc}"
                ) from exc

    def _serve_patch(
        self, request: Request, served: Served, key: tuple[str, str], patch: Any
    ) -> dict[str, Any]:
        kind = request.headers.get("Content-Type", "").split(";")[0].strip()
        old = self._existing(served, key)
        if kind == "application/merge-patch+json":
            if not isinstance(patch, dict):
                raise Failure(400, "BadRequest", "a merge patch must be a JSON object")
            new = merge_patch(old, patch)
        elif kind == "application/strategic-merge-patch+json":
            if not isinstance(patch, dict):
                raise Failure(400, "BadRequest", "a strategic merge patch must be a JSON object")
            new = strategic_merge_patch(old, patch)
        elif kind == "application/json-patch+json":
            new = json_patch(old, patch)
        else:
            raise Failure(
                415,
                "UnsupportedMediaType",
                f"the lab's API server does not accept patches of type {kind!r}",
            )
        meta = new.setdefault("metadata", {})
        precondition = (
            (patch.get("metadata") or {}).get("resourceVersion")
            if isinstance(patch, dict)
            else None
        )
        meta["resourceVersion"] = precondition or old["metadata"]["resourceVersion"]
        return self._replace(
            served,
            key,
            new,
            status_only=request.subresource == "status",
            keep_status=True,
            patch=True,
        )

    @staticmethod
    def _wants_table(request: Request) -> bool:
        accept = request.headers.get("Accept", "")
        first = accept.split(",")[0]
        return "as=Table" in first

    def _select(
        self, served: Served, namespace: str | None, params: Mapping[str, str]
    ) -> list[dict[str, Any]]:
        watcher = self._watcher(served, namespace, params)
        objects = [o for o in self._store[served].values() if watcher.matches(o)]
        return sorted(
            objects, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
        )

    @staticmethod
    def _watcher(
        served: Served, namespace: str | None, params: Mapping[str, str], name: str | None = None
    ) -> Watcher:
        fields = parse_field_selector(params.get("fieldSelector", ""))
        if name is not None:
            fields.append(("metadata.name", "=", name))
        return Watcher(
            served, namespace, parse_label_selector(params.get("labelSelector", "")), fields
        )

    async def _serve_watch_stream(
        self, request: Request, served: Served
    ) -> aiohttp.web.StreamResponse:
        params = request.params
        watcher = self._watcher(served, request.namespace, params, request.name)
        gate = self._watch_gate
        if gate is not None:
            await gate.wait()
        timeout = float(params.get("timeoutSeconds") or DEFAULT_WATCH_TIMEOUT)
        bookmarks = params.get("allowWatchBookmarks") == "true"
        since = params.get("resourceVersion", "")
        # Replay and subscription happen in one step, with no await between: nothing is lost.
        backlog: list[dict[str, Any]]
        if since in ("", "0"):
            backlog = [
                {"type": "ADDED", "object": o}
                for o in self._store[served].values()
                if watcher.matches(o)
            ]
        elif int(since) < self._floor:
            backlog = [
                {
                    "type": "ERROR",
                    "object": Failure(
                        410, "Expired", f"too old resource version: {since} ({self._floor})"
                    ).status(),
                }
            ]
        else:
            backlog = [
                e
                for c in self._history
                if c.revision > int(since) and c.served == served
                for e in self._event(watcher, c)
            ]
        expired = bool(backlog) and backlog[0]["type"] == "ERROR"
        watcher.revision = self.revision
        if not expired:
            self._watchers.add(watcher)
        as_table, include = self._wants_table(request), params.get("includeObject", "Metadata")

        def encode(event: dict[str, Any]) -> bytes:
            if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):  # kubectl get -w
                event = {
                    "type": event["type"],
                    "object": table(served, [event["object"]], self.revision, include),
                }
            return json.dumps(event).encode() + b"\n"

        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(
            status=200, headers={"Content-Type": "application/json"}
        )
        response.enable_chunked_encoding()
        try:
            await response.prepare(raw)
            for event in backlog:
                await response.write(encode(event))
            if expired:
                await response.write_eof()
                return response
            await self._stream(watcher, response, served, timeout, bookmarks, encode)
            await response.write_eof()
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            pass
        finally:
            self._watchers.discard(watcher)
        return response

    async def _stream(
        self,
        watcher: Watcher,
        response: aiohttp.web.StreamResponse,
        served: Served,
        timeout: float,
        bookmarks: bool,
        encode: Callable[[dict[str, Any]], bytes],
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                change = await asyncio.wait_for(
                    watcher.queue.get(), min(remaining, self.bookmark_interval)
                )
            except TimeoutError:
                if bookmarks and loop.time() < deadline:  # a periodic bookmark
                    await response.write(encode(self._bookmark(served, watcher)))
                continue
            if change is None:
                break
            for event in self._event(watcher, change):
                await response.write(encode(event))
            watcher.revision = change.revision
        if bookmarks:  # kube-apiserver sends a bookmark just before it ends a watch
            await response.write(encode(self._bookmark(served, watcher)))

    def _bookmark(self, served: Served, watcher: Watcher) -> dict[str, Any]:
        """A bookmark at the newest revision whose changes this watcher has all been sent."""
        revision = self.revision if watcher.queue.empty() else watcher.revision
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": served.kind,
                "apiVersion": served.api_version,
                "metadata": {"resourceVersion": str(revision)},
            },
        }

    @staticmethod
    def _event(watcher: Watcher, change: Change) -> list[dict[str, Any]]:
        now, before = watcher.matches(change.obj), watcher.matches(change.old)
        if change.type == "DELETED":
            return [{"type": "DELETED", "object": change.obj}] if before or now else []
        if now and before:
            return [{"type": "MODIFIED", "object": change.obj}]
        if now:
            return [{"type": "ADDED", "object": change.obj}]
        if before:
            return [{"type": "DELETED", "object": change.obj}]
        return []


# --- nodes, kubeconfig, running it -----------------------------------------------------------


def node_objects(
    workers: Mapping[str, str], *, kubelet_version: str = "v1.32.4"
) -> list[dict[str, Any]]:
    """Ready Node objects for worker names, each with its InternalIP (``{name: address}``)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            },
            "spec": {},
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    }
                ],
                "addresses": [
                    {"type": "InternalIP", "address": address},
                    {"type": "Hostname", "address": name},
                ],
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"boot.{name}")),
                    "containerRuntimeVersion": "containerd://1.7.0",
                    "kernelVersion": os.uname().release,
                    "kubeProxyVersion": kubelet_version,
                    "kubeletVersion": kubelet_version,
                    "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                    "operatingSystem": "linux",
                    "osImage": "spinelb lab",
                    "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                },
            },
        }
        for name, address in workers.items()
    ]


def kubeconfig(url: str) -> dict[str, Any]:
    """A kubeconfig for the lab's server: plain HTTP, a dummy token user (see the module doc)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "lab", "cluster": {"server": url}}],
        "users": [{"name": "lab", "user": {"token": LAB_TOKEN}}],
        "contexts": [
            {"name": "lab", "context": {"cluster": "lab", "user": "lab", "namespace": "default"}}
        ],
        "current-context": "lab",
    }


def write_kubeconfig(path: Path, url: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig(url), sort_keys=False))
    os.replace(tmp, path)


def load_files(paths: Iterable[Path]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        with open(path, encoding="utf-8") as stream:
            docs += [d for d in yaml.safe_load_all(stream) if d]
    return docs


@dataclasses.dataclass
class RunningApiServer:
    """A listening emulator: its URL, a kubeconfig file for it, and the emulator itself."""

    url: str
    kubeconfig: Path
    emulator: LabApiServer
    port: int


@contextlib.asynccontextmanager
async def serve(emulator: LabApiServer, host: str, port: int) -> AsyncIterator[int]:
    """Serve the emulator on host:port (0: a free port); yields the port."""
    async with emulator:
        server = aiohttp.web.Server(emulator, handler_cancellation=True)
        runner = aiohttp.web.ServerRunner(server, shutdown_timeout=0.5)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        try:
            sockets = [s for s in (getattr(site._server, "sockets", None) or [])]
            yield sockets[0].getsockname()[1] if sockets else port
        finally:
            emulator.expire_watches()
            await runner.cleanup()


@contextlib.asynccontextmanager
async def running_apiserver(
    objects: Iterable[Mapping[str, Any]] = (), host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningApiServer]:
    """An emulator on host (a random port unless given), loaded with objects, with a kubeconfig."""
    emulator = LabApiServer()
    emulator.load(objects)
    with tempfile.TemporaryDirectory(prefix="spinelb-apiserver-") as tmp:
        async with serve(emulator, host, port) as bound:
            url = f"http://{host}:{bound}"
            path = Path(tmp) / "kubeconfig"
            write_kubeconfig(path, url)
            yield RunningApiServer(url, path, emulator, bound)


class ApiServerProcess:
    """``python -m lab.apiserver`` as a child process, for tests that stop and restart the API.

    ``await start()`` returns once it listens; ``await stop()`` sends SIGTERM and waits.
    A restart on the same port with other ``--load`` files is a new server (new history).
    """

    def __init__(
        self, port: int, kubeconfig: Path, loads: Sequence[Path] = (), host: str = "127.0.0.1"
    ) -> None:
        self.host, self.port, self.kubeconfig, self.loads = host, port, kubeconfig, list(loads)
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, loads: Sequence[Path] | None = None) -> None:
        if loads is not None:
            self.loads = list(loads)
        repo = Path(__file__).resolve().parents[1]
        args = [
            sys.executable,
            "-m",
            "lab.apiserver",
            "--listen",
            f"{self.host}:{self.port}",
            "--kubeconfig",
            str(self.kubeconfig),
        ]
        for path in self.loads:
            args += ["--load", str(path)]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")])),
        }
        self.process = await asyncio.create_subprocess_exec(
            *args, cwd=repo, env=env, stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 20)
        if not line.startswith(b"listening "):
            await self.process.wait()
            raise RuntimeError(f"lab.apiserver did not start (exit {self.process.returncode})")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.process = None

    async def __aenter__(self) -> ApiServerProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for a server that must restart on the same port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


async def _main(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    # Revisions start at the clock in milliseconds, so a restarted server never reuses its
    # predecessor's resourceVersions (as a real one, with etcd, never does).
    emulator = LabApiServer(first_revision=int(time.time() * 1000))
    count = emulator.load(load_files(args.load))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with serve(emulator, host.strip("[]"), int(port)) as bound:
        url = f"http://{host}:{bound}"
        if args.kubeconfig:
            write_kubeconfig(args.kubeconfig, url)
        if args.pid_file:
            args.pid_file.write_text(f"{os.getpid()}\n")
        log.info("serving %d objects at %s", count, url)
        print(f"listening {url}", flush=True)
        await stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lab.apiserver", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--listen", required=True, help="HOST:PORT (port 0: any free port)")
    parser.add_argument(
        "--load",
        type=Path,
        action="append",
        default=[],
        help="multi-document YAML of objects to serve",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, help="write a kubeconfig for the server here once listening"
    )
    parser.add_argument("--pid-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
