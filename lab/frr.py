"""FRR routers in network namespaces: one pathspace per namespace, driven with vtysh.

Each router's daemons (zebra, bgpd, optionally bfdd) run inside the namespace
with ``-N NAME`` so their config, sockets and pid files live in
``/etc/frr/NAME`` and ``/var/run/frr/NAME``.  Debian's FRR drops to user
``frr`` and refuses to run otherwise, so those directories belong to it.  The
daemons start with empty configs; the integrated ``frr.conf`` is then applied
by ``vtysh -N NAME -b``, the way FRR's own init scripts do it.  They are
stopped by the pids in their own pid files, never by name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.netns import (
    LabError,
    Namespace,
    pid_alive,
    pid_cmdline,
    read_pid_file,
    sh,
    stop_pid,
    wait_for,
)

FRR_BIN = Path("/usr/lib/frr")
ETC = Path("/etc/frr")
RUN = Path("/var/run/frr")
FRR_USER = "frr"


def check_config(text: str) -> None:
    """Check an integrated FRR config offline (``vtysh -C -f``); raise with FRR's complaint."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as handle:
        handle.write(text)
        path = handle.name
    try:
        proc = subprocess.run(
            ["vtysh", "-C", "-f", path], capture_output=True, text=True, check=False
        )
    finally:
        Path(path).unlink()
    if proc.returncode != 0:
        raise LabError(f"FRR rejects the config: {(proc.stdout + proc.stderr).strip()}")


@dataclass
class FrrRouter:
    """FRR daemons in namespace ``ns`` with pathspace ``ns.name``."""

    ns: Namespace
    daemons: tuple[str, ...] = ("zebra", "bgpd")
    bgp_port: int = 179
    config: str = field(default="", repr=False)

    @property
    def etc_dir(self) -> Path:
        return ETC / self.ns.name

    @property
    def run_dir(self) -> Path:
        return RUN / self.ns.name

    def pid_file(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.log"

    def pids(self) -> dict[str, int]:
        """The live daemons' pids by daemon name."""
        found: dict[str, int] = {}
        for daemon in ("zebra", "bgpd", "bfdd", "staticd"):
            pid = read_pid_file(self.pid_file(daemon))
            if pid is not None and pid_alive(pid):
                found[daemon] = pid
        return found

    def start(self, config: str) -> FrrRouter:
        """Write ``config`` as the integrated frr.conf, start the daemons, apply the config."""
        self.stop()
        for directory in (self.etc_dir, self.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
            shutil.chown(directory, FRR_USER, FRR_USER)
        self.config = config
        conf = self.etc_dir / "frr.conf"
        conf.write_text(config)
        (self.etc_dir / "vtysh.conf").write_text("service integrated-vtysh-config\n")
        for path in (conf, self.etc_dir / "vtysh.conf"):
            shutil.chown(path, FRR_USER, FRR_USER)
        for daemon in self.daemons:
            self.ns.run(self.daemon_command(daemon))
        wait_for(
            lambda: all(d in self.pids() for d in self.daemons),
            timeout=10, what=f"FRR daemons in {self.ns.name}",
        )
        self.apply()
        return self

    def daemon_command(self, daemon: str) -> list[str]:
        """How :meth:`start` runs ``daemon``: in the background, in this pathspace, its own log."""
        args = [
            str(FRR_BIN / daemon), "-d", "-N", self.ns.name,
            "-f", str(self.etc_dir / f"{daemon}.conf"),
            "-i", str(self.pid_file(daemon)),
            "-P", "0",
            "--log", f"file:{self.log_file(daemon)}",
        ]
        if daemon == "bgpd":
            args += ["-p", str(self.bgp_port)]
        return args

    def kill(self, daemon: str) -> int:
        """SIGKILL one daemon, as a crash would (no NOTIFICATION, the kernel closes its
        sockets); the other daemons stay.  Returns its pid once it is gone."""
        pid = self.pids().get(daemon)
        if pid is None or f"-N {self.ns.name}" not in pid_cmdline(pid):
            raise LabError(f"{daemon} is not running in {self.ns.name}")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), timeout=5, interval=0.01,
                 what=f"{daemon} ({pid}) in {self.ns.name} to die")
        self.pid_file(daemon).unlink(missing_ok=True)
        return pid

    def start_daemon(self, daemon: str) -> None:
        """Start one daemon again as :meth:`start` does and give it its part of the saved
        integrated frr.conf (``vtysh -b -d DAEMON``, what FRR's init does after a restart)."""
        self.ns.run(self.daemon_command(daemon))
        wait_for(lambda: daemon in self.pids(), timeout=10, interval=0.01,
                 what=f"{daemon} in {self.ns.name}")
        out = sh(["vtysh", "-N", self.ns.name, "-b", "-d", daemon], check=False)
        if "Unknown command" in out or "error" in out.lower():
            raise LabError(f"{daemon} in {self.ns.name} rejected its config: {out.strip()}")

    def apply(self) -> None:
        """Apply the integrated frr.conf to the running daemons (``vtysh -b``)."""
        out = sh(["vtysh", "-N", self.ns.name, "-b"], check=False)
        if "Unknown command" in out or "error" in out.lower():
            raise LabError(f"FRR in {self.ns.name} rejected its config: {out.strip()}")

    def reload(self, config: str) -> None:
        """Replace the running configuration with ``config`` (``frr-reload.py --reload``)."""
        self.config = config
        conf = self.etc_dir / "frr.conf"
        conf.write_text(config)
        sh([
            "python3", str(FRR_BIN / "frr-reload.py"), "--reload",
            "--pathspace", self.ns.name, "--confdir", str(self.etc_dir),
            "--rundir", str(self.run_dir), str(conf),
        ])

    def stop(self) -> None:
        """Stop this router's daemons by their pid files (idempotent)."""
        for daemon in ("bfdd", "bgpd", "staticd", "zebra"):
            pid = read_pid_file(self.pid_file(daemon))
            if pid is not None:
                stop_pid(pid, expect=f"-N {self.ns.name}")
                self.pid_file(daemon).unlink(missing_ok=True)

    def cleanup(self) -> None:
        """Stop the daemons and remove the pathspace directories."""
        self.stop()
        shutil.rmtree(self.etc_dir, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # queries

    def vtysh(self, *commands: str) -> str:
        """Run vtysh commands in this router's pathspace and return the output."""
        args = ["vtysh", "-N", self.ns.name]
        for command in commands:
            args += ["-c", command]
        return sh(args)

    def json(self, command: str) -> Any:
        """Run a ``... json`` show command and return the parsed JSON."""
        if not command.endswith(" json"):
            command += " json"
        text = self.vtysh(command)
        return json.loads(text) if text.strip() else {}

    def bgp_peers(self, *, ipv6: bool = False) -> dict[str, dict[str, Any]]:
        """``show bgp summary``'s IPv4 (or IPv6) unicast peers by address."""
        afi = "ipv6" if ipv6 else "ipv4"
        peers: dict[str, dict[str, Any]] = self.json(f"show bgp {afi} unicast summary").get(
            "peers", {}
        )
        return peers

    def established(self, *, ipv6: bool = False) -> set[str]:
        """Addresses of the peers whose session is Established (in that family's summary)."""
        return {
            addr for addr, peer in self.bgp_peers(ipv6=ipv6).items()
            if peer.get("state") == "Established"
        }

    def bgp_paths(self, prefix: str) -> list[dict[str, Any]]:
        """The BGP paths FRR holds for ``prefix`` (``show bgp ipv4|ipv6 unicast P json``)."""
        afi = "ipv6" if ":" in prefix else "ipv4"
        data = self.json(f"show bgp {afi} unicast {prefix}")
        paths: list[dict[str, Any]] = data.get("paths", [])
        return paths

    def wait_established(self, addresses: set[str], timeout: float = 30) -> None:
        """Wait until every address in ``addresses`` is an Established peer."""
        wait_for(
            lambda: addresses <= self.established(),
            timeout=timeout, what=f"sessions {sorted(addresses)} on {self.ns.name}",
        )


def stop_stale(ns_name: str) -> None:
    """Stop FRR daemons of pathspace ``ns_name`` left behind by an earlier run."""
    if (RUN / ns_name).exists():
        FrrRouter(Namespace(ns_name)).cleanup()


def speaker_side_config(
    *, asn: int, router_id: str, neighbors: dict[str, int], prefixes: Sequence[str] = (),
    passive: bool = False, keepalive: int = 1, hold: int = 3, extra_bgp: str = "",
) -> str:
    """A small bgpd config: ``neighbors`` (address -> AS), both families, ECMP, optional ``network``s.

    Passive neighbors make it a spine waiting for speakers; active ones with
    ``prefixes`` make it a stand-in speaker.
    """
    lines = [
        "frr defaults datacenter",
        "!",
        f"router bgp {asn}",
        f" bgp router-id {router_id}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        " no bgp default ipv4-unicast",
        " no bgp default show-hostname",
        " bgp bestpath as-path multipath-relax",
        f" timers bgp {keepalive} {hold}",
    ]
    for address, remote_as in neighbors.items():
        lines.append(f" neighbor {address} remote-as {remote_as}")
        lines.append(f" neighbor {address} timers connect 1")
        if passive:
            lines.append(f" neighbor {address} passive")
    lines += [line for line in extra_bgp.splitlines() if line.strip()]
    for afi in ("ipv4", "ipv6"):
        lines += [f" address-family {afi} unicast", "  maximum-paths 32"]
        for prefix in prefixes:
            if (":" in prefix) == (afi == "ipv6"):
                lines.append(f"  network {prefix}")
        for address in neighbors:
            lines.append(f"  neighbor {address} activate")
        lines.append(" exit-address-family")
    lines += ["exit", "!", "end", ""]
    return "\n".join(lines)
