"""Kubernetes mode end to end: the roles apply the manifests to the lab's API server.

``ansible-playbook`` runs the speaker and controller roles with ``*_mode:
kubernetes`` against the reference site's inventory; kubernetes.core.k8s talks
to :mod:`lab.apiserver`'s emulator on 127.0.0.1.  The first run creates every
object, a second run changes nothing, and check mode (a server-side dry run)
writes nothing, on an empty cluster too (there the roles report the Namespace
and skip what would live in it: a real API server refuses those dry runs).
A new password or listener rolls the DaemonSet.  The BGP password reaches the
Secret and no output.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab.apiserver import RunningApiServer, running_apiserver

REPO = Path(__file__).resolve().parents[2]

PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
PASSWORD = "Md5-Apply-Only-7"
IMAGE = "registry.example.invalid/spinelb/spinelb:0.1.0"
NAMESPACE = "spinelb-system"
RECAP_LINE = re.compile(r"^(\S+)\s+:\s+(.*)$", re.MULTILINE)
COUNT = re.compile(r"(\w+)=(\d+)")
PLAY = [
    {
        "name": "The controller in the cluster",
        "hosts": "masters",
        "gather_facts": False,
        "roles": [{"role": "spinelb.fabric.controller"}],
    },
    {
        "name": "The speakers in the cluster",
        "hosts": "workers",
        "gather_facts": False,
        "roles": [{"role": "spinelb.fabric.speaker"}],
    },
]
EXPECTED = {
    ("namespaces", None, NAMESPACE),
    ("serviceaccounts", NAMESPACE, "spinelb-speaker"),
    ("serviceaccounts", NAMESPACE, "spinelb-controller"),
    ("clusterroles", None, "spinelb-speaker"),
    ("clusterroles", None, "spinelb-controller"),
    ("clusterrolebindings", None, "spinelb-speaker"),
    ("clusterrolebindings", None, "spinelb-controller"),
    ("roles", NAMESPACE, "spinelb-controller"),
    ("rolebindings", NAMESPACE, "spinelb-controller"),
    ("configmaps", NAMESPACE, "spinelb-speaker"),
    ("configmaps", NAMESPACE, "spinelb-controller"),
    ("secrets", NAMESPACE, "spinelb-bgp-password"),
    ("daemonsets", NAMESPACE, "spinelb-speaker"),
    ("deployments", NAMESPACE, "spinelb-controller"),
    ("poddisruptionbudgets", NAMESPACE, "spinelb-controller"),
}


@pytest.fixture(scope="module")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A collections path: spinelb.fabric (this repository) and kubernetes.core.

    scripts/collections.sh puts kubernetes.core in ./collections (a no-op when it is there).
    """
    subprocess.run([str(REPO / "scripts" / "collections.sh")], check=True, timeout=300)
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "spinelb").mkdir(parents=True)
    (root / "ansible_collections" / "spinelb" / "fabric").symlink_to(REPO)
    (root / "ansible_collections" / "kubernetes").mkdir()
    (root / "ansible_collections" / "kubernetes" / "core").symlink_to(
        REPO / "collections" / "ansible_collections" / "kubernetes" / "core"
    )
    return str(root)


async def run_playbook(
    playbook: Path, server: RunningApiServer, collections: str, *args: str
) -> tuple[dict[str, dict[str, int]], str]:
    """Run the play; returns (the recap's counts per host, the whole output)."""
    extra = {
        "speaker_mode": "kubernetes",
        "controller_mode": "kubernetes",
        "spinelb_image": IMAGE,
        "spinelb_kubeconfig": str(server.kubeconfig),
        "spinelb_bgp_password": PASSWORD,
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
    }
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=collections,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCALHOST_WARNING="0",
    )
    process = await asyncio.create_subprocess_exec(
        PLAYBOOK,
        "-i",
        "inventories/reference-site",
        str(playbook),
        "-e",
        json.dumps(extra),
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 240)
    text = out.decode()
    assert process.returncode == 0, text
    recap = text[text.index("PLAY RECAP") :]
    report = {
        host: {key: int(value) for key, value in COUNT.findall(counts)}
        for host, counts in RECAP_LINE.findall(recap)
    }
    assert report, text
    return report, text


def changed(report: dict[str, dict[str, int]]) -> int:
    return sum(counts["changed"] for counts in report.values())


def stored(server: RunningApiServer) -> set[tuple[str, str | None, str]]:
    found = set()
    for plural in {plural for plural, _, _ in EXPECTED}:
        for obj in server.emulator.objects_of(plural):
            meta = obj["metadata"]
            if meta.get("labels", {}).get("app.kubernetes.io/part-of") == "spinelb":
                found.add((plural, meta.get("namespace"), meta["name"]))
    return found


@pytest.mark.asyncio
async def test_roles_apply_the_manifests_once_and_check_mode_writes_nothing(
    tmp_path: Path, collections_path: str
) -> None:
    playbook = tmp_path / "kubernetes.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    async with running_apiserver(host="127.0.0.1") as server:
        emulator = server.emulator
        revision = emulator.revision
        report, dry_output = await run_playbook(playbook, server, collections_path, "--check")
        assert changed(report) > 0  # it would create everything...
        assert emulator.revision == revision  # ...and wrote nothing
        assert stored(server) == set()

        report, first_output = await run_playbook(playbook, server, collections_path, "--diff")
        assert changed(report) > 0
        assert stored(server) == EXPECTED
        secret = emulator.get_object("secrets", NAMESPACE, "spinelb-bgp-password")
        assert base64.b64decode(secret["data"]["bgp-password"]).decode() == PASSWORD
        daemon_set = emulator.get_object("daemonsets", NAMESPACE, "spinelb-speaker")
        pod = daemon_set["spec"]["template"]["spec"]
        assert pod["hostNetwork"] is True
        assert pod["containers"][0]["image"] == IMAGE
        config_map = emulator.get_object("configmaps", NAMESPACE, "spinelb-speaker")
        assert sorted(config_map["data"]) == ["ncn-w001.yaml", "ncn-w002.yaml", "ncn-w003.yaml"]

        revision = emulator.revision
        report, second_output = await run_playbook(playbook, server, collections_path, "--diff")
        assert changed(report) == 0, second_output
        assert emulator.revision == revision

        # A change in check mode is reported with its diff, and still nothing is written.
        report, check_output = await run_playbook(
            playbook, server, collections_path, "--check", "--diff", "-e", "speaker_log_level=debug"
        )
        assert changed(report) > 0
        assert "+    log_level: debug" in check_output or "log_level: debug" in check_output
        assert emulator.revision == revision

        encoded = base64.b64encode(PASSWORD.encode()).decode()
        for output in (dry_output, first_output, second_output, check_output):
            assert PASSWORD not in output and encoded not in output


@pytest.mark.asyncio
async def test_a_new_password_or_listener_rolls_the_speakers(
    tmp_path: Path, collections_path: str
) -> None:
    playbook = tmp_path / "kubernetes.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    async with running_apiserver(host="127.0.0.1") as server:
        emulator = server.emulator
        await run_playbook(playbook, server, collections_path)
        before = emulator.get_object("daemonsets", NAMESPACE, "spinelb-speaker")
        template = before["spec"]["template"]
        assert "spinelb.io/password-changed-at" not in template["metadata"]["annotations"]
        assert "add" not in template["spec"]["containers"][0]["securityContext"]["capabilities"]

        new_password = "Md5-Rotated-Only-8"
        report, output = await run_playbook(
            playbook,
            server,
            collections_path,
            "-e",
            f"spinelb_bgp_password={new_password}",
            "-e",
            "speaker_listen=0.0.0.0:179",
        )
        assert changed(report) > 0
        secret = emulator.get_object("secrets", NAMESPACE, "spinelb-bgp-password")
        assert base64.b64decode(secret["data"]["bgp-password"]).decode() == new_password
        after = emulator.get_object("daemonsets", NAMESPACE, "spinelb-speaker")["spec"]["template"]
        annotations = after["metadata"]["annotations"]
        assert "spinelb.io/password-changed-at" in annotations  # the pods restart
        assert (
            annotations["spinelb.io/config-hash"]
            != template["metadata"]["annotations"]["spinelb.io/config-hash"]
        )
        container = after["spec"]["containers"][0]
        assert container["securityContext"]["capabilities"]["add"] == ["NET_BIND_SERVICE"]
        assert new_password not in output and PASSWORD not in output

        # Back without the listener: client-side apply removes the capability again.
        await run_playbook(
            playbook, server, collections_path, "-e", f"spinelb_bgp_password={new_password}"
        )
        final = emulator.get_object("daemonsets", NAMESPACE, "spinelb-speaker")["spec"]["template"]
        assert "add" not in final["spec"]["containers"][0]["securityContext"]["capabilities"]
