"""Small BGP topologies in network namespaces for interop tests and benchmarks.

:func:`build_topology` makes a "spine" namespace and N "worker" namespaces on
one bridged LAN (``10.200.0.0/24`` and ``fd00:200::/64``, inside the
namespaces only; the bridge lives in a namespace of its own).  A
:class:`Topology` starts FRR, BIRD, GoBGP, ExaBGP and spinelb speakers on it
and stops every one of them, and deletes its namespaces, in :meth:`Topology.close`.
Names start with ``slt<pid>-`` so several runs and the lab can share a machine.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any

import yaml

from lab.bird import BirdRouter
from lab.exabgp import ExabgpReceiver
from lab.frr import RUN as FRR_RUN
from lab.frr import FrrRouter, speaker_side_config, stop_stale
from lab.gobgp import GobgpRouter
from lab.netns import Namespace, attach, list_namespaces, pid_alive

REPO = Path(__file__).resolve().parent.parent
SPINELB = REPO / ".venv" / "bin" / "spinelb"
PREFIX = f"slt{os.getpid()}"
LAN4 = IPv4Network("10.200.0.0/24")
LAN6 = IPv6Network("fd00:200::/64")
SPINE_ASN = 65533
API_PORT = 7473

_counter = itertools.count(1)


def speaker_available() -> str | None:
    """Why the spinelb speaker cannot run yet, or None (its command and its module load)."""
    if not SPINELB.exists():
        return f"{SPINELB} is not installed"
    proc = subprocess.run([str(SPINELB), "speaker", "--help"], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        return f"`spinelb speaker --help` fails: {(proc.stderr or proc.stdout).strip()[-300:]}"
    python = REPO / ".venv" / "bin" / "python"
    proc = subprocess.run([str(python), "-c", "import spinelb.speaker.speaker"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return f"spinelb.speaker.speaker does not import: {proc.stderr.strip()[-300:]}"
    return None


@dataclass
class SpeakerHandle:
    """A running ``spinelb speaker`` in a worker namespace."""

    ns: Namespace
    config: dict[str, Any]
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    api_port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM, then wait for the exit; returns the exit status."""
        self.signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill(self) -> int:
        """SIGKILL (no withdrawals, no Cease); returns the exit status."""
        self.signal(signal.SIGKILL)
        return self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api_get(self, path: str) -> str:
        """GET ``path`` from the speaker's local API (inside its namespace)."""
        code = (
            "import sys, urllib.request;"
            f"sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:{self.api_port}{path}',"
            " timeout=5).read().decode())"
        )
        return self.ns.run([str(REPO / ".venv" / "bin" / "python"), "-c", code])

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.api_get("/status"))
        return data


@dataclass
class Topology:
    """A spine and N workers on one LAN; tracks and cleans up everything started on it."""

    name: str
    run_dir: Path
    fabric: Namespace
    spine: Namespace
    workers: list[Namespace]
    spine_v4: str = str(LAN4.network_address + 1)
    spine_v6: str = str(LAN6.network_address + 1)
    _cleanups: list[Callable[[], None]] = field(default_factory=list)

    def worker_v4(self, index: int) -> str:
        return str(LAN4.network_address + 11 + index)

    def worker_v6(self, index: int) -> str:
        return str(LAN6.network_address + 11 + index)

    @property
    def workers_v4(self) -> list[str]:
        return [self.worker_v4(i) for i in range(len(self.workers))]

    @property
    def workers_v6(self) -> list[str]:
        return [self.worker_v6(i) for i in range(len(self.workers))]

    # --- FRR -----------------------------------------------------------------

    def frr_spine_config(self, worker_asns: list[int] | None = None, *, ipv6: bool = False,
                         extra_bgp: str = "") -> str:
        """A passive FRR spine (AS 65533) with one neighbor per worker, ECMP on."""
        asns = worker_asns or [65531] * len(self.workers)
        addresses = self.workers_v6 if ipv6 else self.workers_v4
        return speaker_side_config(
            asn=SPINE_ASN, router_id=self.spine_v4, neighbors=dict(zip(addresses, asns, strict=True)),
            passive=True, extra_bgp=extra_bgp,
        )

    def start_frr_spine(self, config: str, *, bfd: bool = False) -> FrrRouter:
        daemons = ("zebra", "bgpd", "bfdd") if bfd else ("zebra", "bgpd")
        router = FrrRouter(self.spine, daemons=daemons).start(config)
        self._cleanups.append(router.cleanup)
        return router

    def start_frr_speaker(self, index: int, asn: int, prefixes: list[str], *,
                          ipv6: bool = False) -> FrrRouter:
        """FRR bgpd in worker ``index`` announcing ``prefixes`` to the spine (a stand-in speaker).

        ``ipv6`` peers over the spine's IPv6 address instead of its IPv4 one.
        """
        spine = self.spine_v6 if ipv6 else self.spine_v4
        config = speaker_side_config(
            asn=asn, router_id=self.worker_v4(index), neighbors={spine: SPINE_ASN},
            prefixes=prefixes,
        )
        router = FrrRouter(self.workers[index]).start(config)
        self._cleanups.append(router.cleanup)
        return router

    # --- spinelb ---------------------------------------------------------------

    def speaker_config(self, index: int, *, local_asn: int = 65531,
                       announce: list[str] | None = None, **peer: Any) -> dict[str, Any]:
        """A minimal speaker config for worker ``index`` peering with the spine over IPv4."""
        return {
            "node_name": self.workers[index].name,
            "router_id": self.worker_v4(index),
            "local_asn": local_asn,
            "api": {"listen": f"127.0.0.1:{API_PORT}"},
            "peers": [{
                "name": "spine",
                "address": self.spine_v4,
                "asn": SPINE_ASN,
                "source_address": self.worker_v4(index),
                "hold_time": 3,
                "keepalive": 1,
                **peer,
            }],
            "announce": [{"prefix": p} for p in announce or []],
        }

    def start_speaker(self, index: int, config: dict[str, Any]) -> SpeakerHandle:
        """Write ``config`` as YAML and run ``spinelb speaker`` in worker ``index``."""
        ns = self.workers[index]
        config = dict(config)
        config.setdefault("api", {"listen": f"127.0.0.1:{API_PORT}"})
        api_port = int(str(config["api"].get("listen", f"127.0.0.1:{API_PORT}")).rsplit(":", 1)[1])
        config_path = self.run_dir / f"speaker-{ns.name}.yaml"
        log_path = self.run_dir / f"speaker-{ns.name}.log"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        process = ns.popen([str(SPINELB), "speaker", "--config", str(config_path)], log=log_path)
        handle = SpeakerHandle(ns, config, config_path, log_path, process, api_port)

        def stop() -> None:
            if handle.alive():
                handle.kill()

        self._cleanups.append(stop)
        return handle

    # --- other peers -------------------------------------------------------------

    def start_bird(self, config: str, ns: Namespace | None = None) -> BirdRouter:
        router = BirdRouter(ns or self.spine, self.run_dir).start(config)
        self._cleanups.append(router.stop)
        return router

    def start_gobgp(self, config: str, ns: Namespace | None = None) -> GobgpRouter:
        router = GobgpRouter(ns or self.spine, self.run_dir).start(config)
        self._cleanups.append(router.stop)
        return router

    def start_exabgp(self, config: str, ns: Namespace | None = None,
                     listen: str | None = None) -> ExabgpReceiver:
        receiver = ExabgpReceiver(ns or self.spine, self.run_dir, listen or self.spine_v4)
        receiver.start(config)
        self._cleanups.append(receiver.stop)
        return receiver

    # --- lifecycle ------------------------------------------------------------------

    def close(self) -> None:
        errors: list[str] = []
        for cleanup in reversed(self._cleanups):
            try:
                cleanup()
            except Exception as exc:  # keep cleaning up the rest
                errors.append(repr(exc))
        self._cleanups.clear()
        for ns in [*self.workers, self.spine, self.fabric]:
            leftover = [pid for pid in ns.pids() if pid_alive(pid)]
            if leftover:
                errors.append(f"{ns.name}: processes {leftover} still running")
                continue
            ns.delete()
        assert not errors, f"topology {self.name} teardown: {errors}"


def build_topology(run_dir: Path, workers: int = 3) -> Topology:
    """Create the namespaces and the LAN of a new topology (deleted again if that fails)."""
    name = f"{PREFIX}-{next(_counter)}"
    fabric = Namespace(f"{name}-f")
    spine = Namespace(f"{name}-s")
    worker_ns = [Namespace(f"{name}-w{i + 1}") for i in range(workers)]
    topo = Topology(name, run_dir, fabric, spine, worker_ns)
    try:
        for ns in (fabric, spine, *worker_ns):
            ns.create()
        fabric.add_bridge("br0")
        attach(spine, "eth0", fabric, "br0", "p-s",
               [f"{topo.spine_v4}/{LAN4.prefixlen}", f"{topo.spine_v6}/{LAN6.prefixlen}"])
        for i, ns in enumerate(worker_ns):
            attach(ns, "eth0", fabric, "br0", f"p-w{i + 1}",
                   [f"{topo.worker_v4(i)}/{LAN4.prefixlen}",
                    f"{topo.worker_v6(i)}/{LAN6.prefixlen}"])
    except BaseException:
        for ns in (fabric, spine, *worker_ns):
            ns.delete()
        raise
    return topo


def sweep_stale_namespaces() -> list[str]:
    """Delete ``slt<pid>-*`` namespaces of test runs whose process is gone and that run nothing."""
    removed: list[str] = []
    pathspaces = {path.name for path in FRR_RUN.glob("slt*")}
    for name in sorted(set(list_namespaces()) | pathspaces):
        match = re.fullmatch(r"slt(\d+)-.*", name)
        if not match or int(match.group(1)) == os.getpid() or pid_alive(int(match.group(1))):
            continue
        stop_stale(name)
        ns = Namespace(name)
        if not ns.pids():
            ns.delete()
            removed.append(name)
    return removed
