# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options a user gives spinelb.fabric.spine_bgp, shared by its action plugin and module."""

from __future__ import annotations

STATES = ["merged", "replaced", "overridden", "deleted", "gathered", "rendered", "parsed"]

USER_ARGUMENT_SPEC = dict(
    state=dict(type="str", default="merged", choices=STATES),
    running_config=dict(type="str"),
    pathspace=dict(type="str", default=""),
    save=dict(type="bool", default=True),
    reveal_secrets=dict(type="bool", default=False),
)
