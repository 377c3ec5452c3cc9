"""Benchmark: N /32 announcements from spinelb, FRR bgpd, BIRD 2 and ExaBGP 5 to an FRR spine.

    .venv/bin/python bench/announce.py [--n 10000 100000]          # as root
        [--speakers spinelb frr bird exabgp [frr-conf]] [--repeat 1] [--json out.json]
        [--no-echo] [--keep]

For every N and every speaker, one *run*: a fresh topology in network
namespaces (:func:`lab.topology.build_topology` with one worker), an FRR
spine (passive, hold 3 s / keepalive 1 s, like CSM's spines) and the speaker
in the worker namespace announcing N host routes from 10.96.0.0/12 with next
hop self.  Like CSM's spines, the spine advertises its table back, so each
speaker also receives N routes while it sends (``--no-echo`` filters that).
``frr`` starts FRR the packaged way (daemons, then ``vtysh -b`` applies the
config); the optional ``frr-conf`` has bgpd read the table from bgpd.conf as
it starts, FRR's fastest start.  Nothing touches the root namespace.  Per run
it measures:

- ``start->all``: seconds from launching the speaker's process(es) to the
  spine's ``show bgp ipv4 unicast summary json`` reporting ``pfxRcd == N``
  (polled every ``--poll`` seconds with vtysh);
- ``est->all``: seconds from the session's Established (the arrival of the
  speaker's first KEEPALIVE on the spine, taken from a packet capture; the
  first poll that saw Established is kept as a cross-check) to all N;
- peak RSS: ``VmHWM`` of the speaker's processes (FRR: bgpd, zebra reported
  apart; BIRD: bird; ExaBGP and spinelb: their python process tree);
- the session's health: the spine's ``connectionsEstablished`` and
  ``connectionsDropped`` after the run, and the longest silence on the wire
  from the speaker (the largest gap between consecutive KEEPALIVEs or
  UPDATEs it sent, from a ``tcpdump`` in the spine's namespace, read by the
  small pcap reader below), from Established until ``--tail`` seconds after
  all N arrived.  With hold time 3 s it must stay under 3 s.

Then it prints one table per N with the ratios against spinelb
(time ratio = other / spinelb, so > 1 means spinelb is faster).  Every run
has a deadline (``--deadline``, by default 30 s or 1.2 ms per prefix, whichever
is more) after which it is recorded as ``timeout``.  Every namespace and
process a run starts is stopped when the run ends, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the lab package lives at the repo root, not in src/
    sys.path.insert(0, str(REPO))

from lab.bird import BirdRouter  # noqa: E402
from lab.exabgp import EXABGP  # noqa: E402
from lab.frr import FrrRouter, speaker_side_config  # noqa: E402
from lab.netns import (  # noqa: E402
    LabError,
    Namespace,
    netns_available,
    pid_alive,
    read_pid_file,
    sh,
    stop_pid,
    wait_for,
)
from lab.topology import (  # noqa: E402
    SPINE_ASN,
    SPINELB,
    Topology,
    build_topology,
    speaker_available,
)

SPEAKERS = ("spinelb", "frr", "bird", "exabgp")
OPTIONAL_SPEAKERS = ("frr-conf",)  # FRR's fastest start, not its packaged one
SERVICES = IPv4Network("10.96.0.0/12")  # Kubernetes' default service range: room for 1M /32s
WORKER_ASN = 65531
HOLD_TIME = 3
KEEPALIVE = 1
SPINE_IF = "eth0"


def service_prefixes(count: int) -> list[str]:
    """The first ``count`` host routes of :data:`SERVICES`, as ``A.B.C.D/32``."""
    if count > SERVICES.num_addresses:
        raise ValueError(f"at most {SERVICES.num_addresses} prefixes fit in {SERVICES}")
    base = int(SERVICES.network_address)
    return [f"{IPv4Address(base + i)}/32" for i in range(count)]


# --- the speakers under test ----------------------------------------------------------------


class BenchSpeaker(Protocol):
    """One speaker implementation announcing N prefixes from a worker namespace."""

    kind: str
    how: str  # how it is configured to announce, for the report

    def prepare(self, prefixes: list[str]) -> None:
        """Write its config files (not timed)."""

    def start(self) -> None:
        """Launch its process(es); timed from the call.  Runs in a thread beside the polling."""

    def pids(self) -> dict[str, list[int]]:
        """Live pids by RSS group: the first group is the speaker, others are reported apart."""

    def stop(self) -> None:
        """Stop every process it started (idempotent)."""


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (from /proc's parent pids)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[-1].split()
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid_alive(pid):
            tree.append(pid)
            todo += children.get(pid, [])
    return tree


@dataclass
class SpinelbSpeaker:
    """``spinelb speaker --config speaker.json`` (JSON: the config loader reads it fastest)."""

    topo: Topology
    run_dir: Path
    kind: str = "spinelb"
    how: str = "config file (JSON) with N `announce` entries, next_hop self"
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.run_dir / "spinelb.json"

    def prepare(self, prefixes: list[str]) -> None:
        worker = self.topo.worker_v4(0)
        config = {
            "node_name": "bench-worker",
            "router_id": worker,
            "local_asn": WORKER_ASN,
            "log_level": "warning",
            "peers": [{
                "name": "spine", "address": self.topo.spine_v4, "asn": SPINE_ASN,
                "source_address": worker, "hold_time": HOLD_TIME, "keepalive": KEEPALIVE,
            }],
            "announce": [{"prefix": prefix} for prefix in prefixes],
        }
        self.config_path.write_text(json.dumps(config))

    def start(self) -> None:
        self.process = self.topo.workers[0].popen(
            [str(SPINELB), "speaker", "--config", str(self.config_path)],
            log=self.run_dir / "spinelb.log",
        )

    def pids(self) -> dict[str, list[int]]:
        return {"speaker": process_tree(self.process.pid) if self.process else []}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_pid(self.process.pid, expect=str(self.config_path))
            self.process.wait(timeout=10)


@dataclass
class FrrSpeaker:
    """FRR bgpd (+ zebra, as FRR always runs) with N ``network X/32`` statements."""

    topo: Topology
    run_dir: Path
    kind: str = "frr"
    how: str = "bgpd with N `network X/32` and `no bgp network import-check` (config applied by vtysh -b)"
    config: str = ""

    @property
    def router(self) -> FrrRouter:
        return FrrRouter(self.topo.workers[0])

    def prepare(self, prefixes: list[str]) -> None:
        self.config = speaker_side_config(
            asn=WORKER_ASN, router_id=self.topo.worker_v4(0),
            neighbors={self.topo.spine_v4: SPINE_ASN}, prefixes=prefixes,
            keepalive=KEEPALIVE, hold=HOLD_TIME,
        )

    def start(self) -> None:
        self.router.start(self.config)

    def pids(self) -> dict[str, list[int]]:
        daemons = self.router.pids()
        return {name: [daemons[name]] if name in daemons else [] for name in ("bgpd", "zebra")}

    def stop(self) -> None:
        self.router.cleanup()


@dataclass
class BirdSpeaker:
    """BIRD 2: a ``protocol static`` of N blackhole /32s exported to one BGP protocol."""

    topo: Topology
    run_dir: Path
    kind: str = "bird"
    how: str = "`protocol static` of N `route X/32 blackhole`, `export all` to BGP (default connect delay)"

    @property
    def router(self) -> BirdRouter:
        return BirdRouter(self.topo.workers[0], self.run_dir)

    def prepare(self, prefixes: list[str]) -> None:
        worker = self.topo.worker_v4(0)
        lines = [
            f"router id {worker};",
            "protocol device {}",
            "protocol static services {",
            "  ipv4;",
            *(f"  route {prefix} blackhole;" for prefix in prefixes),
            "}",
            "protocol bgp spine {",
            f"  local {worker} as {WORKER_ASN};",
            f"  neighbor {self.topo.spine_v4} as {SPINE_ASN};",
            f"  hold time {HOLD_TIME};",
            f"  keepalive time {KEEPALIVE};",
            "  ipv4 { import none; export all; next hop self; };",
            "}",
        ]
        self.router.config_file.write_text("\n".join(lines) + "\n")
        sh(["bird", "-p", "-c", str(self.router.config_file)])  # check it before the clock runs

    def start(self) -> None:
        router = self.router
        router.ns.run([
            "bird", "-c", str(router.config_file), "-s", str(router.socket),
            "-P", str(router.pid_file),
        ])

    def pids(self) -> dict[str, list[int]]:
        pid = read_pid_file(self.router.pid_file)
        return {"bird": [pid] if pid is not None and pid_alive(pid) else []}

    def stop(self) -> None:
        self.router.stop()


@dataclass
class ExabgpSpeaker:
    """ExaBGP 5 (``.venv/bin/exabgp server``) with the N routes in its config's ``static`` block."""

    topo: Topology
    run_dir: Path
    kind: str = "exabgp"
    how: str = "`static { route X/32 next-hop self; }` in its config (its fast path; no API process)"
    process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.run_dir / "exabgp.conf"

    def prepare(self, prefixes: list[str]) -> None:
        worker = self.topo.worker_v4(0)
        lines = [
            f"neighbor {self.topo.spine_v4} {{",
            f"    router-id {worker};",
            f"    local-address {worker};",
            f"    local-as {WORKER_ASN};",
            f"    peer-as {SPINE_ASN};",
            f"    hold-time {HOLD_TIME};",
            "    family { ipv4 unicast; }",
            "    static {",
            *(f"        route {prefix} next-hop self;" for prefix in prefixes),
            "    }",
            "}",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        env = {
            "exabgp_daemon_user": "root",
            "exabgp_daemon_drop": "false",
            "exabgp_daemon_daemonize": "false",
            "exabgp_api_cli": "false",
            "exabgp_log_destination": "stdout",
            "exabgp_log_level": "WARNING",
        }
        self.process = self.topo.workers[0].popen(
            ["env", *(f"{key}={value}" for key, value in env.items()),
             str(EXABGP), "server", str(self.config_path)],
            log=self.run_dir / "exabgp.log",
        )

    def pids(self) -> dict[str, list[int]]:
        return {"exabgp": process_tree(self.process.pid) if self.process else []}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_pid(self.process.pid, expect="exabgp")
            self.process.wait(timeout=10)


@dataclass
class FrrConfSpeaker(FrrSpeaker):
    """FRR with the table in ``bgpd.conf``, read by bgpd as it starts (no ``vtysh -b`` of N lines).

    Not FRR's packaged start-up (frrinit.sh applies frr.conf with ``vtysh -b``, as ``frr``
    here does) but its fastest one, for a fair lower bound.
    """

    kind: str = "frr-conf"
    how: str = "bgpd reading N `network X/32` from bgpd.conf at start (vtysh -b applies nothing)"

    def start(self) -> None:
        router = self.router
        for directory in (router.etc_dir, router.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
            shutil.chown(directory, "frr", "frr")
        bgpd_conf = router.etc_dir / "bgpd.conf"
        bgpd_conf.write_text(self.config)
        shutil.chown(bgpd_conf, "frr", "frr")
        router.start("frr defaults datacenter\n!\nend\n")  # starts the daemons on bgpd.conf


def make_speaker(kind: str, topo: Topology, run_dir: Path) -> BenchSpeaker:
    speakers: dict[str, type[SpinelbSpeaker | FrrSpeaker | BirdSpeaker | ExabgpSpeaker]] = {
        "spinelb": SpinelbSpeaker, "frr": FrrSpeaker, "frr-conf": FrrConfSpeaker,
        "bird": BirdSpeaker, "exabgp": ExabgpSpeaker,
    }
    return speakers[kind](topo, run_dir)


# --- peak memory ---------------------------------------------------------------------------------


def vm_kib(pid: int, key: str = "VmHWM") -> int | None:
    """``VmHWM`` (peak resident set) or another ``/proc/PID/status`` size of ``pid`` in KiB,
    or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class PeakRss:
    """The largest ``VmHWM`` seen per pid, summed per group.  VmHWM is itself a high-water mark,
    so sampling only has to happen before a process exits."""

    by_pid: dict[int, tuple[str, int]] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # in the speaker's order: its own first
    timeline: list[tuple[float, float]] = field(default_factory=list)  # (time, MiB) of the first

    def sample(self, groups: dict[str, list[int]], when: float) -> None:
        for index, (group, pids) in enumerate(groups.items()):
            if group not in self.groups:
                self.groups.append(group)
            if index == 0 and pids:
                now = sum(vm_kib(pid, "VmRSS") or 0 for pid in pids) / 1024
                self.timeline.append((round(when, 3), round(now, 1)))
            for pid in pids:
                kib = vm_kib(pid)
                if kib is not None and kib >= self.by_pid.get(pid, (group, 0))[1]:
                    self.by_pid[pid] = (group, kib)

    def mib(self) -> dict[str, float]:
        totals: dict[str, float] = dict.fromkeys(self.groups, 0.0)
        for group, kib in self.by_pid.values():
            totals[group] = totals.get(group, 0.0) + kib / 1024
        return totals


# --- packet capture and a tiny pcap reader ------------------------------------------------------------


@dataclass(frozen=True)
class BgpMessage:
    """A BGP message seen on the wire: when its last byte arrived, who sent it, its type."""

    time: float
    source: str
    type: int  # 1 OPEN, 2 UPDATE, 3 NOTIFICATION, 4 KEEPALIVE, 5 ROUTE-REFRESH
    nlri: int  # IPv4 prefixes in an UPDATE's NLRI field


@dataclass
class Capture:
    """BGP messages and TCP facts from one pcap file."""

    messages: list[BgpMessage]
    zero_windows: dict[str, int]  # TCP segments advertising a zero window, by sender
    truncated: int  # packets cut by the snap length (would break the stream)
    last_packet: float | None  # time of the last packet captured, either direction


def count_nlri(update: bytes) -> int:
    """How many prefixes an UPDATE's (IPv4) NLRI field holds."""
    withdrawn = int.from_bytes(update[19:21], "big")
    attrs_at = 21 + withdrawn
    attrs = int.from_bytes(update[attrs_at:attrs_at + 2], "big")
    at, count = attrs_at + 2 + attrs, 0
    while at < len(update):
        at += 1 + (update[at] + 7) // 8
        count += 1
    return count


@dataclass
class _Stream:
    """One direction of one TCP connection, reassembled by sequence number."""

    source: str
    next_seq: int | None = None
    data: bytearray = field(default_factory=bytearray)
    pending: dict[int, bytes] = field(default_factory=dict)

    def feed(self, seq: int, syn: bool, payload: bytes, stamp: float) -> list[BgpMessage]:
        if syn:
            self.next_seq = (seq + 1) & 0xFFFFFFFF
        if not payload:
            return []
        if self.next_seq is None:
            self.next_seq = seq
        self.pending[seq] = payload
        progressed = True
        while progressed:
            progressed = False
            for start, chunk in list(self.pending.items()):
                offset = (self.next_seq - start) & 0xFFFFFFFF
                if offset >= 0x80000000:  # still in the future
                    continue
                del self.pending[start]
                if offset < len(chunk):  # new bytes (a retransmission may overlap old ones)
                    self.data += chunk[offset:]
                    self.next_seq = (self.next_seq + len(chunk) - offset) & 0xFFFFFFFF
                    progressed = True
        return self._messages(stamp)

    def _messages(self, stamp: float) -> list[BgpMessage]:
        found: list[BgpMessage] = []
        while len(self.data) >= 19:
            length = int.from_bytes(self.data[16:18], "big")
            if length < 19:
                raise ValueError(f"bad BGP header from {self.source}: length {length}")
            if len(self.data) < length:
                break
            raw = bytes(self.data[:length])
            del self.data[:length]
            nlri = count_nlri(raw) if raw[18] == 2 else 0
            found.append(BgpMessage(stamp, self.source, raw[18], nlri))
        return found


def read_pcap(path: Path) -> Capture:
    """BGP messages of every IPv4 TCP stream in a classic (libpcap, Ethernet) capture file."""
    raw = path.read_bytes()
    magic = raw[:4]
    for endian, scale in (("<", 1e-6), (">", 1e-6)):
        if struct.unpack(endian + "I", magic)[0] == 0xA1B2C3D4:
            break
        if struct.unpack(endian + "I", magic)[0] == 0xA1B23C4D:
            scale = 1e-9
            break
    else:
        raise ValueError(f"{path}: not a pcap file")
    linktype = struct.unpack(endian + "I", raw[20:24])[0]
    if linktype != 1:
        raise ValueError(f"{path}: link type {linktype}, expected Ethernet (1)")
    record = struct.Struct(endian + "IIII")
    streams: dict[tuple[str, int, str, int], _Stream] = {}
    messages: list[BgpMessage] = []
    zero_windows: dict[str, int] = {}
    truncated = 0
    last_packet: float | None = None
    at = 24
    while at + 16 <= len(raw):
        seconds, fraction, caught, length = record.unpack_from(raw, at)
        frame = raw[at + 16:at + 16 + caught]
        at += 16 + caught
        last_packet = seconds + fraction * scale
        if caught < length:
            truncated += 1
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        header = (ip[0] & 0x0F) * 4
        if ip[9] != 6:
            continue
        total = int.from_bytes(ip[2:4], "big")
        src, dst = str(IPv4Address(ip[12:16])), str(IPv4Address(ip[16:20]))
        tcp = ip[header:total]
        sport, dport, seq = struct.unpack_from("!HHI", tcp)
        offset, flags = (tcp[12] >> 4) * 4, tcp[13]
        window = int.from_bytes(tcp[14:16], "big")
        if window == 0 and not flags & 0x05:  # not SYN/FIN/RST
            zero_windows[src] = zero_windows.get(src, 0) + 1
        stream = streams.setdefault((src, sport, dst, dport), _Stream(src))
        stamp = seconds + fraction * scale
        messages += stream.feed(seq, bool(flags & 0x02), bytes(tcp[offset:]), stamp)
    messages.sort(key=lambda message: message.time)
    return Capture(messages, zero_windows, truncated, last_packet)


class Tcpdump:
    """``tcpdump`` on the spine's LAN interface, writing BGP's TCP segments to a pcap file."""

    def __init__(self, ns: Namespace, path: Path) -> None:
        self.ns, self.path, self.log = ns, path, path.with_suffix(".tcpdump.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = self.ns.popen(
            # immediate mode: no TPACKET_V3 blocks, whose last one a stop would lose
            ["tcpdump", "-i", SPINE_IF, "-n", "-Z", "root", "-B", "65536", "-s", "0",
             "--immediate-mode", "-U", "-w", str(self.path), "tcp", "port", "179"],
            log=self.log,
        )
        wait_for(lambda: "listening on" in self.log.read_text(errors="replace"),
                 timeout=10, interval=0.02, what="tcpdump listening")

    def stop(self) -> int:
        """Stop the capture; returns how many packets the kernel dropped."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None
        for line in self.log.read_text(errors="replace").splitlines():
            if "dropped by kernel" in line:
                return int(line.split()[0])
        return 0


# --- one run --------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What one speaker did with N prefixes (times in seconds, memory in MiB)."""

    speaker: str
    n: int
    status: str = "ok"  # ok | timeout | error: ...
    start_to_all: float | None = None
    established_to_all: float | None = None
    start_to_established: float | None = None
    established_polled: float | None = None  # start->Established as the polling saw it
    established_to_last_update: float | None = None  # the speaker's sending time on the wire
    received: int = 0
    rss_mib: dict[str, float] = field(default_factory=dict)
    rss_timeline: list[tuple[float, float]] = field(default_factory=list)  # (s, MiB) VmRSS
    max_gap_load: float | None = None  # Established -> all N
    max_gap: float | None = None  # Established -> end of the capture (all N + tail)
    updates: int = 0
    keepalives: int = 0
    nlri_sent: int = 0
    notifications: int = 0
    spine_zero_windows: int = 0
    spine_echo: tuple[float, float] | None = None  # est-> first/last UPDATE the spine sent back
    spine_echo_nlri: int = 0
    connections_established: int | None = None
    connections_dropped: int | None = None
    capture_dropped: int = 0
    load_before: float = 0.0  # 1-minute load average when the run began (others share the CPUs)
    how: str = ""


def spine_config(topo: Topology, *, echo: bool) -> str:
    """The spine's FRR config.  Like CSM's spines it advertises its table back to the worker
    (so the speaker receives the N routes too) unless ``echo`` is off: then an outbound
    route-map denies everything to the worker."""
    if echo:
        return topo.frr_spine_config([WORKER_ASN])
    worker = topo.worker_v4(0)
    config = topo.frr_spine_config([WORKER_ASN], extra_bgp="\n".join([
        " address-family ipv4 unicast",
        f"  neighbor {worker} route-map bench-deny-all out",
        " exit-address-family",
    ]))
    head, _, rest = config.partition("\n")  # `frr defaults` stays the first line
    return "\n".join([head, "route-map bench-deny-all deny 10", "exit", rest])


def spine_peer(spine: FrrRouter, address: str) -> dict[str, Any]:
    peer: dict[str, Any] = spine.bgp_peers().get(address, {})
    return peer


def longest_silence(times: list[float], start: float, end: float) -> float | None:
    """The largest gap between consecutive ``times`` in [start, end], counting the gap to ``end``."""
    inside = sorted(t for t in times if start <= t <= end)
    if not inside:
        return None
    return max(b - a for a, b in itertools.pairwise([*inside, end]))


def run_once(kind: str, n: int, args: argparse.Namespace, work: Path,
             deadline: float) -> RunResult:
    """Build a topology, start the spine and the speaker, measure, clean everything up."""
    result = RunResult(kind, n, load_before=os.getloadavg()[0])
    run_dir = work / f"{kind}-{n}-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    topo = build_topology(run_dir, workers=1)
    speaker: BenchSpeaker | None = None
    capture: Tcpdump | None = None
    launcher: threading.Thread | None = None
    try:
        worker = topo.worker_v4(0)
        spine = topo.start_frr_spine(spine_config(topo, echo=args.echo))
        # FRR refuses connections to a neighbor it has not started yet (Idle): wait for Active
        wait_for(lambda: spine_peer(spine, worker).get("state") == "Active", timeout=30,
                 interval=0.05, what="the spine's neighbor in state Active")
        speaker = make_speaker(kind, topo, run_dir)
        result.how = speaker.how
        speaker.prepare(service_prefixes(n))
        capture = Tcpdump(topo.spine, run_dir / "bgp.pcap")
        capture.start()
        launch_error: list[BaseException] = []

        def launch(speaker: BenchSpeaker = speaker) -> None:
            try:
                speaker.start()
            except BaseException as exc:
                launch_error.append(exc)

        rss = PeakRss()
        t_start = time.time()
        launcher = threading.Thread(target=launch, name=f"start-{kind}", daemon=True)
        launcher.start()
        t_all: float | None = None
        while True:
            t_poll = time.time()
            if launch_error:
                raise RuntimeError(f"{kind} did not start: {launch_error[0]}")
            rss.sample(speaker.pids(), t_poll - t_start)
            try:
                peer = spine_peer(spine, worker)
            except (LabError, ValueError):
                peer = {}
            if peer.get("state") == "Established" and result.established_polled is None:
                result.established_polled = t_poll - t_start
            result.received = int(peer.get("pfxRcd", 0))
            if result.received >= n:
                t_all = time.time()  # the count was read before the answer came back
                break
            if t_poll - t_start > deadline:
                result.status = "timeout"
                break
            if not launcher.is_alive() and not any(speaker.pids().values()):
                raise RuntimeError(f"{kind} exited (see {run_dir})")
            time.sleep(max(0.0, args.poll - (time.time() - t_poll)))
        result.start_to_all = None if t_all is None else t_all - t_start
        # the tail: keepalives must go on after the table is sent
        tail_end = time.time() + args.tail
        while time.time() < tail_end:
            rss.sample(speaker.pids(), time.time() - t_start)
            time.sleep(0.1)
        rss.sample(speaker.pids(), time.time() - t_start)
        result.rss_mib = rss.mib()
        result.rss_timeline = rss.timeline
        neighbor = spine.json(f"show bgp neighbors {worker}").get(worker, {})
        result.connections_established = neighbor.get("connectionsEstablished")
        result.connections_dropped = neighbor.get("connectionsDropped")
        t_end = time.time()
        result.capture_dropped = capture.stop()
        analyse_capture(result, read_pcap(capture.path), worker, t_start, t_all, t_end)
    except Exception as exc:  # recorded, and the next run goes on
        result.status = f"error: {exc}"
    finally:
        if capture is not None:
            capture.stop()
        if launcher is not None:
            launcher.join(timeout=60)
        if speaker is not None:
            speaker.stop()
        try:
            topo.close()
        except AssertionError as exc:  # something outlived its stop: say so, go on
            result.status = f"error: cleanup: {exc}"
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    return result


def analyse_capture(result: RunResult, capture: Capture, worker: str, t_start: float,
                    t_all: float | None, t_end: float) -> None:
    """Fill in Established, the speaker's message counts and its longest silence."""
    if capture.truncated:
        raise ValueError(f"{capture.truncated} packets truncated in the capture")
    sent = [m for m in capture.messages if m.source == worker]
    keepalives = [m.time for m in sent if m.type == 4]
    if not keepalives:
        return
    t_est = keepalives[0]
    result.start_to_established = t_est - t_start
    if t_all is not None:
        result.established_to_all = t_all - t_est
    result.keepalives = len(keepalives)
    updates = [m for m in sent if m.type == 2]
    result.updates = len(updates)
    result.nlri_sent = sum(m.nlri for m in updates)
    result.notifications = sum(1 for m in sent if m.type == 3)
    with_nlri = [m.time for m in updates if m.nlri]
    if with_nlri:
        result.established_to_last_update = with_nlri[-1] - t_est
    alive = [m.time for m in sent if m.type in (2, 4)]
    if capture.last_packet is not None:  # a silence is only known up to the last packet seen
        t_end = min(t_end, capture.last_packet)
    if t_all is not None:
        t_all = min(t_all, t_end)
    result.max_gap = longest_silence(alive, t_est, t_end)
    result.max_gap_load = longest_silence(alive, t_est, t_all if t_all is not None else t_end)
    spine_updates = [m.time for m in capture.messages
                     if m.source != worker and m.type == 2 and m.nlri]
    if spine_updates:  # the spine advertises the routes back: the speaker must read them too
        result.spine_echo = (spine_updates[0] - t_est, spine_updates[-1] - t_est)
        result.spine_echo_nlri = sum(m.nlri for m in capture.messages
                                     if m.source != worker and m.type == 2)
    result.spine_zero_windows = sum(count for source, count in capture.zero_windows.items()
                                    if source != worker)


# --- the report --------------------------------------------------------------------------------------


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[RunResult]) -> dict[str, Any]:
    """One row per speaker: medians over the repeats (all of them must be ok to count)."""
    ok = [r for r in runs if r.status == "ok"]
    groups = sorted({g for r in runs for g in r.rss_mib})
    statuses = sorted({r.status for r in runs})
    return {
        "speaker": runs[0].speaker,
        "status": "ok" if len(ok) == len(runs) else "; ".join(statuses),
        "start_to_all": median([r.start_to_all for r in ok]),
        "established_to_all": median([r.established_to_all for r in ok]),
        "rss_mib": {g: max(r.rss_mib.get(g, 0.0) for r in runs) for g in groups},
        "max_gap": max((r.max_gap for r in runs if r.max_gap is not None), default=None),
        "drops": max((r.connections_dropped or 0 for r in runs), default=0),
        "sessions": max((r.connections_established or 0 for r in runs), default=0),
        "runs": len(runs),
    }


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def ratio(other: float | None, base: float | None) -> str:
    return "-" if other is None or not base else f"{other / base:.2f}"


def print_table(n: int, rows: list[dict[str, Any]], *, echo: bool = True) -> None:
    base = next((r for r in rows if r["speaker"] == "spinelb"), None)
    base_time = base["start_to_all"] if base else None
    base_est = base["established_to_all"] if base else None
    base_mib = next(iter(base["rss_mib"].values()), None) if base else None
    print(f"\nN = {n:,}  (FRR 8.4 spine, hold {HOLD_TIME} s / keepalive {KEEPALIVE} s, "
          f"medians of {rows[0]['runs']} run(s){', spine sends nothing back' if not echo else ''})")
    header = ("speaker", "start->all s", "est->all s", "peak RSS MiB", "max gap s", "drops",
              "time ratio", "est ratio", "RSS ratio", "status")
    lines = [header]
    for row in rows:
        speaker_mib = next(iter(row["rss_mib"].values()), None)
        extra = [f"{g} {v:.0f}" for g, v in list(row["rss_mib"].items())[1:]]
        rss = fmt(speaker_mib, 1) + (f" (+{', '.join(extra)})" if extra else "")
        lines.append((
            row["speaker"], fmt(row["start_to_all"]), fmt(row["established_to_all"]), rss,
            fmt(row["max_gap"]), f"{row['drops']}/{row['sessions']} up",
            ratio(row["start_to_all"], base_time),
            ratio(row["established_to_all"], base_est),
            ratio(speaker_mib, base_mib),
            row["status"],
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets for spinelb at this N: time <= FRR's, RSS < 100 MiB, gap < hold."""
    spinelb = next((r for r in rows if r["speaker"] == "spinelb"), None)
    frr = min((r for r in rows if r["speaker"].startswith("frr") and r["start_to_all"]),
              key=lambda r: float(r["start_to_all"]), default=None)  # FRR's fastest start
    if spinelb is None:
        return []
    verdicts = []
    if frr is not None and spinelb["start_to_all"]:
        value = frr["start_to_all"] / spinelb["start_to_all"]
        verdicts.append(f"{frr['speaker']}/spinelb start->all = {value:.2f} "
                        f"({'met' if value >= 1 else 'MISSED'}, target >= 1.0)")
    mib = next(iter(spinelb["rss_mib"].values()), None)
    if mib is not None:
        verdicts.append(f"spinelb peak RSS = {mib:.1f} MiB ({'met' if mib < 100 else 'MISSED'}"
                        ", target < 100 MiB)")
    if spinelb["max_gap"] is not None:
        gap = spinelb["max_gap"]
        verdicts.append(f"spinelb max gap = {gap:.2f} s ({'met' if gap < HOLD_TIME else 'MISSED'}, "
                        f"target < hold {HOLD_TIME} s), session drops = {spinelb['drops']}")
    return verdicts


def machine() -> dict[str, Any]:
    def first_line(args: list[str]) -> str:
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
        return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 else "?"

    return {
        "cpus": os.cpu_count(),
        "cpu": next((line.split(":", 1)[1].strip() for line in
                     Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name")), "?"),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "spinelb": metadata.version("spinelb"),
        "commit": first_line(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        "exabgp": metadata.version("exabgp"),
        "frr": first_line(["/usr/lib/frr/bgpd", "--version"]),
        "bird": first_line(["bird", "--version"]),
    }


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000],
                        help="prefix counts (default: 10000 100000)")
    parser.add_argument("--speakers", nargs="+", choices=SPEAKERS + OPTIONAL_SPEAKERS,
                        default=list(SPEAKERS),
                        help=f"default: {' '.join(SPEAKERS)}; also: {' '.join(OPTIONAL_SPEAKERS)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs per speaker and N (medians)")
    parser.add_argument("--json", type=Path, help="write every run and the summary here")
    parser.add_argument("--poll", type=float, default=0.03,
                        help="seconds between polls of the spine (default 0.03)")
    parser.add_argument("--tail", type=float, default=3.5,
                        help="seconds to keep capturing after all N arrived (default 3.5)")
    parser.add_argument("--deadline", type=float,
                        help="seconds per run before it counts as a timeout "
                             "(default: max(30, 0.0012 * N))")
    parser.add_argument("--no-echo", dest="echo", action="store_false",
                        help="the spine advertises nothing back to the worker (by default it "
                             "does, as CSM's spines do, so each speaker also receives N routes)")
    parser.add_argument("--keep", action="store_true",
                        help="keep each run's configs, logs and pcap (printed at the end)")
    return parser.parse_args(argv)


def preflight(speakers: list[str]) -> list[str]:
    problems = [p for p in [netns_available()] if p]
    if "spinelb" in speakers and (why := speaker_available()):
        problems.append(why)
    tools = {"tcpdump": "tcpdump", "vtysh": "vtysh", "bird": "bird"}
    problems += [f"{tool} is not installed" for tool in tools if shutil.which(tool) is None]
    if "exabgp" in speakers and not EXABGP.exists():
        problems.append(f"{EXABGP} is not installed")
    return problems


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Make SIGTERM and SIGINT unwind like Ctrl-C, so every run's cleanup happens (also when
    started in the background, where a shell leaves SIGINT ignored)."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    problems = preflight(args.speakers)
    if problems:
        print("bench/announce.py cannot run:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    info = machine()
    print(f"machine: {info['cpus']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, "
          f"kernel {info['kernel']}, load {', '.join(f'{x:.2f}' for x in info['load_average'])}")
    print(f"spinelb {info['spinelb']} ({info['commit']}), {info['frr']}, {info['bird']}, ExaBGP {info['exabgp']}")
    work = Path(tempfile.mkdtemp(prefix="spinelb-bench-"))
    runs: list[RunResult] = []
    summary: dict[int, list[dict[str, Any]]] = {}
    try:
        with signals_as_interrupt():
            for n in args.n:
                deadline = args.deadline if args.deadline is not None else max(30.0, 0.0012 * n)
                for kind in args.speakers:
                    mine: list[RunResult] = []
                    for _ in range(args.repeat):
                        result = run_once(kind, n, args, work, deadline)
                        print(f"  {kind:8} N={n:<7} {result.status:8} "
                              f"start->all {fmt(result.start_to_all)} s, "
                              f"est->all {fmt(result.established_to_all)} s, "
                              f"RSS {', '.join(f'{g} {v:.1f}' for g, v in result.rss_mib.items())}"
                              f" MiB, max gap {fmt(result.max_gap)} s", flush=True)
                        mine.append(result)
                    runs += mine
                    summary.setdefault(n, []).append(summarise(mine))
    except KeyboardInterrupt:
        print("\ninterrupted: every namespace and process of the current run was cleaned up",
              file=sys.stderr)
        return 130
    finally:
        if args.json:
            args.json.write_text(json.dumps({
                "machine": info,
                "settings": {"hold_time": HOLD_TIME, "keepalive": KEEPALIVE, "poll": args.poll,
                             "tail": args.tail, "repeat": args.repeat, "echo": args.echo},
                "runs": [asdict(r) for r in runs],
                "summary": {str(n): rows for n, rows in summary.items()},
            }, indent=1))
        if args.keep:
            print(f"run files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    for n, rows in summary.items():
        print_table(n, rows, echo=args.echo)
        for verdict in targets(rows):
            print(f"  target: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
