"""Kubernetes mode: the manifests that run the speakers as a DaemonSet and the controller as a Deployment.

:func:`manifests` turns the config documents (:func:`spinelb.deploy.speaker_document`
per worker, :func:`spinelb.deploy.controller_document`) into plain dicts ready for
``kubernetes.core.k8s`` or ``kubectl apply``:

- a Namespace (Pod Security ``privileged``: the speakers use the host's network);
- a ServiceAccount, ClusterRole and ClusterRoleBinding per program, and a Role
  and RoleBinding for the controller's Lease: exactly what docs/kubernetes.md's
  RBAC table lists, no wildcard;
- a ConfigMap per program (``spinelb-speaker``: ``<node>.yaml`` per worker;
  ``spinelb-controller``: ``controller.yaml``), so each role owns its own
  objects; the BGP password is only ever in the Secret ``spinelb-bgp-password``,
  which the speaker configs name through ``password_file``;
- the DaemonSet ``spinelb-speaker`` (host network, on the workers only) and the
  Deployment ``spinelb-controller`` (leader-elected replicas) with a
  PodDisruptionBudget.

A pod template carries a hash of its ConfigMap's data, so a config change rolls
the pods (one worker at a time for the speakers); the password is not hashed
(a hash of a short key is a way to guess it), so a new password is rolled by
whoever applies the Secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from spinelb.config.model import (
    DEFAULT_API_PORT,
    DEFAULT_BGP_PORT,
    DEFAULT_CONTROLLER_API_PORT,
    DEFAULT_K8S_NAMESPACE,
)
from spinelb.config.values import parse_host_port

SPEAKER = "spinelb-speaker"
CONTROLLER = "spinelb-controller"
SECRET = "spinelb-bgp-password"
CONFIG_DIR = "/etc/spinelb"  # the program's ConfigMap
SECRET_DIR = "/etc/spinelb-secrets"  # the Secret, speakers only
PASSWORD_KEY = "bgp-password"
#: Where a speaker config's ``password_file`` must point when the site has a password.
PASSWORD_FILE = f"{SECRET_DIR}/{PASSWORD_KEY}"
CONTROLLER_KEY = "controller.yaml"
CONFIG_HASH = "spinelb.io/config-hash"
#: The image's unprivileged user (Containerfile).
IMAGE_UID = 10001
FIRST_UNPRIVILEGED_PORT = 1024

Component = Literal["all", "speaker", "controller"]

DEFAULT_SPEAKER_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}
DEFAULT_CONTROLLER_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}

# The liveness and readiness check, run in the container: GET /healthz on the program's
# local API, exit status 1 on anything but 200.  An exec probe rather than httpGet because
# the API listens on loopback: the kubelet cannot reach a pod's loopback (the controller),
# and for a host-network pod an httpGet on 127.0.0.1 needs the probe's `host` field, which
# Kubernetes discourages.  `spinelb status` is no probe: it fails while a spine is down,
# and a restart would not bring the spine back.  The one-liner needs only the standard library.
HEALTH_CHECK = (
    "import sys, urllib.request; "
    "urllib.request.urlopen('http://' + sys.argv[1] + '/healthz', timeout=2)"
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class ManifestError(ValueError):
    """The options cannot make a sound deployment; the message says which and why."""


@dataclass(frozen=True)
class ManifestOptions:
    """What the manifests are made from: the image, the rendered configs and the pods' sizes.

    ``speaker_configs`` maps each worker's Kubernetes node name to its speaker
    document; those names are the nodes the DaemonSet runs on.  The documents
    must use the in-cluster service account (no ``kubeconfig``) and, when
    ``md5_password`` is set, name :data:`PASSWORD_FILE` as every peer's
    ``password_file``.  ``md5_password`` goes into the Secret only and is kept
    out of the repr.
    """

    image: str
    speaker_configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, repr=False)
    controller_config: Mapping[str, Any] | None = field(default=None, repr=False)
    namespace: str = DEFAULT_K8S_NAMESPACE
    image_pull_policy: str = "IfNotPresent"
    md5_password: str | None = field(default=None, repr=False)
    controller_replicas: int = 2
    speaker_resources: Mapping[str, Any] = field(
        default_factory=lambda: dict(DEFAULT_SPEAKER_RESOURCES)
    )
    controller_resources: Mapping[str, Any] = field(
        default_factory=lambda: dict(DEFAULT_CONTROLLER_RESOURCES)
    )
    labels: Mapping[str, str] = field(default_factory=dict)  # added to every object

    @property
    def worker_nodes(self) -> list[str]:
        """The nodes the speakers run on: those with a speaker config."""
        return sorted(self.speaker_configs)


def manifests(options: ManifestOptions, component: Component = "all") -> list[dict[str, Any]]:
    """The objects to apply, in a working order (Namespace first, workloads last).

    ``component`` ``speaker`` or ``controller`` gives that program's objects (each
    with the Namespace); ``all`` both, of those whose config is given.  Raises
    :class:`ManifestError` naming every problem found.
    """
    problems = _problems(options, component)
    if problems:
        raise ManifestError("cannot make the manifests: " + "; ".join(problems))
    objects = [_namespace(options)]
    if component in ("all", "speaker") and options.speaker_configs:
        objects += _speaker(options)
    if component in ("all", "controller") and options.controller_config is not None:
        objects += _controller(options, options.controller_config)
    return objects


# --- checks ----------------------------------------------------------------------------------


def _problems(options: ManifestOptions, component: Component) -> list[str]:
    problems: list[str] = []
    if not options.image.strip():
        problems.append("image: must not be empty")
    if not _DNS_LABEL.match(options.namespace):
        problems.append(f"namespace {options.namespace!r}: not a DNS label")
    if options.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
        problems.append(
            f"image_pull_policy {options.image_pull_policy!r}: Always, IfNotPresent or Never"
        )
    wants_speaker = component in ("all", "speaker")
    wants_controller = component in ("all", "controller")
    if component == "speaker" and not options.speaker_configs:
        problems.append("speaker_configs: no worker has a speaker config")
    if component == "controller" and options.controller_config is None:
        problems.append("controller_config: missing")
    if component == "all" and not options.speaker_configs and options.controller_config is None:
        problems.append("neither speaker_configs nor controller_config is given")
    if wants_speaker:
        problems += _speaker_problems(options)
    if wants_controller and options.controller_config is not None:
        problems += _controller_problems(options, options.controller_config)
    return problems


def _speaker_problems(options: ManifestOptions) -> list[str]:
    problems: list[str] = []
    api_listens: set[str | None] = set()
    for node, config in sorted(options.speaker_configs.items()):
        where = f"speaker_configs[{node}]"
        if not _CONFIG_KEY.match(node):
            problems.append(f"{where}: not a node name usable as a ConfigMap key")
        if config.get("node_name") != node:
            problems.append(f"{where}.node_name: must be the node's name {node!r}")
        if "kubeconfig" in (config.get("kubernetes") or {}):
            problems.append(
                f"{where}.kubernetes.kubeconfig: a pod uses its service account; leave it out"
            )
        problems += _inline_passwords(config, where)
        for index, peer in enumerate(config.get("peers") or []):
            password_file = peer.get("password_file")
            if options.md5_password is not None and password_file != PASSWORD_FILE:
                problems.append(
                    f"{where}.peers[{index}].password_file: must be {PASSWORD_FILE} "
                    "(the Secret's mount) when md5_password is set"
                )
            if options.md5_password is None and password_file is not None:
                problems.append(
                    f"{where}.peers[{index}].password_file: set, but md5_password is not: "
                    "the pod would have no such file"
                )
        api_listens.add(_api_listen(config, DEFAULT_API_PORT))
    if len(api_listens) > 1:
        problems.append(
            "speaker_configs: every worker's api.listen must be the same (one probe serves the DaemonSet)"
        )
    return problems


def _controller_problems(options: ManifestOptions, config: Mapping[str, Any]) -> list[str]:
    problems = _inline_passwords(config, "controller_config")
    kubernetes = config.get("kubernetes") or {}
    if "kubeconfig" in kubernetes:
        problems.append(
            "controller_config.kubernetes.kubeconfig: a pod uses its service account; leave it out"
        )
    lease_namespace = kubernetes.get("namespace", DEFAULT_K8S_NAMESPACE)
    if lease_namespace != options.namespace:
        problems.append(
            f"controller_config.kubernetes.namespace: {lease_namespace!r}, but the Role for "
            f"the Lease is in {options.namespace!r}"
        )
    if options.controller_replicas < 1:
        problems.append("controller_replicas: at least 1")
    return problems


def _inline_passwords(document: Any, where: str) -> list[str]:
    """Every key named ``password`` in a document: a key in a ConfigMap is readable by many."""
    found: list[str] = []
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key == "password":
                found.append(
                    f"{where}.password: a password in a ConfigMap; use password_file and md5_password"
                )
            else:
                found += _inline_passwords(value, f"{where}.{key}")
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _inline_passwords(value, f"{where}[{index}]")
    return found


def _api_listen(config: Mapping[str, Any], default_port: int, section: str = "api") -> str | None:
    """``host:port`` a probe in the pod connects to; None when the local API is disabled."""
    api = config.get(section)
    text = f"127.0.0.1:{default_port}" if api is None else api.get("listen")
    if text is None:
        return None
    try:
        address, port = parse_host_port(str(text), default_port)
    except ValueError as exc:
        raise ManifestError(f"{section}.listen {text!r}: {exc}") from None
    if address.is_unspecified:
        return f"[::1]:{port}" if address.version == 6 else f"127.0.0.1:{port}"
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def listens_privileged(config: Mapping[str, Any]) -> bool:
    """True when a speaker config opens a BGP listener on a port below 1024 (179)."""
    listen = config.get("listen")
    if not isinstance(listen, Mapping):
        return False
    return int(listen.get("port", DEFAULT_BGP_PORT)) < FIRST_UNPRIVILEGED_PORT


def answers_layer2(config: Mapping[str, Any]) -> bool:
    """True when a speaker config has a ``mode: layer2`` pool: it answers ARP/NDP on raw sockets."""
    pools = config.get("pools")
    if not isinstance(pools, list):
        return False
    return any(isinstance(pool, Mapping) and pool.get("mode") == "layer2" for pool in pools)


def _capabilities(*, bind_low_port: bool, raw_sockets: bool) -> list[str]:
    """The capabilities a speaker needs, nothing more: NET_BIND_SERVICE for a listener on 179,
    NET_RAW for Layer 2 pools (AF_PACKET sockets)."""
    return [name for name, needed in (("NET_BIND_SERVICE", bind_low_port),
                                      ("NET_RAW", raw_sockets)) if needed]


# --- objects ---------------------------------------------------------------------------------


def _labels(options: ManifestOptions, component: str | None = None) -> dict[str, str]:
    labels = {
        **options.labels,
        "app.kubernetes.io/name": "spinelb",
        "app.kubernetes.io/part-of": "spinelb",
        "app.kubernetes.io/managed-by": "spinelb.fabric",
    }
    if component is not None:
        labels["app.kubernetes.io/component"] = component
    return labels


def _selector(component: str) -> dict[str, str]:
    """Pod selector labels: fixed, since a workload's selector cannot change."""
    return {"app.kubernetes.io/name": "spinelb", "app.kubernetes.io/component": component}


def _meta(
    options: ManifestOptions, name: str, component: str | None, *, namespaced: bool = True
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespaced:
        meta["namespace"] = options.namespace
    meta["labels"] = _labels(options, component)
    return meta


def _namespace(options: ManifestOptions) -> dict[str, Any]:
    meta = _meta(options, options.namespace, None, namespaced=False)
    # The speakers share the host's network, which the baseline Pod Security level forbids.
    meta["labels"] = {
        **meta["labels"],
        "pod-security.kubernetes.io/enforce": "privileged",
        "pod-security.kubernetes.io/warn": "privileged",
    }
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _rule(group: str, resources: Sequence[str], verbs: Sequence[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}


SPEAKER_RULES = (
    _rule("", ["services"], ["list", "watch"]),
    _rule("discovery.k8s.io", ["endpointslices"], ["list", "watch"]),
    _rule("", ["nodes"], ["list", "watch"]),
)
CONTROLLER_RULES = (
    _rule("", ["services"], ["get", "list", "watch"]),
    _rule("", ["services/status"], ["patch"]),
    _rule("", ["events"], ["create", "patch"]),
)
CONTROLLER_LEASE_RULES = (_rule("coordination.k8s.io", ["leases"], ["get", "create", "update"]),)


def _access(
    options: ManifestOptions,
    component: str,
    cluster_rules: Sequence[dict[str, Any]],
    namespace_rules: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole and its binding, and a Role and binding when asked."""
    name = f"spinelb-{component}"
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": options.namespace}]
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(options, name, component),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(options, name, component, namespaced=False),
            "rules": [dict(rule) for rule in cluster_rules],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(options, name, component, namespaced=False),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": subject,
        },
    ]
    if namespace_rules:
        objects += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": _meta(options, name, component),
                "rules": [dict(rule) for rule in namespace_rules],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": _meta(options, name, component),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": subject,
            },
        ]
    return objects


def _config_map(
    options: ManifestOptions, name: str, component: str, data: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(options, name, component),
        "data": dict(data),
    }


def _document_text(document: Mapping[str, Any]) -> str:
    """A config document as the file's YAML text, in the document's key order."""
    return yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)


def _data_hash(data: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _probe(listen: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": ["python3", "-c", HEALTH_CHECK, listen]},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _container_security(*, add: Sequence[str] = ()) -> dict[str, Any]:
    capabilities: dict[str, Any] = {"drop": ["ALL"]}
    if add:
        capabilities["add"] = list(add)
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": capabilities,
    }


def _pod_security(*, as_root: bool) -> dict[str, Any]:
    """Non-root, unless the speaker needs a capability (a listener on 179, Layer 2's raw sockets).

    Kubernetes gives added capabilities to a non-root process only through file
    capabilities, which ``allowPrivilegeEscalation: false`` (no_new_privs) blocks;
    so such a speaker runs as uid 0 holding NET_BIND_SERVICE and/or NET_RAW and
    nothing else (every other capability dropped).
    """
    security: dict[str, Any] = {
        "seccompProfile": {"type": "RuntimeDefault"},
        "fsGroup": IMAGE_UID,  # the Secret's file is readable by the group (mode 0440)
    }
    if as_root:
        security.update(runAsNonRoot=False, runAsUser=0, runAsGroup=IMAGE_UID)
    else:
        security.update(runAsNonRoot=True, runAsUser=IMAGE_UID, runAsGroup=IMAGE_UID)
    return security


def _tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """A small writable /tmp, since the root filesystem is read-only."""
    return (
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
        {"name": "tmp", "mountPath": "/tmp"},
    )


def _speaker(options: ManifestOptions) -> list[dict[str, Any]]:
    data = {
        f"{node}.yaml": _document_text(config)
        for node, config in sorted(options.speaker_configs.items())
    }
    objects = _access(options, "speaker", SPEAKER_RULES)
    objects.append(_config_map(options, SPEAKER, "speaker", data))
    if options.md5_password is not None:
        objects.append(_secret(options, options.md5_password))
    objects.append(_daemon_set(options, data))
    return objects


def _secret(options: ManifestOptions, password: str) -> dict[str, Any]:
    encoded = base64.b64encode(password.encode()).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(options, SECRET, "speaker"),
        "type": "Opaque",
        "data": {PASSWORD_KEY: encoded},
    }


def _daemon_set(options: ManifestOptions, data: Mapping[str, str]) -> dict[str, Any]:
    configs = list(options.speaker_configs.values())
    capabilities = _capabilities(
        bind_low_port=any(listens_privileged(config) for config in configs),
        raw_sockets=any(answers_layer2(config) for config in configs),
    )
    tmp_volume, tmp_mount = _tmp_volume()
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": SPEAKER}},
        tmp_volume,
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        tmp_mount,
    ]
    if options.md5_password is not None:
        volumes.append({"name": "secrets", "secret": {"secretName": SECRET, "defaultMode": 0o440}})
        mounts.append({"name": "secrets", "mountPath": SECRET_DIR, "readOnly": True})
    container: dict[str, Any] = {
        "name": "speaker",
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": ["spinelb", "speaker", "--config", f"{CONFIG_DIR}/$(NODE_NAME).yaml"],
        "env": [
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        ],
        "resources": dict(options.speaker_resources),
        "securityContext": _container_security(add=capabilities),
        "volumeMounts": mounts,
    }
    listen = _api_listen(configs[0], DEFAULT_API_PORT)
    if listen is not None:
        container["readinessProbe"] = _probe(listen, period=5, failures=2)
        container["livenessProbe"] = _probe(listen, period=10, failures=3)
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta(options, SPEAKER, "speaker"),
        "spec": {
            "selector": {"matchLabels": _selector("speaker")},
            # One worker at a time: the others keep announcing every address meanwhile.
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {
                    "labels": {**_labels(options, "speaker"), **_selector("speaker")},
                    "annotations": {CONFIG_HASH: _data_hash(data)},
                },
                "spec": {
                    "serviceAccountName": SPEAKER,
                    "hostNetwork": True,  # BGP sessions from the worker's own addresses
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {
                                                "key": "kubernetes.io/hostname",
                                                "operator": "In",
                                                "values": options.worker_nodes,
                                            }
                                        ]
                                    }
                                ]
                            }
                        }
                    },
                    "securityContext": _pod_security(as_root=bool(capabilities)),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _controller(options: ManifestOptions, config: Mapping[str, Any]) -> list[dict[str, Any]]:
    data = {CONTROLLER_KEY: _document_text(config)}
    objects = _access(options, "controller", CONTROLLER_RULES, CONTROLLER_LEASE_RULES)
    objects.append(_config_map(options, CONTROLLER, "controller", data))
    objects.append(_deployment(options, config, data))
    if options.controller_replicas > 1:
        objects.append(_disruption_budget(options))
    return objects


def _deployment(
    options: ManifestOptions, config: Mapping[str, Any], data: Mapping[str, str]
) -> dict[str, Any]:
    tmp_volume, tmp_mount = _tmp_volume()
    container: dict[str, Any] = {
        "name": "controller",
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": [
            "spinelb",
            "controller",
            "--config",
            f"{CONFIG_DIR}/{CONTROLLER_KEY}",
            "--identity",
            "$(POD_NAME)",
        ],
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "resources": dict(options.controller_resources),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            tmp_mount,
        ],
    }
    listen = _api_listen(config, DEFAULT_CONTROLLER_API_PORT, section="controller")
    if listen is not None:
        # A standby is healthy too: readiness does not mean leadership.
        container["readinessProbe"] = _probe(listen, period=5, failures=2)
        container["livenessProbe"] = _probe(listen, period=10, failures=3)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(options, CONTROLLER, "controller"),
        "spec": {
            "replicas": options.controller_replicas,
            "selector": {"matchLabels": _selector("controller")},
            # A new replica starts before an old one stops: a standby always exists.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": {**_labels(options, "controller"), **_selector("controller")},
                    "annotations": {CONFIG_HASH: _data_hash(data)},
                },
                "spec": {
                    "serviceAccountName": CONTROLLER,
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "topologyKey": "kubernetes.io/hostname",
                                        "labelSelector": {"matchLabels": _selector("controller")},
                                    },
                                }
                            ]
                        }
                    },
                    "securityContext": _pod_security(as_root=False),
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": CONTROLLER}}, tmp_volume],
                },
            },
        },
    }


def _disruption_budget(options: ManifestOptions) -> dict[str, Any]:
    """Node drains leave one controller running (the leader, or a warm standby)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(options, CONTROLLER, "controller"),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": _selector("controller")}},
    }
