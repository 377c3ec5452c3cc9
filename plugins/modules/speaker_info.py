#!/usr/bin/python
# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A speaker's sessions and announcements, read from its local API on the worker.

The speaker serves ``GET /status`` on its loopback API (``api.listen``); this
module reads it with the host's Python alone (no spinelb import), so it works
wherever the speaker runs, whatever manages it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: speaker_info
short_description: A spinelb speaker's BGP sessions and announcements
version_added: 0.1.0
description:
  - Reads the speaker's C(GET /status) from its local API on the host and returns its BGP
    sessions (state, uptime, prefixes advertised and received, last error), its static
    announcements, and its Service addresses from Kubernetes with whether and why this node
    announces each.
  - Read-only; never changes anything.
author:
  - spinelb maintainers (@spinelb)
attributes:
  check_mode:
    support: full
    description: Reads the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
options:
  api:
    description:
      - The speaker's local API, C(ADDRESS:PORT) (its config's C(api.listen)).
    type: str
    default: 127.0.0.1:7473
  timeout:
    description:
      - Seconds to wait for the answer.
    type: int
    default: 5
  require_established:
    description:
      - Fail unless every session is Established (like C(spinelb status)'s exit status).
    type: bool
    default: false
seealso:
  - module: spinelb.fabric.spinelb_process
  - module: spinelb.fabric.spine_routes
"""

EXAMPLES = r"""
- name: Read the speaker's status
  spinelb.fabric.speaker_info:
  register: speaker

- name: Show the addresses this worker does not announce, and why
  ansible.builtin.debug:
    msg: "{{ speaker.services | rejectattr('announced') | map(attribute='reason') | list }}"

- name: Wait until every session is Established
  spinelb.fabric.speaker_info:
    require_established: true
  register: speaker
  until: speaker is succeeded
  retries: 30
  delay: 1
"""

RETURN = r"""
reachable:
  description: Whether the speaker's API answered.
  returned: always
  type: bool
  sample: true
node_name:
  description: The speaker's node name.
  returned: when reachable
  type: str
  sample: ncn-w001
sessions:
  description: One entry per peer, as C(/status) reports it.
  returned: when reachable
  type: list
  elements: dict
  sample:
    - {name: sw-spine-001-nmn, address: 10.252.0.2, state: Established, uptime_seconds: 3725.4,
       advertised: 6, received: 0, last_error: null}
established:
  description: Whether every session is Established.
  returned: when reachable
  type: bool
  sample: true
announced:
  description: The static announcements.
  returned: when reachable
  type: list
  elements: dict
services:
  description: Each Service address from Kubernetes, with C(announced) and the C(reason).
  returned: when reachable
  type: list
  elements: dict
  sample:
    - {address: 10.92.100.222, pool: node-management, services: [services/cray-dhcp-kea-udp-nmn],
       announced: false, reason: "Local policy: no ready endpoint on ncn-w001", peers: []}
kubernetes:
  description: The speaker's connection to the Kubernetes API (null without a kubernetes section).
  returned: when reachable
  type: dict
status:
  description: The whole C(/status) document.
  returned: when reachable
  type: dict
"""

import json  # noqa: E402  (ansible-test wants the documentation first)

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402


def api_url(api):
    """``http://HOST:PORT/status`` for ``ADDRESS:PORT`` or ``[V6]:PORT``."""
    host, port = api.rsplit(":", 1) if ":" in api else ("", api)
    if not host or not port.isdigit():
        raise ValueError(f"api must be ADDRESS:PORT, got {api!r}")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/status"


def summary(status):
    """The module's return values from the ``/status`` document."""
    sessions = list(status.get("peers") or [])
    return {
        "reachable": True,
        "node_name": status.get("node_name"),
        "sessions": sessions,
        "established": all(s.get("state") == "Established" for s in sessions),
        "announced": list(status.get("announced") or []),
        "services": list(status.get("services") or []),
        "kubernetes": status.get("kubernetes"),
        "status": status,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "api": {"type": "str", "default": "127.0.0.1:7473"},
            "timeout": {"type": "int", "default": 5},
            "require_established": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        url = api_url(module.params["api"])
    except ValueError as exc:
        module.fail_json(msg=str(exc), reachable=False)
    try:
        # the speaker's loopback API: no proxy, plain HTTP
        answer = open_url(url, timeout=module.params["timeout"], use_proxy=False)
        status = json.loads(answer.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        module.fail_json(msg=f"the speaker's API at {module.params['api']} did not answer: {exc}",
                         reachable=False)
    result = summary(status)
    if module.params["require_established"] and not result["established"]:
        down = [f"{s.get('name')} ({s.get('state')})" for s in result["sessions"]
                if s.get("state") != "Established"]
        module.fail_json(msg="sessions not Established: " + ", ".join(down), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
