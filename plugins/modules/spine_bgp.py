#!/usr/bin/python
# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The device side of spinelb.fabric.spine_bgp: FRR's running BGP config, its diff, and the push.

The action plugin of the same name runs first, on the controller: it builds
the site from the inventory with the ``spinelb`` package, validates it, and
renders this spine's intended configuration.  This module receives that text
(password masked, the password itself in a no_log option) and does the rest
on the target with ``vtysh`` only, using ``module_utils/frr_config.py``: the
target need not have the ``spinelb`` package installed, and the parsing and
diffing are small enough to ship with the module.

It computes its own diff rather than running ``frr-reload.py``: frr-reload
makes the whole running configuration equal to the file, so it would remove
everything spinelb does not own (interfaces, other protocols, other
neighbors).  Here only objects the data names (and, for ``overridden``,
objects spinelb owns by name) are touched, and static routes to pool
addresses (drift: those addresses are BGP's) are removed.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: spine_bgp
short_description: BGP neighbors, route-maps and prefix-lists of a spine, from the site's inventory
version_added: 0.1.0
description:
  - Configures a spine switch's BGP side of the spinelb fabric as a resource module.
  - The intended configuration is not given as options; the action plugin derives it
    from the inventory (C(spinelb_*) variables of every host, see C(docs/spine-data.md)),
    validates it before any device is contacted and renders it for O(platform).
  - Validation errors fail the task and name the offending variable.
  - For FRR the running configuration is read with C(vtysh), compared with the intent and
    only the difference is applied (C(vtysh -f)), then saved with C(write memory).
  - Only BGP instances, neighbors, route-maps, prefix-lists, static routes and (FRR) the BFD
    profile C(spinelb) are looked at; nothing else in the running configuration is read or
    changed (other BFD profiles and peers are left alone).
  - On AOS-CX (over REST, see C(docs/aoscx.md)) BFD is also the global C(bfd) and the three
    BFD timers of each peering network's existing SVI (C(interface vlan N)); the SVI's other
    lines are kept, and an SVI missing on the switch fails the task, naming the VLAN, before
    anything changes.
  - A static route (C(ip route), C(ipv6 route), global or in any VRF) to a host route (/32,
    /128) of an address inside one of the site's pools is drift, since those addresses are
    BGP's on a spine; V(merged), V(replaced) and V(overridden) remove it. Every other static
    route (a /24, a /32 outside the pools, the default route) is never touched.
author:
  - spinelb maintainers (@spinelb)
requirements:
  - The C(spinelb) Python package on the controller (the action plugin imports it).
  - C(vtysh) on the target for O(platform=frr).
attributes:
  check_mode:
    support: full
    description: Computes and reports O(state)'s commands and the diff without applying them.
  diff_mode:
    support: full
    description: Shows the spinelb-managed part of the configuration before and after; the MD5
      password is shown as C(<redacted>).
  action:
    support: full
    description: The action plugin builds the intended configuration on the controller.
options:
  state:
    description:
      - V(merged), V(replaced) and V(overridden) converge the spine; each also removes the
        static routes to pool addresses.
      - V(merged) adds what is missing from the device.
      - V(replaced) also removes, inside each neighbor, route-map and prefix-list the data
        names, what the data does not say.
      - V(overridden) also removes the neighbors, route-maps and prefix-lists spinelb owns
        that the data no longer names (a decommissioned worker). spinelb owns route-maps named
        C(<host>-<peering network>), prefix-lists named C(pl-*) and C(single-path-*), and
        neighbors whose description or inbound route-map is such a name or a spine's name; on
        FRR also the BFD profile C(spinelb) once BFD is off; on AOS-CX, once BFD is off, the BFD
        timers of the peering networks' SVIs and the global C(bfd) unless something else on
        the switch uses BFD.
      - V(deleted) removes the neighbors, route-maps and prefix-lists the data names (and no
        static route).
      - V(gathered) returns the device's current configuration as data.
      - V(rendered) returns the intended configuration text without contacting the device.
      - V(parsed) returns O(running_config) as data without contacting the device.
    type: str
    choices: [merged, replaced, overridden, deleted, gathered, rendered, parsed]
    default: merged
  running_config:
    description:
      - FRR configuration text to parse; required with O(state=parsed).
    type: str
  pathspace:
    description:
      - The FRR pathspace (C(vtysh -N NAME)), for FRR instances run per network namespace.
      - Empty means the default FRR instance.
    type: str
    default: ""
  save:
    description:
      - Save the configuration (C(write memory)) after a change.
    type: bool
    default: true
  reveal_secrets:
    description:
      - With O(state=rendered), put the real MD5 password in RV(rendered) instead of
        C(<redacted>), for handing the text to another module (the role's
        C(arubanetworks.aoscx.aoscx_config) path). Set C(no_log) on such a task.
    type: bool
    default: false
  config:
    description:
      - The intended configuration text, filled in by the action plugin from the inventory.
        The password appears as C(<redacted>) in it. Do not set it.
    type: str
  bgp_password:
    description:
      - The MD5 password, filled in by the action plugin from C(spinelb_bgp_password).
        Do not set it.
    type: str
  platform:
    description:
      - The spine's platform, filled in by the action plugin from C(spinelb_platform).
      - For V(aoscx) the action plugin talks to the switch's REST API from the controller
        (C(spinelb_aoscx_*) variables, see docs/aoscx.md); this module then only parses.
    type: str
    choices: [frr, aoscx]
    default: frr
  owned:
    description:
      - Regular expressions naming the objects spinelb owns, filled in by the action plugin.
    type: dict
    default: {}
    suboptions:
      prefix_lists:
        description: Prefix-list names.
        type: str
        default: "^$"
      route_maps:
        description: Route-map names.
        type: str
        default: "^$"
      neighbors:
        description: Neighbor descriptions.
        type: str
        default: "^$"
      pools:
        description: The site's pool CIDRs; a static route to a host route inside one is owned.
        type: list
        elements: str
        default: []
notes:
  - The lab runs FRR per network namespace; set O(pathspace) (role variable
    C(spine_frr_pathspace)) to the namespace's name.
seealso:
  - name: Spine data
    description: Every inventory variable the intended configuration is built from.
    link: https://example.invalid/spinelb/fabric/docs/spine-data.md
"""

EXAMPLES = r"""
- name: Configure the spines' BGP from the inventory
  spinelb.fabric.spine_bgp:
    state: merged

- name: Remove what a decommissioned worker left behind
  spinelb.fabric.spine_bgp:
    state: overridden
    pathspace: "{{ spine_frr_pathspace }}"

- name: Write the intended configuration without contacting the switch
  spinelb.fabric.spine_bgp:
    state: rendered
  register: spine

- name: Read a saved configuration as data
  spinelb.fabric.spine_bgp:
    state: parsed
    running_config: "{{ lookup('ansible.builtin.file', 'frr.conf') }}"
"""

RETURN = r"""
before:
  description: The BGP part and the static routes of the running configuration before the task
    (password masked).
  returned: when O(state) is merged, replaced, overridden or deleted
  type: dict
  sample:
    prefix_lists: {pl-node-management: ["ip prefix-list pl-node-management seq 10 permit 10.92.100.0/24 ge 32 le 32"]}
    route_maps: {}
    bgp: {}
    static_routes: {default: ["ip route 10.92.100.0/24 10.252.0.1"]}
commands:
  description: The configuration lines sent to the device (or that would be, in check mode).
  returned: when O(state) is merged, replaced, overridden or deleted
  type: list
  elements: str
  sample: ["router bgp 65533", " no neighbor 10.252.1.12", "exit", "no route-map ncn-w003-nmn",
           "no ip route 10.92.100.71/32 10.252.1.10"]
after:
  description: The BGP part of the running configuration after the task; not in check mode.
  returned: when a change was applied
  type: dict
gathered:
  description: The BGP part of the running configuration (password masked).
  returned: when O(state=gathered)
  type: dict
rendered:
  description: The intended configuration text for the spine's platform (password masked).
  returned: when O(state=rendered)
  type: str
parsed:
  description: O(running_config) as data (password masked).
  returned: when O(state=parsed)
  type: dict
"""

import os  # noqa: E402  (ansible-test wants the documentation first)
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.spinelb.fabric.plugins.module_utils import (  # noqa: E402
    aoscx_config,
    frr_config,
)
from ansible_collections.spinelb.fabric.plugins.module_utils.spine_bgp_args import (  # noqa: E402
    USER_ARGUMENT_SPEC,
)

ARGUMENT_SPEC = dict(
    USER_ARGUMENT_SPEC,
    config=dict(type="str"),
    bgp_password=dict(type="str", no_log=True),
    platform=dict(type="str", default="frr", choices=["frr", "aoscx"]),
    owned=dict(type="dict", default={}, options=dict(
        prefix_lists=dict(type="str", default="^$"),
        route_maps=dict(type="str", default="^$"),
        neighbors=dict(type="str", default="^$"),
        pools=dict(type="list", elements="str", default=[]),
    )),
)


class Vtysh:
    """``vtysh`` in one FRR pathspace."""

    def __init__(self, module, pathspace):
        self.module = module
        self.argv = [module.get_bin_path("vtysh", required=True)]
        if pathspace:
            self.argv += ["-N", pathspace]

    def running_config(self):
        rc, out, err = self.module.run_command([*self.argv, "-c", "show running-config"])
        if rc != 0:
            self.module.fail_json(msg=f"vtysh could not read the running configuration: {(err or out).strip()}")
        return out

    def apply(self, lines, save):
        """Send ``lines`` from a private file (the password stays off the command line)."""
        handle, path = tempfile.mkstemp(prefix="spine_bgp-", suffix=".conf")
        try:
            with os.fdopen(handle, "w") as config:
                config.write("\n".join(lines) + "\n")
            rc, out, err = self.module.run_command([*self.argv, "-f", path])
        finally:
            os.unlink(path)
        if rc != 0:
            return f"FRR refused part of the change: {(out + err).strip()}"
        if save:
            rc, out, err = self.module.run_command([*self.argv, "-c", "write memory"])
            if rc != 0:
                return f"FRR applied the change but could not save it: {(out + err).strip()}"
        return None


def run(module):
    """Do what ``state`` asks and return the result (the module's JSON)."""
    params = module.params
    state = params["state"]
    if state == "parsed":
        if params["running_config"] is None:
            module.fail_json(msg="state=parsed needs running_config")
        syntax = aoscx_config if params["platform"] == "aoscx" else frr_config
        return {"changed": False, "parsed": syntax.mask(syntax.parse(params["running_config"]))}
    if state == "rendered":
        return {"changed": False, "rendered": params["config"] or ""}
    if params["platform"] != "frr":
        module.fail_json(msg="spine_bgp: platform {} is configured over its REST API by the "
                             "action plugin, not on the device (state={})".format(
                                 params["platform"], state))
    vtysh = Vtysh(module, params["pathspace"])
    have = frr_config.parse(vtysh.running_config())
    if state == "gathered":
        return {"changed": False, "gathered": frr_config.mask(have)}
    if params["config"] is None:
        module.fail_json(msg=f"state={state} needs the intended config (set by the action plugin)")

    want = frr_config.parse(frr_config.unmask(params["config"], params["bgp_password"]))
    ownership = frr_config.Ownership.from_owned(params["owned"])
    lines = frr_config.commands(have, want, state, ownership)
    result = {
        "changed": bool(lines),
        "before": frr_config.mask(have),
        "commands": [frr_config.mask_line(line) for line in lines],
    }
    after = frr_config.predict(have, want, state, ownership)
    if lines and not module.check_mode:
        problem = vtysh.apply(lines, params["save"])
        after = frr_config.parse(vtysh.running_config())
        if problem:
            module.fail_json(msg=problem, **result)
        result["after"] = frr_config.mask(after)
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = {
            "before": frr_config.to_text(frr_config.mask(
                frr_config.changed_view(have, want, ownership, state))),
            "after": frr_config.to_text(frr_config.mask(
                frr_config.changed_view(after, want, ownership, state))),
        }
    return result


def main():
    """Entry point."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
