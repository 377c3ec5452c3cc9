# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of spinelb.fabric.spine_routes: a spine's installed routes to the pools.

Builds :class:`spinelb.spine.Site` from the inventory like spine_bgp (so a
decommissioned worker or a bad variable is treated the same way), then reads
the spine's route tables of the VRFs holding the pools: through the module and
``vtysh`` on an FRR spine, over REST from here on an AOS-CX one.  The parsing
and filtering are :mod:`spinelb.spine.routes`'.  The spine is the delegated
host when the task is delegated (a worker's drain waits on every spine).

With ``bgp`` it also reports what the spine's BGP has (the prefixes accepted
from each neighbor, the sessions), parsed by :mod:`spinelb.spine.bgp_state`,
for the reconciliation of service prefixes.  AOS-CX documents no REST resource
for a neighbor's accepted paths: when the spine's connection is
``ansible.netcommon.network_cli`` they are read with ``show ip bgp neighbors N
routes [vrf V]`` through ``ansible.netcommon.cli_command`` (IPv4 sessions);
otherwise ``received`` is None, with a warning.

With ``neighbors`` (the addresses of the Services; those in a layer2 pool are
kept) it also reports the MAC each resolves to on the spine's segment: the
module makes an FRR spine's kernel resolve them and reads ``ip -j neigh``;
AOS-CX documents no REST resource for its ARP table, so there ``neighbors`` is
None, with a warning.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.spinelb.fabric.plugins.action.spine_bgp import aoscx_connection
from ansible_collections.spinelb.fabric.plugins.module_utils.site_inventory import (
    package_missing,
    site_arguments,
)

try:
    from spinelb.spine import SiteError, load_site
    from spinelb.spine.aoscx_rest import AoscxError
    from spinelb.spine.bgp_state import (
        AoscxBgpReader,
        accepted_as_data,
        aoscx_cli_accepted,
        aoscx_cli_command,
        aoscx_sessions,
        frr_accepted,
        frr_sessions,
        merge_accepted,
        sessions_as_data,
    )
    from spinelb.spine.routes import (
        aoscx_route_table,
        as_data,
        frr_route_table,
        layer2_neighbors,
        linux_neighbor,
        merge,
        pool_routes,
        route_vrfs,
        routed_through,
    )
except ImportError as exc:  # the controller lacks the package: say so when the task runs
    SPINELB_IMPORT_ERROR = exc
else:
    SPINELB_IMPORT_ERROR = None

MODULE = "spinelb.fabric.spine_routes"
ARGUMENT_SPEC = dict(
    through=dict(type="list", elements="str"),
    pathspace=dict(type="str"),
    bgp=dict(type="bool", default=False),
    neighbors=dict(type="list", elements="str"),
    netns=dict(type="str"),
)
AOSCX_NO_NEIGHBORS = ("AOS-CX documents no REST resource for its ARP table: neighbors is null "
                      "(`show arp vrf VRF` on the switch shows what the layer2 addresses resolve "
                      "to)")
NETNS_CONNECTION = ("spinelb.fabric.netns", "netns")
AOSCX_NO_RECEIVED = ("AOS-CX documents no REST resource for the paths a spine accepted from a "
                     "neighbor: received is null, only the sessions were read (reach the spine "
                     "with ansible_connection ansible.netcommon.network_cli to read them)")
NETWORK_CLI = ("ansible.netcommon.network_cli", "network_cli")


def aoscx_tables(connection, vrfs):
    """Every VRF's route table of an AOS-CX spine, parsed (the client's errors hold no secret)."""
    return aoscx_read(connection, vrfs)[0]


def aoscx_read(connection, vrfs, asn=None):
    """An AOS-CX spine's route tables and, with ``asn``, its BGP sessions, in one REST session.

    Returns ``(tables, sessions)``; ``sessions`` is None without ``asn``.
    """
    try:
        with AoscxBgpReader(**connection) as reader:
            tables = [aoscx_route_table(reader.routes(vrf)) for vrf in vrfs]
            if asn is None:
                return tables, None
            sessions = {}
            for vrf in vrfs:
                sessions.update(aoscx_sessions(reader.neighbors(vrf, asn), vrf))
            return tables, sessions
    except AoscxError as exc:
        raise AnsibleError(str(exc)) from None


def frr_bgp(answer, vrfs):
    """``(accepted, sessions)`` from the module's ``bgp_tables`` and ``bgp_summary``."""
    tables = answer.get("bgp_tables") or {}
    accepted = merge_accepted(
        frr_accepted(data)
        for vrf in vrfs
        for data in (tables.get(vrf) or {}).values()
    )
    return accepted, frr_sessions(answer.get("bgp_summary") or {})


def families(site):
    """The address families of the site's pools, IPv4 first (the BGP tables to read)."""
    versions = {pool.cidr.version for pool in site.pools.values()} or {4}
    return [f"ipv{version}" for version in sorted(versions)]


def neighbors_report(answer, addresses):
    """``{address: {"mac", "state"}}`` from the module's ``neighbor_table``; an address the
    kernel could not send to (no route) gets its reason as the state."""
    table = answer.get("neighbor_table") or {}
    errors = answer.get("neighbor_errors") or {}
    found = {}
    for address in addresses:
        if address in errors:
            found[address] = {"mac": None, "state": f"NONE ({errors[address]})"}
        else:
            found[address] = linux_neighbor(table.get(address) or [], address)
    return found


def spine_netns(spine_vars):
    """The namespace an FRR spine lives in when the controller reaches it locally (the lab):
    its ``ansible_netns``, unless the netns connection already runs the module inside it."""
    if spine_vars.get("ansible_connection") in NETNS_CONNECTION:
        return None
    return spine_vars.get("ansible_netns") or None


def report(tables, site, through):
    """The task's ``routes``: the pools' prefixes of ``tables`` (only via ``through``, if given)."""
    routes = pool_routes(merge(tables), [pool.cidr for pool in site.pools.values()])
    if through:
        routes = routed_through(routes, through)
    return as_data(routes)


class ActionModule(ActionBase):
    """Build the site, read the spine's tables (module or REST), return the pool routes."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(ARGUMENT_SPEC)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if package_missing(result, "spine_routes", SPINELB_IMPORT_ERROR):
            return result
        spine = self._task.delegate_to or task_vars["inventory_hostname"]
        hostvars = task_vars["hostvars"]
        try:
            site = load_site(*site_arguments(task_vars, spine))
        except SiteError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        if spine not in site.spines:
            result.update(failed=True, msg=f"{spine} is not in group spines; spine_routes reads "
                          "spines only (delegate_to a spine)")
            return result
        through = args["through"] or []
        vrfs = route_vrfs(site, spine)
        bgp = args["bgp"]
        neighbors = (None if args["neighbors"] is None
                     else layer2_neighbors(site, args["neighbors"]))
        resolved = None if neighbors else {}  # AOS-CX: None once there is something to ask
        try:
            if site.spines[spine].platform == "aoscx":
                tables, sessions = aoscx_read(aoscx_connection(hostvars[spine], spine), vrfs,
                                              site.switch_asn if bgp else None)
                accepted = None
                over_cli = (hostvars[spine].get("ansible_connection") in NETWORK_CLI
                            and self._task.delegate_to in (None, spine))
                if bgp and over_cli:
                    accepted = self._aoscx_cli_accepted(site, spine, task_vars)
            else:
                answer = self._frr_answer(args, hostvars[spine], vrfs, families(site), task_vars,
                                          neighbors)
                tables = [frr_route_table(answer["tables"][vrf]) for vrf in vrfs]
                accepted, sessions = frr_bgp(answer, vrfs) if bgp else (None, None)
                if neighbors is not None:
                    resolved = neighbors_report(answer, neighbors)
            routes = report(tables, site, through)
        except (AnsibleError, ValueError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        pools = [pool.cidr for pool in site.pools.values()]
        result.update(changed=False, routes=routes, spine=spine, vrfs=vrfs,
                      tables={vrf: as_data(pool_routes(table, pools))
                              for vrf, table in zip(vrfs, tables, strict=True)})
        if bgp:
            result.update(received=None if accepted is None else accepted_as_data(accepted),
                          sessions=sessions_as_data(sessions))
            if accepted is None:
                result.setdefault("warnings", []).append(AOSCX_NO_RECEIVED)
        if neighbors is not None:
            result.update(neighbors=resolved)
            if resolved is None and neighbors:
                result.setdefault("warnings", []).append(AOSCX_NO_NEIGHBORS)
        return result

    def _aoscx_cli_accepted(self, site, spine, task_vars):
        """Per IPv4 neighbor of the spine's intent, what it accepted, read over the CLI."""
        accepted = {}
        for instance in site.intent(spine).instances:
            for neighbor in instance.neighbors:
                if neighbor.address.version != 4:
                    continue  # the IPv4 command only; IPv6 sessions stay unread
                command = aoscx_cli_command(neighbor.address, instance.vrf)
                answer = self._execute_module(
                    module_name="ansible.netcommon.cli_command",
                    module_args=dict(command=command), task_vars=task_vars)
                if answer.get("failed"):
                    raise AnsibleError(f"{command}: {answer.get('msg') or 'failed'}")
                accepted[neighbor.address] = aoscx_cli_accepted(answer.get("stdout") or "")
        return accepted

    def _frr_answer(self, args, spine_vars, vrfs, pool_families, task_vars, neighbors=None):
        pathspace = args["pathspace"]
        if pathspace is None:
            pathspace = spine_vars.get("spine_frr_pathspace") or ""
        module_args = dict(pathspace=pathspace, vrfs=vrfs)
        if args["bgp"]:
            module_args.update(bgp=True, families=pool_families)
        if neighbors:
            netns = args["netns"] if args["netns"] is not None else spine_netns(spine_vars)
            module_args.update(neighbors=neighbors, netns=netns or None)
        answer = self._execute_module(
            module_name=MODULE, module_args=module_args, task_vars=task_vars)
        if answer.get("failed"):
            raise AnsibleError(answer.get("msg") or "spine_routes: reading the routes failed")
        return answer
