"""Micro-benchmark of the wire codec: prefix encoding and full-UPDATE encode/decode throughput.

Run: ``.venv/bin/python bench/wire_micro.py``.  Prints the best of several
runs, so a busy machine inflates the numbers less.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from spinelb.bgp.wire import (
    AsPath,
    Communities,
    MessageReader,
    MpReachNlri,
    NextHop,
    Origin,
    Update,
    decode,
    decode_message,
    encode,
    encode_prefix,
)


def best(fn: Callable[[], object], number: int) -> float:
    """Seconds per call, best of five repeats."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def main() -> None:
    v4 = tuple(IPv4Network((0x0A660000 + i, 32)) for i in range(800))
    attrs = (
        Origin(),
        AsPath.sequence(65001),
        NextHop(IPv4Address("10.252.1.10")),
        Communities((0xFFFD0064,)),
    )
    update4 = Update(attributes=attrs, nlri=v4)
    data4 = encode(update4)
    v6 = tuple(IPv6Network((0x20010DB8 << 96 | i, 128)) for i in range(220))
    update6 = Update(
        attributes=(
            MpReachNlri(2, 1, (v6[0].network_address,), v6),
            Origin(),
            AsPath.sequence(65001),
        )
    )
    data6 = encode(update6)

    per_prefix = best(lambda: [encode_prefix(p) for p in v4], 200) / len(v4)
    print(f"encode_prefix IPv4 /32        {per_prefix * 1e9:8.0f} ns/prefix")
    for label, upd, data in (
        (f"IPv4 UPDATE, {len(v4)} /32 ({len(data4)} B)", update4, data4),
        (f"IPv6 UPDATE, {len(v6)} /128 ({len(data6)} B)", update6, data6),
    ):
        n = len(upd.nlri) or len(v6)
        enc = best(lambda upd=upd: encode(upd), 100)  # type: ignore[misc]
        dec = best(lambda data=data: decode_message(data), 100)  # type: ignore[misc]
        print(f"{label}")
        print(f"  encode {enc * 1e6:8.0f} us/msg  {n / enc:12,.0f} prefixes/s")
        print(f"  decode {dec * 1e6:8.0f} us/msg  {n / dec:12,.0f} prefixes/s")

    stream = data4 * 125  # 100,000 /32s as a spine would send them back

    def read_all() -> int:
        reader = MessageReader()
        reader.feed(stream)
        return sum(len(decode(t, body).nlri) for t, body in reader.messages())  # type: ignore[union-attr]

    total = best(read_all, 1)
    print(f"100,000 /32 via MessageReader+decode: {total * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
