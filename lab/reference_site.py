"""The reference-site lab: build it, tear it down, and judge whether it converged.

``up`` creates one namespace per host named after it, one bridge per network
in the ``lab-fabric`` namespace, attaches every host with its site addresses,
starts the cluster's API server (kmock's emulator, ``lab/apiserver.py``)
loaded with the site's Services, EndpointSlices and worker Nodes and the
spinelb controller in the master's namespace (``lab/kube.py``), starts FRR on
the spines, configures them with the collection's ``playbooks/spines.yml``
(inventory ``inventories/lab``), starts a speaker on each worker whose service
addresses come from that API, then waits for the expectations of
reference-site/README.md, judged against the live Services.  ``down`` removes
all of it, by the pid files and names ``up`` used; it is idempotent.

A :class:`SiteLab` with a ``prefix`` (tests use ``slt<pid>-``) builds the same
site under prefixed namespace names, so it can run while the lab is up.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path

from lab import frr
from lab.frr import FrrRouter
from lab.kube import LabCluster
from lab.layer2 import gather_statuses, judge, layer2_addresses, layer2_pools
from lab.netns import LabError, Namespace, attach, check_ifname, wait_for
from lab.site import Host, Service, Site
from lab.worker import RUN_DIR, SPEAKERS, FrrWorker, SpinelbWorker, make_worker, refusal_probes
from spinelb.k8s.objects import node_info, service_info, slice_info

REPO = Path(__file__).resolve().parent.parent
ANSIBLE_PLAYBOOK = REPO / ".venv" / "bin" / "ansible-playbook"
FABRIC = "lab-fabric"
SPINE_DAEMONS = ("zebra", "bgpd", "bfdd", "staticd")  # staticd: static routes typed by hand
CONVERGE_TIMEOUT = 60.0


class SpeakerDied(RuntimeError):
    """A worker's speaker process exited while the lab waited for convergence."""


@dataclass(frozen=True)
class Verdict:
    """One expectation of the site's README and whether the lab meets it."""

    expectation: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        state = "converged" if self.ok else f"NOT converged: {self.detail}"
        return f"[{'ok' if self.ok else '!!'}] {self.expectation}: {state}"


def recap(output: str) -> str:
    """The PLAY RECAP of an ansible-playbook run (the per-host ok/changed/failed counts)."""
    start = output.find("PLAY RECAP")
    return output[start:].rstrip() if start >= 0 else output[-2000:]


def port_name(host: Host, network: str) -> str:
    """The fabric-side name of ``host``'s link to ``network`` (<= 15 characters)."""
    return check_ifname(f"{host.name.replace('-', '')}-{network}")


def _fmt(addresses: set[IPv4Address]) -> str:
    return ", ".join(str(a) for a in sorted(addresses)) or "none"


@dataclass
class SiteLab:
    """The site in namespaces named ``prefix + host``; speakers' files in ``run_dir``."""

    site: Site
    prefix: str = ""
    run_dir: Path = RUN_DIR
    # extra variables for playbooks/spines.yml (a benchmark's additional pool, say)
    spine_vars: dict[str, object] | None = None
    # the PLAY RECAP of the last playbooks/site.yml run by up()
    last_recap: str = ""

    # --- names ----------------------------------------------------------------

    def ns(self, host: Host | str) -> Namespace:
        name = host if isinstance(host, str) else host.name
        return Namespace(f"{self.prefix}{name}")

    @property
    def fabric(self) -> Namespace:
        return Namespace(f"{self.prefix}{FABRIC}")

    def spine_router(self, spine: Host) -> FrrRouter:
        return FrrRouter(self.ns(spine), daemons=SPINE_DAEMONS)

    def worker_speaker(self, kind: str, worker: Host) -> SpinelbWorker | FrrWorker:
        return make_worker(kind, self.site, worker, self.ns(worker).name, self.run_dir,
                           self.kubeconfig)

    @property
    def kubeconfig(self) -> Path:
        """Where the lab's kubeconfig is written: ``.lab/kubeconfig`` for the lab itself."""
        if not self.prefix:
            return REPO / ".lab" / "kubeconfig"
        return self.run_dir / f"{self.prefix}kubeconfig"

    @property
    def cluster(self) -> LabCluster:
        """The API server and controller, in the first master's namespace."""
        master = next(iter(self.site.masters.values()))
        return LabCluster(self.site, master, self.ns(master), self.run_dir, self.kubeconfig)

    # --- up / down --------------------------------------------------------------

    def build_network(self) -> None:
        """Namespaces, bridges and links with the site's addresses (idempotent)."""
        fabric = self.fabric.create()
        for bridge in self.site.networks:
            fabric.add_bridge(check_ifname(bridge))
        for host in self.site.hosts.values():
            ns = self.ns(host).create()
            if host.loopback is not None:
                ns.add_address("lo", f"{host.loopback}/32")
            for net_name, network in self.site.networks.items():
                if net_name in host.addresses:
                    attach(ns, net_name, fabric, net_name, port_name(host, net_name),
                           [host.cidr(network)])

    def start_spines(self) -> None:
        """Start FRR on every spine with no configuration, configure it with the collection's
        ``playbooks/spines.yml`` (inventory ``inventories/lab``), and return once each spine
        accepts its workers' connections.

        A neighbor FRR has just configured sits in Idle for a moment and resets
        connections that arrive then; speakers started in that window would
        wait out their connect-retry timer.
        """
        for spine in self.site.spines.values():
            self.spine_router(spine).start("")
        self.configure_spines()
        for spine in self.site.spines.values():
            router = self.spine_router(spine)

            def listening(router: FrrRouter = router) -> bool:
                peers = router.bgp_peers()
                return bool(peers) and all(p.get("state") != "Idle" for p in peers.values())

            wait_for(listening, timeout=15, interval=0.05,
                     what=f"{spine.name}'s neighbors to leave Idle")

    def configure_spines(self, *args: str) -> str:
        """Run ``playbooks/spines.yml`` on the lab inventory against this lab's spines."""
        return self.playbook("spines.yml", *args)

    def lab_vars(self) -> dict[str, object]:
        """The extra variables that point the lab inventory at this lab's namespaces and files."""
        return {
            "spinelb_lab_prefix": self.prefix,
            "spinelb_lab_run_dir": str(self.run_dir),
            "spinelb_lab_kubeconfig": str(self.kubeconfig),
            **(self.spine_vars or {}),
        }

    def playbook(self, name: str, *args: str, timeout: float = 600) -> str:
        """Run the collection's ``playbooks/NAME`` on ``inventories/lab`` for this lab; its output.

        Raises :class:`LabError` with the output's tail when the playbook fails.
        """
        run = self.run_playbook(name, *args, timeout=timeout)
        if run.returncode != 0:
            raise LabError(f"playbooks/{name} failed:\n{run.stdout[-4000:]}{run.stderr[-2000:]}")
        return run.stdout

    def run_playbook(self, name: str, *args: str,
                     timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``playbooks/NAME`` like :meth:`playbook`; its whole result, failed or not."""
        collections = self.run_dir / "collections"
        link = collections / "ansible_collections" / "spinelb" / "fabric"
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(REPO)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_FORCE_COLOR="0")
        return subprocess.run(
            [str(ANSIBLE_PLAYBOOK), "-i", "inventories/lab", f"playbooks/{name}",
             "-e", json.dumps(self.lab_vars()), *args],
            cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=timeout,
        )

    def start_workers(self, speaker: str) -> None:
        for worker in self.site.workers.values():
            self.worker_speaker(speaker, worker).start()

    def up(self, speaker: str = "spinelb", timeout: float = CONVERGE_TIMEOUT, *,
           fresh: bool = False) -> bool:
        """Build the site, wait until it converged, print ``show``.

        With spinelb speakers the lab is the collection's run: what the lab itself
        provides (namespaces and links, the cluster's API server, FRR started empty
        on the spines) is created where missing, and ``playbooks/site.yml`` does the
        rest, so running ``up`` on a lab that is up changes nothing (the playbook
        reports ``changed=0``). ``fresh`` (and the FRR stand-in) tears down first.
        """
        started = time.monotonic()
        if speaker == "spinelb" and not fresh:
            for worker in self.site.workers.values():  # a previous --speaker frr lab
                self.worker_speaker("frr", worker).stop()
        else:
            self.down()
        self.build_network()
        if speaker == "spinelb":
            # The cluster's API server is the lab's; everything else is the collection's run.
            if not self.cluster.api_running():
                self.cluster.start_api()
            for spine in self.site.spines.values():
                router = self.spine_router(spine)
                if "bgpd" not in router.pids():
                    router.start("")
            output = self.playbook("site.yml")
            self.last_recap = recap(output)
            print(self.last_recap)
        else:
            self.start_spines()
            self.start_workers(speaker)
        converged = self.wait_converged(timeout, speaker)
        elapsed = time.monotonic() - started
        print(self.show())
        state = "converged" if converged else "did NOT converge"
        print(f"lab up ({speaker} speakers): {state} in {elapsed:.1f}s")
        return converged

    def wait_converged(self, timeout: float, speaker: str = "") -> bool:
        """Wait until every verdict is ok; give up early if a speaker process died."""

        def converged() -> bool:
            if speaker:
                dead = [w for w in self.site.workers.values()
                        if not self.worker_speaker(speaker, w).running()]
                if dead:
                    raise SpeakerDied(self._death_report(speaker, dead))
            if speaker == "spinelb" and not self.cluster.controller_running():
                raise SpeakerDied("the controller exited:\n"
                                  + self.cluster._tail(self.cluster.controller_log))
            return all(v.ok for v in self.check())

        try:
            wait_for(converged, timeout=timeout, interval=0.25, what="the site to converge")
        except TimeoutError:
            return False
        except SpeakerDied as exc:
            print(f"lab: {exc}")
            return False
        return True

    def _death_report(self, speaker: str, dead: list[Host]) -> str:
        lines = [f"{speaker} speaker exited on {', '.join(w.name for w in dead)}"]
        for worker in dead:
            handle = self.worker_speaker(speaker, worker)
            if isinstance(handle, SpinelbWorker) and handle.log_path.exists():
                tail = handle.log_path.read_text(errors="replace").splitlines()[-15:]
                lines += [f"--- {handle.log_path} (last lines)", *tail]
        return "\n".join(lines)

    def down(self) -> None:
        """Stop every speaker and FRR this lab started, delete its namespaces (idempotent)."""
        for worker in self.site.workers.values():
            for kind in SPEAKERS:
                self.worker_speaker(kind, worker).stop()
        self.cluster.stop()
        self.kubeconfig.unlink(missing_ok=True)
        for spine in self.site.spines.values():
            self.spine_router(spine).cleanup()
        for host in self.site.hosts.values():
            ns = self.ns(host)
            frr.stop_stale(ns.name)
            leftover = ns.pids()
            if leftover:
                raise LabError(f"processes {leftover} still run in {ns.name}; not deleting it")
            ns.delete()
        self.fabric.delete()
        if self.run_dir.exists():
            for name in [*self.site.workers, *self.site.masters]:
                for pid_file in (self.run_dir / self.ns(name).name).glob("*.pid*"):
                    pid_file.unlink(missing_ok=True)

    # --- convergence ----------------------------------------------------------------

    def kernel_next_hops(self, spine: Host, address: IPv4Address) -> set[IPv4Address]:
        try:
            route = self.ns(spine).route(f"{address}/32")
        except LabError:
            return set()
        if route is None:
            return set()
        return {IPv4Address(gw) for gw in route.gateways}

    def live_site(self) -> Site:
        """The site as the API server has it now: Services' assigned addresses, their
        endpoints, and the workers whose Node is not Ready or is excluded."""
        cluster = self.cluster
        nodes = [node_info(obj) for obj in cluster.items("nodes")]
        known = {node.name for node in nodes}
        ineligible = {n.name for n in nodes if not n.ready or n.excluded}
        ineligible |= set(self.site.workers) - known
        ready: dict[str, set[str]] = {}
        for obj in cluster.items("endpointslices"):
            info = slice_info(obj)
            if info.service_key is not None:
                ready.setdefault(info.service_key, set()).update(info.ready_nodes)
        services: list[Service] = []
        for obj in cluster.items("services"):
            svc = service_info(obj)
            if not svc.load_balancer:
                continue
            for address in svc.ingress:
                pool = self.site.pool_of(address) if isinstance(address, IPv4Address) else None
                if isinstance(address, IPv4Address) and pool is not None:
                    services.append(Service(svc.namespace, svc.name, pool.name, address,
                                            svc.local, frozenset(ready.get(svc.key, ()))))
        return replace(self.site, services=services, ineligible=frozenset(ineligible))

    def _addresses(self) -> Verdict:
        """Every Service of the site's files has the address the seed shows (or its pool's)."""
        try:
            live = {service_info(obj).key: service_info(obj)
                    for obj in self.cluster.items("services")}
        except (LabError, ValueError) as exc:
            return Verdict("Services' addresses from the controller", False, str(exc))
        wrong: list[str] = []
        for service in self.site.services:
            key = f"{service.namespace}/{service.name}"
            found = live.get(key)
            have = [str(a) for a in found.ingress] if found is not None else ["(no Service)"]
            if have != [str(service.address)]:
                wrong.append(f"{key} has [{', '.join(have) or '<pending>'}], "
                             f"want {service.address}")
        return Verdict("Services' addresses from the controller (kubectl get service -A)",
                       not wrong, "; ".join(wrong))

    def check(self) -> list[Verdict]:
        """Judge the running lab against every expectation of reference-site/README.md.

        With the lab's API server running, the expected routes follow the live
        Services (what the controller assigned, the endpoints, the Nodes).
        """
        site = self.site
        absent = [self.ns(spine).name for spine in site.spines.values()
                  if not self.ns(spine).exists()]
        if absent:
            return [Verdict("the lab is up", False, f"no namespace {', '.join(absent)}")]
        verdicts = [self._sessions()]
        if self.cluster.api_running():
            verdicts.append(self._addresses())
            try:
                site = self.live_site()
            except (LabError, ValueError) as exc:
                return [*verdicts, Verdict("the lab's Kubernetes API answers", False, str(exc))]
        routes: dict[str, list[str]] = {"ecmp": [], "single": [], "local": []}
        single = {s.prefix.network_address for s in site.single_path}
        for address, service in site.service_addresses().items():
            want = site.expected_next_hops(address)
            kind = "single" if address in single else "local" if service.local else "ecmp"
            for spine in site.spines.values():
                have = self.kernel_next_hops(spine, address)
                if have != want:
                    routes[kind].append(
                        f"{spine.name} {address}/32 via [{_fmt(have)}], want [{_fmt(want)}]"
                    )
        verdicts += [
            Verdict("Cluster-policy addresses ECMP via every worker's delivery-network address",
                    not routes["ecmp"], "; ".join(routes["ecmp"])),
            Verdict("TFTP addresses single-path via the first announcing worker of their list",
                    not routes["single"], "; ".join(routes["single"])),
            Verdict("Local-policy addresses only via workers with a ready endpoint",
                    not routes["local"], "; ".join(routes["local"])),
            self._refusals(),
        ]
        if self.cluster.api_running():
            verdicts += self._layer2()
        return verdicts

    def _layer2(self) -> list[Verdict]:
        """``layer2: <address> answered by <node> (<mac>)``: for each address of the lab's
        layer2 pool a Service has, exactly one speaker answers, the one all name as owner."""
        pools = layer2_pools()
        if not pools:
            return []
        try:
            addresses = layer2_addresses(self.cluster.items("services"), pools)
        except (LabError, ValueError) as exc:
            return [Verdict("layer2 Services' addresses", False, str(exc))]
        if not addresses:
            return [Verdict(f"layer2: a Service's address from pool {pools[0].name}", False,
                            "no Service has one")]
        statuses = gather_statuses({
            worker.name: (handle.ns, handle.config_path)
            for worker in self.site.workers.values()
            if isinstance(handle := self.worker_speaker("spinelb", worker), SpinelbWorker)
        })
        verdicts = []
        for address in addresses:
            answer = judge(address, statuses)
            if answer.problem:
                verdicts.append(Verdict(f"layer2: {address}", False, answer.problem))
            else:
                verdicts.append(Verdict(
                    f"layer2: {address} answered by {answer.owner} ({answer.mac})", True))
        return verdicts

    def _sessions(self) -> Verdict:
        site = self.site
        missing: list[str] = []
        for spine in site.spines.values():
            want: dict[str, str] = {}
            for worker in site.workers.values():
                for network in site.peering_networks:
                    want[str(worker.addresses[network.name])] = f"{worker.name} {network.name}"
            try:
                established = self.spine_router(spine).established()
            except (LabError, ValueError) as exc:
                missing.append(f"{spine.name}: {exc}")
                continue
            gone = [label for address, label in want.items() if address not in established]
            for other in site.spines.values():  # iBGP, over whichever peering network it runs
                addresses = {str(other.addresses[n.name]) for n in site.peering_networks}
                if other.name != spine.name and not addresses & established:
                    gone.append(f"iBGP {other.name}")
            if gone:
                missing.append(f"{spine.name} lacks {', '.join(gone)}")
        return Verdict("BGP sessions (workers NMN+CMN to both spines, iBGP between spines)",
                       not missing, "; ".join(missing))

    def _refusals(self) -> Verdict:
        """Probes must be absent from each spine's BGP table and kernel, yet received."""
        site = self.site
        problems: list[str] = []
        probes = {p.prefix for p in refusal_probes(site)}
        for spine in site.spines.values():
            router = self.spine_router(spine)
            for prefix in sorted(probes):
                try:
                    paths = router.bgp_paths(str(prefix))
                except (LabError, ValueError) as exc:
                    problems.append(f"{spine.name}: {exc}")
                    continue
                if paths:
                    problems.append(f"{spine.name} accepted {prefix}")
                if self.kernel_next_hops(spine, prefix.network_address):
                    problems.append(f"{spine.name} installed {prefix}")
            received: set[str] = set()
            for worker in site.workers.values():
                for network in site.peering_networks:
                    address = worker.addresses[network.name]
                    try:
                        data = router.json(
                            f"show bgp ipv4 unicast neighbors {address} received-routes"
                        )
                    except (LabError, ValueError):
                        continue
                    received |= set(data.get("receivedRoutes", {}))
            unseen = {str(p) for p in probes} - received
            if unseen:
                problems.append(f"{spine.name} never received probes {', '.join(sorted(unseen))}")
        return Verdict("foreign-pool and out-of-pool /32s refused by the spines",
                       not problems, "; ".join(problems))

    def show(self) -> str:
        """Per spine: BGP summary and kernel routes of the service addresses; then verdicts."""
        out: list[str] = []
        addresses = sorted(self.site.service_addresses())
        if self.cluster.api_running():
            out.append("===== kubectl get service -A")
            try:
                out.append(self.cluster.kubectl("get", "service", "-A").rstrip())
            except LabError as exc:
                out.append(f"(kubectl failed: {exc})")
        for spine in self.site.spines.values():
            ns = self.ns(spine)
            if not ns.exists():
                out.append(f"===== {spine.name}: not running (no namespace {ns.name})")
                continue
            out.append(f"===== {spine.name}: show bgp summary")
            try:
                out.append(self.spine_router(spine).vtysh("show bgp ipv4 unicast summary").rstrip())
            except LabError as exc:
                out.append(f"(no FRR: {exc})")
            out.append(f"===== {spine.name}: kernel routes of the service addresses")
            for address in addresses:
                text = ns.ip("route", "show", f"{address}/32", check=False).rstrip()
                out.append(text if text else f"{address} (no route)")
        out.append("===== verdicts (reference-site/README.md)")
        out += [verdict.line() for verdict in self.check()]
        return "\n".join(out)
