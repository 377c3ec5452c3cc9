"""BIRD 2 in a network namespace: own control socket, config text, ``birdc`` queries.

BIRD has no JSON output, so :func:`parse_routes` reads ``show route for P all``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lab.netns import Daemon, LabError, sh, wait_for


@dataclass
class BirdRoute:
    """One route (one path) BIRD holds for a prefix."""

    prefix: str
    protocol: str
    primary: bool
    next_hops: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def as_path(self) -> list[int]:
        return [int(asn) for asn in self.attributes.get("BGP.as_path", "").split()]

    @property
    def communities(self) -> list[tuple[int, int]]:
        text = self.attributes.get("BGP.community", "")
        return [(int(a), int(b)) for a, b in re.findall(r"\((\d+),\s*(\d+)\)", text)]

    @property
    def large_communities(self) -> list[tuple[int, int, int]]:
        text = self.attributes.get("BGP.large_community", "")
        return [
            (int(a), int(b), int(c))
            for a, b, c in re.findall(r"\((\d+),\s*(\d+),\s*(\d+)\)", text)
        ]


_ROUTE_HEAD = re.compile(
    r"^(?P<prefix>\S+)?\s+(?P<kind>unicast|unreachable|blackhole|prohibit)\s+"
    r"\[(?P<proto>\S+)[^\]]*\]\s*(?P<star>\*)?"
)


def parse_routes(text: str) -> list[BirdRoute]:
    """Parse ``birdc show route [for P] all``: one :class:`BirdRoute` per path."""
    routes: list[BirdRoute] = []
    prefix = ""
    for line in text.splitlines():
        if not line.strip() or line.startswith(("BIRD ", "Table ", "Access restricted")):
            continue
        head = _ROUTE_HEAD.match(line)
        if head and not line.startswith("\t"):
            prefix = head.group("prefix") or prefix
            routes.append(BirdRoute(prefix, head.group("proto"), bool(head.group("star"))))
            continue
        if not routes:
            continue
        body = line.strip()
        via = re.match(r"via (\S+)", body)
        if via:
            routes[-1].next_hops.append(via.group(1))
        elif ":" in body:
            key, _, value = body.partition(":")
            routes[-1].attributes[key.strip()] = value.strip()
    return routes


def parse_protocols(text: str) -> dict[str, str]:
    """``birdc show protocols``: BGP protocol name -> BGP state (Established, Active, ...)."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 6 and words[1] == "BGP":
            states[words[0]] = words[5]
    return states


@dataclass
class BirdRouter(Daemon):
    """A ``bird`` daemon in ``ns`` with its config, socket and pid file in ``run_dir``."""

    kind = "bird"

    @property
    def socket(self) -> Path:
        return self._file("ctl")

    def start(self, config: str) -> BirdRouter:
        """Write ``config``, check it (``bird -p``), start the daemon, wait for its socket."""
        self._write_config(config)
        sh(["bird", "-p", "-c", str(self.config_file)])
        self.ns.run([
            "bird", "-c", str(self.config_file), "-s", str(self.socket),
            "-P", str(self.pid_file),
        ])
        wait_for(lambda: self.running() and self.socket.exists(), timeout=10,
                 what=f"BIRD in {self.ns.name}")
        return self


    def birdc(self, *command: str) -> str:
        out = sh(["birdc", "-s", str(self.socket), *command])
        if "syntax error" in out:
            raise LabError(f"birdc {' '.join(command)}: {out.strip()}")
        return out

    def routes_for(self, prefix: str) -> list[BirdRoute]:
        """The paths BIRD holds for exactly ``prefix`` (``show route for P all``)."""
        routes = parse_routes(self.birdc("show", "route", "for", prefix, "all"))
        return [r for r in routes if r.prefix == prefix]

    def routes(self) -> list[BirdRoute]:
        return parse_routes(self.birdc("show", "route", "all"))

    def protocols(self) -> dict[str, str]:
        return parse_protocols(self.birdc("show", "protocols"))
