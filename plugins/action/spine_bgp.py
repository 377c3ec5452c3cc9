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

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.spinelb.fabric.plugins.module_utils import aoscx_config, frr_config
from ansible_collections.spinelb.fabric.plugins.module_utils.site_inventory import (
    package_missing,
    site_arguments,
)
from ansible_collections.spinelb.fabric.plugins.module_utils.spine_bgp_args import (
    USER_ARGUMENT_SPEC,
)

try:
    from spinelb.spine import SiteError, load_site, render
    from spinelb.spine.aoscx_rest import AoscxClient, AoscxDryRunError, AoscxError
except ImportError as exc:  # the controller lacks the package: say so when the task runs
    SPINELB_IMPORT_ERROR = exc
else:
    SPINELB_IMPORT_ERROR = None


MODULE = "spinelb.fabric.spine_bgp"
ARGUMENT_SPEC = USER_ARGUMENT_SPEC
USER_OPTIONS = tuple(USER_ARGUMENT_SPEC)


def ownership(site):
    """What spinelb owns on a spine: worker route-maps, its prefix-lists, spine neighbors, pools.

    ``pools`` (the pools' CIDRs) makes static routes to pool addresses spinelb's: those
    addresses are BGP's on a spine, so such a route is drift the converging states remove.
    The BFD profile ``spinelb`` (FRR) needs no entry: it is the only profile
    ``frr_config`` reads, so it is always spinelb's.
    """
    networks = "|".join(re.escape(n.name) for n in site.peering_networks) or "$^"
    route_maps = rf"^\S+-({networks})$"
    spines = "|".join(re.escape(name) for name in site.spines)
    return {
        "prefix_lists": r"^(pl-\S+|single-path-\d+)$",
        "route_maps": route_maps,
        "neighbors": rf"{route_maps}|^({spines})$",
        "pools": [str(pool.cidr) for pool in site.pools.values()],
    }


def _scrub(text, secrets):
    """``text`` with every secret in ``secrets`` replaced by ``<redacted>``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, frr_config.MASK)
    return text


def stale_static_routes(client, ownership):
    """(VRF, prefix) of every static route on the switch to a pool address, over REST."""
    return [(vrf, prefix) for vrf in client.vrfs() for prefix in client.static_routes(vrf)
            if ownership.owns_prefix(prefix)]


def aoscx_ownership(site):
    """:func:`ownership` plus ``vlans``, the peering networks' VLANs: their SVIs' BFD timers."""
    vlans = sorted({n.vlan for n in site.peering_networks if n.vlan is not None})
    return dict(ownership(site), vlans=vlans)


def _missing_svis_message(vlans, where):
    names = ", ".join(f"interface vlan {vlan}" for vlan in vlans)
    return (f"{where} has no {names}: BFD timers go on each peering network's SVI, which "
            "spinelb does not create (CANU configures the SVIs); configure it, or correct "
            "spinelb_networks.<name>.vlan. Nothing was changed")


def run_aoscx(connection, state, config, bgp_password, owned, *, check_mode=False, diff=False,
              save=True, poll_interval=0.5):
    """Do ``state`` on an AOS-CX switch over REST; the task's result (without Ansible).

    ``connection`` holds :class:`AoscxClient`'s arguments (``host``, ``username``,
    ``password``, ``port``, ``scheme``, ``verify``).  The running configuration is read as
    CLI text and diffed like FRR's (only objects the data names or, for ``overridden``,
    spinelb owns).  merged, replaced and overridden also remove every static route to a
    pool address, in any VRF: listed and deleted as REST resources (``static_routes`` of
    each VRF; check mode only lists them).  BFD (``bfd``, the timers on the SVIs of
    ``owned["vlans"]``) follows ``aoscx_config.predict_bfd``; an SVI the intent needs and
    the switch lacks fails the task before anything changes.  When the BGP or BFD part
    differs the whole candidate (running with those parts replaced) is dry-run on the
    switch and, outside check mode, applied with a checkpoint.  A rejected dry-run leaves
    the switch untouched and fails with its text.  The BGP and login passwords never
    appear in the result.
    """
    secrets = (bgp_password, connection.get("password"))
    vlans = (owned or {}).get("vlans") or []
    result = {"changed": False}
    try:
        with AoscxClient(**connection) as client:
            running = client.running_config_text()
            have = aoscx_config.parse(running)
            if state == "gathered":
                result["gathered"] = aoscx_config.mask(have)
                return result
            want = aoscx_config.parse(aoscx_config.unmask(config, bgp_password))
            missing = aoscx_config.missing_svis(running, want) if state != "deleted" else []
            if missing:
                result.update(failed=True, msg=_missing_svis_message(missing, connection["host"]))
                return result
            ownership = frr_config.Ownership.from_owned(owned)
            lines = frr_config.commands(have, want, state, ownership)
            removals = frr_config.static_route_commands(have, want, state, ownership)
            bgp_lines = lines[:len(lines) - len(removals)]  # the static routes come last
            after = frr_config.predict(have, want, state, ownership)
            aoscx_config.predict_bfd(running, want, state, vlans, after)
            bfd_first, bfd_last = aoscx_config.bfd_commands(have, after)
            stale = (stale_static_routes(client, ownership)
                     if state in frr_config.STATES_REMOVING_STATIC_ROUTES else [])
            result.update(changed=bool(lines or stale or bfd_first or bfd_last),
                          before=aoscx_config.mask(have),
                          commands=bfd_first + aoscx_config.commands_text(lines) + bfd_last)
            if stale and not check_mode:
                for vrf, prefix in stale:
                    client.delete_static_route(vrf, prefix)
                if save:
                    client.save()
                running = client.running_config_text()
            if bgp_lines or bfd_first or bfd_last:
                text = aoscx_config.candidate(running, after)
                if check_mode:
                    verdict = client.dry_run(text, poll_interval=poll_interval)
                    if not verdict.ok:
                        raise AoscxDryRunError(
                            "the switch rejected the config in its dry-run; nothing was "
                            "applied:\n" + "\n".join(f"  {e}" for e in verdict.errors),
                            errors=verdict.errors)
                else:
                    client.apply(text, confirm=save, poll_interval=poll_interval)
            if result["changed"] and not check_mode:
                after = aoscx_config.parse(client.running_config_text())
                result["after"] = aoscx_config.mask(after)
    except AoscxError as exc:
        result.update(failed=True, msg=_scrub(str(exc), secrets))
        return result
    if diff and state != "gathered":
        result["diff"] = {
            "before": aoscx_config.to_text(aoscx_config.mask(
                aoscx_config.changed_view(have, want, ownership, state, vlans))),
            "after": aoscx_config.to_text(aoscx_config.mask(
                aoscx_config.changed_view(after, want, ownership, state, vlans))),
        }
    return result


def aoscx_connection(host_vars, inventory_hostname):
    """:class:`AoscxClient`'s arguments from the spine's ``spinelb_aoscx_*`` variables."""
    def var(name, default=None):
        return host_vars.get(name, default)

    username = var("spinelb_aoscx_username")
    password = var("spinelb_aoscx_password")
    if not username or password is None:
        raise AnsibleError("platform aoscx needs spinelb_aoscx_username and "
                           "spinelb_aoscx_password for the switch's REST API")
    scheme = var("spinelb_aoscx_scheme", "https")
    if scheme not in ("https", "http"):
        raise AnsibleError(f"spinelb_aoscx_scheme must be https or http, not {scheme!r}")
    verify = bool(var("spinelb_aoscx_validate_certs", True))
    ca_file = var("spinelb_aoscx_ca_file")
    port = var("spinelb_aoscx_port")
    return {
        "host": str(var("spinelb_aoscx_host") or var("ansible_host") or inventory_hostname),
        "username": str(username),
        "password": str(password),
        "port": int(port) if port else None,
        "scheme": scheme,
        "verify": str(ca_file) if ca_file and verify else verify,
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

        if package_missing(result, "spine_bgp", SPINELB_IMPORT_ERROR):
            return result
        hostvars = task_vars["hostvars"]
        spine = task_vars["inventory_hostname"]
        try:
            site = load_site(*site_arguments(task_vars, spine))
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
            if args["reveal_secrets"]:  # for a push by another module; the task sets no_log
                text = render(site, spine, platform, mask_secrets=False)
            result.update(changed=False, rendered=text)
            return result
        if platform == "aoscx":
            try:
                connection = aoscx_connection(hostvars[spine], spine)
            except AnsibleError as exc:
                result.update(failed=True, msg=str(exc))
                return result
            result.update(run_aoscx(
                connection, state, text, site.bgp.password, aoscx_ownership(site),
                check_mode=self._play_context.check_mode, diff=self._play_context.diff,
                save=args["save"]))
            return result
        module_args = dict(args, config=text, bgp_password=site.bgp.password,
                           platform=platform, owned=ownership(site))
        result.update(self._execute_module(
            module_name=MODULE, module_args=module_args, task_vars=task_vars))
        return result
