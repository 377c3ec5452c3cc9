"""The lab's API server (lab/apiserver.py) against the official client, aio client and kubectl."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as sync_client
from kubernetes import config as sync_config
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config
from kubernetes.aio import watch as aio_watch
from waiting import wait_for

from lab.apiserver import (
    ApiServerProcess,
    RunningApiServer,
    free_port,
    human_duration,
    json_patch,
    merge_patch,
    node_objects,
    running_apiserver,
    service_external_ip,
    strategic_merge_patch,
)


def service(name: str, namespace: str = "demo", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80, "protocol": "TCP"}], **spec},
    }


def with_server(
    objects: list[dict[str, Any]], body: Callable[[RunningApiServer], Awaitable[None]]
) -> None:
    async def run() -> None:
        async with running_apiserver(objects) as server:
            await body(server)

    asyncio.run(run())


def kubectl(
    server: RunningApiServer, cache: Path, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(server.kubeconfig), "--cache-dir", str(cache), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=30,
    )


# --- pure parts ---------------------------------------------------------------------------------


def test_external_ip_column_matches_kube_apiserver() -> None:
    lb = service("a")
    assert service_external_ip(lb) == "<pending>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "10.102.10.129"}, {"ip": "fd00:10::5"}]}}
    assert service_external_ip(lb) == "10.102.10.129,fd00:10::5"
    lb["spec"]["externalIPs"] = ["192.0.2.1"]
    assert service_external_ip(lb) == "10.102.10.129,fd00:10::5,192.0.2.1"
    assert service_external_ip(service("b", type="ClusterIP")) == "<none>"
    assert (
        service_external_ip(service("c", type="ExternalName", externalName="x.example"))
        == "x.example"
    )


def test_human_duration_like_kubectl() -> None:
    assert [
        human_duration(s)
        for s in (0, 119, 120, 150, 600, 3 * 3600 + 60, 9 * 3600, 3 * 86400 + 7200)
    ] == [
        "0s",
        "119s",
        "2m",
        "2m30s",
        "10m",
        "3h1m",
        "9h",
        "3d2h",
    ]


def test_patches() -> None:
    obj = {
        "metadata": {"labels": {"a": "1", "b": "2"}},
        "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]},
    }
    assert merge_patch(obj, {"metadata": {"labels": {"a": None, "c": "3"}}})["metadata"][
        "labels"
    ] == {"b": "2", "c": "3"}
    # strategic: ports merge by port; $patch: delete removes one; directives are dropped
    patched = strategic_merge_patch(
        obj,
        {
            "spec": {
                "$setElementOrder/ports": [{"port": 80}],
                "ports": [{"port": 80, "name": "web"}, {"port": 443, "$patch": "delete"}],
            }
        },
    )
    assert patched["spec"]["ports"] == [{"port": 80, "name": "web"}]
    assert (
        json_patch(obj, [{"op": "replace", "path": "/metadata/labels/a", "value": "9"}])[
            "metadata"
        ]["labels"]["a"]
        == "9"
    )


# --- the official clients -----------------------------------------------------------------------


def test_sync_client_create_list_status_subresource_and_conflict() -> None:
    async def body(server: RunningApiServer) -> None:
        def scenario() -> None:
            api = sync_config.new_client_from_config(config_file=str(server.kubeconfig))
            v1 = sync_client.CoreV1Api(api)
            # Like kube-apiserver, a created Service's status starts empty.
            asked = {
                **service("web"),
                "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}]}},
            }
            created = v1.create_namespaced_service("demo", asked)
            assert created.status.load_balancer.ingress is None
            assert created.metadata.uid and created.metadata.creation_timestamp
            assert created.metadata.resource_version
            assert created.spec.cluster_ip and created.spec.ports[0].node_port >= 30000
            listed = v1.list_service_for_all_namespaces()
            assert [s.metadata.name for s in listed.items] == ["web"]
            assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

            ingress = {"status": {"loadBalancer": {"ingress": [{"ip": "10.102.10.140"}]}}}
            # The main resource cannot change status; the status subresource changes only status.
            same = v1.patch_namespaced_service(
                "web", "demo", {**ingress, "metadata": {"labels": {"x": "y"}}}
            )
            assert same.status.load_balancer.ingress is None and same.metadata.labels["x"] == "y"
            patched = v1.patch_namespaced_service_status(
                "web", "demo", {**ingress, "spec": {"type": "ClusterIP"}}
            )
            assert patched.status.load_balancer.ingress[0].ip == "10.102.10.140"
            assert patched.spec.type == "LoadBalancer"
            assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

            # A no-op patch bumps nothing.
            again = v1.patch_namespaced_service_status("web", "demo", ingress)
            assert again.metadata.resource_version == patched.metadata.resource_version

            # PUT with the stale resourceVersion: 409.
            stale = v1.read_namespaced_service("web", "demo")
            v1.patch_namespaced_service("web", "demo", {"metadata": {"annotations": {"a": "b"}}})
            stale.metadata.labels["y"] = "z"
            with pytest.raises(sync_client.ApiException) as conflict:
                v1.replace_namespaced_service("web", "demo", stale)
            assert conflict.value.status == 409
            fresh = v1.read_namespaced_service("web", "demo")
            fresh.metadata.labels["y"] = "z"
            assert v1.replace_namespaced_service("web", "demo", fresh).metadata.labels["y"] == "z"

            with pytest.raises(sync_client.ApiException) as exists:
                v1.create_namespaced_service("demo", service("web"))
            assert exists.value.status == 409
            v1.delete_namespaced_service("web", "demo")
            with pytest.raises(sync_client.ApiException) as missing:
                v1.read_namespaced_service("web", "demo")
            assert missing.value.status == 404
            assert "demo" in [
                n.metadata.name for n in v1.list_namespace().items
            ]  # created implicitly
            api.close()

        await asyncio.to_thread(scenario)

    with_server([], body)


def test_selectors_on_list_and_watch() -> None:
    async def body(server: RunningApiServer) -> None:
        api = await aio_config.new_client_from_config(config_file=str(server.kubeconfig))
        v1 = aio_client.CoreV1Api(api)
        listed = await v1.list_service_for_all_namespaces(label_selector="app=a")
        assert [s.metadata.name for s in listed.items] == ["a"]
        listed = await v1.list_service_for_all_namespaces(label_selector="app!=a")
        assert sorted(s.metadata.name for s in listed.items) == ["b", "c"]
        listed = await v1.list_service_for_all_namespaces(field_selector="metadata.namespace=other")
        assert [s.metadata.name for s in listed.items] == ["c"]
        listed = await v1.list_namespaced_service("demo", field_selector="metadata.name=b")
        assert [s.metadata.name for s in listed.items] == ["b"]

        # A watch with a selector sees an object leave it as DELETED and enter it as ADDED.
        version = listed.metadata.resource_version
        server.emulator.patch_object(
            "services", "demo", "a", {"metadata": {"labels": {"app": "z"}}}
        )
        server.emulator.patch_object(
            "services", "demo", "b", {"metadata": {"labels": {"app": "a"}}}
        )
        w = aio_watch.Watch()
        seen = []
        async for event in w.stream(
            v1.list_service_for_all_namespaces,
            label_selector="app=a",
            resource_version=version,
            timeout_seconds=2,
        ):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 2:
                w.stop()
        assert seen == [("DELETED", "a"), ("ADDED", "b")]
        await api.close()

    with_server([service("a"), service("b"), service("c", namespace="other")], body)


def test_aio_watch_resumes_from_resource_version_and_gets_410_after_compaction() -> None:
    async def body(server: RunningApiServer) -> None:
        api = await aio_config.new_client_from_config(config_file=str(server.kubeconfig))
        v1 = aio_client.CoreV1Api(api)
        first = await v1.create_namespaced_service("demo", service("first"))
        await v1.create_namespaced_service("demo", service("second"))
        await v1.delete_namespaced_service("first", "demo")

        events = []
        async with aio_watch.Watch() as w:
            async for event in w.stream(
                v1.list_namespaced_service,
                "demo",
                resource_version=first.metadata.resource_version,
                timeout_seconds=1,
            ):
                events.append((event["type"], event["object"].metadata.name))
        assert events == [("ADDED", "second"), ("DELETED", "first")]

        # The knob ends open watches: the stream ends cleanly.
        async def read_until_end() -> list[str]:
            names = []
            async with aio_watch.Watch() as w:
                async for event in w.stream(v1.list_namespaced_service, "demo", timeout_seconds=60):
                    names.append(event["object"].metadata.name)
            return names

        reader = asyncio.create_task(read_until_end())
        await wait_for(server.emulator.expire_watches)  # once the watch is open, end it
        assert await asyncio.wait_for(reader, 10) == ["second"]

        server.emulator.compact()
        with pytest.raises(aio_client.ApiException) as gone:
            async with aio_watch.Watch() as w:
                async for _event in w.stream(
                    v1.list_namespaced_service,
                    "demo",
                    resource_version=first.metadata.resource_version,
                    timeout_seconds=1,
                ):
                    pass
        assert gone.value.status == 410
        await api.close()

    with_server([], body)


# --- kubectl -----------------------------------------------------------------------------------


def test_kubectl_get_create_label_delete_events(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    seeded = service("cray-s3", namespace="ceph-rgw", loadBalancerIP="10.102.10.129")
    seeded["status"] = {"loadBalancer": {"ingress": [{"ip": "10.102.10.129"}]}}
    objects = [
        seeded,
        service("pending", namespace="ims"),
        *node_objects({"ncn-w001": "10.252.1.7"}),
    ]

    async def body(server: RunningApiServer) -> None:
        def run(*args: str, stdin: str | None = None) -> str:
            result = kubectl(server, cache, *args, stdin=stdin)
            assert result.returncode == 0, result.stderr
            return result.stdout

        def scenario() -> None:
            rows = [line.split() for line in run("get", "service", "-A").splitlines()]
            assert rows[0] == [
                "NAMESPACE",
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ]
            by_name = {row[1]: row for row in rows[1:]}
            assert by_name["cray-s3"][0] == "ceph-rgw" and by_name["cray-s3"][4] == "10.102.10.129"
            assert by_name["pending"][4] == "<pending>"
            assert run("get", "svc", "-A", "-o", "name").split() == [
                "service/cray-s3",
                "service/pending",
            ]

            manifest = yaml.safe_dump(service("made-by-kubectl", namespace="fresh"))
            (tmp_path / "svc.yaml").write_text(manifest)
            assert "created" in run("create", "-f", str(tmp_path / "svc.yaml"))
            made = json.loads(run("get", "service", "-n", "fresh", "made-by-kubectl", "-o", "json"))
            assert made["metadata"]["uid"] and made["status"] == {"loadBalancer": {}}

            assert "labeled" in run(
                "label",
                "node",
                "ncn-w001",
                "node.kubernetes.io/exclude-from-external-load-balancers=true",
            )
            node = server.emulator.get_object("nodes", None, "ncn-w001")
            assert (
                node["metadata"]["labels"][
                    "node.kubernetes.io/exclude-from-external-load-balancers"
                ]
                == "true"
            )
            assert "annotated" in run(
                "annotate", "service", "-n", "fresh", "made-by-kubectl", "note=hello"
            )
            run(
                "patch",
                "service",
                "-n",
                "fresh",
                "made-by-kubectl",
                "-p",
                '{"spec":{"ports":[{"port":80,"name":"http"}]}}',
            )
            patched = server.emulator.get_object("services", "fresh", "made-by-kubectl")
            assert (
                patched["spec"]["ports"][0]["name"] == "http"
                and patched["metadata"]["annotations"]["note"] == "hello"
            )
            nodes = run("get", "nodes").splitlines()
            assert nodes[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
            assert nodes[1].split()[:3] == ["ncn-w001", "Ready", "<none>"]

            assert "deleted" in run("delete", "service", "-n", "fresh", "made-by-kubectl")
            assert "made-by-kubectl" not in run("get", "service", "-A")

        await asyncio.to_thread(scenario)
        server.emulator.create_object(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": "cray-s3.1", "namespace": "ceph-rgw"},
                "involvedObject": {"kind": "Service", "namespace": "ceph-rgw", "name": "cray-s3"},
                "reason": "IPAllocated",
                "message": "Assigned IP [10.102.10.129]",
                "type": "Normal",
                "lastTimestamp": "2020-01-01T00:00:00Z",
                "count": 1,
            }
        )
        out = await asyncio.to_thread(run, "get", "events", "-n", "ceph-rgw")
        header, row = out.splitlines()
        assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
        assert row.split()[1:] == [
            "Normal",
            "IPAllocated",
            "service/cray-s3",
            "Assigned",
            "IP",
            "[10.102.10.129]",
        ]

    with_server(objects, body)


# --- as a process ------------------------------------------------------------------------------


def test_process_loads_yaml_writes_kubeconfig_and_stops_on_sigterm(tmp_path: Path) -> None:
    objects = tmp_path / "objects.yaml"
    objects.write_text(
        yaml.safe_dump_all([service("s1"), *node_objects({"ncn-w001": "10.252.1.7"})])
    )
    kubeconfig = tmp_path / "kubeconfig"

    async def scenario() -> None:
        process = ApiServerProcess(free_port(), kubeconfig, [objects])
        async with process:
            config = yaml.safe_load(kubeconfig.read_text())
            assert config["clusters"][0]["cluster"]["server"] == process.url
            api = await aio_config.new_client_from_config(config_file=str(kubeconfig))
            v1 = aio_client.CoreV1Api(api)
            assert [n.metadata.name for n in (await v1.list_node()).items] == ["ncn-w001"]
            assert [
                s.metadata.name for s in (await v1.list_service_for_all_namespaces()).items
            ] == ["s1"]
            await api.close()
            assert process.process is not None
            child = process.process
        assert child.returncode == 0

    asyncio.run(scenario())


def test_table_watch_for_kubectl_get_w() -> None:
    """``kubectl get -w`` asks for Tables on the watch too: each event carries a one-row Table."""
    import aiohttp

    async def body(server: RunningApiServer) -> None:
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        url = f"{server.url}/api/v1/services?watch=true&timeoutSeconds=1"
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers={"Accept": accept}) as response,
        ):
            first = json.loads(await response.content.readline())
        assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"
        row = first["object"]["rows"][0]
        assert row["cells"][0] == "a" and row["cells"][3] == "<pending>"
        assert row["object"]["metadata"]["namespace"] == "demo"

    with_server([service("a")], body)
