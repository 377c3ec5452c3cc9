"""Kubernetes mode's manifests: least-privilege RBAC, secrets only in the Secret, valid objects.

Every object is checked offline against the Kubernetes 1.30 schemas with
``kubernetes-validate`` (strict: an unknown field fails), for each shape the
options can give (password or not, BGP listener or not).
"""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

import kubernetes_validate
import pytest
import yaml
from test_spine_model import inventory_data

from spinelb.config import parse_config, parse_controller_config
from spinelb.deploy import ControllerOptions, SpeakerOptions, controller_document, speaker_document
from spinelb.deploy.manifests import (
    CONFIG_HASH,
    PASSWORD_FILE,
    ManifestError,
    ManifestOptions,
    manifests,
)
from spinelb.spine import Site, load_site

KUBERNETES = "1.30.0"
IMAGE = "registry.example.invalid/spinelb/spinelb:0.1.0"
PASSWORD = "Md5-Only-In-Secret-9"
WORKERS = ["ncn-w001", "ncn-w002", "ncn-w003"]

# docs/kubernetes.md, "What each needs from the API (RBAC)": (API group, resource, verb).
SPEAKER_TABLE = {
    ("", "services", "list"),
    ("", "services", "watch"),
    ("discovery.k8s.io", "endpointslices", "list"),
    ("discovery.k8s.io", "endpointslices", "watch"),
    ("", "nodes", "list"),
    ("", "nodes", "watch"),
}
CONTROLLER_CLUSTER_TABLE = {
    ("", "services", "get"),
    ("", "services", "list"),
    ("", "services", "watch"),
    ("", "services/status", "patch"),
    ("", "events", "create"),
    ("", "events", "patch"),
}
CONTROLLER_NAMESPACE_TABLE = {
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
}


def site(password: str | None = None) -> Site:
    data = inventory_data()
    if password is not None:
        data[0]["spinelb_bgp_password"] = password
    return load_site(*data)


def options(
    *, password: str | None = None, listen: str | None = None, **changes: Any
) -> ManifestOptions:
    """The reference site's speakers and controller, as the role renders them for pods."""
    the_site = site(password)
    speaker = SpeakerOptions(password_file=PASSWORD_FILE if password else None, listen=listen)
    return ManifestOptions(
        image=IMAGE,
        speaker_configs={w: speaker_document(the_site, w, speaker) for w in the_site.workers},
        controller_config=controller_document(the_site, ControllerOptions()),
        md5_password=the_site.bgp.password,
        **changes,
    )


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in by_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def grants(role: Mapping[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def pod_spec(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (workload,) = by_kind(objects, kind)
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


# --- RBAC ------------------------------------------------------------------------------------


def test_rbac_is_exactly_the_documented_table() -> None:
    objects = manifests(options(password=PASSWORD, listen="0.0.0.0:179"))
    assert {o["metadata"]["name"] for o in by_kind(objects, "ClusterRole")} == {
        "spinelb-speaker",
        "spinelb-controller",
    }
    assert grants(one(objects, "ClusterRole", "spinelb-speaker")) == SPEAKER_TABLE
    assert grants(one(objects, "ClusterRole", "spinelb-controller")) == CONTROLLER_CLUSTER_TABLE
    (role,) = by_kind(objects, "Role")  # the Lease, in the controller's namespace only
    assert role["metadata"]["namespace"] == "spinelb-system"
    assert grants(role) == CONTROLLER_NAMESPACE_TABLE
    for rule in [r for o in objects if o["kind"] in ("Role", "ClusterRole") for r in o["rules"]]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}  # no nonResourceURLs either
        assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"]


def test_each_binding_gives_its_role_to_its_own_service_account_only() -> None:
    objects = manifests(options())
    bindings = by_kind(objects, "ClusterRoleBinding") + by_kind(objects, "RoleBinding")
    assert len(bindings) == 3
    for binding in bindings:
        name = binding["metadata"]["name"]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": binding["kind"].removesuffix("Binding"),
            "name": name,
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": name, "namespace": "spinelb-system"}
        ]
    service_accounts = {o["metadata"]["name"] for o in by_kind(objects, "ServiceAccount")}
    assert service_accounts == {"spinelb-speaker", "spinelb-controller"}
    assert pod_spec(objects, "DaemonSet")["serviceAccountName"] == "spinelb-speaker"
    assert pod_spec(objects, "Deployment")["serviceAccountName"] == "spinelb-controller"


# --- secrets ---------------------------------------------------------------------------------


def test_the_password_is_in_the_secret_only() -> None:
    opts = options(password=PASSWORD)
    objects = manifests(opts)
    (secret,) = by_kind(objects, "Secret")
    assert base64.b64decode(secret["data"]["bgp-password"]).decode() == PASSWORD
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    for obj in objects:
        if obj is not secret:
            text = json.dumps(obj)
            assert PASSWORD not in text and encoded not in text, obj["kind"]
    assert PASSWORD not in repr(opts)
    for config_map in by_kind(objects, "ConfigMap"):
        for text in config_map["data"].values():
            assert "password:" not in text
    spec = pod_spec(objects, "DaemonSet")
    assert {
        "name": "secrets",
        "secret": {"secretName": secret["metadata"]["name"], "defaultMode": 0o440},
    } in spec["volumes"]
    mounts = spec["containers"][0]["volumeMounts"]
    assert {"name": "secrets", "mountPath": "/etc/spinelb-secrets", "readOnly": True} in mounts
    assert PASSWORD_FILE.startswith("/etc/spinelb-secrets/")
    configs = [
        yaml.safe_load(t) for t in one(objects, "ConfigMap", "spinelb-speaker")["data"].values()
    ]
    assert {p["password_file"] for c in configs for p in c["peers"]} == {PASSWORD_FILE}
    # The controller's pods never see the Secret.
    assert "secret" not in json.dumps(pod_spec(objects, "Deployment"))


def test_no_password_no_secret() -> None:
    objects = manifests(options())
    assert by_kind(objects, "Secret") == []
    assert "spinelb-secrets" not in json.dumps(objects)


def test_an_inline_password_is_refused_without_being_shown() -> None:
    opts = options()
    configs = {node: json.loads(json.dumps(c)) for node, c in opts.speaker_configs.items()}
    configs["ncn-w002"]["peers"][1]["password"] = PASSWORD
    with pytest.raises(ManifestError) as caught:
        manifests(dataclasses.replace(opts, speaker_configs=configs))
    assert "speaker_configs[ncn-w002].peers[1].password: a password in a ConfigMap" in str(
        caught.value
    )
    assert PASSWORD not in str(caught.value)


def test_password_file_must_be_the_secret_and_only_with_a_password() -> None:
    with_password = options(password=PASSWORD)
    with pytest.raises(ManifestError, match=r"must be /etc/spinelb-secrets/bgp-password"):
        manifests(dataclasses.replace(with_password, speaker_configs=options().speaker_configs))
    with pytest.raises(ManifestError, match=r"the pod would have no such file"):
        manifests(dataclasses.replace(with_password, md5_password=None))


# --- the speaker's privileges ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("listen", "low_port"),
    [(None, False), ("0.0.0.0:179", True), ("0.0.0.0:1179", False), ("10.252.1.10:1023", True)],
)
def test_net_bind_service_only_for_a_listener_below_1024(
    listen: str | None, low_port: bool
) -> None:
    objects = manifests(options(listen=listen))
    spec = pod_spec(objects, "DaemonSet")
    container = spec["containers"][0]["securityContext"]
    assert container["capabilities"]["drop"] == ["ALL"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    if low_port:
        assert container["capabilities"]["add"] == ["NET_BIND_SERVICE"]
        # Kubernetes has no ambient capabilities: only uid 0 can use an added one.
        assert spec["securityContext"]["runAsUser"] == 0
        assert spec["securityContext"]["runAsNonRoot"] is False
    else:
        assert "add" not in container["capabilities"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
    controller = pod_spec(objects, "Deployment")
    assert controller["securityContext"]["runAsNonRoot"] is True
    assert controller["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize(("listen", "added"), [
    (None, ["NET_RAW"]), ("0.0.0.0:179", ["NET_BIND_SERVICE", "NET_RAW"]),
])
def test_net_raw_only_for_a_layer2_pool(listen: str | None, added: list[str]) -> None:
    base = options(listen=listen)
    configs = {}
    for worker, config in base.speaker_configs.items():
        pools = [dict(pool) for pool in config["pools"]]
        pools[0].update(mode="layer2", interfaces=["can"])
        configs[worker] = {**config, "pools": pools}
    spec = pod_spec(manifests(dataclasses.replace(base, speaker_configs=configs)), "DaemonSet")
    container = spec["containers"][0]["securityContext"]
    assert container["capabilities"] == {"drop": ["ALL"], "add": added}
    assert spec["securityContext"]["runAsUser"] == 0  # an added capability needs uid 0
    plain = pod_spec(manifests(options()), "DaemonSet")["containers"][0]["securityContext"]
    assert "add" not in plain["capabilities"]


# --- shapes ----------------------------------------------------------------------------------


def test_speaker_daemonset_runs_on_the_workers_with_the_host_network() -> None:
    objects = manifests(options())
    (daemon_set,) = by_kind(objects, "DaemonSet")
    spec = daemon_set["spec"]
    assert spec["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1},
    }
    pod = spec["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert pod["dnsPolicy"] == "ClusterFirstWithHostNet"
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": WORKERS}
            ]
        }
    ]
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["command"] == [
        "spinelb",
        "speaker",
        "--config",
        "/etc/spinelb/$(NODE_NAME).yaml",
    ]
    assert container["env"] == [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}
    ]
    assert {"name": "config", "mountPath": "/etc/spinelb", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert {"name": "config", "configMap": {"name": "spinelb-speaker"}} in pod["volumes"]
    probe = container["livenessProbe"]["exec"]["command"]
    assert probe[:2] == ["python3", "-c"] and probe[3] == "127.0.0.1:7473"
    assert "/healthz" in probe[2]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_each_worker_has_its_own_valid_speaker_config_in_the_configmap() -> None:
    objects = manifests(options())
    data = one(objects, "ConfigMap", "spinelb-speaker")["data"]
    assert sorted(data) == [f"{w}.yaml" for w in WORKERS]
    for worker in WORKERS:
        config = parse_config(yaml.safe_load(data[f"{worker}.yaml"]))
        assert config.node_name == worker
        assert config.kubernetes is not None and config.kubernetes.kubeconfig is None  # in-cluster
    controller = one(objects, "ConfigMap", "spinelb-controller")["data"]
    assert list(controller) == ["controller.yaml"]
    parsed = parse_controller_config(yaml.safe_load(controller["controller.yaml"]))
    assert parsed.kubernetes.namespace == "spinelb-system"


def test_a_config_change_rolls_the_pods_through_the_template_hash() -> None:
    before = manifests(options())
    after = manifests(options(listen="0.0.0.0:1179"))

    def hashes(objects: list[dict[str, Any]]) -> dict[str, str]:
        return {
            o["kind"]: o["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH]
            for o in objects
            if o["kind"] in ("DaemonSet", "Deployment")
        }

    assert hashes(before) == hashes(manifests(options()))  # stable
    assert hashes(before)["DaemonSet"] != hashes(after)["DaemonSet"]
    assert hashes(before)["Deployment"] == hashes(after)["Deployment"]


def test_controller_deployment_is_leader_elected_replicas_with_a_budget() -> None:
    objects = manifests(options())
    (deployment,) = by_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"][:4] == [
        "spinelb",
        "controller",
        "--config",
        "/etc/spinelb/controller.yaml",
    ]
    assert container["readinessProbe"]["exec"]["command"][3] == "127.0.0.1:7474"
    (budget,) = by_kind(objects, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == deployment["spec"]["selector"]
    single = manifests(options(controller_replicas=1))
    assert by_kind(single, "PodDisruptionBudget") == []


def test_components_split_the_objects_between_the_two_roles() -> None:
    opts = options(password=PASSWORD)
    everything = manifests(opts)
    speaker = manifests(opts, "speaker")
    controller = manifests(opts, "controller")

    def names(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(o["kind"], o["metadata"]["name"]) for o in objects]

    assert speaker[0] == controller[0] == everything[0]  # the Namespace, in both
    assert names(everything) == names(speaker) + names(controller)[1:]
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/component"] == "speaker" for o in speaker[1:]
    )
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/component"] == "controller"
        for o in controller[1:]
    )
    assert len(set(names(everything))) == len(everything)
    with pytest.raises(ManifestError, match="controller_config: missing"):
        manifests(dataclasses.replace(opts, controller_config=None), "controller")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"image": " "}, "image: must not be empty"),
        ({"namespace": "Spinelb"}, "namespace 'Spinelb': not a DNS label"),
        ({"image_pull_policy": "Sometimes"}, "image_pull_policy 'Sometimes'"),
        ({"controller_replicas": 0}, "controller_replicas: at least 1"),
        ({"namespace": "other"}, "controller_config.kubernetes.namespace: 'spinelb-system'"),
    ],
)
def test_bad_options_are_named(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ManifestError) as caught:
        manifests(dataclasses.replace(options(), **change))
    assert problem in str(caught.value)


def test_kubeconfig_and_mixed_api_addresses_are_refused() -> None:
    the_site = site()
    configs = {w: speaker_document(the_site, w, SpeakerOptions()) for w in the_site.workers}
    configs["ncn-w001"] = speaker_document(
        the_site,
        "ncn-w001",
        SpeakerOptions(kubeconfig="/etc/spinelb/kubeconfig", api_listen="127.0.0.1:9000"),
    )
    opts = ManifestOptions(image=IMAGE, speaker_configs=configs)
    with pytest.raises(ManifestError) as caught:
        manifests(opts)
    assert "speaker_configs[ncn-w001].kubernetes.kubeconfig: a pod uses its service account" in str(
        caught.value
    )
    assert "every worker's api.listen must be the same" in str(caught.value)


# --- offline schema validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "listen", "replicas"),
    [(None, None, 2), (PASSWORD, "0.0.0.0:179", 2), (PASSWORD, None, 1)],
)
def test_every_object_is_valid_for_kubernetes_1_30(
    password: str | None, listen: str | None, replicas: int
) -> None:
    objects = manifests(options(password=password, listen=listen, controller_replicas=replicas))
    assert len(objects) >= 13
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.path)}"
            )


def test_the_validator_catches_a_misspelt_field() -> None:
    """The check above means something: strict validation rejects an unknown field."""
    objects = manifests(options())
    daemon_set = json.loads(json.dumps(by_kind(objects, "DaemonSet")[0]))
    daemon_set["spec"]["template"]["spec"]["hostNetwrok"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(daemon_set, KUBERNETES, strict=True)


# --- the probe -------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "exit_status"), [(200, 0), (503, 1)])
def test_the_probe_passes_only_on_a_healthy_answer(code: int, exit_status: int) -> None:
    """The probes' one-liner, run as the kubelet runs it, against a stand-in local API."""

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(code if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Health) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            (daemon_set,) = by_kind(manifests(options()), "DaemonSet")
            command = daemon_set["spec"]["template"]["spec"]["containers"][0]["livenessProbe"][
                "exec"
            ]["command"]
            address = f"127.0.0.1:{server.server_address[1]}"
            run = subprocess.run(
                [sys.executable, *command[1:3], address], capture_output=True, timeout=30
            )
        finally:
            server.shutdown()
    assert run.returncode == exit_status
