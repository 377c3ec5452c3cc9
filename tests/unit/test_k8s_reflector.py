"""spinelb.k8s.reflector against the lab's API server: list, watch, resume, re-list, outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from waiting import wait_for

from lab.apiserver import ApiServerProcess, LabApiServer, free_port, running_apiserver
from spinelb.config import KubernetesConfig
from spinelb.k8s.client import NODES, SERVICES, Kube, connect
from spinelb.k8s.reflector import Changes, Reflector


def service(name: str, namespace: str = "demo", port: int = 80) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "LoadBalancer", "ports": [{"port": port}]},
    }


class Recorder:
    """on_change that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[Changes] = []

    def __call__(self, changes: Changes) -> None:
        self.calls.append(dict(changes))

    def since(self, index: int) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for call in self.calls[index:]:
            merged.update(call)
        return merged


@asynccontextmanager
async def reflecting(
    kube: Kube, resource: Any = SERVICES, **kwargs: Any
) -> AsyncIterator[tuple[Reflector, Recorder]]:
    recorder = Recorder()
    reflector = Reflector(kube, resource, recorder, backoff_max=0.5, **kwargs)
    task = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(reflector.synced.wait(), 10)
        yield reflector, recorder
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def watches(emulator: LabApiServer, plural: str = "services") -> int:
    return emulator.counts["watch", plural]


def test_initial_list_then_added_modified_deleted() -> None:
    async def scenario() -> None:
        async with running_apiserver([service("a"), service("b", namespace="other")]) as server:
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            async with reflecting(kube) as (reflector, recorder):
                assert set(reflector.store) == {"demo/a", "other/b"}
                assert reflector.connected and reflector.last_error is None
                assert set(recorder.calls[0]) == {"demo/a", "other/b"}  # the first list, all of it

                await wait_for(lambda: watches(server.emulator) == 1)
                server.emulator.create_object(service("c"))
                await wait_for(lambda: "demo/c" in reflector.store)
                server.emulator.patch_object(
                    "services", "demo", "a", {"metadata": {"labels": {"x": "1"}}}
                )
                await wait_for(
                    lambda: reflector.store["demo/a"]["metadata"].get("labels") == {"x": "1"}
                )
                server.emulator.delete_object("services", "other", "b")
                await wait_for(lambda: "other/b" not in reflector.store)

                assert [next(iter(c)) for c in recorder.calls[1:]] == [
                    "demo/c",
                    "demo/a",
                    "other/b",
                ]
                assert recorder.calls[-1] == {"other/b": None}
                assert recorder.calls[2]["demo/a"]["metadata"]["labels"] == {"x": "1"}  # type: ignore[index]
            await kube.close()

    asyncio.run(scenario())


def test_cluster_scoped_keys_and_selectors() -> None:
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "w1", "labels": {"role": "worker"}},
        },
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "m1", "labels": {"role": "master"}},
        },
    ]

    async def scenario() -> None:
        async with running_apiserver(nodes) as server:
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            async with reflecting(kube, NODES, label_selector="role=worker") as (
                reflector,
                recorder,
            ):
                assert set(reflector.store) == {"w1"}
                await wait_for(lambda: watches(server.emulator, "nodes") == 1)
                # Leaving the selector is a deletion for this reflector.
                server.emulator.patch_object(
                    "nodes", None, "w1", {"metadata": {"labels": {"role": "gone"}}}
                )
                await wait_for(lambda: not reflector.store)
                assert recorder.calls[-1] == {"w1": None}
            await kube.close()

    asyncio.run(scenario())


def test_a_watch_that_ends_is_resumed_without_listing_again() -> None:
    async def scenario() -> None:
        async with running_apiserver([service("a")]) as server:
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            async with reflecting(kube) as (reflector, recorder):
                for round_ in range(1, 4):
                    await wait_for(lambda r=round_: watches(server.emulator) == r)  # type: ignore[misc]
                    server.emulator.expire_watches()
                    server.emulator.create_object(service(f"n{round_}"))  # while no watch is open
                    await wait_for(lambda r=round_: f"demo/n{r}" in reflector.store)  # type: ignore[misc]
                assert server.emulator.counts["list", "services"] == 1
                assert reflector.lists == 1
                assert [set(c) for c in recorder.calls[1:]] == [
                    {"demo/n1"},
                    {"demo/n2"},
                    {"demo/n3"},
                ]
            await kube.close()

    asyncio.run(scenario())


def test_gone_lists_again_and_reports_only_the_differences() -> None:
    async def scenario() -> None:
        async with running_apiserver(
            [service("keep"), service("change"), service("drop")]
        ) as server:
            emulator = server.emulator
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            async with reflecting(kube) as (reflector, recorder):
                await wait_for(lambda: watches(emulator) == 1)
                # The watch goes down; while it is down, two objects change and history is lost.
                emulator.hold_watches()
                emulator.expire_watches()
                await wait_for(lambda: watches(emulator) == 2)  # the resume waits at the server
                mark = len(recorder.calls)
                emulator.patch_object(
                    "services", "demo", "change", {"spec": {"ports": [{"port": 81}]}}
                )
                emulator.delete_object("services", "demo", "drop")
                emulator.compact()
                emulator.release_watches()  # the resume gets 410 Gone

                await wait_for(lambda: reflector.lists == 2)
                changes = recorder.since(mark)
                assert set(changes) == {"demo/change", "demo/drop"}
                assert changes["demo/drop"] is None
                assert changes["demo/change"]["spec"]["ports"][0]["port"] == 81
                assert set(reflector.store) == {"demo/keep", "demo/change"}
                assert emulator.counts["list", "services"] == 2
            await kube.close()

    asyncio.run(scenario())


def test_api_server_outage_keeps_the_store_and_resyncs_on_restart(tmp_path: Path) -> None:
    before = tmp_path / "before.yaml"
    after = tmp_path / "after.yaml"
    before.write_text(yaml.safe_dump_all([service("stay"), service("change"), service("drop")]))
    after.write_text(
        yaml.safe_dump_all([service("stay"), service("change", port=8080), service("new")])
    )
    kubeconfig = tmp_path / "kubeconfig"

    async def scenario() -> None:
        process = ApiServerProcess(free_port(), kubeconfig, [before])
        await process.start()
        kube = await connect(KubernetesConfig(kubeconfig=kubeconfig))
        try:
            async with reflecting(kube) as (reflector, recorder):
                assert set(reflector.store) == {"demo/stay", "demo/change", "demo/drop"}
                await process.stop()
                await wait_for(lambda: not reflector.connected)
                assert reflector.last_error
                assert set(reflector.store) == {"demo/stay", "demo/change", "demo/drop"}  # kept
                mark = len(recorder.calls)
                assert recorder.since(mark) == {}

                await process.start([after])  # a new server, on the same port
                await wait_for(lambda: reflector.connected)
                await wait_for(
                    lambda: set(reflector.store) == {"demo/stay", "demo/change", "demo/new"}
                )
                changes = recorder.since(mark)
                assert changes["demo/drop"] is None
                assert changes["demo/change"]["spec"]["ports"][0]["port"] == 8080
                assert "demo/new" in changes
                assert reflector.last_error is None
        finally:
            await kube.close()
            await process.stop()

    asyncio.run(scenario())


def test_a_failing_on_change_does_not_stop_the_reflector() -> None:
    async def scenario() -> None:
        async with running_apiserver([]) as server:
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            calls: list[Changes] = []

            def explode(changes: Changes) -> None:
                calls.append(changes)
                raise RuntimeError("consumer bug")

            reflector = Reflector(kube, SERVICES, explode)
            task = asyncio.create_task(reflector.run())
            await asyncio.wait_for(reflector.synced.wait(), 10)
            await wait_for(lambda: watches(server.emulator) == 1)
            server.emulator.create_object(service("a"))
            server.emulator.create_object(service("b"))
            await wait_for(lambda: len(reflector.store) == 2)
            assert len(calls) == 3
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await kube.close()

    asyncio.run(scenario())
