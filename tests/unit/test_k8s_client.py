"""spinelb.k8s.client against the lab's API server: dicts in and out, errors mapped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from lab.apiserver import (
    LAB_TOKEN,
    RunningApiServer,
    free_port,
    running_apiserver,
    write_kubeconfig,
)
from spinelb.config import KubernetesConfig
from spinelb.k8s.client import (
    LEASES,
    NODES,
    SERVICES,
    ApiError,
    ApiUnavailable,
    Gone,
    Kube,
    connect,
    object_key,
)


def service(name: str, namespace: str = "demo", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
    }


def with_kube(
    objects: list[dict[str, Any]], body: Callable[[Kube, RunningApiServer], Awaitable[None]]
) -> None:
    async def run() -> None:
        async with running_apiserver(objects) as server:
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            try:
                await body(kube, server)
            finally:
                await kube.close()

    asyncio.run(run())


def test_resource_paths() -> None:
    assert SERVICES.path("ns", "web", "status") == "/api/v1/namespaces/ns/services/web/status"
    assert SERVICES.path() == "/api/v1/services"
    assert NODES.path("ignored", "w1") == "/api/v1/nodes/w1"
    assert (
        LEASES.path("kube-system") == "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
    )
    assert LEASES.api_version == "coordination.k8s.io/v1"
    assert object_key(service("a")) == "demo/a"
    assert object_key({"metadata": {"name": "w1"}}) == "w1"


def test_crud_as_plain_dicts() -> None:
    async def body(kube: Kube, server: RunningApiServer) -> None:
        items, version = await kube.list(SERVICES)
        assert [(i["kind"], i["apiVersion"], object_key(i)) for i in items] == [
            ("Service", "v1", "demo/a")
        ]
        assert version == str(server.emulator.revision)
        assert (await kube.list(SERVICES, namespace="other"))[0] == []
        assert len((await kube.list(SERVICES, label_selector="app=a"))[0]) == 1
        assert (await kube.list(SERVICES, field_selector="metadata.name=zzz"))[0] == []

        created = await kube.create(SERVICES, "demo", service("b"))
        assert created["metadata"]["uid"]
        status = {"status": {"loadBalancer": {"ingress": [{"ip": "10.102.10.130"}]}}}
        patched = await kube.patch_status(SERVICES, "demo", "b", status)
        assert patched["status"] == status["status"]
        labelled = await kube.patch(SERVICES, "demo", "b", {"metadata": {"labels": {"k": "v"}}})
        assert labelled["metadata"]["labels"] == {"k": "v"}
        unlabelled = await kube.patch(SERVICES, "demo", "b", {"metadata": {"labels": {"k": None}}})
        assert unlabelled["metadata"].get("labels", {}) == {}
        replaced = await kube.replace(
            SERVICES,
            "demo",
            "b",
            {**unlabelled, "metadata": {**unlabelled["metadata"], "annotations": {"x": "y"}}},
        )
        assert replaced["metadata"]["annotations"] == {"x": "y"}

        with pytest.raises(ApiError) as conflict:
            await kube.replace(
                SERVICES, "demo", "b", unlabelled
            )  # its resourceVersion is stale now
        assert conflict.value.status == 409 and conflict.value.reason == "Conflict"

        await kube.delete(SERVICES, "demo", "b")
        with pytest.raises(ApiError) as missing:
            await kube.get(SERVICES, "demo", "b")
        assert (missing.value.status, missing.value.reason) == (404, "NotFound")
        assert "b" in missing.value.message

    with_kube([service("a", app="a")], body)


def test_watch_events_resume_and_gone() -> None:
    async def body(kube: Kube, server: RunningApiServer) -> None:
        _, version = await kube.list(SERVICES)
        server.emulator.create_object(service("b"))
        server.emulator.delete_object("services", "demo", "a")

        seen = []
        async for event in kube.watch(SERVICES, resource_version=version, timeout_seconds=1):
            seen.append((event["type"], event["object"]["metadata"].get("name")))
        # The server ends the watch at its timeout, with a bookmark first.
        assert seen == [("ADDED", "b"), ("DELETED", "a"), ("BOOKMARK", None)]

        server.emulator.compact()
        with pytest.raises(Gone) as gone:
            async for _event in kube.watch(SERVICES, resource_version=version, timeout_seconds=1):
                pass
        assert gone.value.status == 410

    with_kube([service("a")], body)


def test_unreachable_server_and_no_token_in_errors(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, f"http://127.0.0.1:{free_port()}")  # nothing listens there

    async def scenario() -> None:
        kube = await connect(KubernetesConfig(kubeconfig=kubeconfig))
        try:
            with pytest.raises(ApiUnavailable) as listing:
                await kube.list(SERVICES)
            with pytest.raises(ApiUnavailable) as watching:
                async for _event in kube.watch(SERVICES, resource_version="1"):
                    pass
            for text in (str(listing.value), str(watching.value), repr(kube)):
                assert LAB_TOKEN not in text
        finally:
            await kube.close()

    asyncio.run(scenario())


def test_watch_ends_when_the_server_ends_it() -> None:
    async def body(kube: Kube, server: RunningApiServer) -> None:
        _, version = await kube.list(SERVICES)

        async def consume() -> list[str]:
            return [
                e["type"]
                async for e in kube.watch(SERVICES, resource_version=version, timeout_seconds=60)
            ]

        task = asyncio.create_task(consume())
        await wait_for(server.emulator.expire_watches)  # once the watch is open, end it
        assert await asyncio.wait_for(task, 10) == ["BOOKMARK"]

    with_kube([], body)
