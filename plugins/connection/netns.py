# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a host's tasks in a network namespace of the controller: the lab's hosts are namespaces."""

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a network namespace of the controller
version_added: 0.1.0
description:
  - Like P(ansible.builtin.local#connection), but every command runs as
    C(ip netns exec NETNS /bin/sh -c COMMAND), so the host's tasks see the namespace's
    interfaces, addresses and routes.
  - Only the network is separate; the filesystem is the controller's, so files are copied
    locally (C(copy), C(template) and C(fetch) work as with a local connection).
  - Refuses to run when the namespace does not exist (C(ip netns list)).
  - The spinelb lab reaches its spines, masters and workers this way.
author:
  - spinelb maintainers (@spinelb)
requirements:
  - Linux with C(ip) (iproute2), run as root (entering a namespace needs CAP_SYS_ADMIN).
options:
  netns:
    description:
      - The network namespace's name, as C(ip netns list) shows it.
      - Default the inventory host's name.
    type: str
    vars:
      - name: inventory_hostname
      - name: ansible_netns
      - name: spinelb_netns
  become_success_timeout:
    description:
      - Seconds to wait for become to succeed when enabled (as the local connection).
    type: int
    default: 10
    vars:
      - name: ansible_local_become_success_timeout
  become_strip_preamble:
    description:
      - Strip internal become output preceding command execution (as the local connection).
    type: bool
    default: true
    vars:
      - name: ansible_local_become_strip_preamble
extends_documentation_fragment:
  - connection_pipelining
notes:
  - The remote user is ignored, as with the local connection.
"""

import os  # noqa: E402  (the documentation comes first)
import shlex  # noqa: E402
import shutil  # noqa: E402

from ansible.errors import AnsibleConnectionFailure  # noqa: E402
from ansible.module_utils.common.text.converters import to_text  # noqa: E402
from ansible.plugins.connection.local import Connection as LocalConnection  # noqa: E402
from ansible.utils.display import Display  # noqa: E402

display = Display()

NETNS_DIR = "/run/netns"  # where `ip netns add` mounts the named namespaces


class Connection(LocalConnection):
    """The local connection with every command inside ``ip netns exec NETNS``."""

    transport = "spinelb.fabric.netns"

    @property
    def netns(self):
        """The namespace's name: the option, else the address the play gives the host."""
        return self.get_option("netns") or self._play_context.remote_addr

    def _connect(self):
        name = self.netns
        if not name or "/" in name or name in (".", ".."):
            raise AnsibleConnectionFailure(f"netns: {name!r} is not a network namespace name")
        if not os.path.exists(os.path.join(NETNS_DIR, name)):
            raise AnsibleConnectionFailure(
                f"netns: network namespace {name!r} does not exist (not in `ip netns list`); "
                "create it first or set ansible_netns")
        if not self._connected:
            display.vvv(f"ESTABLISH NETNS CONNECTION INTO {name}", host=name)
        return super()._connect()

    def exec_command(self, cmd, in_data=None, sudoable=True):
        """Run ``cmd`` with ``/bin/sh -c`` inside the namespace."""
        self._connect()
        ip = shutil.which("ip") or "/usr/sbin/ip"
        wrapped = shlex.join([ip, "netns", "exec", self.netns, "/bin/sh", "-c", to_text(cmd)])
        return super().exec_command(wrapped, in_data=in_data, sudoable=sudoable)
