"""spinelb.k8s.lease against the lab's API server: one leader, fast failover, stepping down."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from waiting import wait_for

from lab.apiserver import ApiServerProcess, free_port, running_apiserver
from spinelb.config import KubernetesConfig
from spinelb.k8s.client import LEASES, Kube, connect
from spinelb.k8s.lease import LeaderElector

MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def elector(kube: Kube, identity: str, changes: list[bool] | None = None) -> LeaderElector:
    return LeaderElector(
        kube,
        "spinelb-system",
        "spinelb-controller",
        identity,
        lease_duration=2.5,
        renew_period=0.2,
        on_change=None if changes is None else changes.append,
    )


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_one_leader_and_failover_on_cancel() -> None:
    async def scenario() -> None:
        async with running_apiserver() as server:
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            a_changes: list[bool] = []
            a, b = elector(kube, "controller-a", a_changes), elector(kube, "controller-b")
            tasks = {a: asyncio.create_task(a.run()), b: asyncio.create_task(b.run())}
            await wait_for(lambda: a.is_leader or b.is_leader)
            leader, standby = (a, b) if a.is_leader else (b, a)
            lease = server.emulator.get_object("leases", "spinelb-system", "spinelb-controller")
            spec = lease["spec"]
            assert spec["holderIdentity"] == leader.identity
            assert spec["leaseDurationSeconds"] == 3  # 2.5 rounded up
            assert MICRO_TIME.match(spec["renewTime"]) and MICRO_TIME.match(spec["acquireTime"])

            # A few renewals later there is still exactly one leader, and it keeps renewing.
            renewed = spec["renewTime"]
            await wait_for(
                lambda: (
                    server.emulator.get_object("leases", "spinelb-system", "spinelb-controller")[
                        "spec"
                    ]["renewTime"]
                    != renewed
                )
            )
            assert leader.is_leader and not standby.is_leader and not standby.leading.is_set()

            await stop(tasks[leader])  # releases the lease
            assert not leader.is_leader
            released = server.emulator.get_object("leases", "spinelb-system", "spinelb-controller")[
                "spec"
            ]
            assert released.get("holderIdentity") in (None, standby.identity)
            await wait_for(lambda: standby.is_leader, timeout=2.0)
            assert standby.leading.is_set()
            spec = server.emulator.get_object("leases", "spinelb-system", "spinelb-controller")[
                "spec"
            ]
            assert spec["holderIdentity"] == standby.identity
            assert spec["leaseTransitions"] >= 1
            if leader is a:
                assert a_changes == [True, False]
            await stop(tasks[standby])
            await kube.close()

    asyncio.run(scenario())


def test_expired_lease_of_a_vanished_holder_is_taken_over() -> None:
    async def scenario() -> None:
        async with running_apiserver() as server:
            server.emulator.create_object(
                {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": "spinelb-controller", "namespace": "spinelb-system"},
                    "spec": {
                        "holderIdentity": "crashed",
                        "leaseDurationSeconds": 1,
                        "renewTime": "2020-01-01T00:00:00.000000Z",
                        "leaseTransitions": 4,
                    },
                }
            )
            kube = await connect(KubernetesConfig(kubeconfig=server.kubeconfig))
            candidate = elector(kube, "controller-a")
            task = asyncio.create_task(candidate.run())
            await wait_for(lambda: candidate.is_leader)
            spec = (await kube.get(LEASES, "spinelb-system", "spinelb-controller"))["spec"]
            assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("controller-a", 5)
            await stop(task)
            await kube.close()

    asyncio.run(scenario())


def test_a_leader_that_cannot_renew_steps_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        process = ApiServerProcess(free_port(), tmp_path / "kubeconfig")
        await process.start()
        kube = await connect(KubernetesConfig(kubeconfig=tmp_path / "kubeconfig"))
        changes: list[bool] = []
        leader = elector(kube, "controller-a", changes)
        task = asyncio.create_task(leader.run())
        try:
            await wait_for(lambda: leader.is_leader)
            await process.stop()  # the API goes away: renewals fail
            await wait_for(lambda: not leader.is_leader)
            assert not leader.leading.is_set()
            assert changes == [True, False]
            assert leader.last_error
            await process.start()  # a new, empty API server: the elector leads again
            await wait_for(lambda: leader.is_leader)
            assert changes == [True, False, True]
        finally:
            await stop(task)
            await kube.close()
            await process.stop()

    asyncio.run(scenario())
