"""ExaBGP 5 (``.venv/bin/exabgp``) in a network namespace, configured as a receiver.

An API process (:mod:`lab.exabgp_receiver`) appends every message ExaBGP
hands it (parsed UPDATEs, state changes) as one JSON object per line to a
file, so tests read exactly what the peer received.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.netns import Daemon, wait_for

REPO = Path(__file__).resolve().parent.parent
EXABGP = REPO / ".venv" / "bin" / "exabgp"
RECEIVER = Path(__file__).resolve().parent / "exabgp_receiver.py"


def render_config(
    *, local_address: str, local_as: int, router_id: str, neighbors: list[dict[str, Any]],
    received_file: Path,
) -> str:
    """An ExaBGP config receiving from ``neighbors`` (``address``, ``asn``) and logging JSON."""
    lines = [
        "process receiver {",
        f"    run {sys.executable} {RECEIVER} {received_file};",
        "    encoder json;",
        "}",
    ]
    for neighbor in neighbors:
        lines += [
            f"neighbor {neighbor['address']} {{",
            f"    router-id {router_id};",
            f"    local-address {local_address};",
            f"    local-as {local_as};",
            f"    peer-as {neighbor['asn']};",
            f"    hold-time {neighbor.get('hold_time', 9)};",
            "    passive;",
            "    family { ipv4 unicast; ipv6 unicast; }",
            "    capability { route-refresh; }",
            "    api {",
            "        processes [ receiver ];",
            "        receive { parsed; update; notification; }",
            "        neighbor-changes;",
            "    }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def as_path(attributes: dict[str, Any]) -> list[int]:
    """The AS numbers of an ExaBGP JSON ``as-path`` (5.x: segments keyed "0", "1"...; 4.x: a list)."""
    raw = attributes.get("as-path", [])
    if isinstance(raw, list):
        return [int(asn) for asn in raw]
    asns: list[int] = []
    for key in sorted(raw, key=int):
        asns += [int(asn) for asn in raw[key].get("value", [])]
    return asns


@dataclass
class ExabgpReceiver(Daemon):
    """ExaBGP in ``ns`` logging what it receives to ``received_file``."""

    listen_address: str
    kind = "exabgp"

    @property
    def received_file(self) -> Path:
        return self._file("jsonl")

    def start(self, config: str) -> ExabgpReceiver:
        self._write_config(config)
        self.received_file.write_text("")
        env = {
            "exabgp_daemon_user": "root",
            "exabgp_daemon_drop": "false",
            "exabgp_daemon_daemonize": "false",
            "exabgp_api_cli": "false",
            "exabgp_api_ack": "false",
            "exabgp_tcp_bind": self.listen_address,
            "exabgp_log_destination": "stdout",
        }
        args = ["env", *(f"{k}={v}" for k, v in env.items()),
                str(EXABGP), "server", str(self.config_file)]
        proc = self.ns.popen(args, log=self.log_file)
        self.pid_file.write_text(f"{proc.pid}\n")
        wait_for(self.listening, timeout=15, what=f"ExaBGP listening in {self.ns.name}")
        return self

    def listening(self) -> bool:
        if not self.running():
            raise OSError(f"ExaBGP exited: {self.log_file.read_text()[-2000:]}")
        out = self.ns.run(["ss", "-Htln", "sport = :179"], check=False)
        return self.listen_address in out


    def messages(self) -> list[dict[str, Any]]:
        """Every JSON message received so far."""
        result: list[dict[str, Any]] = []
        for line in self.received_file.read_text().splitlines():
            line = line.strip()
            if line.startswith("{"):
                result.append(json.loads(line))
        return result

    def announced(self) -> dict[str, dict[str, Any]]:
        """Prefixes currently announced to this receiver (withdrawals applied), with attributes.

        Keys are prefixes (``10.0.0.1/32``); values carry ``attributes`` and ``next_hop``.
        """
        table: dict[str, dict[str, Any]] = {}
        for message in self.messages():
            if message.get("type") != "update":
                continue
            update = message.get("neighbor", {}).get("message", {}).get("update", {})
            attributes = update.get("attribute", {})
            for family in update.get("announce", {}).values():
                for next_hop, nlris in family.items():
                    for nlri in nlris:
                        prefix = nlri["nlri"] if isinstance(nlri, dict) else str(nlri)
                        table[prefix] = {"attributes": attributes, "next_hop": next_hop}
            for nlris in update.get("withdraw", {}).values():
                for nlri in nlris:
                    prefix = nlri["nlri"] if isinstance(nlri, dict) else str(nlri)
                    table.pop(prefix, None)
        return table

    def states(self) -> list[str]:
        """Neighbor state changes seen (``up``, ``down``, ``connected``)."""
        return [
            str(m.get("neighbor", {}).get("state"))
            for m in self.messages()
            if m.get("type") == "state"
        ]


