"""Which Service holds which pool address: assignment, keeping, sharing and release.

Pure bookkeeping, no I/O.  The controller calls :meth:`Allocator.assign` for
every Service it owns and :meth:`Allocator.release` when one goes away; the
allocator answers with addresses or an :class:`AllocationError` that says why
not, in words for the Service's Events.  An error changes nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from spinelb.bgp.wire import Address
from spinelb.config import PoolConfig
from spinelb.ipam.sharing import sharing_conflict
from spinelb.ipam.span import PoolSpan
from spinelb.k8s.objects import ServiceInfo

REASONS = (
    "unknown-pool",
    "outside-pools",
    "in-use",
    "pool-exhausted",
    "family-unavailable",
    "bad-request",
    "not-auto-assign",
)


class AllocationError(Exception):
    """A Service cannot have addresses: ``reason`` for machines, ``message`` for people."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class _Holding:
    service: ServiceInfo
    addresses: tuple[Address, ...]


class Allocator:
    """Hands out pool addresses to Services, honouring requests, pools and sharing."""

    def __init__(self, pools: Sequence[PoolConfig]) -> None:
        self._pools = {pool.name: pool for pool in pools}
        self._order = [pool.name for pool in pools]
        self._spans: dict[tuple[str, int], PoolSpan] = {}
        for pool in pools:
            for version in (4, 6):
                ranges = [(a, b) for a, b in pool.ranges if a.version == version]
                if ranges:
                    self._spans[pool.name, version] = PoolSpan(
                        pool.name, version, ranges, avoid_buggy_ips=pool.avoid_buggy_ips
                    )
        # every range of every pool, sorted by first address, for pool_of
        bounds = sorted(
            (first.version, int(first), int(last), pool.name)
            for pool in pools
            for first, last in pool.ranges
        )
        self._bounds = bounds
        self._bound_keys = [(version, first) for version, first, _, _ in bounds]
        self._holdings: dict[str, _Holding] = {}
        self._holders: dict[Address, list[str]] = {}
        self._by_sharing_key: dict[str, dict[Address, None]] = {}

    # --- queries ----------------------------------------------------------------------

    def holder(self, address: Address) -> list[str]:
        """The keys of the Services holding ``address`` (several when shared)."""
        return list(self._holders.get(address, ()))

    def assigned(self, key: str) -> tuple[Address, ...]:
        holding = self._holdings.get(key)
        return () if holding is None else holding.addresses

    def assignments(self) -> dict[str, tuple[Address, ...]]:
        """Every Service key holding addresses, with its addresses (for the status page)."""
        return {key: holding.addresses for key, holding in self._holdings.items()}

    def pool_of(self, address: Address) -> str | None:
        """The name of the pool containing ``address``, or None."""
        index = bisect_right(self._bound_keys, (address.version, int(address))) - 1
        if index < 0:
            return None
        version, first, last, name = self._bounds[index]
        if version == address.version and first <= int(address) <= last:
            return name
        return None

    def usage(self) -> dict[str, tuple[int, int]]:
        """Pool name -> (addresses held, addresses in the pool), for metrics and status."""
        used = dict.fromkeys(self._order, 0)
        for address in self._holders:
            pool = self.pool_of(address)
            if pool is not None:
                used[pool] += 1
        return {name: (used[name], self._pools[name].size()) for name in self._order}

    # --- changes ----------------------------------------------------------------------

    def assign(self, service: ServiceInfo) -> tuple[Address, ...]:
        """Give (or keep) the Service its addresses, one per wanted IP family.

        Keeps what it has (here, or in ``service.ingress`` after a restart) when
        that still fits the request; requested addresses win; otherwise the
        annotated pool, else the first ``auto_assign`` pool with a free (or
        compatibly shared) address.  Raises :class:`AllocationError`, changing nothing.
        """
        plan = self._plan(service)
        self._commit(service, plan)
        return plan

    def release(self, key: str) -> tuple[Address, ...]:
        """Forget the Service's addresses; returns what it held."""
        holding = self._holdings.pop(key, None)
        if holding is None:
            return ()
        for address in holding.addresses:
            self._drop(key, holding.service, address)
        return holding.addresses

    # --- planning -----------------------------------------------------------------------

    def _plan(self, service: ServiceInfo) -> tuple[Address, ...]:
        if service.pool is not None and service.pool not in self._pools:
            known = ", ".join(self._order) or "none"
            raise AllocationError(
                "unknown-pool",
                f"{service.key}: no pool named {service.pool!r} (pools: {known})",
            )
        if service.requested:
            return self._plan_requested(service)
        holding = self._holdings.get(service.key)
        current = holding.addresses if holding is not None else service.ingress
        plan: list[Address] = []
        first_error: AllocationError | None = None
        for version in service.families:
            kept = next((a for a in current if a.version == version), None)
            if kept is not None and self._keepable(service, kept):
                plan.append(kept)
                continue
            try:
                plan.append(self._auto(service, version))
            except AllocationError as err:
                if service.require_all_families or len(service.families) == 1:
                    raise
                first_error = first_error or err
        if not plan:
            assert first_error is not None
            raise first_error
        return tuple(plan)

    def _plan_requested(self, service: ServiceInfo) -> tuple[Address, ...]:
        by_version: dict[int, Address] = {}
        for address in service.requested:
            if address.version in by_version:
                raise AllocationError(
                    "bad-request",
                    f"{service.key}: two IPv{address.version} addresses requested "
                    f"({by_version[address.version]}, {address}); one per family is allowed",
                )
            if address.version not in service.families:
                wanted = ", ".join(f"IPv{v}" for v in service.families)
                raise AllocationError(
                    "bad-request",
                    f"{service.key}: requested {address} is IPv{address.version} "
                    f"but the Service's ipFamilies are {wanted}",
                )
            by_version[address.version] = address
        plan: list[Address] = []
        for version in service.families:
            wanted_address = by_version.get(version)
            if wanted_address is None:
                if service.require_all_families:
                    raise AllocationError(
                        "bad-request",
                        f"{service.key}: RequireDualStack but no IPv{version} address requested",
                    )
                continue
            address = wanted_address
            pool = self.pool_of(address)
            if pool is None:
                known = ", ".join(self._order) or "none"
                raise AllocationError(
                    "outside-pools",
                    f"{service.key}: requested {address} is in no pool (pools: {known})",
                )
            if service.pool is not None and pool != service.pool:
                raise AllocationError(
                    "bad-request",
                    f"{service.key}: requested {address} is in pool {pool!r}, "
                    f"not in the annotated pool {service.pool!r}",
                )
            self._check_sharing(service, address)
            plan.append(address)
        return tuple(plan)

    def _keepable(self, service: ServiceInfo, address: Address) -> bool:
        """Whether the Service may keep ``address``; raises "in-use" when another holds it."""
        pool = self.pool_of(address)
        if pool is None:
            return False
        if service.pool is not None and pool != service.pool:
            return False
        if service.pool is None and not self._pools[pool].auto_assign:
            return False
        span = self._spans[pool, address.version]
        position = span.position(address)
        if position is None or span.buggy(position):
            return False
        self._check_sharing(service, address)
        return True

    def _auto(self, service: ServiceInfo, version: int) -> Address:
        """The lowest suitable address of IP version ``version`` from the Service's pools."""
        if service.pool is not None:
            if (service.pool, version) not in self._spans:
                raise AllocationError(
                    "family-unavailable",
                    f"{service.key}: pool {service.pool!r} has no IPv{version} addresses",
                )
            names = [service.pool]
        else:
            names = [n for n in self._order if self._pools[n].auto_assign
                     and (n, version) in self._spans]
            if not names:
                manual = [n for n in self._order if (n, version) in self._spans]
                if manual:
                    raise AllocationError(
                        "not-auto-assign",
                        f"{service.key}: the pools with IPv{version} addresses "
                        f"({', '.join(manual)}) have auto_assign: false; "
                        f"name one with the address-pool annotation",
                    )
                raise AllocationError(
                    "family-unavailable", f"{service.key}: no pool has IPv{version} addresses"
                )
        for name in names:
            found = self._lowest(service, self._spans[name, version])
            if found is not None:
                return found
        if len(names) == 1:
            usable = self._spans[names[0], version].usable()
            message = (f"pool {names[0]} is exhausted: all {usable} IPv{version} addresses "
                       f"are in use")
        else:
            sizes = ", ".join(
                f"{name} ({self._spans[name, version].usable()} IPv{version} addresses)"
                for name in names
            )
            message = f"every auto_assign pool is exhausted: {sizes}"
        raise AllocationError("pool-exhausted", f"{service.key}: {message}")

    def _lowest(self, service: ServiceInfo, span: PoolSpan) -> Address | None:
        """The lowest free address of ``span``, or a lower one shared compatibly."""
        found = span.lowest_free(lambda address: address not in self._holders)
        best = None if found is None else span.position(found)
        if service.sharing_key is not None:
            for address in self._by_sharing_key.get(service.sharing_key, {}):
                position = span.position(address)
                if position is None or (best is not None and position >= best):
                    continue
                if self._conflict(service, address) is None:
                    found, best = address, position
        return found

    def _conflict(self, service: ServiceInfo, address: Address) -> tuple[str, str] | None:
        """(holder, why) for the first holder of ``address`` incompatible with ``service``."""
        for key in self._holders.get(address, ()):
            if key == service.key:
                continue
            why = sharing_conflict(service, self._holdings[key].service)
            if why is not None:
                return key, why
        return None

    def _check_sharing(self, service: ServiceInfo, address: Address) -> None:
        conflict = self._conflict(service, address)
        if conflict is not None:
            other, why = conflict
            raise AllocationError(
                "in-use", f"{service.key}: {address} is in use by {other}: {why}"
            )

    # --- bookkeeping ------------------------------------------------------------------

    def _commit(self, service: ServiceInfo, plan: tuple[Address, ...]) -> None:
        key = service.key
        old = self._holdings.get(key)
        if old is not None:
            for address in old.addresses:
                self._drop(key, old.service, address)
        self._holdings[key] = _Holding(service, plan)
        for address in plan:
            self._holders.setdefault(address, []).append(key)
            if service.sharing_key is not None:
                self._by_sharing_key.setdefault(service.sharing_key, {})[address] = None

    def _drop(self, key: str, service: ServiceInfo, address: Address) -> None:
        holders = self._holders.get(address, [])
        if key in holders:
            holders.remove(key)
        if service.sharing_key is not None:
            still = any(
                self._holdings[k].service.sharing_key == service.sharing_key
                for k in holders if k in self._holdings
            )
            if not still:
                by_key = self._by_sharing_key.get(service.sharing_key, {})
                by_key.pop(address, None)
                if not by_key:
                    self._by_sharing_key.pop(service.sharing_key, None)
        if not holders:
            self._holders.pop(address, None)
            pool = self.pool_of(address)
            if pool is not None:
                self._spans[pool, address.version].freed(address)
