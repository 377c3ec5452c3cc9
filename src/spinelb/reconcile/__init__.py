"""Reconcile service prefixes: what the site should route, what it routes, one verdict per address.

Pure code over data others fetched (the Kubernetes objects, each speaker's
``/status``, each spine's routes, paths and sessions)::

    report = compare(site, services=..., nodes=..., slices=..., speakers=..., spines=...)
    report.ok, report.to_dict(), report.table()
    actions = plan(report)      # the safe repairs, and what is left for a person

No I/O, no clock: the Ansible module fetches and executes.
"""

from __future__ import annotations

from .compare import compare
from .desired import DesiredAddress, desired_addresses, pool_configs
from .observations import SpineObservation
from .repair import Action, plan
from .report import VERDICTS, PrefixReport, Report, SessionReport, SpineNextHops

__all__ = [
    "VERDICTS",
    "Action",
    "DesiredAddress",
    "PrefixReport",
    "Report",
    "SessionReport",
    "SpineNextHops",
    "SpineObservation",
    "compare",
    "desired_addresses",
    "plan",
    "pool_configs",
]
