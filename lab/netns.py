"""Network namespaces, links, kernel routes and processes for the lab and the interop tests.

Everything here acts inside namespaces this code created: veth pairs are made
with both ends placed directly in their namespaces (``ip -n A link add ...
peer ... netns B``), bridges live in a namespace of their own, and no address
is ever assigned in the root namespace.  Every resource is named by the
caller, who chooses a prefix (``slt<pid>-`` for tests, the site's host names
for the lab) so that several users can share the machine and each cleans up
only its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

IFNAME_MAX = 15  # IFNAMSIZ - 1


class LabError(RuntimeError):
    """A lab command failed; the message carries the command and its stderr."""


def sh(
    args: Sequence[str], *, check: bool = True, input_text: str | None = None,
    timeout: float = 60,
) -> str:
    """Run a short command (``ip``, ``vtysh``, ``birdc``...) and return its stdout.

    A command that outlives ``timeout`` seconds (a wedged daemon) raises LabError.
    """
    try:
        proc = subprocess.run(
            list(args), input=input_text, capture_output=True, text=True, check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(args)}: no answer within {timeout:g}s") from exc
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def check_ifname(name: str) -> str:
    """Return ``name`` if the kernel accepts it as an interface name, else raise."""
    if not name or len(name) > IFNAME_MAX or "/" in name or " " in name:
        raise LabError(f"bad interface name {name!r} (1..{IFNAME_MAX} characters)")
    return name


def netns_available() -> str | None:
    """Why namespaces cannot be used here, or None when they can (root and ``ip netns``)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    try:
        proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return "iproute2 `ip` is not installed"
    if proc.returncode != 0:
        return f"`ip netns` is unavailable: {proc.stderr.strip()}"
    return None


def list_namespaces() -> list[str]:
    """Names of the namespaces that exist now."""
    out = sh(["ip", "-j", "netns", "list"]).strip()
    if not out:
        return []
    return [str(entry["name"]) for entry in json.loads(out)]


# --- waiting ------------------------------------------------------------------


def wait_for(
    condition: Callable[[], T],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; return that value.

    Raises :class:`TimeoutError` naming ``what`` (and the last exception, if
    the condition kept raising) once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
        except (LabError, OSError, ValueError, KeyError) as exc:
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            detail = f": last error: {last_error}" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{detail}")
        time.sleep(interval)


# --- processes ------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def pid_cmdline(pid: int) -> str:
    """The command line of ``pid`` joined by spaces ('' if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def read_pid_file(path: Path) -> int | None:
    """The pid in ``path``, or None if the file is missing or empty."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def stop_pid(pid: int, *, expect: str, timeout: float = 5.0, sig: int = signal.SIGTERM) -> bool:
    """Stop ``pid`` if its command line contains ``expect`` (guards against pid reuse).

    Sends ``sig``, waits up to ``timeout`` seconds, then SIGKILL.  Returns
    whether a process was signalled.
    """
    if not pid_alive(pid) or expect not in pid_cmdline(pid):
        return False
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    try:
        wait_for(lambda: not pid_alive(pid), timeout=timeout, interval=0.02, what=f"pid {pid}")
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), timeout=timeout, interval=0.02, what=f"pid {pid}")
    return True


# --- routes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Nexthop:
    """One next hop of a kernel route."""

    gateway: str | None
    dev: str | None
    weight: int = 1


@dataclass(frozen=True)
class KernelRoute:
    """A kernel route as ``ip -j route show`` reports it; ECMP routes have several next hops."""

    dst: str
    protocol: str | None
    nexthops: tuple[Nexthop, ...]

    @property
    def gateways(self) -> set[str]:
        """The gateway addresses of every next hop."""
        return {hop.gateway for hop in self.nexthops if hop.gateway}


def parse_routes(text: str) -> list[KernelRoute]:
    """Parse the JSON of ``ip -j route show``."""
    routes: list[KernelRoute] = []
    for entry in json.loads(text or "[]"):
        if "nexthops" in entry:
            hops = tuple(
                Nexthop(hop.get("gateway"), hop.get("dev"), int(hop.get("weight", 1)))
                for hop in entry["nexthops"]
            )
        else:
            hops = (Nexthop(entry.get("gateway"), entry.get("dev")),)
        routes.append(KernelRoute(str(entry["dst"]), entry.get("protocol"), hops))
    return routes


# --- namespaces ---------------------------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    """A named network namespace; every method acts inside it."""

    name: str

    def exists(self) -> bool:
        return Path("/run/netns", self.name).exists()

    def create(self) -> Namespace:
        """Create the namespace (if missing) and bring its loopback up."""
        if not self.exists():
            sh(["ip", "netns", "add", self.name])
        self.ip("link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        """Delete the namespace if it exists (its links go with it)."""
        if self.exists():
            sh(["ip", "netns", "del", self.name], check=False)

    def pids(self) -> list[int]:
        """Pids of every process running in this namespace."""
        if not self.exists():
            return []
        out = sh(["ip", "netns", "pids", self.name], check=False)
        return [int(word) for word in out.split() if word.isdigit()]

    def ip(self, *args: str, check: bool = True) -> str:
        """Run ``ip -n NAME ARGS...``."""
        return sh(["ip", "-n", self.name, *args], check=check)

    def run(
        self, args: Sequence[str], *, check: bool = True, input_text: str | None = None,
        timeout: float = 60,
    ) -> str:
        """Run a short command inside the namespace and return its stdout."""
        return sh(["ip", "netns", "exec", self.name, *args], check=check,
                  input_text=input_text, timeout=timeout)

    def popen(self, args: Sequence[str], *, log: Path | None = None) -> subprocess.Popen[bytes]:
        """Start a long-running process inside the namespace, stdout+stderr to ``log``."""
        out: Any = subprocess.DEVNULL
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = log.open("ab")
        try:
            return subprocess.Popen(
                ["ip", "netns", "exec", self.name, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log is not None:
                out.close()

    # links and addresses

    def add_address(self, ifname: str, cidr: str) -> None:
        """Add ``cidr`` (e.g. ``10.0.0.1/24``) to ``ifname``; adding it twice is fine.

        IPv6 addresses skip duplicate address detection so they are usable at once.
        """
        extra = ["nodad"] if ":" in cidr else []
        self.ip("address", "replace", cidr, "dev", ifname, *extra)

    def link_up(self, ifname: str) -> None:
        self.ip("link", "set", ifname, "up")

    def link_down(self, ifname: str) -> None:
        self.ip("link", "set", ifname, "down")

    def has_link(self, ifname: str) -> bool:
        return self.ip("link", "show", ifname, check=False).strip() != ""

    def add_bridge(self, ifname: str) -> None:
        """Create a bridge (idempotent) and bring it up."""
        check_ifname(ifname)
        if not self.has_link(ifname):
            self.ip("link", "add", ifname, "type", "bridge")
        self.ip("link", "set", ifname, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        self.link_up(ifname)

    def set_master(self, ifname: str, bridge: str) -> None:
        self.ip("link", "set", ifname, "master", bridge)

    def routes(self, prefix: str) -> list[KernelRoute]:
        """Kernel routes matching exactly ``prefix`` (``ip -j route show PREFIX``)."""
        family = "-6" if ":" in prefix else "-4"
        return parse_routes(self.ip("-j", family, "route", "show", prefix))

    def route(self, prefix: str) -> KernelRoute | None:
        """The one kernel route for ``prefix``, or None."""
        found = self.routes(prefix)
        return found[0] if found else None

    def sysctl(self, key: str, value: str) -> None:
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])


def veth(a: Namespace, a_if: str, b: Namespace, b_if: str) -> None:
    """Create a veth pair with one end in each namespace (never in the root namespace), both up.

    If ``a_if`` already exists in ``a`` it is deleted first, so the call is idempotent.
    """
    check_ifname(a_if)
    check_ifname(b_if)
    if a.has_link(a_if):
        a.ip("link", "del", a_if)
    if b.has_link(b_if):
        b.ip("link", "del", b_if)
    a.ip("link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b.name)
    a.link_up(a_if)
    b.link_up(b_if)


def attach(host: Namespace, host_if: str, fabric: Namespace, bridge: str, port: str,
           cidrs: Sequence[str] = ()) -> None:
    """Attach ``host`` to ``bridge`` in ``fabric`` by a veth (``host_if`` <-> ``port``), with addresses."""
    veth(host, host_if, fabric, port)
    fabric.set_master(port, bridge)
    for cidr in cidrs:
        host.add_address(host_if, cidr)


@dataclass
class Daemon:
    """A peer daemon in ``ns`` whose files live in ``run_dir`` as ``<kind>-<namespace>.<ext>``.

    Subclasses name their ``kind`` and config extension and start the process;
    this holds the file names, the pid bookkeeping and the stop, checked
    against the process's command line so a recycled pid is never signalled.
    """

    ns: Namespace
    run_dir: Path

    kind: ClassVar[str] = "daemon"
    config_ext: ClassVar[str] = "conf"

    def _file(self, ext: str) -> Path:
        return self.run_dir / f"{self.kind}-{self.ns.name}.{ext}"

    @property
    def config_file(self) -> Path:
        return self._file(self.config_ext)

    @property
    def pid_file(self) -> Path:
        return self._file("pid")

    @property
    def log_file(self) -> Path:
        return self._file("log")

    def _write_config(self, config: str) -> None:
        self.stop()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(config)

    def running(self) -> bool:
        pid = read_pid_file(self.pid_file)
        return pid is not None and pid_alive(pid)

    def stop(self) -> None:
        pid = read_pid_file(self.pid_file)
        if pid is not None:
            stop_pid(pid, expect=str(self.config_file))
            self.pid_file.unlink(missing_ok=True)
