# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of spinelb.fabric.service_prefixes: one verdict per Service address.

The observations are gathered by other tasks where they can be read (the
Kubernetes objects with ``spinelb k8s-snapshot`` on a host that reaches the
API, each speaker's ``/status`` with speaker_info, each spine's routes,
accepted paths and sessions with spine_routes ``bgp: true``); this plugin
builds the site from the inventory, hands everything to
:func:`spinelb.reconcile.compare` and reports.  ``checked`` fails the task when
any address or session is not right, listing each with its evidence.  A
layer2 pool's address is judged by the node that answers it and the MAC each
spine resolves it to (spine_routes ``neighbors``).

``reconciled`` runs on every host that can repair something (the controller's
host, the workers, the spines; see ``playbooks/reconcile.yml``): each computes
the same report and plan, then does the safe actions that are its own (a worker
asks its speaker to resynchronise or to withdraw a stale static announcement,
the controller's host asks the controller to
assign pending Services, an FRR spine clears a session softly) and reports what
it did and what is left for a person.  Check mode reports what it would do.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import replace
from ipaddress import ip_address, ip_network

from ansible.plugins.action import ActionBase
from ansible_collections.spinelb.fabric.plugins.module_utils.service_prefixes_args import (
    ARGUMENT_SPEC,
)
from ansible_collections.spinelb.fabric.plugins.module_utils.site_inventory import (
    package_missing,
    site_arguments,
)

try:
    from spinelb.reconcile import Resolution, SpineObservation, compare, plan
    from spinelb.spine import SiteError, load_site
except ImportError as exc:  # the controller lacks the package: say so when the task runs
    SPINELB_IMPORT_ERROR = exc
else:
    SPINELB_IMPORT_ERROR = None


def _table(routes):
    """``{prefix text: [next hop texts]}`` as a route table."""
    return {ip_network(prefix): tuple(ip_address(hop) for hop in hops)
            for prefix, hops in (routes or {}).items()}


def observation(answer):
    """A :class:`SpineObservation` from spine_routes' result (``bgp: true``); None if it failed."""
    if not answer or answer.get("failed") or answer.get("skipped"):
        return None
    tables = answer.get("tables")
    routes = ({vrf: _table(table) for vrf, table in tables.items()} if tables
              else {vrf: _table(answer.get("routes")) for vrf in answer.get("vrfs") or ["default"]})
    received = {neighbor: {ip_network(p) for p in prefixes}
                for neighbor, prefixes in (answer.get("received") or {}).items()}
    sessions = {neighbor: (str(s.get("state")), s.get("uptime_seconds"))
                for neighbor, s in (answer.get("sessions") or {}).items()}
    return SpineObservation(routes=routes, received=received, sessions=sessions,
                            resolved=resolutions(answer.get("neighbors")))


def resolutions(neighbors):
    """spine_routes' ``neighbors`` (``{address: {mac, state}}``) as :class:`Resolution` values;
    None when the spine was not asked or cannot say (AOS-CX)."""
    if neighbors is None:
        return None
    return {address: Resolution(found.get("mac"), str(found.get("state") or "NONE"))
            for address, found in neighbors.items() if isinstance(found, dict)}


def is_ignored(address, ignored):
    """Whether a report entry is one of ``ignored`` (a pending Service's ``ns/name`` never is)."""
    try:
        return ip_address(address) in ignored
    except ValueError:
        return False


def speaker_status(answer):
    """A speaker's ``/status`` from speaker_info's result; None when it was unreachable."""
    if not answer or answer.get("failed") or not answer.get("reachable"):
        return None
    return answer.get("status")


class ActionModule(ActionBase):
    """Compare the desired state with what the speakers and spines show."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if package_missing(result, "service_prefixes", SPINELB_IMPORT_ERROR):
            return result
        try:
            site = load_site(*site_arguments(task_vars, task_vars["inventory_hostname"]))
        except SiteError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        objects = args["kubernetes"]
        report = compare(
            site,
            services=objects.get("services") or [],
            nodes=objects.get("nodes") or [],
            slices=objects.get("endpointslices") or [],
            speakers={name: speaker_status(answer) for name, answer in args["speakers"].items()},
            spines={name: observation(answer) for name, answer in args["spines"].items()},
            load_balancer_class=objects.get("load_balancer_class"),
        )
        try:
            ignored = {ip_network(text).network_address for text in args["ignore"]}
        except ValueError as exc:
            result.update(failed=True, msg=f"ignore: {exc}")
            return result
        if ignored:  # deliberate announcements (the lab's refusal probes) are not judged
            report = replace(report, prefixes=tuple(
                p for p in report.prefixes if not is_ignored(p.address, ignored)))
        actions = plan(report)
        result.update(report.to_dict())
        result.update(changed=False, table=report.table(),
                      repairs=[action.to_dict() for action in actions])
        if args["state"] == "reconciled":
            return self._reconcile(result, args, site, actions, task_vars)
        if not report.ok:
            problems = [f"{p.address}: {p.verdict}" for p in report.prefixes if p.verdict != "ok"]
            result.update(failed=True, msg="service prefixes not right: "
                          + (", ".join(problems) or "sessions or spines") + "\n" + report.table())
        return result

    # --- state: reconciled ---------------------------------------------------------------

    def _reconcile(self, result, args, site, actions, task_vars):
        """Do this host's safe actions (or, in check mode, say which); report the rest."""
        host = task_vars["inventory_hostname"]
        mine, left = [], [action for action in actions if not action.safe]
        for action in actions:
            if not action.safe or not self._is_mine(action, host, site, args):
                continue
            if action.kind == "soft_clear" and site.spines[host].platform == "aoscx":
                left.append(aoscx_soft_clear(action, site))  # no REST call clears a session
            else:
                mine.append(action)
        result.update(left=[entry(action) for action in left], done=[], would_do=[])
        if not mine:
            return result
        if self._task.check_mode:
            result.update(changed=True, would_do=[entry(action, host) for action in mine])
            return result
        done, errors = [], []
        for action in mine:
            try:
                outcome = self._do(action, args, site, task_vars)
            except RepairError as exc:
                errors.append(f"{action}: {exc}")
                continue
            done.append(dict(entry(action, host), result=outcome))
        result.update(changed=bool(done), done=done)
        if errors:
            result.update(failed=True, msg="repairs failed: " + "; ".join(errors))
        return result

    @staticmethod
    def _is_mine(action, host, site, args):
        if action.kind in ("resync_speaker", "withdraw_static"):
            return action.worker == host
        if action.kind == "soft_clear":
            return action.spine == host and host in site.spines
        if action.kind == "assign":
            return args["controller_api"] is not None
        return False

    def _do(self, action, args, site, task_vars):
        """Carry out one action on this host; its answer (JSON or the command's output)."""
        if action.kind == "resync_speaker":
            return self._post(args["speaker_api"], "/resync", args["timeout"], task_vars)
        if action.kind == "withdraw_static":
            query = urllib.parse.urlencode({"prefix": action.prefix})
            return self._post(args["speaker_api"], f"/withdraw?{query}", args["timeout"],
                              task_vars)
        if action.kind == "assign":  # a standby answers 409: the leader does it
            return self._post(args["controller_api"], "/assign", args["timeout"], task_vars,
                              also=(409,))
        pathspace = args["pathspace"]
        if pathspace is None:  # hostvars template it (task_vars hold it as written)
            spine_vars = task_vars["hostvars"][task_vars["inventory_hostname"]]
            pathspace = spine_vars.get("spine_frr_pathspace") or ""
        argv = ["vtysh"] + (["-N", pathspace] if pathspace else [])
        argv += ["-c", frr_soft_clear(action, site)]
        answer = self._execute_module(module_name="ansible.builtin.command",
                                      module_args=dict(argv=argv), task_vars=task_vars)
        if answer.get("failed") or answer.get("rc"):
            raise RepairError(answer.get("stderr") or answer.get("msg") or "vtysh failed")
        return " ".join(argv[-1:])

    def _post(self, api, path, timeout, task_vars, also=()):
        answer = self._execute_module(
            module_name="ansible.builtin.uri",
            module_args=dict(url=api_url(api, path), method="POST", body="{}",
                             body_format="json", return_content=True, timeout=timeout,
                             status_code=[200, *also]),
            task_vars=task_vars)
        if answer.get("failed"):
            raise RepairError(answer.get("msg") or f"POST {path} failed")
        return answer.get("json") or answer.get("content")


def entry(action, host=None):
    """An action as the task returns it, with ``line`` for people (``host``: who does it)."""
    return dict(action.to_dict(), line=f"{host}: {action}" if host else str(action))


class RepairError(Exception):
    """A repair the host could not carry out (the message names it)."""


def api_url(api, path):
    """``http://HOST:PORT/path`` for ``ADDRESS:PORT`` or ``[V6]:PORT``."""
    host, port = api.rpartition(":")[::2]
    if not host or not port.isdigit():
        raise RepairError(f"an API must be ADDRESS:PORT, got {api!r}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def session_vrf(site, spine, neighbor):
    """The VRF of ``spine``'s session with ``neighbor`` (``default`` when not configured)."""
    for instance in site.intent(spine).instances:
        if any(str(n.address) == neighbor for n in instance.neighbors):
            return instance.vrf
    return "default"


def frr_soft_clear(action, site):
    """FRR's soft clear (policy in, refresh out) of one session, in its VRF."""
    vrf = session_vrf(site, action.spine, action.neighbor)
    scope = "" if vrf == "default" else f"vrf {vrf} "
    return f"clear bgp {scope}{action.neighbor} soft"


def aoscx_soft_clear(action, site):
    """The same repair for an AOS-CX spine, for a person: its REST API clears no session."""
    vrf = session_vrf(site, action.spine, action.neighbor)
    command = f"clear ip bgp {action.neighbor} soft in" + ("" if vrf == "default" else f" vrf {vrf}")
    return replace(action, kind="needs_person", spine=None, neighbor=None,
                   reason=f"{action.reason}: on {action.spine} run `{command}` (AOS-CX offers "
                          "no REST call for it)")
