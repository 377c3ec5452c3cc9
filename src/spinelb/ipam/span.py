"""One pool's addresses of one IP version, numbered in range order, with a fast "lowest free".

A pool of thousands (or an IPv6 /64) is never enumerated.  Each address has a
*position*: its index when the pool's ranges of that version are laid end to
end in config order.  The lowest free position is found with a cursor and a
heap: every position below the cursor that is free is in the heap (stale
entries, taken since, are dropped when they surface), and positions at or
past the cursor are checked one by one as the cursor moves.  A burst of
allocations therefore costs O(log n) each, amortised.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Sequence
from ipaddress import ip_address

from spinelb.bgp.wire import Address


class PoolSpan:
    """The addresses of version ``version`` of one pool, and which of them are free."""

    def __init__(
        self, pool: str, version: int, ranges: Sequence[tuple[Address, Address]],
        *, avoid_buggy_ips: bool = False,
    ) -> None:
        self.pool = pool
        self.version = version
        self.avoid_buggy_ips = avoid_buggy_ips and version == 4
        # (first, last, position of first), in config order
        self._ranges: list[tuple[int, int, int]] = []
        position = 0
        for first, last in ranges:
            self._ranges.append((int(first), int(last), position))
            position += int(last) - int(first) + 1
        self.size = position
        self._by_first = sorted(self._ranges)
        self._firsts = [first for first, _, _ in self._by_first]
        self._cursor = 0
        self._below_cursor: list[int] = []

    def usable(self) -> int:
        """How many addresses auto-assignment may give (the size less .0/.255 when avoided)."""
        if not self.avoid_buggy_ips:
            return self.size
        buggy = sum(_buggy_upto(last) - _buggy_upto(first - 1) for first, last, _ in self._ranges)
        return self.size - buggy

    def position(self, address: Address) -> int | None:
        """The address's position in the span, or None when it is not in it."""
        if address.version != self.version:
            return None
        value = int(address)
        index = bisect_right(self._firsts, value) - 1
        if index < 0:
            return None
        first, last, base = self._by_first[index]
        return base + value - first if value <= last else None

    def address(self, position: int) -> Address:
        """The address at ``position`` (0 <= position < size)."""
        for first, last, base in self._ranges:
            if position <= base + last - first:
                return ip_address(first + position - base)
        raise IndexError(position)

    def buggy(self, position: int) -> bool:
        """Whether auto-assignment must skip this position (.0 or .255 when avoided)."""
        return self.avoid_buggy_ips and int(self.address(position)) % 256 in (0, 255)

    def lowest_free(self, is_free: Callable[[Address], bool]) -> Address | None:
        """The lowest free, assignable address in range order, or None when there is none.

        Only skips what is taken (or unassignable), so it changes no outcome:
        calling it without taking the address leaves the span as good as before.
        """
        heap = self._below_cursor
        while heap:
            address = self.address(heap[0])
            if is_free(address) and not self.buggy(heap[0]):
                return address
            heapq.heappop(heap)
        while self._cursor < self.size:
            address = self.address(self._cursor)
            if is_free(address) and not self.buggy(self._cursor):
                return address
            self._cursor += 1
        return None

    def freed(self, address: Address) -> None:
        """``address`` has no holder any more: make it findable again."""
        position = self.position(address)
        if position is not None and position < self._cursor:
            heapq.heappush(self._below_cursor, position)


def _buggy_upto(value: int) -> int:
    """How many integers in [0, value] end in .0 or .255 (value % 256 in {0, 255})."""
    if value < 0:
        return 0
    blocks, rest = divmod(value, 256)
    return 2 * blocks + 1 + (1 if rest == 255 else 0)
