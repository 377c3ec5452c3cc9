"""The workers' side of the lab: what each worker announces, and the speakers that announce it.

Two interchangeable speakers (``--speaker``):

- ``spinelb``: the collection's speaker role runs it in the worker's namespace
  (``playbooks/site.yml`` with the lab inventory), pid file, config and log in
  ``lab/run/<namespace>/``; this module only finds, signals and stops it.
- ``frr``: an FRR bgpd per worker announcing the same /32s on the same
  sessions (``network`` statements, outbound prefix-lists per session, the CMN
  sessions with ``local-as ... no-prepend replace-as``).  A stand-in that
  proves the spine side before the speaker exists.

Besides the services, every worker announces *refusal probes*: a pool's
address on the sessions of a network that does not carry the pool, and an
address outside every pool.  A converged spine has received and refused them.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from typing import Protocol

from lab.frr import FrrRouter
from lab.netns import LabError, Namespace, pid_alive, read_pid_file, stop_pid
from lab.site import Announcement, Host, Site

REPO = Path(__file__).resolve().parent.parent
RUN_DIR = REPO / "lab" / "run"
OUTSIDE_PROBE = IPv4Network("192.0.2.1/32")  # TEST-NET-1, in no pool of any site


def refusal_probes(site: Site) -> list[Announcement]:
    """Announcements the spines must refuse: a pool on a foreign session, and no pool at all."""
    used = set(site.service_addresses())
    probes: list[Announcement] = []
    for network in site.peering_networks:
        foreign = next(
            (pool for pool in site.pools.values() if pool.peering != network.name), None
        )
        if foreign is not None:
            address = next(a for a in reversed(list(foreign.cidr)) if a not in used)
            probes.append(Announcement(IPv4Network(f"{address}/32"), foreign.name,
                                       network.name, f"probe:{foreign.name}-on-{network.name}"))
        probes.append(Announcement(OUTSIDE_PROBE, "", network.name, "probe:outside-pools"))
    return probes


def worker_announcements(site: Site, worker: str) -> list[Announcement]:
    """Services and refusal probes ``worker`` announces."""
    return site.announcements(worker) + refusal_probes(site)


def frr_worker_config(site: Site, worker: Host) -> str:
    """An FRR bgpd config announcing what the spinelb speaker of ``worker`` would."""
    first = site.peering_networks[0]
    announcements = worker_announcements(site, worker.name)
    lines = ["frr defaults datacenter", f"hostname {worker.name}", "!"]
    for network in site.peering_networks:
        mine = [a for a in announcements if a.peering == network.name]
        for seq, ann in enumerate(mine, start=1):
            lines.append(f"ip prefix-list out-{network.name} seq {seq * 5} permit {ann.prefix}")
        lines += [f"route-map out-{network.name} permit 10",
                  f" match ip address prefix-list out-{network.name}", "exit"]
    lines += ["route-map deny-all deny 10", "exit", "!"]
    lines += [
        f"router bgp {first.speaker_asn}",
        f" bgp router-id {worker.addresses[first.name]}",
        " no bgp ebgp-requires-policy",
        " no bgp network import-check",
        " no bgp default ipv4-unicast",
        f" timers bgp {site.keepalive} {site.hold}",
    ]
    for network in site.peering_networks:
        for spine in site.spines.values():
            address = spine.addresses[network.name]
            lines += [
                f" neighbor {address} remote-as {site.switch_asn}",
                f" neighbor {address} update-source {worker.addresses[network.name]}",
                f" neighbor {address} timers connect 1",
            ]
            if network.speaker_asn != first.speaker_asn:
                lines.append(
                    f" neighbor {address} local-as {network.speaker_asn} no-prepend replace-as"
                )
    lines.append(" address-family ipv4 unicast")
    for prefix in sorted({str(a.prefix) for a in announcements}):
        lines.append(f"  network {prefix}")
    for network in site.peering_networks:
        for spine in site.spines.values():
            address = spine.addresses[network.name]
            lines += [
                f"  neighbor {address} activate",
                f"  neighbor {address} route-map out-{network.name} out",
                f"  neighbor {address} route-map deny-all in",
            ]
    lines += [" exit-address-family", "exit", "!", "end", ""]
    return "\n".join(lines)


class WorkerSpeaker(Protocol):
    """A speaker running in a worker's namespace."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def running(self) -> bool: ...


@dataclass
class SpinelbWorker:
    """``spinelb speaker`` in namespace ``ns_name``; config, pid file and log in ``run_dir``."""

    site: Site
    worker: Host
    ns_name: str
    run_dir: Path = RUN_DIR
    kubeconfig: Path | None = None

    @property
    def ns(self) -> Namespace:
        return Namespace(self.ns_name)

    # Where the collection's speaker role puts them with the lab inventory (per-host paths).
    @property
    def host_dir(self) -> Path:
        return self.run_dir / self.ns_name

    @property
    def config_path(self) -> Path:
        return self.host_dir / "speaker.yaml"

    @property
    def pid_path(self) -> Path:
        """The supervisor's pid file (``spinelb supervise``); the speaker's is ``.child``."""
        return self.host_dir / "speaker.pid"

    @property
    def log_path(self) -> Path:
        return self.host_dir / "speaker.log"

    def start(self) -> None:
        """The collection starts spinelb speakers (``playbooks/site.yml``), never the lab."""
        raise LabError(f"{self.worker.name}: spinelb speakers are started by playbooks/site.yml "
                       "(lab up), not by the lab")

    def child_pid(self) -> int | None:
        """The speaker's own pid (under the supervisor), or None."""
        pid = read_pid_file(self.pid_path.with_name(self.pid_path.name + ".child"))
        return pid if pid is not None and pid_alive(pid) else None

    def pid(self) -> int | None:
        pid = read_pid_file(self.pid_path)
        return pid if pid is not None and pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def stop(self) -> None:
        pid = read_pid_file(self.pid_path)
        if pid is not None:
            # the supervisor's command line names its pid file; a direct start names the config
            stop_pid(pid, expect=str(self.host_dir))
            self.pid_path.unlink(missing_ok=True)

    def signal(self, sig: signal.Signals) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, sig)


@dataclass
class FrrWorker:
    """The FRR stand-in for the speaker, in namespace ``ns_name``."""

    site: Site
    worker: Host
    ns_name: str

    @property
    def router(self) -> FrrRouter:
        return FrrRouter(Namespace(self.ns_name), daemons=("zebra", "bgpd"))

    def start(self) -> None:
        self.router.start(frr_worker_config(self.site, self.worker))

    def running(self) -> bool:
        return "bgpd" in self.router.pids()

    def stop(self) -> None:
        self.router.cleanup()


SPEAKERS = ("spinelb", "frr")


def make_worker(kind: str, site: Site, worker: Host, ns_name: str,
                run_dir: Path = RUN_DIR, kubeconfig: Path | None = None) -> SpinelbWorker | FrrWorker:
    """The worker speaker of ``kind`` (``spinelb`` or ``frr``) in namespace ``ns_name``.

    A spinelb speaker with ``kubeconfig`` takes its service addresses from that API.
    """
    if kind == "spinelb":
        return SpinelbWorker(site, worker, ns_name, run_dir, kubeconfig)
    if kind == "frr":
        return FrrWorker(site, worker, ns_name)
    raise ValueError(f"unknown speaker {kind!r} (one of {', '.join(SPEAKERS)})")
