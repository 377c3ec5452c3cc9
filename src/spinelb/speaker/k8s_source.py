"""The speaker's Kubernetes source: which Service addresses this node announces, and why.

Two halves.  :func:`decide` is the decision table, a pure function of the
facts (this node, the Services that are ours, the Nodes, the EndpointSlices,
the pools).  :class:`KubernetesSource` keeps those facts current with three
reflectors (Services, EndpointSlices, this Node), recomputes only what a
change touches, once per event-loop turn, and hands the changed decisions to
the speaker, which turns them into route changes on the affected sessions.

Nothing dynamic is reported before all three reflectors have their first
list (no flapping from partial data), and an unreachable API changes nothing:
the last decisions stand while the reflectors retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from spinelb.bgp.wire import Address
from spinelb.config import MODE_BGP, MODE_LAYER2, KubernetesConfig, PoolConfig
from spinelb.k8s.objects import (
    EXCLUDE_LABEL,
    NodeInfo,
    ServiceInfo,
    SliceInfo,
    node_info,
    owned,
    service_info,
    slice_info,
)
from spinelb.speaker.api import KubernetesStatus

if TYPE_CHECKING:
    from spinelb.k8s.reflector import Reflector

log = logging.getLogger("spinelb.speaker.kubernetes")

#: Seconds between attempts to build the API client (a kubeconfig not readable yet).
CONNECT_RETRY = 1.0
CONNECT_RETRY_MAX = 30.0


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether this node announces one Service address, and the reason a person reads.

    For a layer2 pool's address (``mode`` "layer2") ``announce`` means "this node
    is eligible by its own Node status and the policy": the speaker never puts
    such an address in a BGP table, it hands it to the owner choice, which runs
    over ``nodes`` (Local policy: the nodes with a ready endpoint of a Service
    using the address) or, when ``nodes`` is None (Cluster policy), every live node.
    """

    address: Address
    services: tuple[str, ...]  # "namespace/name" of every Service of ours using it, sorted
    pool: str | None
    announce: bool
    reason: str
    mode: str = MODE_BGP  # the pool's mode
    nodes: frozenset[str] | None = None  # layer2, Local policy: the nodes that may answer


def decide(
    node: str,
    services: Iterable[ServiceInfo],
    nodes: Mapping[str, NodeInfo],
    slices: Iterable[SliceInfo],
    pools: Sequence[PoolConfig],
) -> dict[Address, Decision]:
    """Decide every address in the ingress of ``services`` (the Services that are ours).

    An address is announced from ``node`` when it is in a pool and some Service
    using it is eligible here: the node is known, Ready and not labelled
    for exclusion; for ``externalTrafficPolicy: Local`` the Service also has a
    ready endpoint on the node.  A layer2 pool's address is decided by the same
    rule and also carries the nodes that may answer it (:attr:`Decision.nodes`).
    """
    slices = list(slices)
    with_endpoint_here = {
        key for s in slices if node in s.ready_nodes and (key := s.service_key) is not None
    }
    users: dict[Address, dict[str, ServiceInfo]] = {}
    for service in services:
        for address in service.ingress:
            users.setdefault(address, {})[service.key] = service
    unfit = node_problems(node, nodes.get(node))
    decisions: dict[Address, Decision] = {}
    for address, using in users.items():
        keys = tuple(sorted(using))
        pool = next((p for p in pools if address in p), None)
        if pool is None:
            decisions[address] = Decision(address, keys, None, False, f"{address} is in no pool")
            continue
        if unfit:
            announce, reason = False, "; ".join(unfit)
        elif any(not service.local for service in using.values()):
            announce, reason = True, "Cluster policy, node Ready"
        elif any(key in with_endpoint_here for key in keys):
            announce, reason = True, f"Local policy, ready endpoint on {node}"
        else:
            announce, reason = False, f"Local policy: no ready endpoint on {node}"
        if pool.mode == MODE_LAYER2:
            decisions[address] = Decision(
                address, keys, pool.name, announce, reason, MODE_LAYER2,
                answering_nodes(using.values(), slices),
            )
        else:
            decisions[address] = Decision(address, keys, pool.name, announce, reason)
    return decisions


def answering_nodes(
    using: Iterable[ServiceInfo], slices: Iterable[SliceInfo]
) -> frozenset[str] | None:
    """The nodes that may answer a layer2 address for the Services ``using`` it.

    None when one of them has Cluster policy (any live node may); otherwise
    the nodes with a ready endpoint of any of them (Local policy everywhere).
    """
    keys = set()
    for service in using:
        if not service.local:
            return None
        keys.add(service.key)
    return frozenset(
        name for s in slices if s.service_key in keys for name in s.ready_nodes
    )


def node_problems(name: str, node: NodeInfo | None) -> list[str]:
    """Why ``node`` may announce nothing at all (empty when it may)."""
    if node is None:
        return ["node unknown to the API"]
    problems = []
    if not node.ready:
        problems.append("node not Ready")
    if node.excluded:
        problems.append(f"node {name} labelled {EXCLUDE_LABEL}")
    return problems


#: ``on_decisions(changed, complete)``: ``changed`` maps an address to its new
#: decision, or None when no Service of ours uses it any more; ``complete`` means
#: ``changed`` is the whole set (anything not in it is gone).
DecisionSink = Callable[[Mapping[Address, "Decision | None"], bool], None]


#: The ceiling of the watch retry backoff: after an API server outage of any length, changes
#: made meanwhile arrive within about this long of its return (client-go's 30 s meant up to
#: 30 s). A refused or timed-out request every 2.5-5 s per node costs a recovering server little.
API_RETRY_CEILING = 5.0


class KubernetesSource:
    """Services, EndpointSlices and this Node, watched; decisions, recomputed as they change.

    ``on_decisions`` is called from the event loop, at most once per loop turn,
    with only the addresses whose decision changed.
    """

    def __init__(
        self,
        config: KubernetesConfig,
        node: str,
        pools: Sequence[PoolConfig],
        on_decisions: DecisionSink,
        *,
        backoff_max: float = API_RETRY_CEILING,
    ) -> None:
        self.config = config
        self.node = node
        self.pools = tuple(pools)
        self.on_decisions = on_decisions
        self.backoff_max = backoff_max
        self.decisions: dict[Address, Decision] = {}
        # The facts, indexed for incremental recomputation.
        self.services: dict[str, ServiceInfo] = {}  # ours only
        self.users: dict[Address, set[str]] = {}  # address -> keys of our Services using it
        self.slices: dict[str, SliceInfo] = {}  # slice key -> slice (with a service label)
        self.slices_of: dict[str, set[str]] = {}  # service key -> slice keys
        self.nodes: dict[str, NodeInfo] = {}
        self._dirty: set[Address] = set()
        self._everything_dirty = False
        self._flush_scheduled = False
        self._reported_once = False
        self._stopped = False
        self._reflectors: list[Reflector] = []
        self._task: asyncio.Task[None] | None = None
        self._connect_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start watching (in the background; an unreachable API is retried, never fatal)."""
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="kubernetes-source")

    async def stop(self) -> None:
        """Stop watching; no decision is reported after this, not even one already due."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        # Imported here, not at the top: the official client and aiohttp cost a speaker
        # without a kubernetes section ~30 MiB and half a second of start-up.
        from spinelb.k8s.client import ENDPOINTSLICES, NODES, SERVICES, connect
        from spinelb.k8s.reflector import Reflector

        delay = CONNECT_RETRY
        while True:
            try:
                kube = await connect(self.config)
                break
            except Exception as exc:  # a kubeconfig not there yet, a bad context: retry
                self._connect_error = f"cannot build the API client: {type(exc).__name__}: {exc}"
                log.warning("kubernetes client not ready; retrying",
                            extra={"error": self._connect_error, "retry_seconds": delay})
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, CONNECT_RETRY_MAX)
        self._connect_error = None
        self._reflectors = [
            Reflector(kube, SERVICES, self._services_changed,
                      backoff_max=self.backoff_max),
            Reflector(kube, ENDPOINTSLICES, self._slices_changed,
                      backoff_max=self.backoff_max),
            Reflector(kube, NODES, self._nodes_changed,
                      field_selector=f"metadata.name={self.node}",
                      backoff_max=self.backoff_max),
        ]
        try:
            async with asyncio.TaskGroup() as group:
                for reflector in self._reflectors:
                    group.create_task(reflector.run())
                group.create_task(self._first_sync())
        finally:
            await kube.close()

    async def _first_sync(self) -> None:
        await asyncio.gather(*(r.synced.wait() for r in self._reflectors))
        log.info("kubernetes synced", extra={"services": len(self.services),
                                             "endpointslices": len(self.slices),
                                             "node_known": self.node in self.nodes})
        self._everything_dirty = True
        self._schedule()

    @property
    def synced(self) -> bool:
        return bool(self._reflectors) and all(r.synced.is_set() for r in self._reflectors)

    @property
    def connected(self) -> bool:
        return bool(self._reflectors) and all(r.connected for r in self._reflectors)

    def status(self) -> KubernetesStatus:
        errors = [r.last_error for r in self._reflectors if r.last_error]
        return {
            "connected": self.connected,
            "last_error": self._connect_error or (errors[0] if errors else None),
            "synced": self.synced,
        }

    async def relist(self, timeout: float) -> str:
        """List Services, EndpointSlices and the Node again, then decide every address anew.

        The reflectors take the path they take after a 410: only the difference
        against what they hold is applied.  Returns ``"relisted"``, or
        ``"unreachable: <why>"`` when the lists are not in within ``timeout``
        seconds (the decisions, and so the routes, stay as they are).
        """
        if not self._reflectors:
            return f"unreachable: {self._connect_error or 'no API client yet'}"
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(*(r.relist() for r in self._reflectors))
        except TimeoutError:
            errors = [r.last_error for r in self._reflectors if r.last_error]
            why = errors[0] if errors else f"no list within {timeout:g} s"
            return f"unreachable: {why}"
        self._everything_dirty = True
        self._flush()  # now, so the caller sees the new decisions applied
        return "relisted"

    def reconfigure(self, pools: Sequence[PoolConfig]) -> dict[Address, Decision | None]:
        """New pools (a reload): decide every address again, now.

        Returns the changed decisions (nothing before the first sync, which will
        decide with the new pools anyway).  A new node name or API needs a new
        source: the Node is watched by name.
        """
        self.pools = tuple(pools)
        if not self._reported_once:
            return {}
        return self.recompute(set(self.users) | set(self.decisions))

    # --- reflector callbacks: record the facts, mark what they touch ------------

    def _services_changed(self, changes: Mapping[str, Mapping[str, Any] | None]) -> None:
        lb_class = self.config.load_balancer_class
        for key, obj in changes.items():
            old = self.services.pop(key, None)
            if old is not None:
                self._unindex(key, old)
            if obj is None:
                continue
            info = service_info(obj)
            if owned(info, lb_class):
                self.services[key] = info
                for address in info.ingress:
                    self.users.setdefault(address, set()).add(key)
                self._dirty.update(info.ingress)
        self._schedule()

    def _unindex(self, key: str, old: ServiceInfo) -> None:
        for address in old.ingress:
            keys = self.users.get(address)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self.users[address]
        self._dirty.update(old.ingress)

    def _slices_changed(self, changes: Mapping[str, Mapping[str, Any] | None]) -> None:
        for key, obj in changes.items():
            old = self.slices.pop(key, None)
            if old is not None and old.service_key is not None:
                self._service_touched(old.service_key)
                keys = self.slices_of.get(old.service_key)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self.slices_of[old.service_key]
            if obj is None:
                continue
            info = slice_info(obj)
            if info.service_key is None:
                continue
            self.slices[key] = info
            self.slices_of.setdefault(info.service_key, set()).add(key)
            self._service_touched(info.service_key)
        self._schedule()

    def _service_touched(self, key: str) -> None:
        service = self.services.get(key)
        if service is not None and service.local:
            self._dirty.update(service.ingress)

    def _nodes_changed(self, changes: Mapping[str, Mapping[str, Any] | None]) -> None:
        for name, obj in changes.items():
            if obj is None:
                self.nodes.pop(name, None)
            else:
                self.nodes[name] = node_info(obj)
            if name == self.node:
                self._everything_dirty = True
        self._schedule()

    # --- recomputation, once per loop turn ----------------------------------------

    def _schedule(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._stopped or not self.synced:
            return  # keep collecting; the first sync decides everything
        first = not self._reported_once
        if first or self._everything_dirty:
            dirty: set[Address] = set(self.users) | set(self.decisions)
        else:
            dirty = self._dirty
        self._dirty = set()
        self._everything_dirty = False
        changed = self.recompute(dirty)
        if first:
            self._reported_once = True
            self.on_decisions(dict(self.decisions), True)
        elif changed:
            self.on_decisions(changed, False)

    def recompute(self, addresses: Iterable[Address]) -> dict[Address, Decision | None]:
        """Decide ``addresses`` again; return those whose decision changed (None: gone)."""
        addresses = set(addresses)
        keys = set().union(*(self.users.get(a, ()) for a in addresses))
        services = [self.services[key] for key in keys]
        slices = [self.slices[s] for key in keys for s in self.slices_of.get(key, ())]
        fresh = decide(self.node, services, self.nodes, slices, self.pools)
        changed: dict[Address, Decision | None] = {}
        for address in addresses:
            new = fresh.get(address)
            if new == self.decisions.get(address):
                continue
            changed[address] = new
            if new is None:
                del self.decisions[address]
            else:
                self.decisions[address] = new
        return changed
