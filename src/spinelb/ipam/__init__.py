"""Address pools: which Service gets which address (pure; no I/O, no asyncio).

    allocator = Allocator(config.pools)
    addresses = allocator.assign(service_info(obj))   # raises AllocationError
    allocator.release("namespace/name")
"""

from __future__ import annotations

from .allocator import REASONS, AllocationError, Allocator
from .sharing import sharing_conflict
from .span import PoolSpan

__all__ = ["REASONS", "AllocationError", "Allocator", "PoolSpan", "sharing_conflict"]
