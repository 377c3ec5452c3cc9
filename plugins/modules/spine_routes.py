#!/usr/bin/python
# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The device side of spinelb.fabric.spine_routes: FRR's route tables, as JSON, per VRF.

The action plugin of the same name runs first, on the controller: it builds the
site from the inventory, names the VRFs that hold the pools' routes, and parses
what this module returns with the ``spinelb`` package.  This module only runs
``vtysh -c 'show ip route vrf NAME json'`` on the target, which therefore needs
no ``spinelb`` package.  It never changes anything.
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
  - Read-only; never changes the spine.
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
"""

RETURN = r"""
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
"""

import json  # noqa: E402  (ansible-test wants the documentation first)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

ARGUMENT_SPEC = dict(
    through=dict(type="list", elements="str"),
    pathspace=dict(type="str"),
    vrfs=dict(type="list", elements="str", default=["default"]),
)


def read_tables(module):
    """``{vrf: FRR's JSON}`` for every VRF in ``vrfs``; fails the task on an unreadable answer."""
    argv = [module.get_bin_path("vtysh", required=True)]
    if module.params["pathspace"]:
        argv += ["-N", module.params["pathspace"]]
    tables = {}
    for vrf in module.params["vrfs"]:
        command = f"show ip route vrf {vrf} json"
        rc, out, err = module.run_command([*argv, "-c", command])
        if rc != 0:
            module.fail_json(msg=f"vtysh could not run '{command}': {(err or out).strip()}")
        try:
            tables[vrf] = json.loads(out or "{}")
        except ValueError:
            module.fail_json(msg=f"vtysh '{command}' did not answer JSON: {out.strip()[:300]}")
    return tables


def main():
    """Entry point."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(changed=False, tables=read_tables(module), vrfs=module.params["vrfs"])


if __name__ == "__main__":
    main()
