"""``python -m spinelb.bfd --local A --peer B``: one BFD session, its changes as JSON lines.

A diagnostic and test tool: it runs a :class:`~spinelb.bfd.transport.BfdTransport`
with one session and prints one JSON object per line to stdout, each with
``at`` (monotonic seconds, the clock ``time.monotonic()`` reads in any
process on the host):

- ``{"event": "state", "old": "Down", "new": "Init", "diag": 0, "diag_name": ...}``
- ``{"event": "timers", "transmit_interval_ms": 100.0, "detection_time_ms": 300.0, ...}``

SIGTERM or SIGINT sends AdminDown to the peer and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from ipaddress import ip_address
from typing import Any

from spinelb.bfd.packet import diag_name
from spinelb.bfd.session import BfdSettings, Session, StateChanged
from spinelb.bfd.transport import BFD_PORT, BfdTransport


def _print(record: dict[str, Any]) -> None:
    record["at"] = time.monotonic()
    print(json.dumps(record), flush=True)


def _state_changed(session: Session, change: StateChanged) -> None:
    _print({
        "event": "state", "peer": str(session.peer_address), "old": change.old.label,
        "new": change.new.label, "diag": int(change.diag), "diag_name": diag_name(change.diag),
    })


def _timers_changed(session: Session) -> None:
    _print({
        "event": "timers", "peer": str(session.peer_address),
        "transmit_interval_ms": session.transmit_interval_us / 1000,
        "detection_time_ms": session.detection_time_us / 1000,
        "remote_discriminator": session.remote_discr,
        "local_discriminator": session.local_discr,
    })


async def run(args: argparse.Namespace) -> None:
    settings = BfdSettings(
        min_tx_ms=args.min_tx_ms, min_rx_ms=args.min_rx_ms, multiplier=args.multiplier
    )
    transport = BfdTransport(_state_changed, on_timers_change=_timers_changed, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    transport.add_session(ip_address(args.local), ip_address(args.peer), settings)
    _print({"event": "started", "local": args.local, "peer": args.peer})
    await stop.wait()
    transport.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spinelb.bfd", description=__doc__.split("\n")[0])
    parser.add_argument("--local", required=True, help="local address (the socket's source)")
    parser.add_argument("--peer", required=True, help="the peer's address")
    parser.add_argument("--min-tx-ms", type=int, default=300)
    parser.add_argument("--min-rx-ms", type=int, default=300)
    parser.add_argument("--multiplier", type=int, default=3)
    parser.add_argument("--port", type=int, default=BFD_PORT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args))
    except (ValueError, OSError) as err:
        print(f"spinelb.bfd: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
