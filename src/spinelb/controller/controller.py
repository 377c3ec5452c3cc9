"""The controller: Service addresses from the pools, written to ``status.loadBalancer.ingress``.

One Reflector keeps every Service in memory; one Lease decides which
controller writes (a standby reflects too, so it takes over warm).  Changes
mark Service keys dirty; a worker takes them in batches, decides each one with
the :class:`~spinelb.ipam.Allocator` (pure, synchronous) and then writes the
outcomes with a few requests in flight: the status patch when it differs, and
an Event (``IPAllocated``, ``AllocationFailed``, ``IPReleased``).

On taking the Lease the allocator starts empty and is seeded from the Services'
own status, oldest first, before anything new is assigned: a restart or a
failover never moves an address.  A Service that cannot be served is left
without status and with an Event saying why; it is tried again when an address
is released or its own object changes, never in a loop, or when an operator
asks (``POST /assign``, :meth:`Controller.assign_pending`).

The store lags behind the controller's own writes (the watch brings them back
later, most of all under load).  Until it shows the resourceVersion a status
patch returned, the Service is decided with the status written, so a Lease
lost and taken back meanwhile neither writes that status again nor hands its
addresses to another Service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from spinelb import __version__
from spinelb.bgp.wire import Address
from spinelb.config import ControllerConfig
from spinelb.controller.metrics import ControllerMetrics
from spinelb.ipam import AllocationError, Allocator
from spinelb.k8s.client import (
    LEASES,
    SERVICES,
    ApiError,
    ApiUnavailable,
    Kube,
    connect,
    resource_version,
)
from spinelb.k8s.events import EventRecorder
from spinelb.k8s.lease import LeaderElector
from spinelb.k8s.objects import ServiceInfo, owned, service_info
from spinelb.k8s.reflector import Reflector
from spinelb.speaker.api import ApiServer, Query

log = logging.getLogger("spinelb.controller")

COMPONENT = "spinelb-controller"
BATCH = 256  # Service keys decided per worker turn
WRITERS = 16  # API writes in flight at once
RETRY_DELAY = 2.0  # seconds before a Service whose write failed is tried again
ASSIGN_TIMEOUT = 10.0  # seconds POST /assign waits for the list and the decisions
HOLDER_TIMEOUT = 2.0  # seconds a standby spends reading the Lease for its answer


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one decision asks of the API: a new ingress list (None: leave it) and/or an Event."""

    service: Mapping[str, Any]
    ingress: tuple[Address, ...] | None = None
    event: tuple[str, str, str] | None = None  # type, reason, message


@dataclass(slots=True)
class _Waiter:
    """An :meth:`Controller.assign_pending` call waiting for its Services to be decided and written."""

    remaining: set[str]  # keys not yet taken by a worker turn since the call
    keys: frozenset[str]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def default_identity() -> str:
    """This process's Lease identity: host name and process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Controller:
    """Assigns pool addresses to the LoadBalancer Services it owns, while it holds the Lease."""

    def __init__(
        self,
        config: ControllerConfig,
        kube: Kube,
        identity: str,
        *,
        lease_duration: float = 4.0,
        renew_period: float = 1.0,
        backoff_max: float = 5.0,  # changes made during an API outage arrive within ~5 s
    ) -> None:
        self.config = config
        self.kube = kube
        self.identity = identity
        self.allocator = Allocator(config.pools)
        self.metrics = ControllerMetrics(self.allocator.usage())
        self.reflector = Reflector(kube, SERVICES, self._changed, backoff_max=backoff_max)
        self.elector = LeaderElector(
            kube,
            config.kubernetes.namespace,
            config.kubernetes.lease_name,
            identity,
            lease_duration=lease_duration,
            renew_period=renew_period,
            on_change=self._leadership,
        )
        self.events = EventRecorder(kube, COMPONENT, identity)
        self.api: ApiServer | None = None
        self.pending: dict[str, str] = {}  # key -> the AllocationFailed message last reported
        self._reported: dict[str, tuple[Address, ...]] = {}  # key -> addresses announced by Event
        # key -> (resourceVersion, ingress) of our last status patch the store may not show yet
        self._written: dict[str, tuple[str, tuple[Address, ...]]] = {}
        self._dirty: dict[str, None] = {}  # keys to decide, in arrival order
        self._wake = asyncio.Event()
        self._seeded = False
        self._writers = asyncio.Semaphore(WRITERS)
        self._running = False
        self._waiters: list[_Waiter] = []

    def __repr__(self) -> str:
        return f"Controller({self.identity}, leader={self.elector.is_leader})"

    @property
    def load_balancer_class(self) -> str | None:
        return self.config.kubernetes.load_balancer_class

    # --- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Reflect, campaign and work until cancelled; cancelling releases the Lease."""
        if self.config.api.address is not None:
            self.api = ApiServer(
                str(self.config.api.address),
                self.config.api.port,
                status=self.status,
                metrics=self.metrics.render,
                healthy=lambda: self._running,
                actions={"/assign": self._assign_action},
            )
            await self.api.start()
        self._running = True
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.reflector.run(), name="controller-reflector")
                tasks.create_task(self.elector.run(), name="controller-lease")
                tasks.create_task(self._work(), name="controller-worker")
        finally:
            self._running = False
            if self.api is not None:
                await self.api.close()

    def _changed(self, changes: Mapping[str, object]) -> None:
        """The reflector's callback: the changed keys need a decision."""
        for key in changes:
            self._dirty[key] = None
        self._wake.set()

    def _leadership(self, leading: bool) -> None:
        """The elector's callback: leading starts over from the Services' own status."""
        self.metrics.leader(leading)
        self._seeded = False
        log.info("leadership", extra={"identity": self.identity, "leader": leading})
        self._wake.set()

    async def _work(self) -> None:
        """Decide and write the dirty Services, a batch per turn, while leading."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.reflector.synced.wait()
            await self.elector.leading.wait()
            if not self._seeded:
                self._seed()
            keys = list(self._dirty)[:BATCH]
            for key in keys:
                del self._dirty[key]
            outcomes = [o for o in map(self._decide, keys) if o is not None]
            self.metrics.pools(self.allocator.usage())
            if outcomes:
                await asyncio.gather(*(self._write(outcome) for outcome in outcomes))
            self._turn_done(keys)
            if self._dirty:
                self._wake.set()

    def _turn_done(self, taken: list[str]) -> None:
        """A worker turn decided and wrote ``taken``: release the waiters whose Services are done.

        A waiter is done once each of its Services has been taken (or is gone
        from the store) and none is waiting for another decision, such as the
        retry an address freed in the same turn asks for.
        """
        for waiter in self._waiters:
            waiter.remaining = {k for k in waiter.remaining - set(taken) if k in self._dirty}
            settled = not waiter.remaining and waiter.keys.isdisjoint(self._dirty)
            if settled and not waiter.done.done():
                waiter.done.set_result(None)

    # --- deciding (synchronous: no await between reading the store and the allocator) ---

    def _seed(self) -> None:
        """Start the allocator from what the Services' status says, oldest Service first."""
        self.allocator = Allocator(self.config.pools)
        self.pending.clear()
        self._reported.clear()
        infos = [self._as_written(obj) for obj in self.reflector.store.values()]
        mine = sorted(
            (info for info in infos if owned(info, self.load_balancer_class)),
            key=lambda info: (info.created, info.key),
        )
        kept = 0
        for info in mine:
            if not info.ingress or info.problems:
                continue
            try:
                addresses = self.allocator.assign(info)
            except AllocationError:
                continue  # decided (and reported) with the rest below
            if set(addresses) == set(info.ingress):
                self._reported[info.key] = addresses
                kept += 1
            else:
                self.allocator.release(info.key)
        # every Service gets a decision: ours oldest first, then the rest (releases)
        self._dirty = dict.fromkeys([info.key for info in mine] + [info.key for info in infos])
        self._seeded = True
        log.info("seeded", extra={"services": len(mine), "kept": kept})

    def _decide(self, key: str) -> Outcome | None:
        obj = self.reflector.store.get(key)
        if obj is None:
            released = self.allocator.release(key)
            self._forget(key)
            self._written.pop(key, None)
            if released:
                log.info("released", extra={"service": key, "addresses": _text(released),
                                            "why": "deleted"})
                self._retry_pending()
            return None
        info = self._as_written(obj)
        if not owned(info, self.load_balancer_class):
            return self._release(info, obj)
        if info.problems:
            return self._failed(info, obj, "bad-request", f"{key}: " + "; ".join(info.problems))
        before = self.allocator.assigned(key)
        try:
            addresses = self.allocator.assign(info)
        except AllocationError as err:
            return self._failed(info, obj, err.reason, err.message)
        if set(before) - set(addresses):
            self._retry_pending()
        self.pending.pop(key, None)
        news = addresses != self._reported.get(key) and addresses != info.ingress
        self._reported[key] = addresses
        if addresses == info.ingress:
            return None
        event = None
        if news:
            pools = sorted({self.allocator.pool_of(a) or "?" for a in addresses})
            message = (f"Assigned IP {json.dumps(_text(addresses))} "
                       f"from pool{'s' if len(pools) > 1 else ''} {', '.join(pools)}")
            event = ("Normal", "IPAllocated", message)
            self.metrics.assigned()
            log.info("assigned", extra={"service": key, "addresses": _text(addresses),
                                        "pool": ",".join(pools)})
        return Outcome(obj, ingress=addresses, event=event)

    def _release(self, info: ServiceInfo, obj: Mapping[str, Any]) -> Outcome | None:
        """The Service is no longer ours: free its addresses and clear the status we wrote."""
        released = self.allocator.release(info.key)
        self._forget(info.key)
        if not released:
            return None
        self._retry_pending()
        why = "deleting" if info.deleting else (
            "no longer type LoadBalancer" if not info.load_balancer
            else f"loadBalancerClass {info.load_balancer_class!r} is not ours")
        log.info("released", extra={"service": info.key, "addresses": _text(released), "why": why})
        if info.deleting:
            return None
        clear = () if set(info.ingress) & set(released) else None
        message = f"Released IP {json.dumps(_text(released))}: {why}"
        return Outcome(obj, ingress=clear, event=("Normal", "IPReleased", message))

    def _failed(
        self, info: ServiceInfo, obj: Mapping[str, Any], reason: str, message: str
    ) -> Outcome | None:
        """Leave the Service without addresses; report the reason once per distinct message."""
        if self.allocator.release(info.key):
            self._retry_pending()
        self._reported.pop(info.key, None)
        event = None
        if self.pending.get(info.key) != message:
            event = ("Warning", "AllocationFailed", message)
            self.metrics.failed(reason)
            log.warning("allocation failed", extra={"service": info.key, "reason": reason,
                                                    "detail": message})
        self.pending[info.key] = message
        clear = () if info.ingress else None
        if event is None and clear is None:
            return None
        return Outcome(obj, ingress=clear, event=event)

    def _as_written(self, obj: Mapping[str, Any]) -> ServiceInfo:
        """The Service as stored, with the status we wrote while the store is older than the write.

        Deciding from a store that has not caught up with our own patch would
        write that status again and take its addresses for free.  A store at or
        past the patch's resourceVersion (someone else's later change included)
        is the truth again, and the remembered write is dropped.
        """
        info = service_info(obj)
        written = self._written.get(info.key)
        if written is None:
            return info
        version, ingress = written
        if not _older(resource_version(obj), version):
            del self._written[info.key]
            return info
        return replace(info, ingress=ingress)

    def _forget(self, key: str) -> None:
        self.pending.pop(key, None)
        self._reported.pop(key, None)

    def _retry_pending(self) -> None:
        """An address came free: the Services waiting for one get another chance."""
        for key in self.pending:
            self._dirty[key] = None
        if self.pending:
            self._wake.set()

    # --- writing ----------------------------------------------------------------------

    async def _write(self, outcome: Outcome) -> None:
        meta = outcome.service.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
        async with self._writers:
            if not self.elector.is_leader:
                return
            if outcome.ingress is not None:
                ingress = [{"ip": str(a)} for a in outcome.ingress] if outcome.ingress else None
                body = {"status": {"loadBalancer": {"ingress": ingress}}}
                try:
                    written = await self.kube.patch_status(SERVICES, namespace, name, body)
                except ApiError as err:
                    if err.status == 404:
                        return  # deleted meanwhile: the watch tells
                    self._write_failed(f"{namespace}/{name}", str(err))
                    return
                except ApiUnavailable as err:
                    self._write_failed(f"{namespace}/{name}", str(err))
                    return
                self._written[f"{namespace}/{name}"] = (
                    resource_version(written), service_info(written).ingress
                )
            if outcome.event is not None:
                await self.events.record(outcome.service, *outcome.event)

    def _write_failed(self, key: str, error: str) -> None:
        log.warning("status not written; retrying", extra={"service": key, "error": error})
        self._reported.pop(key, None)
        asyncio.get_running_loop().call_later(RETRY_DELAY, self._changed, {key: None})

    # --- an operator's retry (POST /assign) -----------------------------------------------

    async def assign_pending(self, *, timeout: float = ASSIGN_TIMEOUT) -> dict[str, object]:
        """Try every Service still without an address again, now; what each one got.

        Pending Services are otherwise tried again only when an address is
        released or their own object changes.  This lists the Services again
        first (a change the watch missed is applied, as after a 410), then
        decides every pending Service and every one of ours without ingress,
        and waits (at most ``timeout`` seconds) until those decisions are
        written.  A standby answers ``{"leader": false, "holder": ...}``.
        """
        if not self.elector.is_leader:
            return await self._standby_answer()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        kubernetes = "relisted"
        try:
            async with asyncio.timeout_at(deadline):
                await self.reflector.relist()
        except TimeoutError:
            kubernetes = f"unreachable: {self.reflector.last_error or 'no list in time'}"
        keys = set(self.pending)
        for obj in self.reflector.store.values():
            info = service_info(obj)
            if owned(info, self.load_balancer_class) and not info.ingress:
                keys.add(info.key)
        complete = True
        if keys:
            waiter = _Waiter(set(keys), frozenset(keys))
            self._waiters.append(waiter)
            for key in sorted(keys):
                self._dirty[key] = None
            self._wake.set()
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter.done
            except TimeoutError:
                complete = False
            finally:
                self._waiters.remove(waiter)
        if not self.elector.leading.is_set():  # lost the Lease meanwhile
            return await self._standby_answer()
        assigned = {
            key: _text(addresses)
            for key in sorted(keys)
            if key not in self.pending and (addresses := self.allocator.assigned(key))
        }
        log.info("assigned on request", extra={"tried": len(keys), "assigned": len(assigned),
                                               "pending": len(self.pending)})
        return {
            "leader": True,
            "assigned": assigned,
            "pending": dict(sorted(self.pending.items())),
            "complete": complete,
            "kubernetes": kubernetes,
        }

    async def _standby_answer(self) -> dict[str, object]:
        """Not leading: who is, as the Lease says (None when it cannot be read)."""
        holder = None
        kubernetes = self.config.kubernetes
        with contextlib.suppress(ApiError, ApiUnavailable, TimeoutError):
            async with asyncio.timeout(HOLDER_TIMEOUT):
                lease = await self.kube.get(LEASES, kubernetes.namespace, kubernetes.lease_name)
            holder = (lease.get("spec") or {}).get("holderIdentity") or None
        return {"leader": False, "holder": holder}

    async def _assign_action(self, query: Query) -> tuple[int, dict[str, object]]:
        answer = await self.assign_pending()
        return (200 if answer["leader"] else 409), answer

    # --- the local API ------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        """``GET /status``: leadership, the API connection, pool usage, every Service's outcome."""
        services: dict[str, dict[str, object]] = {}
        if self.elector.is_leader:
            for key, addresses in sorted(self.allocator.assignments().items()):
                services[key] = {"addresses": _text(addresses)}
            for key, message in sorted(self.pending.items()):
                services[key] = {"pending": message}
        return {
            "identity": self.identity,
            "leader": self.elector.is_leader,
            "version": __version__,
            "kubernetes": {
                "connected": self.reflector.connected,
                "synced": self.reflector.synced.is_set(),
                "last_error": self.reflector.last_error,
            },
            "pools": [
                {"name": name, "used": used, "size": size}
                for name, (used, size) in self.allocator.usage().items()
            ],
            "services": services,
        }


def _text(addresses: tuple[Address, ...]) -> list[str]:
    return [str(a) for a in addresses]


def _older(version: str, than: str) -> bool:
    """Whether resourceVersion ``version`` is certainly older than ``than``.

    Kubernetes 1.35 made resourceVersions comparable (KEP-5504): decimal
    integers without leading zeros, the longer one the newer, else the
    lexicographically greater.  Versions not of that form are only known to
    differ, so they are not called older: the store is then trusted, which at
    worst writes a status again.
    """
    if not _comparable(version) or not _comparable(than):
        return False
    return (len(version), version) < (len(than), than)


def _comparable(version: str) -> bool:
    return version.isascii() and version.isdigit() and not version.startswith("0")


async def serve(config: ControllerConfig, identity: str) -> int:
    """``spinelb controller``: run until SIGTERM or SIGINT, then release the Lease; exit status."""
    try:
        kube = await connect(config.kubernetes)
    except Exception as exc:  # a kubeconfig the client cannot use, or no service account
        log.error("cannot configure the Kubernetes client", extra={"error": str(exc)})
        return 1
    controller = Controller(config, kube, identity)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info("controller starting", extra={"identity": identity, "version": __version__,
                                           "pools": len(config.pools)})
    task = asyncio.create_task(controller.run(), name="controller")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            error = None if task.cancelled() else task.exception()
            log.error("controller failed", exc_info=error)
            return 1
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.info("controller stopped", extra={"identity": identity})
        return 0
    finally:
        stopper.cancel()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await kube.close()
