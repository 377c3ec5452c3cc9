"""Traffic to a service address through the lab's fabric, standing in for kube-proxy and a user.

On a real site, a worker that the spines route a service address to hands the
connection to a pod (kube-proxy).  Here every worker holds the address on its
loopback and runs a tiny TCP acceptor on it that answers with the worker's
name.  A client namespace, attached to a site network's bridge (the CAN) and
routing the address's pool through one spine, opens one TCP connection per
interval (10 ms) and counts who answered and what failed, so a rolling change
of the speakers can be judged by the connections it broke: none, if every
worker is drained before its speaker restarts.

The spines forward (``ip_forward``) and hash ECMP on ports as well as
addresses (``fib_multipath_hash_policy=1``, as switches do), so one client's
connections spread over every next hop; the client ignores ICMP redirects so
its traffic keeps going through the spine.  The workers answer ARP only for
the addresses of the asking interface, so a spine that lost every route to
the address cannot find a worker by ARP in its connected CAN subnet (which
contains the customer-access pool).  Everything lives in the lab's
namespaces: nothing is assigned in the root namespace.

``python -m lab.service accept|client`` are the two processes; :class:`ServiceTraffic`
sets them up around a :class:`lab.reference_site.SiteLab` and tears them down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

from lab.netns import (
    LabError,
    Namespace,
    attach,
    pid_alive,
    read_pid_file,
    stop_pid,
    wait_for,
)
from lab.reference_site import SiteLab
from lab.site import Host

PYTHON = Path(sys.executable)
CLIENT = "client"  # the client namespace is prefix + "client"
DEFAULT_PORT = 8080
CONNECT_TIMEOUT = 3.0  # a connection that gets no answer within this has failed
SLOW = 0.5  # an answer later than this means a SYN was lost and retransmitted
KEPT_FAILURES = 50  # failures listed in the report (all are counted)


# --- the two processes ----------------------------------------------------------------


async def accept(address: str, port: int, name: str, stopped: asyncio.Event | None = None,
                 ready: asyncio.Event | None = None) -> None:
    """Answer every connection to ``address:port`` with ``name`` and a newline, until
    ``stopped`` is set (SIGTERM when none is given); ``ready`` is set once it listens."""

    async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            writer.write(f"{name}\n".encode())
            await writer.drain()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    server = await asyncio.start_server(answer, address, port, backlog=1024, reuse_address=True)
    if stopped is None:
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopped.set)
    if ready is not None:
        ready.set()
    async with server:
        await stopped.wait()


@dataclass
class TrafficReport:
    """What the client saw: connections opened, answered (per worker), failed and slow."""

    attempted: int = 0
    answered: int = 0
    failed: int = 0
    slow: int = 0
    by_worker: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, when: float, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < KEPT_FAILURES:
            self.failures.append(f"+{when:.3f}s {reason}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempted": self.attempted,
            "answered": self.answered,
            "failed": self.failed,
            "slow": self.slow,
            "by_worker": dict(sorted(self.by_worker.items())),
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficReport:
        return cls(int(data["attempted"]), int(data["answered"]), int(data["failed"]),
                   int(data["slow"]), Counter(data["by_worker"]), list(data["failures"]),
                   float(data["seconds"]))

    def summary(self) -> str:
        workers = ", ".join(f"{name} {count}" for name, count in sorted(self.by_worker.items()))
        return (f"{self.attempted} connections in {self.seconds:.1f}s: {self.answered} answered "
                f"({workers or 'none'}), {self.failed} failed, {self.slow} slow")


async def connect_once(address: str, port: int, started: float, report: TrafficReport) -> None:
    """Open one connection, read the worker's name, close; record the outcome."""
    opened = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(address, port)
            line = await reader.readline()
    except TimeoutError:
        report.fail(opened - started, f"no answer within {CONNECT_TIMEOUT:g}s")
        return
    except OSError as exc:
        report.fail(opened - started, f"{type(exc).__name__}: {exc}")
        return
    finally:
        if writer is not None:
            writer.close()
    name = line.decode(errors="replace").strip()
    if not name:
        report.fail(opened - started, "closed without an answer")
        return
    report.answered += 1
    report.by_worker[name] += 1
    if time.monotonic() - opened > SLOW:
        report.slow += 1


async def drive(address: str, port: int, interval: float, stopped: asyncio.Event,
                limit: int | None = None) -> TrafficReport:
    """Open a connection every ``interval`` seconds until ``stopped`` is set (or ``limit``
    connections were opened); return once every connection has ended."""
    report = TrafficReport()
    pending: set[asyncio.Task[None]] = set()
    started = time.monotonic()
    while not stopped.is_set() and (limit is None or report.attempted < limit):
        task = asyncio.create_task(connect_once(address, port, started, report))
        pending.add(task)
        task.add_done_callback(pending.discard)
        report.attempted += 1
        # a fixed rate: the next connection is due at started + attempted * interval
        delay = started + report.attempted * interval - time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), timeout=max(delay, 0))
    if pending:
        await asyncio.wait(pending)
    report.seconds = time.monotonic() - started
    return report


async def run_client(address: str, port: int, interval: float, report_path: Path) -> None:
    """:func:`drive` until SIGTERM, then write the report to ``report_path``."""
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    report = await drive(address, port, interval, stopped)
    tmp = report_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    tmp.replace(report_path)


# --- setting it up in a lab -----------------------------------------------------------------


@dataclass
class ServiceTraffic:
    """Acceptors on every worker of ``lab`` and a client on ``network``, for ``address``."""

    lab: SiteLab
    address: IPv4Address
    port: int = DEFAULT_PORT
    network: str = "can"
    interval: float = 0.01

    @property
    def client_ns(self) -> Namespace:
        return self.lab.ns(CLIENT)

    @property
    def client_dir(self) -> Path:
        return self.lab.run_dir / self.client_ns.name

    @property
    def client_pid_file(self) -> Path:
        return self.client_dir / "client.pid"

    @property
    def report_path(self) -> Path:
        return self.client_dir / "client-report.json"

    def acceptor_pid_file(self, worker: Host) -> Path:
        return self.lab.run_dir / self.lab.ns(worker).name / "acceptor.pid"

    @property
    def spine(self) -> Host:
        """The spine the client routes the service's pool through (the first one)."""
        return next(iter(self.lab.site.spines.values()))

    def client_address(self) -> IPv4Address:
        """The highest host address of the client's network that no site host uses."""
        cidr = self.lab.site.networks[self.network].cidr
        used = {h.addresses.get(self.network) for h in self.lab.site.hosts.values()}
        pool = self.lab.site.pool_of(self.address)
        for candidate in reversed(list(cidr.hosts())):
            if candidate not in used and (pool is None or candidate not in pool.cidr):
                return candidate
        raise LabError(f"no free address on {self.network} for the client")

    def routed_prefix(self) -> IPv4Network:
        """What the client routes through the spine: the address's pool (or the /32)."""
        pool = self.lab.site.pool_of(self.address)
        return pool.cidr if pool is not None else IPv4Network(f"{self.address}/32")

    def plumb(self) -> None:
        """Client namespace and route, spine forwarding, an acceptor per worker (idempotent)."""
        for spine in self.lab.site.spines.values():
            ns = self.lab.ns(spine)
            ns.sysctl("net.ipv4.ip_forward", "1")
            ns.sysctl("net.ipv4.fib_multipath_hash_policy", "1")
        client = self.client_ns.create()
        network = self.lab.site.networks[self.network]
        attach(client, self.network, self.lab.fabric, self.network, f"{CLIENT}-{self.network}",
               [f"{self.client_address()}/{network.cidr.prefixlen}"])
        # A host takes a redirect if "all" or the interface says so: turn off both, or the
        # spine's first redirect sends every connection straight to one worker.
        for conf in ("all", "default", self.network):
            client.sysctl(f"net.ipv4.conf.{conf}.accept_redirects", "0")
        gateway = self.spine.addresses[self.network]
        client.ip("route", "replace", str(self.routed_prefix()), "via", str(gateway))
        client.ip("route", "flush", "cache")
        for worker in self.lab.site.workers.values():
            self.start_acceptor(worker)

    def start_acceptor(self, worker: Host) -> None:
        pid_file = self.acceptor_pid_file(worker)
        pid = read_pid_file(pid_file)
        if pid is not None and pid_alive(pid):
            return
        ns = self.lab.ns(worker)
        # Answer ARP only for addresses of the asking interface (as kube-proxy's IPVS mode
        # wants): else a spine with no BGP route left would reach the address through its
        # connected CAN subnet, which contains the customer-access pool, and hide the outage.
        ns.sysctl("net.ipv4.conf.all.arp_ignore", "1")
        ns.sysctl("net.ipv4.conf.all.arp_announce", "2")
        ns.add_address("lo", f"{self.address}/32")
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        proc = ns.popen([str(PYTHON), "-m", "lab.service", "accept", "--address",
                         str(self.address), "--port", str(self.port), "--name", worker.name],
                        log=pid_file.with_suffix(".log"))
        pid_file.write_text(f"{proc.pid}\n")

        def answering() -> bool:
            if proc.poll() is not None:
                raise LabError(f"the acceptor on {worker.name} exited")
            ns.run([str(PYTHON), "-c", _PROBE, str(self.address), str(self.port)])
            return True

        wait_for(answering, timeout=10, interval=0.05, what=f"the acceptor on {worker.name}")

    def start_client(self) -> int:
        """Start the client (a previous one is stopped first); its pid."""
        self.stop_client()
        self.client_dir.mkdir(parents=True, exist_ok=True)
        self.report_path.unlink(missing_ok=True)
        proc = self.client_ns.popen(
            [str(PYTHON), "-m", "lab.service", "client", "--address", str(self.address),
             "--port", str(self.port), "--interval", str(self.interval),
             "--report", str(self.report_path)],
            log=self.client_dir / "client.log")
        self.client_pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def stop_client(self) -> TrafficReport | None:
        """Stop the client; its report, or None when no client ran."""
        pid = read_pid_file(self.client_pid_file)
        if pid is None:
            return None
        # in-flight connections finish (CONNECT_TIMEOUT at most) before it writes the report
        stop_pid(pid, expect="lab.service", timeout=CONNECT_TIMEOUT + 5)
        self.client_pid_file.unlink(missing_ok=True)
        return self.report()

    def report(self) -> TrafficReport | None:
        if not self.report_path.exists():
            return None
        return TrafficReport.from_dict(json.loads(self.report_path.read_text()))

    def unplumb(self) -> None:
        """Stop the client and the acceptors, delete the client namespace (idempotent)."""
        self.stop_client()
        self.stop_acceptors()
        self.client_ns.delete()
        fabric = self.lab.fabric
        if fabric.exists() and fabric.has_link(f"{CLIENT}-{self.network}"):
            fabric.ip("link", "del", f"{CLIENT}-{self.network}")

    def stop_acceptors(self) -> None:
        """Stop every worker's acceptor and take the address off its loopback (idempotent)."""
        for worker in self.lab.site.workers.values():
            pid_file = self.acceptor_pid_file(worker)
            pid = read_pid_file(pid_file)
            if pid is not None:
                stop_pid(pid, expect="lab.service")
                pid_file.unlink(missing_ok=True)
            ns = self.lab.ns(worker)
            if ns.exists():
                ns.ip("address", "del", f"{self.address}/32", "dev", "lo", check=False)


# A new TCP connection every 10 ms, each on its own (a lost SYN does not hold the next one
# back), until one is answered by a worker other than argv[3] after that worker answered one;
# prints "ready" once that worker answered, then {"at": CLOCK_MONOTONIC when the first other
# answer arrived, "by": its name, "failed": connections refused, reset or unanswered within
# 2 s before it}. Gives up after 10 s.
FAILOVER_PROBER = (
    "import asyncio, json, sys, time\n"
    "address, port, old = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
    "async def one(state):\n"
    "    try:\n"
    "        r, w = await asyncio.wait_for(asyncio.open_connection(address, port), 2)\n"
    "        name = (await asyncio.wait_for(r.read(100), 2)).decode().strip()\n"
    "        w.close()\n"
    "    except (OSError, asyncio.TimeoutError):\n"
    "        state['failed'] += 1\n"
    "        return\n"
    "    if name == old and not state['ready']:\n"
    "        state['ready'] = True\n"
    "        print('ready', flush=True)\n"
    "    elif name and name != old and state['ready'] and state['done'] is None:\n"
    "        state['done'] = {'at': time.monotonic(), 'by': name, 'failed': state['failed']}\n"
    "async def main():\n"
    "    state, tasks = {'ready': False, 'failed': 0, 'done': None}, set()\n"
    "    deadline = time.monotonic() + 10\n"
    "    while state['done'] is None and time.monotonic() < deadline:\n"
    "        task = asyncio.create_task(one(state))\n"
    "        tasks.add(task)\n"
    "        task.add_done_callback(tasks.discard)\n"
    "        await asyncio.sleep(0.01)\n"
    "    if state['done'] is not None:\n"
    "        print(json.dumps(state['done']), flush=True)\n"
    "    for task in tasks:\n"
    "        task.cancel()\n"
    "asyncio.run(main())\n"
)


def start_failover_probe(client: Namespace, address: str, port: int,
                         old: str) -> subprocess.Popen[str]:
    """Start :data:`FAILOVER_PROBER` in ``client``; return once ``old`` has answered it."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", client.name, str(PYTHON), "-c", FAILOVER_PROBER, address,
         str(port), old], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise LabError(f"{old} never answered the prober in {client.name}")
    return proc


def failover_result(proc: subprocess.Popen[str]) -> dict[str, Any] | None:
    """The prober's result (``at``, ``by``, ``failed``), or None when nobody else answered."""
    out, _ = proc.communicate(timeout=20)
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None


# connects once to ADDRESS PORT and reads the answer (run inside a worker's namespace)
_PROBE = (
    "import socket, sys\n"
    "with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:\n"
    "    assert s.recv(100)\n"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    acceptor = sub.add_parser("accept", help="answer connections with a name (in a worker)")
    acceptor.add_argument("--address", required=True)
    acceptor.add_argument("--port", type=int, default=DEFAULT_PORT)
    acceptor.add_argument("--name", required=True)
    client = sub.add_parser("client", help="a connection per interval until SIGTERM")
    client.add_argument("--address", required=True)
    client.add_argument("--port", type=int, default=DEFAULT_PORT)
    client.add_argument("--interval", type=float, default=0.01)
    client.add_argument("--report", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "accept":
        asyncio.run(accept(args.address, args.port, args.name))
    else:
        asyncio.run(run_client(args.address, args.port, args.interval, args.report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
