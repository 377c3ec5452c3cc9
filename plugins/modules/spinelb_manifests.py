#!/usr/bin/python
# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The documentation of spinelb.fabric.spinelb_manifests; the action plugin does the work.

The manifests are rendered on the controller, where the ``spinelb`` package
and the inventory are; this module only runs when the action plugin is
missing, and then says so.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: spinelb_manifests
short_description: Kubernetes manifests that run the speakers and the controller in the cluster
version_added: 0.1.0
description:
  - Renders, from the inventory's C(spinelb_*) variables (the same ones the spines are built
    from, see C(docs/spine-data.md)), the objects of spinelb's Kubernetes mode, for
    M(kubernetes.core.k8s) to apply.
  - A Namespace; per program a ServiceAccount with least-privilege RBAC (C(docs/kubernetes.md));
    a ConfigMap per program (one speaker config per worker, C(<node>.yaml)); the Secret with the
    BGP password when C(spinelb_bgp_password) is set; the DaemonSet C(spinelb-speaker) (host
    network, on the workers of group C(workers) only) and the Deployment C(spinelb-controller)
    with a PodDisruptionBudget.
  - The speaker configs use the pods' service account and read the password from the Secret's
    mount; the password is never in a ConfigMap.
  - Contacts nothing and changes nothing.
author:
  - spinelb maintainers (@spinelb)
requirements:
  - The C(spinelb) Python package on the controller (the action plugin imports it).
attributes:
  check_mode:
    support: full
    description: Renders the same in check mode; it changes nothing in any mode.
  diff_mode:
    support: none
    description: Nothing changes; M(kubernetes.core.k8s) shows the objects' diff when it applies them.
  action:
    support: full
    description: Runs on the controller only.
options:
  component:
    description:
      - V(speaker) the speakers' objects, V(controller) the controller's, V(all) both. Each
        includes the Namespace.
    type: str
    choices: [all, speaker, controller]
    default: all
  secrets:
    description:
      - V(false) returns every object but the Secret.
      - V(true) returns only the Secret (an empty list without C(spinelb_bgp_password)); set
        C(no_log) on this task and on the one that applies it.
    type: bool
    default: false
  image:
    description: The spinelb image the pods run (built by the repository's C(Containerfile)).
    type: str
    required: true
  image_pull_policy:
    description: The containers' C(imagePullPolicy).
    type: str
    choices: [Always, IfNotPresent, Never]
    default: IfNotPresent
  namespace:
    description: Where every namespaced object goes, the controller's Lease included.
    type: str
    default: spinelb-system
  controller_replicas:
    description:
      - Controller replicas; one leads (a Lease), the others stand by, warm.
      - With more than one, a PodDisruptionBudget keeps one running through node drains.
    type: int
    default: 2
  speaker:
    description:
      - Speaker settings, as the fields of C(spinelb.deploy.SpeakerOptions) - C(api_listen),
        C(listen) (C(0.0.0.0:179) for spines that dial the workers; a port below 1024 adds
        C(NET_BIND_SERVICE)), C(log_level), C(graceful_restart_time), C(announce),
        C(load_balancer_class), C(connect_retry).
      - Every worker must have the same C(api_listen), since one probe serves the DaemonSet.
    type: dict
    default: {}
  controller:
    description:
      - Controller settings, as the fields of C(spinelb.deploy.ControllerOptions) -
        C(api_listen), C(lease_name), C(load_balancer_class), C(log_level).
    type: dict
    default: {}
  speaker_resources:
    description: The speaker container's C(resources); default requests 50m CPU and 64Mi, limit 256Mi.
    type: dict
  controller_resources:
    description: The controller container's C(resources); the same default as the speaker's.
    type: dict
  labels:
    description: Labels added to every object (the C(app.kubernetes.io/*) ones are always set).
    type: dict
    default: {}
notes:
  - The pod templates carry a hash of their ConfigMap, so a config change rolls the pods, one
    worker at a time for the speakers. The password is not hashed; restart the speakers after
    changing it.
seealso:
  - module: kubernetes.core.k8s
  - module: spinelb.fabric.spinelb_config
"""

EXAMPLES = r"""
- name: Render the speakers' objects
  spinelb.fabric.spinelb_manifests:
    component: speaker
    image: registry.example.com/spinelb/spinelb:0.1.0
  register: rendered

- name: Apply them
  kubernetes.core.k8s:
    kubeconfig: /etc/kubernetes/admin.conf
    definition: "{{ item }}"
    apply: true
  loop: "{{ rendered.manifests }}"
  loop_control:
    label: "{{ item.kind }}/{{ item.metadata.name }}"

- name: Render the BGP password's Secret
  spinelb.fabric.spinelb_manifests:
    component: speaker
    image: registry.example.com/spinelb/spinelb:0.1.0
    secrets: true
  register: secret
  no_log: true
"""

RETURN = r"""
manifests:
  description: The objects, in the order to apply them (Namespace first, workloads last).
  returned: success
  type: list
  elements: dict
  sample:
    - apiVersion: v1
      kind: Namespace
      metadata:
        name: spinelb-system
workers:
  description: The nodes the speakers run on (group C(workers)).
  returned: success
  type: list
  elements: str
  sample: [ncn-w001, ncn-w002]
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402  (documentation first)
from ansible_collections.spinelb.fabric.plugins.module_utils.spinelb_manifests_args import (  # noqa: E402
    ARGUMENT_SPEC,
)


def main():
    """Entry point: only reached without the action plugin."""
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.fail_json(msg="spinelb_manifests runs on the controller through its action plugin; "
                     "it cannot run as a module on a host")


if __name__ == "__main__":
    main()
