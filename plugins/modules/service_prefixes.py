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
  - An address of a layer2 pool (C(spinelb_pools.NAME.mode=layer2)) is judged by who answers it on
    its segment instead. The owner is the node the speakers' rule picks (rendezvous hashing over
    the workers that may answer by policy, readiness and exclusion label, whose speaker answers
    with a C(layer2) section); each speaker's C(/status) says whether it answers the address and
    with which MAC; each spine observed with O(spinelb.fabric.spine_routes#module:neighbors) says
    what MAC the address resolves to there, as for a client on the segment. Verdicts V(ok),
    V(no_owner), V(several_owners), V(wrong_owner) or V(resolved_elsewhere).
  - The observations are gathered by other tasks (see C(playbooks/verify.yml)), the Kubernetes
    objects with C(spinelb k8s-snapshot), each speaker with M(spinelb.fabric.speaker_info),
    each spine with M(spinelb.fabric.spine_routes) and O(spinelb.fabric.spine_routes#module:bgp).
  - With O(state=checked) it runs on the controller and contacts nothing itself.
  - With O(state=reconciled) it runs on every host that can repair something (see
    C(playbooks/reconcile.yml)). Each computes the same report and plan, then does the safe
    repairs that are its own. On the controller's host (O(controller_api) given) it asks the
    controller to assign the pending Services (C(POST /assign)); on a worker it asks the speaker
    to resynchronise (C(POST /resync), which re-lists the API, resends every route and connects again
    now to a spine whose session is down) or to withdraw a static announcement of a pool address no Service
    has until its config file is loaded again (C(POST /withdraw)); on an FRR spine it clears a session softly
    (C(clear bgp [vrf V] NEIGHBOR soft)). It never deletes a Service and never edits a
    configuration; configuration drift (a leak, a missing neighbor, a static route) is left for a
    person with what to run, C(playbooks/spines.yml). AOS-CX has no REST call that clears a
    session, so there the soft clear is left for a person with its CLI command.
author:
  - spinelb maintainers (@spinelb)
attributes:
  check_mode:
    support: full
    description: V(checked) only reads; V(reconciled) reports in RV(would_do) what it would do.
  diff_mode:
    support: none
    description: Repairs change no configuration.
options:
  state:
    description:
      - V(checked) reports and fails the task when any address or session is not right.
      - V(reconciled) does this host's safe repairs and reports them (RV(done)) and what is left
        for a person (RV(left)); it fails only when a repair fails.
    type: str
    choices: [checked, reconciled]
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
  speaker_api:
    description:
      - With O(state=reconciled) on a worker, the speaker's local API, C(ADDRESS:PORT).
    type: str
    default: 127.0.0.1:7473
  controller_api:
    description:
      - With O(state=reconciled), the local API of the controller on this host,
        C(ADDRESS:PORT); given, this host asks it to assign the pending Services (a standby
        answers that it does not lead, and nothing is done).
    type: str
  pathspace:
    description:
      - With O(state=reconciled) on an FRR spine, the C(vtysh -N) pathspace (default the host's
        C(spine_frr_pathspace)).
    type: str
  timeout:
    description:
      - Seconds to wait for a speaker's or the controller's answer.
    type: int
    default: 15
seealso:
  - module: spinelb.fabric.speaker_info
  - module: spinelb.fabric.spine_routes
"""

EXAMPLES = r"""
# playbooks/verify.yml and playbooks/reconcile.yml gather the inputs; in short:
- name: Check every Service address of the site
  spinelb.fabric.service_prefixes:
    kubernetes: "{{ hostvars[groups['masters'][0]].spinelb_k8s.stdout | from_json }}"
    speakers: "{{ dict(groups['workers'] | zip(groups['workers'] | map('extract', hostvars, 'spinelb_speaker'))) }}"
    spines: "{{ dict(groups['spines'] | zip(groups['spines'] | map('extract', hostvars, 'spinelb_spine'))) }}"
  register: prefixes

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ prefixes.table.splitlines() }}"

- name: On each worker, ask the speaker to resynchronise where the plan says so
  spinelb.fabric.service_prefixes:
    state: reconciled
    kubernetes: "{{ hostvars[groups['masters'][0]].spinelb_k8s.stdout | from_json }}"
    speakers: "{{ dict(groups['workers'] | zip(groups['workers'] | map('extract', hostvars, 'spinelb_speaker'))) }}"
    spines: "{{ dict(groups['spines'] | zip(groups['spines'] | map('extract', hostvars, 'spinelb_spine'))) }}"
    speaker_api: 127.0.0.1:7473
  register: reconciled

- name: Show what it did
  ansible.builtin.debug:
    msg: "{{ reconciled.done | map(attribute='line') | list }}"
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
           wrong_next_hop: 0, outside_pools: 0, no_owner: 0, several_owners: 0, wrong_owner: 0,
           resolved_elsewhere: 0}
prefixes:
  description: One entry per address with C(verdict), C(pool), C(services), C(workers), per spine
    C(have) and C(want) next hops, and C(evidence). A layer2 address also has C(layer2), with its
    C(owner), the owner's C(mac), the C(eligible) nodes, the nodes C(answering) it with their MAC
    and, per spine, what it C(resolved) the address to (C(mac), C(state)).
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
done:
  description: With O(state=reconciled), the repairs this host did, each with C(action), its
    target, C(reason), C(addresses), C(line) for people and C(result) (the API's answer).
  returned: when O(state=reconciled)
  type: list
  elements: dict
  sample:
    - {action: resync_speaker, worker: ncn-w002, reason: "connect to sw-spine-001 now, not after its backoff",
       addresses: [10.92.100.222], line: "ncn-w002: resync_speaker(worker ncn-w002): ...",
       result: {resynced: true}}
would_do:
  description: In check mode with O(state=reconciled), the repairs this host would do.
  returned: when O(state=reconciled)
  type: list
  elements: dict
left:
  description: With O(state=reconciled), what is left for a person (configuration drift, a
    speaker that does not start, an AOS-CX soft clear), each with C(line) saying what to run.
  returned: when O(state=reconciled)
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (documentation first)
from ansible_collections.spinelb.fabric.plugins.module_utils.service_prefixes_args import (  # noqa: E402
    ARGUMENT_SPEC,
)


def main():
    """Entry point: only reached without the action plugin."""
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
    )
    module.fail_json(msg="service_prefixes runs on the controller through its action plugin")


if __name__ == "__main__":
    main()
