# Copyright: spinelb maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The site's inventory as ``spinelb.spine.load_site`` takes it, from an action plugin's task vars.

Shared by the action plugins that build :class:`spinelb.spine.Site` on the
controller (spine_bgp, spinelb_config, spinelb_manifests, spine_routes): every
host's ``spinelb_*`` variables, templated, and the members of the groups the
site is made of.  Plain Python: it does not import ``spinelb`` (the action
plugins do).

Workers named in ``spinelb_decommissioned`` (a host variable of the task's
host: inventory, ``-e`` or ``set_fact``, as ``playbooks/decommission.yml``
sets it; a play variable is not a host variable) are left out of the site, as
if they were gone from group ``workers``: the spines are rendered without
their neighbors and route-maps, and the single-path lists without them.
"""

from __future__ import annotations

GROUPS = ("spines", "workers", "masters")


def spinelb_vars(host_vars):
    """The host's ``spinelb_*`` variables, templated (HostVars templates on access)."""
    return {key: host_vars[key] for key in host_vars if key.startswith("spinelb_")}


def decommissioned(site_vars):
    """The workers named in ``site_vars``' ``spinelb_decommissioned`` (a name or a list)."""
    value = site_vars.get("spinelb_decommissioned") or []
    if isinstance(value, str):
        value = [value]
    return {str(name) for name in value}


def without_workers(site_vars, gone):
    """``site_vars`` with the workers ``gone`` removed from ``spinelb_bgp.single_path``.

    An entry left with no worker is dropped. Anything malformed is kept as it is, for
    ``load_site`` to report.
    """
    bgp = site_vars.get("spinelb_bgp")
    if not gone or not isinstance(bgp, dict) or not isinstance(bgp.get("single_path"), list):
        return site_vars
    entries = []
    for entry in bgp["single_path"]:
        if isinstance(entry, dict) and isinstance(entry.get("workers"), list):
            workers = [name for name in entry["workers"] if name not in gone]
            if not workers:
                continue
            entry = dict(entry, workers=workers)
        entries.append(entry)
    return dict(site_vars, spinelb_bgp=dict(bgp, single_path=entries))


def site_arguments(task_vars, host):
    """``(site vars, every member's vars, groups)`` for ``load_site``; the site's from ``host``.

    ``group_vars/all`` reaches every host, so ``host`` (the task's own) holds the
    site's variables.  Decommissioned workers (``spinelb_decommissioned``) are left out.
    """
    hostvars = task_vars["hostvars"]
    site_vars = spinelb_vars(hostvars[host])
    gone = decommissioned(site_vars)
    groups = {g: [name for name in task_vars.get("groups", {}).get(g, [])
                  if g != "workers" or name not in gone]
              for g in GROUPS}
    members = sorted({name for names in groups.values() for name in names})
    return (without_workers(site_vars, gone),
            {name: spinelb_vars(hostvars[name]) for name in members},
            groups)


def package_missing(result, plugin, error):
    """Fail ``result`` when the spinelb package did not import on the controller; True then.

    The action plugins import the package at load time and keep the ImportError,
    so a controller without it gets this message from the task, not a traceback.
    """
    if error is None:
        return False
    result.update(failed=True,
                  msg=f"{plugin} needs the spinelb Python package on the controller: {error}")
    return True
