"""Prometheus metrics of the controller: leadership, pool usage, assignments and failures.

:class:`ControllerMetrics` owns its registry (never the process-wide default),
so several controllers in one test process do not collide.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class ControllerMetrics:
    """The controller's metrics (``spinelb_controller_*``, ``spinelb_pool_*``)."""

    def __init__(self, pools: dict[str, tuple[int, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.leader_gauge = Gauge(
            "spinelb_controller_leader", "1 while this controller holds the Lease", registry=r
        )
        self.pool_used = Gauge(
            "spinelb_pool_addresses_used", "Addresses of the pool held by Services", ["pool"],
            registry=r,
        )
        self.pool_total = Gauge(
            "spinelb_pool_addresses_total", "Addresses in the pool", ["pool"], registry=r
        )
        self.assignments = Counter(
            "spinelb_controller_assignments",
            "Services given addresses (status written)",
            registry=r,
        )
        self.failures = Counter(
            "spinelb_controller_failures",
            "Allocation failures reported on Services, by reason",
            ["reason"],
            registry=r,
        )
        self.pools(pools)

    def leader(self, leading: bool) -> None:
        self.leader_gauge.set(1 if leading else 0)

    def pools(self, usage: dict[str, tuple[int, int]]) -> None:
        """Pool name -> (used, size), as :meth:`spinelb.ipam.Allocator.usage` gives it."""
        for name, (used, size) in usage.items():
            self.pool_used.labels(name).set(used)
            self.pool_total.labels(name).set(size)

    def assigned(self) -> None:
        self.assignments.inc()

    def failed(self, reason: str) -> None:
        self.failures.labels(reason).inc()

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
