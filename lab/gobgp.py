"""GoBGP 3 in a network namespace, as a BGP-level observer (its zebra link to FRR 8.4 panics).

``gobgpd`` reads a TOML config; its gRPC API listens on the namespace's own
loopback, so every namespace can use the same port.  Queries go through
``gobgp -p PORT ... -j``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lab.netns import Daemon, sh, wait_for

API_PORT = 50051
# gobgp -j reports the RFC 4271 state as the number of its protobuf enum
SESSION_STATES = {1: "idle", 2: "connect", 3: "active", 4: "opensent", 5: "openconfirm",
                  6: "established"}


def render_config(
    *, asn: int, router_id: str, neighbors: list[dict[str, Any]], listen_port: int = 179,
    listen_addresses: list[str] | None = None,
) -> str:
    """A gobgpd TOML config.

    ``neighbors`` entries: ``address``, ``asn``, optional ``passive`` (bool),
    ``password``, ``local_address``.
    """
    lines = [
        "[global.config]",
        f"  as = {asn}",
        f'  router-id = "{router_id}"',
        f"  port = {listen_port}",
    ]
    if listen_addresses:
        lines.append("  local-address-list = [" + ", ".join(f'"{a}"' for a in listen_addresses) + "]")
    for neighbor in neighbors:
        lines += [
            "",
            "[[neighbors]]",
            "  [neighbors.config]",
            f'    neighbor-address = "{neighbor["address"]}"',
            f"    peer-as = {neighbor['asn']}",
        ]
        if neighbor.get("password"):
            lines.append(f'    auth-password = "{neighbor["password"]}"')
        lines += ["  [neighbors.transport.config]",
                  f"    passive-mode = {'true' if neighbor.get('passive', True) else 'false'}"]
        if neighbor.get("local_address"):
            lines.append(f'    local-address = "{neighbor["local_address"]}"')
        lines += ["  [neighbors.timers.config]", "    connect-retry = 1",
                  "    hold-time = 9", "    keepalive-interval = 3"]
        families = neighbor.get("families", ["ipv4-unicast"])
        for family in families:
            lines += ["  [[neighbors.afi-safis]]", "    [neighbors.afi-safis.config]",
                      f'      afi-safi-name = "{family}"']
    return "\n".join(lines) + "\n"


@dataclass
class GobgpRouter(Daemon):
    """A ``gobgpd`` in ``ns`` with config, pid and log in ``run_dir``."""

    api_port: int = API_PORT
    kind = "gobgpd"
    config_ext = "toml"

    def start(self, config: str) -> GobgpRouter:
        self._write_config(config)
        sh(["gobgpd", "-d", "-f", str(self.config_file)])
        proc = self.ns.popen(
            ["gobgpd", "-f", str(self.config_file), "-p", "--pprof-disable",
             "--api-hosts", f"127.0.0.1:{self.api_port}"],
            log=self.log_file,
        )
        self.pid_file.write_text(f"{proc.pid}\n")
        wait_for(lambda: self.gobgp("global") is not None, timeout=10,
                 what=f"gobgpd API in {self.ns.name}")
        return self


    def gobgp(self, *args: str) -> Any:
        """Run ``gobgp -p PORT ARGS -j`` in the namespace and parse its JSON."""
        out = self.ns.run(["gobgp", "-p", str(self.api_port), *args, "-j"])
        return json.loads(out) if out.strip() else None

    def neighbors(self) -> dict[str, str]:
        """Neighbor address -> session state (``established``, ``active``, ...)."""
        states: dict[str, str] = {}
        for peer in self.gobgp("neighbor") or []:
            address = peer.get("conf", {}).get("neighbor_address", "")
            state = peer.get("state", {}).get("session_state", 0)
            states[address] = SESSION_STATES.get(state, str(state)).lower()
        return states

    def rib(self, family: str = "ipv4") -> dict[str, list[dict[str, Any]]]:
        """The global RIB: prefix -> paths (GoBGP's JSON)."""
        data: dict[str, list[dict[str, Any]]] = self.gobgp("global", "rib", "-a", family) or {}
        return data
