"""The reconciliation report: one verdict per address, the spines' sessions, counts.

``to_dict()`` is the JSON for machines (``prefixes``, ``sessions``,
``summary``, ``ok``); ``table()`` is the text for people, aligned like
``spinelb status``'s tables, with the evidence of every address that is not
``ok`` below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spinelb.status import format_uptime

from .observations import Resolution

if TYPE_CHECKING:
    from .repair import Action

#: The verdicts of an address in the order they are tried: the first that applies wins.
VERDICTS = (
    "outside_pools",
    "pending",
    "no_owner",
    "several_owners",
    "wrong_owner",
    "resolved_elsewhere",
    "not_announced",
    "leaked",
    "wrong_next_hop",
    "missing",
    "not_ecmp",
    "ok",
    "stale",
)


@dataclass(frozen=True, slots=True)
class SpineNextHops:
    """What one spine installs for an address (``have``) against what it should (``want``)."""

    have: tuple[str, ...]
    want: tuple[str, ...]
    vrf: str | None = None  # None: any VRF (the spine collapses its VRFs)

    def to_dict(self) -> dict[str, Any]:
        return {"have": list(self.have), "want": list(self.want), "vrf": self.vrf}


@dataclass(frozen=True, slots=True)
class Layer2Answer:
    """Who answers a layer2 address: the node that should (``owner``, chosen among
    ``eligible``), the nodes that say they do with their MAC, what each spine resolves."""

    owner: str | None
    eligible: tuple[str, ...]
    answering: Mapping[str, str | None]  # node -> the MAC it answers with
    resolved: Mapping[str, Resolution] = field(default_factory=dict)  # spine -> its answer

    @property
    def mac(self) -> str | None:
        """The MAC the owner answers with (None when it does not answer)."""
        return None if self.owner is None else self.answering.get(self.owner)

    def resolves_to_owner(self, spine: str) -> bool | None:
        """Whether ``spine`` resolves the address to the owner's MAC (None: it has no entry)."""
        found = self.resolved.get(spine)
        if found is None or (found.mac is None and not found.failed):
            return None
        return found.mac is not None and self.mac is not None and same_mac(found.mac, self.mac)

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "mac": self.mac,
            "eligible": list(self.eligible),
            "answering": dict(self.answering),
            "resolved": {spine: {"mac": found.mac, "state": found.state}
                         for spine, found in self.resolved.items()},
        }


def same_mac(one: str, other: str) -> bool:
    """Whether two MACs are the same, whatever their case."""
    return one.lower() == other.lower()


@dataclass(frozen=True, slots=True)
class PrefixReport:
    """One address (or, for ``pending``, one Service by ``namespace/name``) and its verdict.

    ``repairs`` are the actions that could fix it; :func:`spinelb.reconcile.plan`
    gathers them.
    """

    address: str
    verdict: str
    pool: str | None = None
    services: tuple[str, ...] = ()
    workers: tuple[str, ...] = ()  # the workers that should announce it (layer2: may answer)
    spines: dict[str, SpineNextHops] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    repairs: tuple[Action, ...] = ()
    layer2: Layer2Answer | None = None  # a layer2 pool's address: who answers it

    def to_dict(self) -> dict[str, Any]:
        data = {
            "address": self.address,
            "verdict": self.verdict,
            "pool": self.pool,
            "services": list(self.services),
            "workers": list(self.workers),
            "spines": {name: hops.to_dict() for name, hops in self.spines.items()},
            "evidence": list(self.evidence),
        }
        if self.layer2 is not None:
            data["layer2"] = self.layer2.to_dict()
        return data


@dataclass(frozen=True, slots=True)
class SessionReport:
    """One BGP session a spine should have: its state and the seconds it has been in it."""

    spine: str
    neighbor: str  # the speaker's name for it: "<worker>-<network>", or the other spine
    address: str
    vrf: str
    state: str  # "established", the spine's state in lower case, "absent" or "unobserved"
    since_seconds: float | None = None

    @property
    def established(self) -> bool:
        return self.state == "established"

    def to_dict(self) -> dict[str, Any]:
        return {
            "spine": self.spine,
            "neighbor": self.neighbor,
            "address": self.address,
            "vrf": self.vrf,
            "state": self.state,
            "since_seconds": self.since_seconds,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The whole comparison; ``ok`` when every address is ``ok`` and every session is up."""

    prefixes: tuple[PrefixReport, ...]
    sessions: tuple[SessionReport, ...]
    unobserved_spines: tuple[str, ...] = ()
    unreachable_speakers: tuple[str, ...] = ()

    @property
    def summary(self) -> dict[str, int]:
        """How many addresses have each verdict (every verdict listed, zeros too)."""
        counts = dict.fromkeys(VERDICTS, 0)
        for prefix in self.prefixes:
            counts[prefix.verdict] += 1
        return counts

    @property
    def ok(self) -> bool:
        return (
            all(prefix.verdict == "ok" for prefix in self.prefixes)
            and all(session.established for session in self.sessions)
            and not self.unobserved_spines
        )

    def problems(self) -> list[PrefixReport]:
        """The addresses whose verdict is not ``ok``."""
        return [prefix for prefix in self.prefixes if prefix.verdict != "ok"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.summary,
            "prefixes": [prefix.to_dict() for prefix in self.prefixes],
            "sessions": [session.to_dict() for session in self.sessions],
            "unobserved_spines": list(self.unobserved_spines),
            "unreachable_speakers": list(self.unreachable_speakers),
        }

    def table(self) -> str:
        """The report as a person reads it: addresses, evidence, sessions, counts."""
        spines = sorted({
            name
            for prefix in self.prefixes
            for name in (prefix.layer2.resolved if prefix.layer2 else prefix.spines)
        })
        header = ("ADDRESS", "VERDICT", "POOL", *(s.upper() for s in spines), "NEXT HOPS",
                  "SERVICES")
        rows: list[tuple[str, ...]] = [header]
        for prefix in self.prefixes:
            rows.append(
                (
                    prefix.address,
                    prefix.verdict,
                    prefix.pool or "-",
                    *(_spine_cell(prefix, spine) for spine in spines),
                    _installed(prefix),
                    ", ".join(prefix.services) or "-",
                )
            )
        lines = _aligned(rows)
        if any(prefix.spines for prefix in self.prefixes):
            lines.append("(per spine: next hops installed/wanted; NEXT HOPS: those installed, "
                         "the same on every spine)")
        if spines and any(prefix.layer2 for prefix in self.prefixes):
            lines.append("(layer2 rows: per spine: ok when it resolves the address to the "
                         "owner's MAC; NEXT HOPS: the node answering and its MAC)")
        problems = self.problems()
        if problems:
            lines.append("")
            for prefix in problems:
                lines.append(f"{prefix.address}: {prefix.verdict}")
                lines.extend(f"  {line}" for line in prefix.evidence)
        lines.append("")
        up = sum(1 for session in self.sessions if session.established)
        lines.append(f"sessions: {up} of {len(self.sessions)} established")
        session_rows: list[tuple[str, ...]] = [("SPINE", "NEIGHBOR", "ADDRESS", "VRF", "STATE", "SINCE")]
        session_rows += [
            (s.spine, s.neighbor, s.address, s.vrf, s.state, format_uptime(s.since_seconds))
            for s in self.sessions
        ]
        lines.extend(_aligned(session_rows))
        if self.unobserved_spines:
            lines.append(f"spines not observed: {', '.join(self.unobserved_spines)}")
        if self.unreachable_speakers:
            lines.append(f"speakers unreachable: {', '.join(self.unreachable_speakers)}")
        lines.append("")
        counts = ", ".join(f"{verdict} {n}" for verdict, n in self.summary.items() if n)
        lines.append(f"{len(self.prefixes)} addresses: {counts or 'none'}")
        return "\n".join(lines) + "\n"


def _spine_cell(prefix: PrefixReport, spine: str) -> str:
    """A BGP address's next hops on ``spine``; a layer2 one's resolution there."""
    if prefix.layer2 is None:
        return _hops_cell(prefix.spines.get(spine))
    found = prefix.layer2.resolved.get(spine)
    if found is None:
        return "-"
    if prefix.layer2.resolves_to_owner(spine):
        return "ok"
    return found.mac or found.state.lower()


def _hops_cell(hops: SpineNextHops | None) -> str:
    """``have/want`` next hops, e.g. ``3/3`` or ``1/1``; ``-`` when nothing is expected."""
    if hops is None or (not hops.have and not hops.want):
        return "-"
    return f"{len(hops.have)}/{len(hops.want)}"


def _installed(prefix: PrefixReport) -> str:
    """The next hops installed for ``prefix`` when every spine has the same, else a pointer;
    for a layer2 address, each node that answers it and its MAC."""
    if prefix.layer2 is not None:
        answering = prefix.layer2.answering
        return ", ".join(f"{node} {mac or '-'}" for node, mac in answering.items()) or "none"
    sets = {hops.have for hops in prefix.spines.values()}
    if not sets or sets == {()}:
        return "-"
    if len(sets) > 1:
        return "differ per spine"
    return " ".join(next(iter(sets)))


def _aligned(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        .rstrip()
        for row in rows
    ]
