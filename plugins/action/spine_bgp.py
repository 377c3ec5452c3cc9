# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of spinelb.fabric.spine_bgp: the site from the inventory, validated and rendered.

Builds :class:`spinelb.spine.Site` from every host's ``spinelb_*`` variables
and the groups, so a validation error fails the task (naming the variable)
before any device is contacted; renders ``inventory_hostname``'s intended
configuration for its platform, with the password masked, and hands it to the
module (the password travels in a no_log option).  ``rendered`` never runs
the module; ``parsed`` needs no site.
"""

from __future__ import annotations

import re

from ansible.plugins.action import ActionBase

try:
    from spinelb.spine import SiteError, load_site, render
except ImportError as exc:  # the controller lacks the package: say so when the task runs
    SPINELB_IMPORT_ERROR = exc
else:
    SPINELB_IMPORT_ERROR = None


MODULE = "spinelb.fabric.spine_bgp"
GROUPS = ("spines", "workers", "masters")
USER_OPTIONS = ("state", "running_config", "pathspace", "save")
ARGUMENT_SPEC = dict(
    state=dict(type="str", default="merged",
               choices=["merged", "replaced", "overridden", "deleted", "gathered", "rendered",
                        "parsed"]),
    running_config=dict(type="str"),
    pathspace=dict(type="str", default=""),
    save=dict(type="bool", default=True),
)


def _spinelb_vars(host_vars):
    """The host's ``spinelb_*`` variables, templated (HostVars templates on access)."""
    return {key: host_vars[key] for key in host_vars if key.startswith("spinelb_")}


def ownership(site):
    """The names spinelb owns on a spine: worker route-maps, its prefix-lists, spine neighbors."""
    networks = "|".join(re.escape(n.name) for n in site.peering_networks) or "$^"
    route_maps = rf"^\S+-({networks})$"
    spines = "|".join(re.escape(name) for name in site.spines)
    return {
        "prefix_lists": r"^(pl-\S+|single-path-\d+)$",
        "route_maps": route_maps,
        "neighbors": rf"{route_maps}|^({spines})$",
    }


class ActionModule(ActionBase):
    """Validate and render on the controller; gather, diff and push through the module."""

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(USER_OPTIONS)

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        state = args["state"]
        if state == "parsed":
            result.update(self._execute_module(
                module_name=MODULE, module_args=dict(args), task_vars=task_vars))
            return result

        if SPINELB_IMPORT_ERROR is not None:
            result.update(failed=True, msg="spine_bgp needs the spinelb Python package on the "
                          f"controller: {SPINELB_IMPORT_ERROR}")
            return result
        hostvars = task_vars["hostvars"]
        groups = {g: list(task_vars.get("groups", {}).get(g, [])) for g in GROUPS}
        members = sorted({host for names in groups.values() for host in names})
        spine = task_vars["inventory_hostname"]
        try:
            site = load_site(_spinelb_vars(hostvars[spine]),
                             {host: _spinelb_vars(hostvars[host]) for host in members},
                             groups)
        except SiteError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        if spine not in site.spines:
            result.update(failed=True, msg=f"{spine} is not in group spines; spine_bgp configures "
                          "spines only")
            return result
        platform = site.spines[spine].platform or "frr"
        text = render(site, spine, platform, mask_secrets=True)
        if state == "rendered":
            result.update(changed=False, rendered=text)
            return result
        module_args = dict(args, config=text, bgp_password=site.bgp.password,
                           platform=platform, owned=ownership(site))
        result.update(self._execute_module(
            module_name=MODULE, module_args=module_args, task_vars=task_vars))
        return result
