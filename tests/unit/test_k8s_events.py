"""spinelb.k8s.events against the lab's API server: Events created, repeats counted, never raising."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lab.apiserver import free_port, running_apiserver, write_kubeconfig
from spinelb.config import KubernetesConfig
from spinelb.k8s.client import EVENTS, SERVICES, connect
from spinelb.k8s.events import EventRecorder

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "cray-s3", "namespace": "ceph-rgw"},
    "spec": {"type": "LoadBalancer", "ports": [{"port": 8080}]},
}


def test_record_creates_an_event_and_a_repeat_bumps_its_count() -> None:
    async def scenario() -> None:
        async with running_apiserver([SERVICE]) as server:
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            recorder = EventRecorder(kube, "spinelb-controller", "ncn-m001")
            svc = await kube.get(SERVICES, "ceph-rgw", "cray-s3")

            await recorder.record(svc, "Normal", "IPAllocated", "Assigned IP [10.102.10.129]")
            events, _ = await kube.list(EVENTS, namespace="ceph-rgw")
            assert len(events) == 1
            event = events[0]
            assert event["involvedObject"] == {
                "kind": "Service",
                "namespace": "ceph-rgw",
                "name": "cray-s3",
                "uid": svc["metadata"]["uid"],
                "apiVersion": "v1",
                "resourceVersion": svc["metadata"]["resourceVersion"],
            }
            assert (event["type"], event["reason"], event["message"], event["count"]) == (
                "Normal",
                "IPAllocated",
                "Assigned IP [10.102.10.129]",
                1,
            )
            assert event["source"] == {"component": "spinelb-controller", "host": "ncn-m001"}
            assert event["reportingComponent"] == "spinelb-controller"
            assert event["firstTimestamp"] == event["lastTimestamp"]

            await recorder.record(svc, "Normal", "IPAllocated", "Assigned IP [10.102.10.129]")
            await recorder.record(svc, "Normal", "IPAllocated", "Assigned IP [10.102.10.129]")
            events, _ = await kube.list(EVENTS, namespace="ceph-rgw")
            assert [(e["metadata"]["name"], e["count"]) for e in events] == [
                (event["metadata"]["name"], 3)
            ]

            await recorder.record(svc, "Warning", "AllocationFailed", "pool exhausted")
            events, _ = await kube.list(
                EVENTS, namespace="ceph-rgw", field_selector="involvedObject.name=cray-s3"
            )
            assert sorted((e["reason"], e["count"]) for e in events) == [
                ("AllocationFailed", 1),
                ("IPAllocated", 3),
            ]

            # A cluster-scoped object's Events go to "default", as client-go puts them.
            node = {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": "ncn-w001", "uid": "u1"},
            }
            await recorder.record(node, "Normal", "Excluded", "labelled for exclusion")
            events, _ = await kube.list(EVENTS, namespace="default")
            assert [e["involvedObject"]["name"] for e in events] == ["ncn-w001"]
            await kube.close()

    asyncio.run(scenario())


def test_an_event_deleted_on_the_server_is_created_again() -> None:
    async def scenario() -> None:
        async with running_apiserver([SERVICE]) as server:
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            recorder = EventRecorder(kube, "spinelb-controller", "ncn-m001")
            svc = await kube.get(SERVICES, "ceph-rgw", "cray-s3")
            await recorder.record(svc, "Normal", "IPReleased", "released")
            (event,), _ = await kube.list(EVENTS, namespace="ceph-rgw")
            await kube.delete(EVENTS, "ceph-rgw", event["metadata"]["name"])
            await recorder.record(svc, "Normal", "IPReleased", "released")
            events, _ = await kube.list(EVENTS, namespace="ceph-rgw")
            assert [e["count"] for e in events] == [1]
            await kube.close()

    asyncio.run(scenario())


def test_recording_never_raises_when_the_api_is_down(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    write_kubeconfig(kubeconfig, f"http://127.0.0.1:{free_port()}")

    async def scenario() -> None:
        kube = await connect(KubernetesConfig(kubeconfig=kubeconfig))
        recorder = EventRecorder(kube, "spinelb-controller", "ncn-m001")
        await recorder.record(
            SERVICE, "Warning", "AllocationFailed", "x" * 5000
        )  # logged, not raised
        await kube.close()

    asyncio.run(scenario())
