# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of spinelb.fabric.service_prefixes: one verdict per Service address.

The observations are gathered by other tasks where they can be read (the
Kubernetes objects with ``spinelb k8s-snapshot`` on a host that reaches the
API, each speaker's ``/status`` with speaker_info, each spine's routes,
accepted paths and sessions with spine_routes ``bgp: true``); this plugin
builds the site from the inventory, hands everything to
:func:`spinelb.reconcile.compare` and reports.  ``checked`` fails the task when
any address or session is not right, listing each with its evidence.
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network

from ansible.plugins.action import ActionBase
from ansible_collections.spinelb.fabric.plugins.module_utils.site_inventory import (
    package_missing,
    site_arguments,
)

try:
    from spinelb.reconcile import SpineObservation, compare, plan
    from spinelb.spine import SiteError, load_site
except ImportError as exc:  # the controller lacks the package: say so when the task runs
    SPINELB_IMPORT_ERROR = exc
else:
    SPINELB_IMPORT_ERROR = None

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["checked"], default="checked"),
    kubernetes=dict(type="dict", required=True),
    speakers=dict(type="dict", required=True),
    spines=dict(type="dict", required=True),
    ignore=dict(type="list", elements="str", default=[]),
)


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
    return SpineObservation(routes=routes, received=received, sessions=sessions)


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
                p for p in report.prefixes if ip_address(p.address) not in ignored))
        result.update(report.to_dict())
        result.update(changed=False, table=report.table(),
                      repairs=[action.to_dict() for action in plan(report)])
        if not report.ok:
            problems = [f"{p.address}: {p.verdict}" for p in report.prefixes if p.verdict != "ok"]
            result.update(failed=True, msg="service prefixes not right: "
                          + (", ".join(problems) or "sessions or spines") + "\n" + report.table())
        return result
