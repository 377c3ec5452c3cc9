#!/usr/bin/python
# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The device side of spinelb.fabric.spine_routes: FRR's route tables, as JSON, per VRF.

The action plugin of the same name runs first, on the controller: it builds the
site from the inventory, names the VRFs that hold the pools' routes, and parses
what this module returns with the ``spinelb`` package.  This module only runs
``vtysh -c 'show ip route vrf NAME json'`` on the target (and, with ``bgp``,
``show bgp vrf NAME ipv4|ipv6 unicast json`` and ``show bgp vrf all summary
json``), which therefore needs no ``spinelb`` package.  With ``neighbors`` it
sends one empty UDP datagram to each address (so the kernel resolves it, as a
client on the segment would) and returns ``ip -j neigh show``'s entries for
them.  It changes no configuration.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: spine_routes
short_description: A spine's installed routes to the site's pool addresses, with their next hops
version_added: 0.1.0
description:
  - Reports the routes a spine switch has selected and installed (its forwarding table, not only
    its BGP paths) to prefixes inside the site's pools (C(spinelb_pools)), each with its active
    next hops.
  - With O(through), only the prefixes with a next hop among those addresses (a worker's
    addresses, to wait until the spines no longer route through a drained worker, or route
    through it again).
  - The site comes from the inventory exactly as for M(spinelb.fabric.spine_bgp). Run it for a
    spine, or C(delegate_to) a spine from a worker's play; the spine is the delegated host then.
  - For FRR the tables are read with C(vtysh) on the spine, one C(show ip route vrf NAME json) per
    VRF with worker sessions (one when C(spinelb_frr_collapse_vrfs) is set). For AOS-CX the action
    plugin reads C(system/vrfs/NAME/routes) over the switch's REST API from the controller
    (C(spinelb_aoscx_*) variables, see docs/aoscx.md).
  - With O(bgp), also the prefixes the spine accepted from each BGP neighbor in the same VRFs
    (every prefix, not only the pools'; an address leaked from outside the pools matters too)
    and its BGP sessions, for the reconciliation of service prefixes. For FRR these come from C(show bgp vrf NAME ipv4 unicast
    json) (and C(ipv6) when a pool is IPv6) and C(show bgp vrf all summary json). For AOS-CX the
    sessions come from C(system/vrfs/NAME/bgp_routers/ASN/bgp_neighbors?depth=2); AOS-CX
    documents no REST resource for the paths accepted from a neighbor. When the spine's
    C(ansible_connection) is C(ansible.netcommon.network_cli), they are read with
    C(show ip bgp neighbors NEIGHBOR routes [vrf VRF]) through C(ansible.netcommon.cli_command)
    for each IPv4 neighbor; otherwise RV(received) is null there, with a warning.
  - With O(neighbors) (a layer2 pool's addresses, see C(docs/reconcile.md)), the MAC each
    address resolves to on the spine's segment, as a client there sees it. On an FRR spine (Linux)
    the module sends one empty UDP datagram to port 9 of each address, which makes the kernel
    resolve it (ARP or neighbor solicitation), waits up to 3.5 s while an entry is incomplete and
    reads C(ip -j neigh show). AOS-CX documents no REST resource for its ARP table, so there
    RV(neighbors) is null with a warning (C(show arp vrf VRF) on the switch tells a person).
  - Read-only; changes no configuration (a datagram to an address only fills the neighbor table).
author:
  - spinelb maintainers (@spinelb)
requirements:
  - The C(spinelb) Python package on the controller (the action plugin imports it).
  - C(vtysh) on the target for FRR spines.
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode reads too.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
  action:
    support: full
    description: The action plugin builds the site, picks the VRFs and parses the tables.
options:
  through:
    description:
      - Addresses (IPv4, as strings); only the prefixes with a next hop among them are returned.
      - Empty or unset returns every pool prefix the spine routes.
    type: list
    elements: str
  pathspace:
    description:
      - The FRR pathspace (C(vtysh -N NAME)) of an FRR spine run per network namespace.
      - Unset uses the spine's C(spine_frr_pathspace) variable when it has one, else the
        default FRR instance.
    type: str
  vrfs:
    description:
      - The VRFs to read, filled in by the action plugin from the site. Do not set it.
    type: list
    elements: str
    default: [default]
  bgp:
    description:
      - Also return RV(received) and RV(sessions), the spine's BGP paths and sessions.
    type: bool
    default: false
  families:
    description:
      - The address families whose BGP tables are read with O(bgp), filled in by the action
        plugin from the pools. Do not set it.
    type: list
    elements: str
    choices: [ipv4, ipv6]
    default: [ipv4]
  neighbors:
    description:
      - Addresses whose resolution on the spine's segment is returned in RV(neighbors). The
        action plugin keeps those in a layer2 pool of the site (C(spinelb_pools.NAME.mode=layer2))
        and drops the others, so the addresses of every Service may be given.
    type: list
    elements: str
  netns:
    description:
      - The network namespace in which an FRR spine resolves O(neighbors) (C(ip netns exec)).
      - Unset uses the spine's C(ansible_netns) variable when it has one and is not reached through
        the C(spinelb.fabric.netns) connection (the lab's spines), else the target's own namespace.
    type: str
notes:
  - C(spinelb.fabric.speaker) waits on this module during a drain, delegated to every host
    of group C(spines). See docs/operations.md.
seealso:
  - module: spinelb.fabric.spine_bgp
  - name: Operations
    description: Rolling changes, drain, decommission and uninstall.
    link: https://example.invalid/spinelb/fabric/docs/operations.md
"""

EXAMPLES = r"""
- name: Every pool prefix the spine routes, with its next hops
  spinelb.fabric.spine_routes:
  register: spine

- name: Wait until no spine routes through ncn-w003 any more
  spinelb.fabric.spine_routes:
    through: "{{ hostvars['ncn-w003'].spinelb_addresses.values() | list }}"
  delegate_to: "{{ item }}"
  loop: "{{ groups['spines'] }}"
  register: left
  until: left.routes | length == 0
  retries: 60
  delay: 1

- name: The paths the spine accepted from each neighbor, and its sessions
  spinelb.fabric.spine_routes:
    bgp: true
  register: spine
"""

RETURN = r"""
tables:
  description: The same as RV(routes) per VRF read (without O(through)), for checks that care in
    which VRF a prefix is installed.
  returned: success
  type: dict
  sample: {"default": {"10.92.100.71/32": ["10.252.1.10", "10.252.1.11", "10.252.1.12"]}}
routes:
  description: Per prefix inside a pool (only those with a next hop in O(through), when given),
    the next hops the spine forwards to, sorted.
  returned: success
  type: dict
  sample: {"10.92.100.71/32": ["10.252.1.10", "10.252.1.11", "10.252.1.12"]}
spine:
  description: The spine that was read (the delegated host, when delegated).
  returned: success
  type: str
  sample: sw-spine-001
vrfs:
  description: The VRFs that were read.
  returned: success
  type: list
  elements: str
  sample: [default, CSM]
received:
  description:
    - Per neighbor address, the prefixes the spine accepted from it (after inbound policy) in
      the VRFs read, sorted; every prefix, not only the pools'.
    - Null on an AOS-CX spine reached over REST only, whose REST API documents no such
      resource; read over its CLI when the spine's connection is network_cli.
  returned: when O(bgp) is true
  type: dict
  sample: {"10.252.1.10": ["10.92.100.60/32", "10.92.100.71/32"]}
neighbors:
  description:
    - Per address of O(neighbors) in a layer2 pool, what the spine resolved it to, C(mac) (null
      when it did not resolve) and C(state), the kernel's word for the entry (C(REACHABLE),
      C(STALE), C(FAILED), ...; C(NONE) without an entry, as on a spine that is not on that segment).
    - Null on an AOS-CX spine, whose REST API documents no ARP table.
  returned: when O(neighbors) is given
  type: dict
  sample: {"10.102.10.241": {"mac": "02:00:0a:66:0a:0b", "state": "REACHABLE"}}
sessions:
  description:
    - Per neighbor address, its BGP session as the spine sees it. C(uptime_seconds) is the time
      in Established (null otherwise or when the spine does not say), C(accepted) the number of
      prefixes accepted from it (null when the spine does not say, as on AOS-CX).
  returned: when O(bgp) is true
  type: dict
  sample: {"10.252.1.10": {"state": "Established", "vrf": "default", "uptime_seconds": 10.0,
           "remote_asn": 65531, "description": "ncn-w001-nmn", "accepted": 5}}
"""

import json  # noqa: E402  (ansible-test wants the documentation first)
import sys  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = dict(
    through=dict(type="list", elements="str"),
    pathspace=dict(type="str"),
    vrfs=dict(type="list", elements="str", default=["default"]),
    bgp=dict(type="bool", default=False),
    families=dict(type="list", elements="str", choices=["ipv4", "ipv6"], default=["ipv4"]),
    neighbors=dict(type="list", elements="str"),
    netns=dict(type="str"),
)
#: How long an incomplete neighbor entry is waited for: Linux gives up after 3 probes, 1 s apart.
RESOLVE_SECONDS = 3.5
#: Sends one empty datagram to port 9 (discard) of each address; prints those that fail.
SEND = (
    "import socket, sys\n"
    "for address in sys.argv[1:]:\n"
    "    family = socket.AF_INET6 if ':' in address else socket.AF_INET\n"
    "    try:\n"
    "        with socket.socket(family, socket.SOCK_DGRAM) as s:\n"
    "            s.sendto(b'', (address, 9))\n"
    "    except OSError as exc:\n"
    "        print(address, exc.strerror or exc)\n"
)


def vtysh(module):
    """The argv that runs ``vtysh`` in the requested pathspace, without the command."""
    argv = [module.get_bin_path("vtysh", required=True)]
    if module.params["pathspace"]:
        argv += ["-N", module.params["pathspace"]]
    return argv


def show(module, argv, command):
    """FRR's JSON answer to ``command``; fails the task on an error or an answer not JSON."""
    rc, out, err = module.run_command([*argv, "-c", command])
    if rc != 0:
        module.fail_json(msg=f"vtysh could not run '{command}': {(err or out).strip()}")
    try:
        answer = json.loads(out or "{}")
    except ValueError:
        module.fail_json(msg=f"vtysh '{command}' did not answer JSON: {out.strip()[:300]}")
    return answer


def read_tables(module, argv):
    """``{vrf: FRR's JSON}`` for every VRF in ``vrfs``; fails the task on an unreadable answer."""
    return {vrf: show(module, argv, f"show ip route vrf {vrf} json")
            for vrf in module.params["vrfs"]}


def read_bgp(module, argv):
    """``{vrf: {family: BGP table JSON}}`` for every VRF and family, and the sessions' summary."""
    tables = {
        vrf: {family: show(module, argv, f"show bgp vrf {vrf} {family} unicast json")
              for family in module.params["families"]}
        for vrf in module.params["vrfs"]
    }
    return tables, show(module, argv, "show bgp vrf all summary json")


def resolve(module):
    """``ip -j neigh show``'s entries for each of ``neighbors``, after asking the kernel to
    resolve them, and the send errors (address -> reason: no route, ...)."""
    addresses = module.params["neighbors"]
    netns = module.params["netns"]
    inside = ["ip", "netns", "exec", netns] if netns else []
    rc, out, err = module.run_command([*inside, sys.executable, "-c", SEND, *addresses])
    if rc != 0:
        module.fail_json(msg=f"could not send to the neighbors: {(err or out).strip()}")
    errors = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
    argv = [module.get_bin_path("ip", required=True), *(["-n", netns] if netns else []),
            "-j", "neigh", "show"]
    deadline = time.monotonic() + RESOLVE_SECONDS
    while True:
        rc, out, err = module.run_command(argv)
        if rc != 0:
            module.fail_json(msg=f"ip neigh show failed: {(err or out).strip()}")
        try:
            entries = json.loads(out or "[]")
        except ValueError:
            module.fail_json(msg=f"ip -j neigh show did not answer JSON: {out.strip()[:300]}")
        found = {address: [e for e in entries if isinstance(e, dict) and e.get("dst") == address]
                 for address in addresses}
        incomplete = [address for address, mine in found.items()
                      if any("INCOMPLETE" in (e.get("state") or []) for e in mine)]
        if not incomplete or time.monotonic() >= deadline:
            return found, errors
        time.sleep(0.2)


def main():
    """Entry point."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    argv = vtysh(module)
    result = dict(changed=False, tables=read_tables(module, argv), vrfs=module.params["vrfs"])
    if module.params["bgp"]:
        result["bgp_tables"], result["bgp_summary"] = read_bgp(module, argv)
    if module.params["neighbors"]:
        result["neighbor_table"], result["neighbor_errors"] = resolve(module)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
