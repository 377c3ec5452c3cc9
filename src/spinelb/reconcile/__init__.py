"""Reconcile service prefixes: what the site should route, what it routes, one verdict per address.

A layer2 pool's address is judged by who answers it on its segment: the owner
the speakers' rule picks, the speakers that say they answer, the MAC the
spines resolve it to (:mod:`spinelb.reconcile.layer2`).

Pure code over data others fetched (the Kubernetes objects, each speaker's
``/status``, each spine's routes, paths and sessions)::

    report = compare(site, services=..., nodes=..., slices=..., speakers=..., spines=...)
    report.ok, report.to_dict(), report.table()
    actions = plan(report)      # the safe repairs, and what is left for a person

No I/O, no clock: the Ansible module fetches and executes.
"""

from __future__ import annotations

from .compare import compare
from .desired import DesiredAddress, desired_addresses, layer2_addresses, pool_configs
from .layer2 import layer2_report
from .observations import Resolution, SpineObservation
from .repair import Action, plan
from .report import VERDICTS, Layer2Answer, PrefixReport, Report, SessionReport, SpineNextHops

__all__ = [
    "VERDICTS",
    "Action",
    "DesiredAddress",
    "Layer2Answer",
    "PrefixReport",
    "Report",
    "Resolution",
    "SessionReport",
    "SpineNextHops",
    "SpineObservation",
    "compare",
    "desired_addresses",
    "layer2_addresses",
    "layer2_report",
    "plan",
    "pool_configs",
]
