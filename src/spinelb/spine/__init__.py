"""Spines as data: the site model, its validation, and the FRR and AOS-CX renderings.

The Ansible module and role are thin wrappers over this package::

    site = load_site(site_vars, hostvars, groups)    # SiteError lists every problem
    text = render(site, "sw-spine-001", "aoscx")      # or "frr"
"""

from __future__ import annotations

from .model import PLATFORMS, Site, SpineIntent
from .render_aoscx import render_aoscx
from .render_frr import render_frr
from .validate import SiteError, load_site, site_from_inventory

__all__ = [
    "PLATFORMS",
    "Site",
    "SiteError",
    "SpineIntent",
    "load_site",
    "render",
    "site_from_inventory",
]


def render(
    site: Site,
    spine: str,
    platform: str,
    *,
    mask_secrets: bool = False,
    collapse_vrfs: bool | None = None,
) -> str:
    """The BGP configuration of ``spine`` for ``platform`` ("frr" or "aoscx").

    ``mask_secrets`` replaces the MD5 password with ``<redacted>`` (for diffs and
    logs).  ``collapse_vrfs`` (FRR only) puts every session into one table; None
    uses the spine's ``spinelb_frr_collapse_vrfs``.
    """
    if spine not in site.spines:
        raise KeyError(
            f"{spine!r} is not a spine of site {site.name} (spines: {', '.join(site.spines)})"
        )
    if platform == "frr":
        return render_frr(
            site.intent(spine, collapse_vrfs=collapse_vrfs), mask_secrets=mask_secrets
        )
    if platform == "aoscx":
        if collapse_vrfs:
            raise ValueError("collapse_vrfs is for FRR only: AOS-CX spines keep their VRFs")
        return render_aoscx(site.intent(spine, collapse_vrfs=False), mask_secrets=mask_secrets)
    raise ValueError(f"platform {platform!r} is not one of {', '.join(PLATFORMS)}")
