"""The lab's API server takes spinelb's own manifests: workloads, RBAC, Secrets, server dry runs.

kubectl applies the manifests of :mod:`spinelb.deploy.manifests` (a server dry
run first, which must store nothing and tell no watcher), and a second apply
changes nothing.  Raw requests check the rest of what kubernetes.core relies
on: ``dryRun=All`` on patch and delete, ``stringData``, and nulls dropped from
a merge-patched list.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from test_manifests import options

from lab.apiserver import RunningApiServer, running_apiserver
from spinelb.deploy.manifests import manifests

NAMESPACE = "spinelb-system"


def kubectl(server: RunningApiServer, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(cache), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.asyncio
async def test_kubectl_applies_the_manifests_after_a_dry_run_that_stores_nothing(
    tmp_path: Path,
) -> None:
    objects = manifests(options(password="Kubectl-Pw-1", listen="0.0.0.0:179"))
    path = tmp_path / "spinelb.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    async with running_apiserver() as server:
        emulator = server.emulator
        watcher = emulator._watcher(emulator._served("daemonsets"), None, {})
        emulator._watchers.add(watcher)  # a watch of DaemonSets, as a controller would hold
        revision = emulator.revision

        dry = await asyncio.to_thread(
            kubectl, server, tmp_path / "cache", "apply", "--dry-run=server", "-f", str(path)
        )
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.count("(server dry run)") == len(objects)
        assert emulator.revision == revision
        assert emulator.objects_of("daemonsets") == []
        assert watcher.queue.empty()

        applied = await asyncio.to_thread(
            kubectl, server, tmp_path / "cache", "apply", "-f", str(path)
        )
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.count(" created") == len(objects)
        assert watcher.queue.qsize() == 1  # the DaemonSet's ADDED
        for obj in objects:
            kind = obj["kind"].lower()
            plural = {"poddisruptionbudget": "poddisruptionbudgets"}.get(kind, kind + "s")
            stored = emulator.get_object(
                plural, obj["metadata"].get("namespace"), obj["metadata"]["name"]
            )
            content = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
            assert {k: stored[k] for k in content} == content, obj["kind"]

        revision = emulator.revision
        again = await asyncio.to_thread(
            kubectl, server, tmp_path / "cache", "apply", "-f", str(path)
        )
        assert again.returncode == 0, again.stderr
        assert emulator.revision == revision  # nothing changed
        listed = await asyncio.to_thread(
            kubectl,
            server,
            tmp_path / "cache",
            "get",
            "ds,deploy,pdb,sa,secret,cm,role",
            "-n",
            NAMESPACE,
            "-o",
            "name",
        )
        assert "daemonset.apps/spinelb-speaker" in listed.stdout
        assert "poddisruptionbudget.policy/spinelb-controller" in listed.stdout


async def request(
    session: aiohttp.ClientSession, method: str, url: str, body: Any = None, **headers: str
) -> tuple[int, dict[str, Any]]:
    async with session.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json()


@pytest.mark.asyncio
async def test_dry_run_patch_and_delete_answer_but_change_nothing() -> None:
    (daemon_set,) = [o for o in manifests(options()) if o["kind"] == "DaemonSet"]
    async with running_apiserver([daemon_set]) as server, aiohttp.ClientSession() as session:
        url = f"{server.url}/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/spinelb-speaker"
        before = server.emulator.get_object("daemonsets", NAMESPACE, "spinelb-speaker")
        patch = {"spec": {"template": {"metadata": {"annotations": {"x": "y"}}}}}
        status, answer = await request(
            session,
            "PATCH",
            url + "?dryRun=All",
            patch,
            **{"Content-Type": "application/merge-patch+json"},
        )
        assert status == 200
        assert answer["spec"]["template"]["metadata"]["annotations"]["x"] == "y"
        status, _ = await request(session, "DELETE", url + "?dryRun=All")
        assert status == 200
        assert server.emulator.get_object("daemonsets", NAMESPACE, "spinelb-speaker") == before


@pytest.mark.asyncio
async def test_string_data_is_stored_as_data_and_merge_patched_nulls_vanish() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "namespace": NAMESPACE},
        "stringData": {"key": "value"},
    }
    (daemon_set,) = [
        o for o in manifests(options(listen="0.0.0.0:179")) if o["kind"] == "DaemonSet"
    ]
    async with (
        running_apiserver([secret, daemon_set]) as server,
        aiohttp.ClientSession() as session,
    ):
        stored = server.emulator.get_object("secrets", NAMESPACE, "s")
        assert stored["data"] == {"key": base64.b64encode(b"value").decode()}
        assert "stringData" not in stored
        # kubernetes.core's client-side apply removes a field this way: the whole list, a null inside.
        containers = daemon_set["spec"]["template"]["spec"]["containers"]
        containers[0]["securityContext"]["capabilities"]["add"] = None
        url = f"{server.url}/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/spinelb-speaker"
        status, answer = await request(
            session,
            "PATCH",
            url,
            {"spec": {"template": {"spec": {"containers": containers}}}},
            **{"Content-Type": "application/merge-patch+json"},
        )
        assert status == 200
        capabilities = answer["spec"]["template"]["spec"]["containers"][0]["securityContext"][
            "capabilities"
        ]
        assert capabilities == {"drop": ["ALL"]}
