"""Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does it.

A candidate takes the Lease when it is absent, held by itself, released
(no holder), or expired.  Expiry is judged by the local monotonic clock, not by
comparing the holder's renewTime with our wall clock: the candidate remembers
when it last saw the Lease record change, and the Lease is expired once it has
not changed for leaseDurationSeconds.  Every write is a PUT carrying the
resourceVersion that was read, so of two candidates writing at once exactly
one succeeds (the other gets 409 Conflict).

The leader renews every ``renew_period``; if it cannot renew for two thirds of
the lease duration (client-go's renew deadline, before anyone else may take
over) it steps down.  Cancelling :meth:`LeaderElector.run` releases the Lease
(holder cleared, leaseDurationSeconds 1) so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import math
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from spinelb.k8s.client import LEASES, ApiError, ApiUnavailable, Kube

log = logging.getLogger("spinelb.k8s.lease")

RELEASE_TIMEOUT = 2.0
RENEW_DEADLINE_FRACTION = 2 / 3


def micro_time(when: datetime.datetime) -> str:
    """A MicroTime: RFC 3339 in UTC with microseconds."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """coordination.k8s.io/v1 Lease: acquire, renew every renew_period, release on stop."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 4.0,
        renew_period: float = 1.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_period = renew_period
        self.on_change = on_change
        self.is_leader = False
        self.leading = asyncio.Event()
        self.last_error: str | None = None
        self._observed: tuple[Any, ...] | None = None  # the last Lease record seen
        self._observed_at = 0.0  # monotonic time it was first seen in that state
        self._renewed_at = 0.0  # monotonic time of our last successful acquire or renew

    def __repr__(self) -> str:
        return (
            f"LeaderElector({self.namespace}/{self.name}, {self.identity}, leader={self.is_leader})"
        )

    @property
    def _attempt_timeout(self) -> float:
        """One acquire/renew attempt may not outlast the renew deadline."""
        return max(self.renew_period, self.lease_duration * RENEW_DEADLINE_FRACTION)

    @property
    def _duration_seconds(self) -> int:
        return max(1, math.ceil(self.lease_duration))

    async def run(self) -> None:
        """Try to acquire, then renew, until cancelled; release the Lease when cancelled."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                    # cancel that lands as the request completes, and run() never ends
                    async with asyncio.timeout(self._attempt_timeout):
                        acquired = await self._try_acquire_or_renew()
                    self.last_error = None
                except (ApiError, ApiUnavailable, TimeoutError) as exc:
                    exc = exc if str(exc) else ApiUnavailable("no answer in time")
                    acquired = False
                    if self.last_error != str(exc):
                        log.warning("lease %s/%s: %s", self.namespace, self.name, exc)
                    self.last_error = str(exc)
                if acquired:
                    self._renewed_at = loop.time()
                    self._set_leader(True)
                elif (
                    self.is_leader
                    and loop.time() - self._renewed_at
                    > self.lease_duration * RENEW_DEADLINE_FRACTION
                ):
                    log.warning(
                        "lease %s/%s: could not renew in time, stepping down",
                        self.namespace,
                        self.name,
                    )
                    self._set_leader(False)
                await asyncio.sleep(self.renew_period)
        finally:
            if self.is_leader:
                self._set_leader(False)
                try:
                    await asyncio.shield(asyncio.wait_for(self._release(), RELEASE_TIMEOUT))
                except (ApiError, ApiUnavailable, TimeoutError, asyncio.CancelledError) as exc:
                    log.warning("lease %s/%s: not released: %s", self.namespace, self.name, exc)

    def _set_leader(self, leading: bool) -> None:
        if leading == self.is_leader:
            return
        self.is_leader = leading
        if leading:
            self.leading.set()
        else:
            self.leading.clear()
        log.info(
            "lease %s/%s: %s %s leadership",
            self.namespace,
            self.name,
            self.identity,
            "took" if leading else "lost",
        )
        if self.on_change is not None:
            try:
                self.on_change(leading)
            except Exception:
                log.exception("lease %s/%s: on_change failed", self.namespace, self.name)

    def _observe(self, spec: Mapping[str, Any]) -> None:
        record = tuple(
            spec.get(k)
            for k in (
                "holderIdentity",
                "leaseDurationSeconds",
                "acquireTime",
                "renewTime",
                "leaseTransitions",
            )
        )
        if record != self._observed:
            self._observed = record
            self._observed_at = asyncio.get_running_loop().time()

    async def _try_acquire_or_renew(self) -> bool:
        now = micro_time(datetime.datetime.now(datetime.UTC))
        try:
            lease = await self.kube.get(LEASES, self.namespace, self.name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            body = {
                "apiVersion": LEASES.api_version,
                "kind": LEASES.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, now, 0),
            }
            return await self._write(self.kube.create(LEASES, self.namespace, body))
        spec = lease.get("spec") or {}
        self._observe(spec)
        holder = spec.get("holderIdentity") or ""
        duration = spec.get("leaseDurationSeconds") or self._duration_seconds
        loop = asyncio.get_running_loop()
        if holder and holder != self.identity and self._observed_at + duration > loop.time():
            if self.is_leader:  # someone else took it over (e.g. while we could not renew)
                self._set_leader(False)
            return False
        ours = holder == self.identity and self.is_leader
        transitions = int(spec.get("leaseTransitions") or 0)
        new_spec = self._spec(
            (spec.get("acquireTime") or now) if ours else now,
            now,
            transitions if ours else transitions + 1,
        )
        body = {**lease, "spec": new_spec}  # metadata.resourceVersion as read: a PUT race gets 409
        return await self._write(self.kube.replace(LEASES, self.namespace, self.name, body))

    def _spec(self, acquired: str, renewed: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration_seconds,
            "acquireTime": acquired,
            "renewTime": renewed,
            "leaseTransitions": transitions,
        }

    async def _write(self, request: Coroutine[Any, Any, dict[str, Any]]) -> bool:
        try:
            written = await request
        except ApiError as exc:
            if exc.status == 409:  # another candidate wrote first
                return False
            raise
        self._observe(written.get("spec") or {})
        return True

    async def _release(self) -> None:
        lease = await self.kube.get(LEASES, self.namespace, self.name)
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            return
        now = micro_time(datetime.datetime.now(datetime.UTC))
        spec.pop("holderIdentity", None)
        spec.update({"leaseDurationSeconds": 1, "renewTime": now, "acquireTime": now})
        await self.kube.replace(LEASES, self.namespace, self.name, {**lease, "spec": spec})
        log.info("lease %s/%s: released by %s", self.namespace, self.name, self.identity)
