"""The controller against the lab's API server (lab/apiserver.py, in process on 127.0.0.1).

Every rule of the issue's controller section: requested addresses (field and
both annotation prefixes), pools, auto_assign, sharing, dual stack, impossible
requests (status left empty, an Event saying why, no other Service touched),
release on delete and on type change, loadBalancerClass, restart and leader
failover, and the reference site's Services getting the seed's addresses.

"Nothing else changed" is never checked by waiting for nothing: a barrier
Service is created afterwards, and once it has its address every write the
controller decided before it has been made (the worker writes one batch at a
time, in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
import yaml
from waiting import wait_for

from lab.apiserver import LabApiServer, running_apiserver
from lab.site import site_dir
from spinelb.config import ApiConfig, ControllerConfig, parse_controller_config
from spinelb.controller import Controller
from spinelb.k8s.client import Kube, connect

REPO = Path(__file__).resolve().parents[2]

SITE = site_dir()
SMALL_POOLS: list[dict[str, Any]] = [
    {"name": "auto", "addresses": ["10.90.0.0-10.90.0.3"]},
    {"name": "manual", "addresses": ["10.91.0.10/31"], "auto_assign": False},
    {"name": "v6", "addresses": ["fd00:90::/126"]},
]


def site_pools() -> list[dict[str, Any]]:
    """The reference site's pools, as the controller's config lists them."""
    site = yaml.safe_load((SITE / "site.yaml").read_text())
    pools = []
    for name, spec in site["pools"].items():
        entry: dict[str, Any] = {"name": name, "addresses": [spec["cidr"]]}
        if spec.get("auto_assign") is False:
            entry["auto_assign"] = False
        pools.append(entry)
    return pools


def site_services() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((SITE / "services.yaml").read_text()) if d]


def lb(
    name: str,
    *,
    ns: str = "default",
    ip: str | None = None,
    annotations: dict[str, str] | None = None,
    ports: tuple[tuple[str, int], ...] = (("TCP", 80),),
    local: bool = False,
    lb_class: str | None = None,
    families: list[str] | None = None,
    policy: str | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": "LoadBalancer",
        "ports": [{"port": port, "protocol": proto, "targetPort": port} for proto, port in ports],
        "selector": {"app": name},
        "externalTrafficPolicy": "Local" if local else "Cluster",
    }
    if ip is not None:
        spec["loadBalancerIP"] = ip
    if lb_class is not None:
        spec["loadBalancerClass"] = lb_class
    if families is not None:
        spec["ipFamilies"] = families
    if policy is not None:
        spec["ipFamilyPolicy"] = policy
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": spec,
    }


@dataclasses.dataclass
class Cluster:
    """The emulator and a Kubernetes config for it; controllers are started with :meth:`start`."""

    api: LabApiServer
    kubeconfig: Path
    barriers: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count())

    def config(self, pools: list[dict[str, Any]], **kubernetes: Any) -> ControllerConfig:
        connection: dict[str, Any] = {"kubeconfig": str(self.kubeconfig), **kubernetes}
        config = parse_controller_config({
            "kubernetes": connection,
            "pools": pools,
        })
        return dataclasses.replace(config, api=ApiConfig(IPv4Address("127.0.0.1"), 0))

    def ingress(self, name: str, ns: str = "default") -> list[str]:
        obj = self.api.get_object("services", ns, name)
        entries = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        return [entry["ip"] for entry in entries]

    def events(self, name: str, reason: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.api.objects_of("events")
            if e["involvedObject"]["name"] == name and reason in (None, e["reason"])
        ]

    def messages(self, name: str, reason: str) -> list[str]:
        return [e["message"] for e in self.events(name, reason)]

    def versions(self) -> dict[str, str]:
        return {
            f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for o in self.api.objects_of("services")
        }

    async def assigned(self, name: str, ns: str = "default") -> list[str]:
        await wait_for(lambda: self.ingress(name, ns))
        return self.ingress(name, ns)

    async def failed(self, name: str, ns: str = "default") -> str:
        await wait_for(lambda: self.messages(name, "AllocationFailed"))
        [message] = self.messages(name, "AllocationFailed")
        assert self.ingress(name, ns) == []
        return message

    @contextlib.asynccontextmanager
    async def watch_held(self) -> AsyncIterator[None]:
        """The Services watch ends and its successor waits at the gate: the reflector lags."""
        watches = self.api.counts["watch", "services"]
        self.api.hold_watches()
        try:
            self.api.expire_watches()
            await wait_for(lambda: self.api.counts["watch", "services"] == watches + 1)
            yield
        finally:
            self.api.release_watches()

    def write_lease(self, holder: str | None) -> None:
        """Another candidate writes the controller's Lease (None: it releases it)."""
        self.api.patch_object("leases", "spinelb-system", "spinelb-controller",
                              {"spec": {"holderIdentity": holder}})

    async def barrier(self, pool: str) -> None:
        """Return once every write decided before now has been made."""
        name = f"barrier-{next(self.barriers)}"
        self.api.create_object(lb(name, annotations={"metallb.io/address-pool": pool}))
        await self.assigned(name)
        self.api.delete_object("services", "default", name)


@contextlib.asynccontextmanager
async def cluster(objects: list[dict[str, Any]] | None = None) -> AsyncIterator[Cluster]:
    async with running_apiserver(objects or []) as server:
        yield Cluster(server.emulator, server.kubeconfig)


@dataclasses.dataclass
class Running:
    """A controller running as a task of the test's loop, with its own client."""

    ctl: Controller
    kube: Kube
    task: asyncio.Task[None]

    @classmethod
    async def start(
        cls,
        config: ControllerConfig,
        identity: str,
        *,
        lead: bool = True,
        lease: tuple[float, float] = (1.0, 0.1),  # duration, renew period: quick failovers
    ) -> Running:
        kube = await connect(config.kubernetes)
        ctl = Controller(config, kube, identity, lease_duration=lease[0], renew_period=lease[1])
        running = cls(ctl, kube, asyncio.create_task(ctl.run()))
        if lead:
            await wait_for(lambda: ctl.elector.is_leader and ctl.reflector.synced.is_set())
        return running

    async def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            await self.kube.close()


@contextlib.asynccontextmanager
async def controller(
    env: Cluster,
    config: ControllerConfig,
    identity: str = "c1",
    *,
    lease: tuple[float, float] = (1.0, 0.1),
) -> AsyncIterator[Controller]:
    running = await Running.start(config, identity, lease=lease)
    try:
        yield running.ctl
    finally:
        await running.stop()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 25))


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# --- the reference site -------------------------------------------------------------------


SEED = {  # the seed document's EXTERNAL-IP column, and CSM's pinned addresses
    "ceph-rgw/cray-s3": "10.102.10.129",
    "ims/cray-ims-40f523ac-9b99-4f76-bb37-df6eb62540c8-service": "10.102.10.134",
    "ims/cray-ims-50287398-b877-4a2b-bf18-c3618583c66f-service": "10.102.10.167",
    "ims/cray-ims-577dec6e-dbac-4363-a423-bf39ed9b9e32-service": "10.102.10.158",
    "ims/cray-ims-5b05e86e-f65b-4a5f-b5eb-2c31f0458722-service": "10.102.10.160",
    "ims/cray-ims-7ffaf10f-75ca-4ccb-b10d-1c7cd31b3d4b-service": "10.102.10.132",
    "ims/cray-ims-b1cd0827-bb51-4bcd-ac25-f64d5f7d0c44-service": "10.102.10.131",
    "ims/cray-ims-bd0698b4-a104-48eb-9714-5b5889ad7b52-service": "10.102.10.135",
    "istio-system/istio-ingressgateway": "10.92.100.71",
    "istio-system/istio-ingressgateway-hmn": "10.94.100.71",
    "istio-system/istio-ingressgateway-cmn": "10.102.5.64",  # first of customer-management
    "services/cray-tftp": "10.92.100.60",
    "services/cray-tftp-hmn": "10.94.100.60",
    "services/cray-dhcp-kea-udp-nmn": "10.92.100.222",
    "services/cray-dns-unbound-udp-nmn": "10.92.100.225",
    "services/cray-dns-unbound-tcp-nmn": "10.92.100.225",
    "services/cray-dns-unbound-udp-cmn": "10.102.5.61",
}


def test_reference_site_gets_the_seed_addresses_status_and_metrics() -> None:
    async def main() -> None:
        async with cluster(site_services()) as env, controller(env, env.config(site_pools())) as c:
            assert {f"{o['metadata']['namespace']}/{o['metadata']['name']}"
                    for o in env.api.objects_of("services")} == set(SEED)
            for key, address in SEED.items():
                ns, name = key.split("/")
                assert await env.assigned(name, ns) == [address], key
            await wait_for(lambda: len(env.api.objects_of("events")) == len(SEED))
            assert env.messages("istio-ingressgateway", "IPAllocated") == [
                'Assigned IP ["10.92.100.71"] from pool node-management']
            assert env.messages("istio-ingressgateway-cmn", "IPAllocated") == [
                'Assigned IP ["10.102.5.64"] from pool customer-management']
            assert not any(e["type"] == "Warning" for e in env.api.objects_of("events"))
            assert {e["involvedObject"]["kind"] for e in env.api.objects_of("events")} == {
                "Service"}

            assert c.api is not None
            code, body = await http_get(c.api.port, "/status")
            status = json.loads(body)
            assert code == 200 and status["leader"] is True and status["identity"] == "c1"
            assert status["services"]["services/cray-dns-unbound-tcp-nmn"] == {
                "addresses": ["10.92.100.225"]}
            pools = {p["name"]: (p["used"], p["size"]) for p in status["pools"]}
            assert pools["node-management"] == (4, 256)  # .60, .71, .222, .225 (shared)
            assert pools["customer-access"] == (8, 64)
            code, body = await http_get(c.api.port, "/metrics")
            text = body.decode()
            assert "spinelb_controller_leader 1.0" in text
            assert 'spinelb_pool_addresses_used{pool="customer-management"} 1.0' in text
            assert 'spinelb_pool_addresses_total{pool="customer-access"} 64.0' in text
            assert "spinelb_controller_assignments_total 17.0" in text
            assert (await http_get(c.api.port, "/healthz"))[0] == 200

    run(main)


# --- requests, pools, sharing, dual stack -----------------------------------------------


def test_requested_addresses_by_field_and_both_annotation_prefixes_and_pool_choice() -> None:
    async def main() -> None:
        async with cluster() as env, controller(env, env.config(SMALL_POOLS)):
            env.api.create_object(lb("by-field", ip="10.90.0.3"))
            env.api.create_object(lb("by-old", annotations={
                "metallb.universe.tf/loadBalancerIPs": "10.90.0.2"}))
            env.api.create_object(lb("by-new", annotations={"metallb.io/loadBalancerIPs": "10.91.0.11"}))
            env.api.create_object(lb("pool-old", annotations={
                "metallb.universe.tf/address-pool": "manual"}))
            assert await env.assigned("by-field") == ["10.90.0.3"]
            assert await env.assigned("by-old") == ["10.90.0.2"]
            assert await env.assigned("by-new") == ["10.91.0.11"]  # manual pool, on request
            assert await env.assigned("pool-old") == ["10.91.0.10"]  # manual pool, by name
            env.api.create_object(lb("plain"))
            env.api.create_object(lb("plain2"))
            assert sorted([*await env.assigned("plain"), *await env.assigned("plain2")]) == [
                "10.90.0.0", "10.90.0.1"]  # auto pool only, skipping the requested ones
            env.api.create_object(lb("pool-new", annotations={"metallb.io/address-pool": "v6"},
                                     families=["IPv6"]))
            assert await env.assigned("pool-new") == ["fd00:90::"]

    run(main)


def test_sharing_the_unbound_pair_and_refusing_an_incompatible_third() -> None:
    unbound = [o for o in site_services() if "unbound" in o["metadata"]["name"]]

    async def main() -> None:
        async with cluster(unbound) as env, controller(env, env.config(site_pools())):
            assert await env.assigned("cray-dns-unbound-udp-nmn", "services") == ["10.92.100.225"]
            assert await env.assigned("cray-dns-unbound-tcp-nmn", "services") == ["10.92.100.225"]
            await env.barrier("node-management")
            before = env.versions()
            shared = {"metallb.universe.tf/allow-shared-ip": "cray-dns-unbound-nmn"}
            env.api.create_object(lb("clash", ns="services", ip="10.92.100.225",
                                     annotations=shared, ports=(("UDP", 53),)))
            env.api.create_object(lb("other-key", ns="services", ip="10.92.100.225", annotations={
                "metallb.universe.tf/allow-shared-ip": "mine"}, ports=(("TCP", 8053),)))
            assert await env.failed("clash", "services") == (
                "services/clash: 10.92.100.225 is in use by services/cray-dns-unbound-udp-nmn: "
                "port clash: both use UDP/53")
            message = await env.failed("other-key", "services")
            assert "10.92.100.225 is in use by" in message
            assert "different sharing key ('mine' here, 'cray-dns-unbound-nmn'" in message
            await env.barrier("node-management")
            after = env.versions()
            for key, version in before.items():
                assert after[key] == version, key
            # a compatible third joins
            env.api.create_object(lb("dot", ns="services", ip="10.92.100.225",
                                     annotations=shared, ports=(("TCP", 853),)))
            assert await env.assigned("dot", "services") == ["10.92.100.225"]

    run(main)


def test_dual_stack_with_an_ipv4_and_an_ipv6_pool() -> None:
    async def main() -> None:
        async with cluster() as env, controller(env, env.config(SMALL_POOLS)):
            env.api.create_object(lb("both", families=["IPv4", "IPv6"], policy="RequireDualStack"))
            assert await env.assigned("both") == ["10.90.0.0", "fd00:90::"]
            env.api.create_object(lb("six-first", families=["IPv6", "IPv4"],
                                     policy="PreferDualStack"))
            assert await env.assigned("six-first") == ["fd00:90::1", "10.90.0.1"]
            env.api.create_object(lb("pinned", families=["IPv4", "IPv6"], policy="RequireDualStack",
                                     annotations={"metallb.io/loadBalancerIPs": "fd00:90::3,10.90.0.3"}))
            assert await env.assigned("pinned") == ["10.90.0.3", "fd00:90::3"]
            env.api.create_object(lb("single", families=["IPv4", "IPv6"], policy="SingleStack"))
            assert await env.assigned("single") == ["10.90.0.2"]
            env.api.create_object(lb("no-v6-pool", families=["IPv4", "IPv6"],
                                     policy="RequireDualStack",
                                     annotations={"metallb.io/address-pool": "manual"}))
            assert "pool 'manual' has no IPv6 addresses" in await env.failed("no-v6-pool")

    run(main)


# --- impossible requests ------------------------------------------------------------------


def test_impossible_requests_stay_pending_with_an_event_and_touch_nothing_else() -> None:
    async def main() -> None:
        async with cluster() as env, controller(env, env.config(SMALL_POOLS)):
            for i in range(4):
                env.api.create_object(lb(f"fill{i}"))
            for i in range(4):
                assert await env.assigned(f"fill{i}")
            env.api.create_object(lb("pinned", ip="10.91.0.10"))
            assert await env.assigned("pinned") == ["10.91.0.10"]
            await env.barrier("manual")
            before = env.versions()
            env.api.create_object(lb("outside", ip="192.0.2.10"))
            env.api.create_object(lb("unknown", annotations={"metallb.io/address-pool": "nope"}))
            env.api.create_object(lb("exhausted"))
            env.api.create_object(lb("in-use", ip="10.91.0.10"))
            env.api.create_object(lb("garbled", annotations={
                "metallb.io/loadBalancerIPs": "10.90.0.1,not-an-ip"}))
            assert await env.failed("outside") == (
                "default/outside: requested 192.0.2.10 is in no pool (pools: auto, manual, v6)")
            assert await env.failed("unknown") == (
                "default/unknown: no pool named 'nope' (pools: auto, manual, v6)")
            assert await env.failed("exhausted") == (
                "default/exhausted: pool auto is exhausted: all 4 IPv4 addresses are in use")
            assert await env.failed("in-use") == (
                "default/in-use: 10.91.0.10 is in use by default/pinned: "
                "no allow-shared-ip annotation on default/in-use and default/pinned")
            assert "'not-an-ip' is not an IP address" in await env.failed("garbled")
            await env.barrier("manual")
            after = env.versions()
            for key, version in before.items():
                assert after[key] == version, key
            for name in ("outside", "unknown", "exhausted", "in-use", "garbled"):
                assert len(env.messages(name, "AllocationFailed")) == 1  # once, not per retry
            assert env.ingress("pinned") == ["10.91.0.10"]

    run(main)


def test_a_pending_service_is_retried_when_its_spec_changes() -> None:
    async def main() -> None:
        async with cluster() as env, controller(env, env.config(SMALL_POOLS)):
            env.api.create_object(lb("s", annotations={"metallb.io/address-pool": "nope"}))
            await env.failed("s")
            env.api.patch_object("services", "default", "s", {
                "metadata": {"annotations": {"metallb.io/address-pool": "manual"}}})
            assert await env.assigned("s") == ["10.91.0.10"]

    run(main)


# --- release --------------------------------------------------------------------------------


def test_delete_frees_the_address_for_the_waiting_service() -> None:
    pools = [{"name": "one", "addresses": ["10.90.0.9"]}]

    async def main() -> None:
        async with cluster() as env, controller(env, env.config(pools)):
            env.api.create_object(lb("first"))
            assert await env.assigned("first") == ["10.90.0.9"]
            env.api.create_object(lb("second"))
            assert "exhausted" in await env.failed("second")
            env.api.delete_object("services", "default", "first")
            assert await env.assigned("second") == ["10.90.0.9"]
            assert env.messages("second", "IPAllocated") == [
                'Assigned IP ["10.90.0.9"] from pool one']

    run(main)


def test_type_changed_to_cluster_ip_releases_and_clears_status() -> None:
    pools = [{"name": "one", "addresses": ["10.90.0.9"]}]

    async def main() -> None:
        async with cluster() as env, controller(env, env.config(pools)):
            env.api.create_object(lb("svc"))
            assert await env.assigned("svc") == ["10.90.0.9"]
            env.api.patch_object("services", "default", "svc", {"spec": {"type": "ClusterIP"}})
            await wait_for(lambda: env.messages("svc", "IPReleased"))
            assert env.messages("svc", "IPReleased") == [
                'Released IP ["10.90.0.9"]: no longer type LoadBalancer']
            await wait_for(lambda: env.ingress("svc") == [])
            env.api.create_object(lb("next"))
            assert await env.assigned("next") == ["10.90.0.9"]

    run(main)


def test_other_load_balancer_class_is_ignored_unless_configured() -> None:
    async def main() -> None:
        async with cluster([lb("theirs", lb_class="example.com/other")]) as env:
            async with controller(env, env.config(SMALL_POOLS)):
                await env.barrier("auto")
                assert env.ingress("theirs") == [] and env.events("theirs") == []
            config = env.config(SMALL_POOLS, load_balancer_class="example.com/other")
            async with controller(env, config):
                assert await env.assigned("theirs") == ["10.90.0.0"]

    run(main)


# --- restart and failover ------------------------------------------------------------------


def test_restart_never_moves_an_address() -> None:
    async def main() -> None:
        async with cluster(site_services()) as env:
            config = env.config(site_pools())
            async with controller(env, config):
                for i in range(6):
                    env.api.create_object(lb(f"auto{i}", annotations={
                        "metallb.io/address-pool": "customer-management"}))
                for i in range(6):
                    await env.assigned(f"auto{i}")
                await env.barrier("customer-management")
            # free low addresses so that a fresh allocation would give different answers
            env.api.delete_object("services", "default", "auto0")
            env.api.delete_object("services", "default", "auto2")
            before = {key: env.ingress(*reversed(key.split("/"))) for key in env.versions()}
            versions = env.versions()
            events = len(env.api.objects_of("events"))
            async with controller(env, config, "c2"):
                env.api.create_object(lb("newcomer", annotations={
                    "metallb.io/address-pool": "customer-management"}))
                assert await env.assigned("newcomer") == ["10.102.5.65"]  # auto0's old address
                await env.barrier("customer-management")
                assert {key: env.ingress(*reversed(key.split("/")))
                        for key in before} == before
                assert {k: v for k, v in env.versions().items() if k in versions} == versions
                assert before["istio-system/istio-ingressgateway-cmn"] == ["10.102.5.64"]
                # only the newcomer and the barrier got events
                assert len(env.api.objects_of("events")) == events + 2

    run(main)


def test_on_takeover_the_older_service_keeps_a_contested_address() -> None:
    contested = {"status": {"loadBalancer": {"ingress": [{"ip": "10.90.0.2"}]}}}

    async def main() -> None:
        async with cluster([lb("a-older"), lb("b-newer")]) as env:
            for name in ("a-older", "b-newer"):
                env.api.patch_object("services", "default", name, contested)
            async with controller(env, env.config(SMALL_POOLS)):
                await wait_for(lambda: env.messages("b-newer", "AllocationFailed"))
                [message] = env.messages("b-newer", "AllocationFailed")
                assert message == ("default/b-newer: 10.90.0.2 is in use by default/a-older: "
                                   "no allow-shared-ip annotation on default/b-newer and "
                                   "default/a-older")
                assert env.ingress("a-older") == ["10.90.0.2"]
                assert env.events("a-older") == []
                # with its status cleared, it is an ordinary Service that gets a free address
                assert await env.assigned("b-newer") == ["10.90.0.0"]

    run(main)


def test_leader_failover() -> None:
    async def main() -> None:
        async with cluster() as env:
            config = env.config(SMALL_POOLS)
            alpha = await Running.start(config, "alpha")
            beta = await Running.start(config, "beta", lead=False)
            try:
                await wait_for(lambda: beta.ctl.reflector.synced.is_set())
                env.api.create_object(lb("early"))
                assert await env.assigned("early") == ["10.90.0.0"]
                await env.barrier("auto")
                assert not beta.ctl.elector.is_leader
                assert {e["source"]["host"] for e in env.api.objects_of("events")} == {"alpha"}
                lease = env.api.get_object("leases", "spinelb-system", "spinelb-controller")
                assert lease["spec"]["holderIdentity"] == "alpha"

                await alpha.stop()  # releases the Lease: beta takes over at its next try
                await wait_for(lambda: beta.ctl.elector.is_leader, timeout=5)
                env.api.create_object(lb("late"))
                assert await env.assigned("late") == ["10.90.0.1"]  # the barrier's, freed
                assert env.ingress("early") == ["10.90.0.0"]
                assert env.messages("early", "IPAllocated") == [
                    'Assigned IP ["10.90.0.0"] from pool auto']
                [late] = env.events("late", "IPAllocated")
                assert late["source"]["host"] == "beta"
            finally:
                await beta.stop()
                await alpha.stop()

    run(main)


def stored_ingress(ctl: Controller, key: str) -> object:
    """The ingress of a Service as the controller's store has it."""
    return ((ctl.reflector.store[key].get("status") or {}).get("loadBalancer") or {}).get("ingress")


def test_a_lease_lost_and_taken_back_before_the_watch_shows_our_write_rewrites_nothing() -> None:
    """Under load the Lease can be lost while our status patches are still on their way back.

    Taking it back starts over from the store; a store that has not caught up
    with the patch's resourceVersion is not believed: no second write, no
    second Event (the burst test's flake: 1,473 patches for 1,000 Services).
    """
    async def main() -> None:
        async with cluster() as env, controller(env, env.config(SMALL_POOLS)) as ctl:
            async with env.watch_held():
                env.api.create_object(lb("s"))
                answer = await ctl.assign_pending()  # a list: the store sees s, not its status
                assert answer["assigned"] == {"default/s": ["10.90.0.0"]}
                assert not stored_ingress(ctl, "default/s")
                writes = env.api.counts["patch", "services"]
                allocator = ctl.allocator
                env.write_lease("intruder")
                await wait_for(lambda: not ctl.elector.is_leader)
                env.write_lease(None)
                # leading again: a new allocator, seeded and deciding from the lagging store
                await wait_for(lambda: ctl.elector.is_leader and ctl.allocator is not allocator
                               and ctl.allocator.assigned("default/s"))
            await env.barrier("auto")  # decided after the takeover's writes were made
            assert env.api.counts["patch", "services"] == writes + 1  # the barrier's own
            assert env.ingress("s") == ["10.90.0.0"]
            assert env.messages("s", "IPAllocated") == ['Assigned IP ["10.90.0.0"] from pool auto']

    run(main)


def test_a_status_cleared_after_our_write_is_written_again_though_the_watch_missed_both() -> None:
    """Someone clears the status we wrote; a list (not the watch) brings only their version.

    The store never shows our patch's resourceVersion, only a later one: it is
    the truth again, and the address goes back.
    """
    async def main() -> None:
        async with cluster() as env, controller(env, env.config(SMALL_POOLS)) as ctl, \
                env.watch_held():
            env.api.create_object(lb("s"))
            answer = await ctl.assign_pending()
            assert answer["assigned"] == {"default/s": ["10.90.0.0"]}
            env.api.patch_object("services", "default", "s",
                                 {"status": {"loadBalancer": {"ingress": None}}})
            writes = env.api.counts["patch", "services"]
            answer = await ctl.assign_pending()  # lists again: s as cleared
            assert answer["assigned"] == {"default/s": ["10.90.0.0"]}
            assert env.ingress("s") == ["10.90.0.0"]
            assert env.api.counts["patch", "services"] == writes + 1

    run(main)


def test_a_watch_that_ends_or_expires_rewrites_nothing() -> None:
    async def main() -> None:
        async with cluster([lb(f"s{i}") for i in range(3)]) as env, \
                controller(env, env.config(SMALL_POOLS)) as ctl:
            for i in range(3):
                await env.assigned(f"s{i}")
            await env.barrier("manual")
            writes = env.api.counts["patch", "services"]
            lists = ctl.reflector.lists
            env.api.hold_watches()
            env.api.expire_watches()  # the resumed watch waits at the gate...
            env.api.create_object(lb("after"))
            env.api.compact()  # ...and then gets 410: the reflector lists again
            env.api.release_watches()
            await wait_for(lambda: ctl.reflector.lists > lists)
            assert await env.assigned("after") == ["10.90.0.3"]
            assert env.api.counts["patch", "services"] == writes + 1
            assert [env.ingress(f"s{i}") for i in range(3)] == [
                ["10.90.0.0"], ["10.90.0.1"], ["10.90.0.2"]]

    run(main)


# --- POST /assign: an operator's retry -------------------------------------------------------


async def http_post(port: int, path: str) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_assign_gives_a_pending_service_the_address_freed_behind_the_watch() -> None:
    """The holder of the only address is deleted while the watch is away: no event says so.

    ``POST /assign`` lists the Services again, retries every Service without an
    address (a pending one, and one whose status was wiped by hand) and answers
    once the new status is written.  A Service that still cannot be served stays
    pending, with its reason.
    """
    pools = [{"name": "one", "addresses": ["10.90.0.9"]},
             {"name": "two", "addresses": ["10.90.1.0/30"]}]
    in_one = {"metallb.io/address-pool": "one"}

    async def main() -> None:
        async with cluster() as env, controller(env, env.config(pools)) as ctl:
            env.api.create_object(lb("holder", annotations=in_one))
            assert await env.assigned("holder") == ["10.90.0.9"]
            env.api.create_object(lb("waiting", annotations=in_one))
            assert "exhausted" in await env.failed("waiting")
            env.api.create_object(lb("wiped", annotations={"metallb.io/address-pool": "two"}))
            assert await env.assigned("wiped") == ["10.90.1.0"]
            env.api.create_object(lb("unknown", annotations={"metallb.io/address-pool": "nope"}))
            await env.failed("unknown")
            await env.barrier("two")
            async with env.watch_held():
                env.api.delete_object("services", "default", "holder")
                env.api.patch_object("services", "default", "wiped",
                                     {"status": {"loadBalancer": {"ingress": None}}})
                assert ctl.pending.keys() == {"default/waiting", "default/unknown"}

                assert ctl.api is not None
                code, answer = await http_post(ctl.api.port, "/assign")
                assert code == 200
                assert answer == {
                    "leader": True,
                    "assigned": {"default/waiting": ["10.90.0.9"], "default/wiped": ["10.90.1.0"]},
                    "pending": {"default/unknown":
                                "default/unknown: no pool named 'nope' (pools: one, two)"},
                    "complete": True,
                    "kubernetes": "relisted",
                }
                # Written before the answer, with the watch still held.
                assert env.ingress("waiting") == ["10.90.0.9"]
                assert env.ingress("wiped") == ["10.90.1.0"]
                assert env.messages("waiting", "IPAllocated") == [
                    'Assigned IP ["10.90.0.9"] from pool one']

                code, again = await http_post(ctl.api.port, "/assign")  # nothing left to do
                assert (code, again["assigned"], again["pending"]) == (
                    200, {}, answer["pending"])

    run(main)


def test_assign_on_a_standby_is_409_and_names_the_leader() -> None:
    async def main() -> None:
        async with cluster() as env:
            config = env.config(SMALL_POOLS)
            alpha = await Running.start(config, "alpha")
            beta = await Running.start(config, "beta", lead=False)
            try:
                await wait_for(lambda: beta.ctl.api is not None and beta.ctl.api.port != 0
                               and beta.ctl.reflector.synced.is_set())
                assert beta.ctl.api is not None
                code, answer = await http_post(beta.ctl.api.port, "/assign")
                assert (code, answer) == (409, {"leader": False, "holder": "alpha"})
                assert alpha.ctl.api is not None
                code, answer = await http_post(alpha.ctl.api.port, "/assign")
                assert code == 200 and answer["leader"] is True
            finally:
                await beta.stop()
                await alpha.stop()

    run(main)


# --- a burst, and the command ------------------------------------------------------------


def test_a_burst_of_a_thousand_services_gets_distinct_addresses_one_write_each() -> None:
    pools = [{"name": "big", "addresses": ["10.100.0.0/22"]}]

    async def main() -> None:
        # The production Lease timing: with the API server in this loop, creating 1,000
        # Services blocks it for seconds on a loaded machine, and a 1 s Lease is lost and
        # taken back on the way (still one write each: see the lease-lost test above).
        async with cluster() as env, controller(env, env.config(pools), lease=(4.0, 1.0)) as ctl:
            patches = env.api.counts["patch", "services"]
            for i in range(1000):
                env.api.create_object(lb(f"burst{i:04d}"))
            await wait_for(lambda: len(ctl.allocator.assignments()) == 1000, timeout=20)
            await wait_for(lambda: all(o.get("status", {}).get("loadBalancer", {}).get("ingress")
                                       for o in env.api.objects_of("services")), timeout=20)
            addresses = [env.ingress(f"burst{i:04d}")[0] for i in range(1000)]
            assert len(set(addresses)) == 1000
            assert addresses[0] == "10.100.0.0"
            assert env.api.counts["patch", "services"] - patches == 1000

    run(main)


def write_config(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document))
    return path


def test_cli_reports_every_config_problem_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spinelb.cli import main as cli

    bad = write_config(tmp_path / "c.yaml", {
        "kubernetes": {"kubeconfig": str(tmp_path / "missing")},
        "pools": [{"name": "p", "addresses": ["10.0.0.0/33"]}, {"name": "p", "addresses": []}],
    })
    assert cli(["controller", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "kubernetes.kubeconfig" in err and "duplicate pool name" in err
    assert "pools[0].addresses" in err
    assert cli(["controller", "--config", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read the config" in capsys.readouterr().err


def test_cli_runs_leads_and_releases_the_lease_on_sigterm(tmp_path: Path) -> None:
    async def main() -> None:
        async with cluster([lb("svc", annotations={"metallb.io/address-pool": "auto"})]) as env:
            path = write_config(tmp_path / "controller.yaml", {
                "kubernetes": {"kubeconfig": str(env.kubeconfig)},
                "controller": {"listen": None},
                "pools": SMALL_POOLS,
            })
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "spinelb.cli", "controller", "--config", str(path),
                "--identity", "proc-1", stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(REPO / "src")},
            )
            try:
                assert await env.assigned("svc") == ["10.90.0.0"]
                lease = env.api.get_object("leases", "spinelb-system", "spinelb-controller")
                assert lease["spec"]["holderIdentity"] == "proc-1"
            finally:
                process.send_signal(signal.SIGTERM)
                _, err = await process.communicate()
            assert process.returncode == 0
            lease = env.api.get_object("leases", "spinelb-system", "spinelb-controller")
            assert not lease["spec"].get("holderIdentity")
            lines = [json.loads(line) for line in err.decode().splitlines()]
            assigned = [line for line in lines if line["msg"] == "assigned"]
            assert assigned == [{**assigned[0], "service": "default/svc",
                                 "addresses": "['10.90.0.0']", "pool": "auto"}]
            assert lines[-1]["msg"] == "controller stopped"
            assert "spinelb-lab-token" not in err.decode()

    run(main)
