#!/usr/bin/python
# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The documentation of spinelb.fabric.service_prefixes; the action plugin does the work."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_prefixes
short_description: Prove every LoadBalancer address is announced by the right workers and installed on every spine
version_added: 0.1.0
description:
  - Compares the desired state of every Service address (its pool, the sessions that carry it,
    the workers that should announce it by policy, node readiness, exclusion label and local
    endpoints, and the next hops each spine should install after next-hop rewrite, ECMP or
    single-path) with what each speaker announces and what each spine accepted and installed.
  - Each address gets one verdict, V(ok), V(pending), V(not_announced), V(missing),
    V(not_ecmp), V(stale), V(leaked), V(wrong_next_hop) or V(outside_pools), with the evidence;
    each spine session its state. See C(docs/reconcile.md).
  - The observations are gathered by other tasks (see C(playbooks/verify.yml)), the Kubernetes
    objects with C(spinelb k8s-snapshot), each speaker with M(spinelb.fabric.speaker_info),
    each spine with M(spinelb.fabric.spine_routes) and O(spinelb.fabric.spine_routes#module:bgp).
  - Runs on the controller; contacts nothing itself.
author:
  - spinelb maintainers (@spinelb)
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: Nothing changes.
options:
  state:
    description:
      - V(checked) reports and fails the task when any address or session is not right.
    type: str
    choices: [checked]
    default: checked
  kubernetes:
    description:
      - The output of C(spinelb k8s-snapshot) (C(services), C(nodes), C(endpointslices)).
    type: dict
    required: true
  speakers:
    description:
      - Per worker, the result of M(spinelb.fabric.speaker_info) (an unreachable one, its failed result).
    type: dict
    required: true
  spines:
    description:
      - Per spine, the result of M(spinelb.fabric.spine_routes) with O(spinelb.fabric.spine_routes#module:bgp=true).
    type: dict
    required: true
  ignore:
    description:
      - Addresses (or host prefixes) that are not judged, for deliberate announcements that no
        Service stands behind (the lab's refusal probes).
    type: list
    elements: str
    default: []
seealso:
  - module: spinelb.fabric.speaker_info
  - module: spinelb.fabric.spine_routes
"""

EXAMPLES = r"""
- name: Check every Service address of the site
  spinelb.fabric.service_prefixes:
    kubernetes: "{{ hostvars[groups['masters'][0]].spinelb_k8s.stdout | from_json }}"
    speakers: "{{ dict(groups['workers'] | zip(groups['workers'] | map('extract', hostvars, 'spinelb_speaker'))) }}"
    spines: "{{ dict(groups['spines'] | zip(groups['spines'] | map('extract', hostvars, 'spinelb_spine'))) }}"
  register: prefixes

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ prefixes.table.splitlines() }}"
"""

RETURN = r"""
ok:
  description: Whether every address is V(ok), every session Established and every spine observed.
  returned: always
  type: bool
summary:
  description: How many addresses have each verdict.
  returned: always
  type: dict
  sample: {ok: 16, pending: 0, not_announced: 0, missing: 0, not_ecmp: 0, stale: 0, leaked: 0,
           wrong_next_hop: 0, outside_pools: 0}
prefixes:
  description: One entry per address with C(verdict), C(pool), C(services), C(workers), per spine
    C(have) and C(want) next hops, and C(evidence).
  returned: always
  type: list
  elements: dict
sessions:
  description: One entry per spine session with its state and since when.
  returned: always
  type: list
  elements: dict
repairs:
  description: What would repair each problem (what C(reconciled) will do, or what needs a person).
  returned: always
  type: list
  elements: dict
table:
  description: The report as a table for people.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (documentation first)


def main():
    """Entry point: only reached without the action plugin."""
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["checked"], default="checked"),
            kubernetes=dict(type="dict", required=True),
            speakers=dict(type="dict", required=True),
            spines=dict(type="dict", required=True),
            ignore=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="service_prefixes runs on the controller through its action plugin")


if __name__ == "__main__":
    main()
