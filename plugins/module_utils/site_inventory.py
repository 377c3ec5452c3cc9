# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site's inventory as ``spinelb.spine.load_site`` takes it, from an action plugin's task vars.

Shared by the action plugins that build :class:`spinelb.spine.Site` on the
controller (spine_bgp, spinelb_config): every host's ``spinelb_*`` variables,
templated, and the members of the groups the site is made of.  Plain Python:
it does not import ``spinelb`` (the action plugins do).
"""

from __future__ import annotations

GROUPS = ("spines", "workers", "masters")


def spinelb_vars(host_vars):
    """The host's ``spinelb_*`` variables, templated (HostVars templates on access)."""
    return {key: host_vars[key] for key in host_vars if key.startswith("spinelb_")}


def site_arguments(task_vars, host):
    """``(site vars, every member's vars, groups)`` for ``load_site``; the site's from ``host``.

    ``group_vars/all`` reaches every host, so ``host`` (the task's own) holds the
    site's variables.
    """
    hostvars = task_vars["hostvars"]
    groups = {g: list(task_vars.get("groups", {}).get(g, [])) for g in GROUPS}
    members = sorted({name for names in groups.values() for name in names})
    return (spinelb_vars(hostvars[host]),
            {name: spinelb_vars(hostvars[name]) for name in members},
            groups)
