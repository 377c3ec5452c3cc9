"""spinelb k8s-snapshot: the Services, Nodes and EndpointSlices of a real (emulated) API, as JSON."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from lab.apiserver import ApiServerProcess, free_port
from lab.site import site_dir

SPINELB = str(Path(sys.executable).with_name("spinelb"))


def test_snapshot_prints_what_reconciliation_reads(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("apiVersion: v1\nkind: Node\nmetadata: {name: ncn-w001}\n"
                     "status: {conditions: [{type: Ready, status: 'True'}]}\n")
    config = tmp_path / "controller.yaml"
    config.write_text(f"kubernetes: {{kubeconfig: {kubeconfig}}}\npools: []\n")
    server = ApiServerProcess(free_port(), kubeconfig, [site_dir() / "services.yaml",
                                                        site_dir() / "endpointslices.yaml", nodes])

    async def run() -> subprocess.CompletedProcess[str]:
        await server.start()
        try:
            return await asyncio.to_thread(
                subprocess.run, [SPINELB, "k8s-snapshot", "--config", str(config)],
                capture_output=True, text=True, check=False, timeout=60)
        finally:
            await server.stop()

    done = asyncio.run(run())
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    names = {f"{s['metadata']['namespace']}/{s['metadata']['name']}" for s in data["services"]}
    assert "ceph-rgw/cray-s3" in names and len(names) == 17
    assert [n["metadata"]["name"] for n in data["nodes"]] == ["ncn-w001"]
    assert data["endpointslices"][0]["metadata"]["labels"]["kubernetes.io/service-name"] == (
        "cray-dhcp-kea-udp-nmn")
    assert data["services_resource_version"] and data["load_balancer_class"] is None


def test_an_unreachable_api_and_a_bad_file_fail_clearly(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: x, cluster: {{server: 'http://127.0.0.1:{free_port()}'}}}}]\n"
        "users: [{name: x, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: x, user: x}}]\n")
    config = tmp_path / "controller.yaml"
    config.write_text(f"kubernetes: {{kubeconfig: {kubeconfig}}}\npools: []\n")
    done = subprocess.run([SPINELB, "k8s-snapshot", "--config", str(config)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1 and done.stderr.startswith("the Kubernetes API failed:")
    config.write_text("kubernetes: {kubeconfig: /nonexistent}\npools: []\n")
    done = subprocess.run([SPINELB, "k8s-snapshot", "--config", str(config)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 2 and "kubernetes.kubeconfig: no such file" in done.stderr
