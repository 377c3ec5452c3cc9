"""The lab's Kubernetes: an API server and the spinelb controller in the master's namespace.

The API server is kmock's emulator made faithful where spinelb and kubectl
depend on it (``lab/apiserver.py``), listening on the master's NMN address
and port from site.yaml, loaded with the site's Services, EndpointSlices and
one Ready Node per worker, and a Service using the lab inventory's layer2 pool
(``lab/layer2.py``).  The controller (``spinelb controller``) runs next
to it, started by the collection's controller role (``playbooks/site.yml``).  Both reach each other and the
workers' speakers reach them over the lab's NMN bridge only; the kubeconfig
they all use is written to ``kubeconfig`` (``.lab/kubeconfig`` for the lab).
kubectl runs inside the master's namespace (:meth:`LabCluster.kubectl`), so
nothing in the root namespace ever routes into the lab.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lab.layer2 import layer2_pools, layer2_service
from lab.netns import LabError, Namespace, pid_alive, read_pid_file, stop_pid, wait_for
from lab.site import Host, Site, site_dir

REPO = Path(__file__).resolve().parent.parent
PYTHON = REPO / ".venv" / "bin" / "python"
DEFAULT_API_PORT = 6443


class ProcessExited(RuntimeError):
    """A lab process exited while the lab waited for it."""


def node_object(worker: Host, network: str = "nmn") -> dict[str, Any]:
    """A Ready worker Node as the kubelet reports it (only what spinelb reads, and kubectl shows)."""
    address = worker.addresses.get(network) or next(iter(worker.addresses.values()))
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": worker.name,
            "labels": {"kubernetes.io/hostname": worker.name, "kubernetes.io/os": "linux",
                       "node-role.kubernetes.io/worker": ""},
        },
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "addresses": [{"type": "InternalIP", "address": str(address)},
                          {"type": "Hostname", "address": worker.name}],
            "nodeInfo": {"kubeletVersion": "v1.26.4", "kubeProxyVersion": "v1.26.4"},
        },
    }


@dataclass
class LabCluster:
    """The API server and controller of a lab whose master runs in namespace ``ns``."""

    site: Site
    master: Host
    ns: Namespace
    run_dir: Path
    kubeconfig: Path
    port: int = DEFAULT_API_PORT

    # --- files ------------------------------------------------------------------

    def _file(self, name: str) -> Path:
        return self.run_dir / f"{self.ns.name}-{name}"

    @property
    def api_pid_file(self) -> Path:
        return self._file("apiserver.pid")

    @property
    def api_log(self) -> Path:
        return self._file("apiserver.log")

    @property
    def nodes_file(self) -> Path:
        return self._file("nodes.yaml")

    @property
    def layer2_file(self) -> Path:
        return self._file("layer2.yaml")

    # The controller's files, where the collection's controller role puts them with the lab
    # inventory (per-host paths: lab/run/<namespace>/).
    @property
    def host_dir(self) -> Path:
        return self.run_dir / self.ns.name

    @property
    def controller_config(self) -> Path:
        return self.host_dir / "controller.yaml"

    @property
    def controller_pid_file(self) -> Path:
        """The supervisor's pid file (``spinelb supervise``)."""
        return self.host_dir / "controller.pid"

    @property
    def controller_log(self) -> Path:
        return self.host_dir / "controller.log"

    @property
    def address(self) -> str:
        return str(self.master.addresses["nmn"])

    @property
    def server(self) -> str:
        return f"http://{self.address}:{self.port}"

    # --- API server ---------------------------------------------------------------

    def start_api(self, *, load: list[Path] | None = None) -> None:
        """Start the API server loaded with the site's objects; return once kubectl answers."""
        self.stop_api()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.unlink(missing_ok=True)
        self.nodes_file.write_text(yaml.safe_dump_all(
            [node_object(w) for w in self.site.workers.values()], sort_keys=False))
        if load is None:
            load = [p for p in (site_dir() / "services.yaml", site_dir() / "endpointslices.yaml")
                    if p.exists()]
            services = [layer2_service(pool) for pool in layer2_pools()[:1]]
            if services:  # the lab inventory's layer2 pool gets a Service (lab/layer2.py)
                self.layer2_file.write_text(yaml.safe_dump_all(services, sort_keys=False))
                load.append(self.layer2_file)
        args = [str(PYTHON), "-m", "lab.apiserver", "--listen", f"{self.address}:{self.port}",
                "--kubeconfig", str(self.kubeconfig)]
        for path in [self.nodes_file, *load]:
            args += ["--load", str(path)]
        self.api_log.unlink(missing_ok=True)
        proc = self.ns.popen(args, log=self.api_log)
        self.api_pid_file.write_text(f"{proc.pid}\n")

        def answering() -> bool:
            if proc.poll() is not None:
                raise ProcessExited(f"the API server exited:\n{self._tail(self.api_log)}")
            if not self.kubeconfig.exists():
                return False
            self.kubectl("get", "--raw", "/version")
            return True

        wait_for(answering, timeout=30, interval=0.05, what="the lab's API server")

    def api_running(self) -> bool:
        pid = read_pid_file(self.api_pid_file)
        return pid is not None and pid_alive(pid)

    def stop_api(self) -> None:
        pid = read_pid_file(self.api_pid_file)
        if pid is not None:
            stop_pid(pid, expect="lab.apiserver")
            self.api_pid_file.unlink(missing_ok=True)

    # --- controller -------------------------------------------------------------------

    def controller_running(self) -> bool:
        pid = read_pid_file(self.controller_pid_file)
        return pid is not None and pid_alive(pid)

    def stop_controller(self) -> None:
        pid = read_pid_file(self.controller_pid_file)
        if pid is not None:
            stop_pid(pid, expect=str(self.host_dir))
            self.controller_pid_file.unlink(missing_ok=True)

    # --- use -----------------------------------------------------------------------------

    def kubectl(self, *args: str, input_text: str | None = None, timeout: float = 30) -> str:
        """Run kubectl against the lab's API server, from inside the master's namespace."""
        return self.ns.run(["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
                           input_text=input_text, timeout=timeout)

    def items(self, resource: str) -> list[dict[str, Any]]:
        """Every object of ``resource`` in every namespace, as JSON."""
        data = json.loads(self.kubectl("get", resource, "-A", "-o", "json"))
        items: list[dict[str, Any]] = data.get("items") or []
        return items

    def stop(self) -> None:
        self.stop_controller()
        self.stop_api()

    @staticmethod
    def _tail(path: Path, lines: int = 20) -> str:
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    """``python -m lab.kube ARGS...``: kubectl against the running lab's API server."""
    from lab.reference_site import SiteLab
    from lab.site import load_site

    lab = SiteLab(load_site())
    cluster = lab.cluster
    if not cluster.api_running():
        print("lab: the API server is not running (./scripts/lab.sh up)", file=sys.stderr)
        return 2
    args = sys.argv[1:] if argv is None else argv
    try:
        sys.stdout.write(cluster.kubectl(*args))
    except LabError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
