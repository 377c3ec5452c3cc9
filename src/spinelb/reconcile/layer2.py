"""The verdict of a layer2 pool's address: which node answers it, and what the segment sees.

The owner follows the speakers' own rule (:func:`spinelb.l2.owner.owner`) over
the eligible live nodes: the workers that may answer by policy (Ready, not
excluded, a ready endpoint for ``externalTrafficPolicy: Local``) whose speaker
answers ``/status`` with a ``layer2`` section (it runs the mesh).  What is
observed: each speaker's ``/status`` says whether it answers the address
(``answered_here``) and with which MAC; each spine on the segment says what
its neighbor table resolved the address to.

Verdicts, the first that applies: ``no_owner`` (nobody answers),
``several_owners``, ``wrong_owner`` (one node answers, not the one the rule
picks), ``resolved_elsewhere`` (a spine resolves it to another MAC than the
owner's, or not at all), else ``ok``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spinelb.l2.owner import owner
from spinelb.spine.model import Site

from .desired import DesiredAddress
from .observations import Resolution, SpineObservation
from .repair import Action, needs_person, resync_speaker
from .report import Layer2Answer, PrefixReport, same_mac

MESH = "check the layer2 BFD mesh between the speakers (their /status layer2.peers)"


def layer2_report(
    site: Site,
    desired: DesiredAddress,
    statuses: Mapping[str, Mapping[str, Any] | None],
    spines: Mapping[str, SpineObservation],
) -> PrefixReport:
    """The report of one layer2 address from the speakers' ``/status`` and the spines."""
    address = str(desired.address)
    evidence: list[str] = []
    repairs: list[Action] = []
    meshes = {worker: _mesh(statuses.get(worker)) for worker in site.workers}
    for worker, decision in desired.decisions.items():
        if statuses.get(worker) is None:
            evidence.append(f"{worker}: speaker unreachable"
                            + (f"; it may answer ({decision.reason})" if decision.announce else ""))
        elif meshes[worker] is None:
            evidence.append(f"{worker}: its /status has no layer2 section")
            if decision.announce:
                repairs.append(needs_person(f"the speaker on {worker} has no layer2 pool: run "
                                            "playbooks/site.yml"))
        elif not decision.announce:
            evidence.append(f"{worker}: may not answer ({decision.reason})")
    eligible = tuple(w for w in desired.announcers if meshes.get(w) is not None)
    expected = owner(desired.address, eligible)
    evidence.append(f"owner {expected} of {', '.join(eligible)}" if expected else
                    "no eligible live node: nobody should answer it")
    entries = {worker: _entry(mesh, address) for worker, mesh in meshes.items() if mesh}
    for worker, entry in entries.items():
        said = entry.get("owner") if entry else None
        if said != expected:
            evidence.append(f"{worker}: says the owner is {said}")
    answering = {worker: _mac(entry) for worker, entry in entries.items()
                 if entry and entry.get("answered_here")}
    for worker, mac in answering.items():
        evidence.append(f"{worker}: answers it with {mac}")

    resolved = {name: found for name, obs in spines.items()
                if obs.resolved is not None and (found := obs.resolved.get(address))}
    answer = Layer2Answer(expected, eligible, answering, resolved)
    macs = _macs(statuses)
    should = ([resync_speaker(expected, f"it should answer {address}")]
              if expected is not None and expected not in answering else [])
    if not answering:
        verdict = "no_owner"
        evidence.append("nobody answers it")
        repairs += should or [needs_person(
            f"no node may answer {address}: see its Services' endpoints and the Nodes")]
    elif len(answering) > 1:
        verdict = "several_owners"
        repairs += [*should, needs_person(f"{', '.join(answering)} all answer {address}: {MESH}")]
    elif expected not in answering:
        verdict = "wrong_owner"
        node = next(iter(answering))
        repairs += [*should, needs_person(
            f"{node} answers {address}, which {expected or 'no node'} should: {MESH}")]
    else:
        verdict = "ok"
    for spine, found in resolved.items():
        line = _resolution(found, answer, macs)
        evidence.append(f"{spine}: {line}")
        if verdict in ("ok", "resolved_elsewhere") and answer.resolves_to_owner(spine) is False:
            verdict = "resolved_elsewhere"
            repairs.append(needs_person(
                f"{spine} {line}: another host answers {address}, or the owner's answers do "
                "not reach the segment: see which host has that MAC"))
    return PrefixReport(
        address=address,
        verdict=verdict,
        pool=desired.pool.name if desired.pool else None,
        services=desired.services,
        workers=eligible,
        evidence=tuple(evidence),
        repairs=tuple(repairs),
        layer2=answer,
    )


def _resolution(found: Resolution, answer: Layer2Answer, macs: dict[str, str]) -> str:
    """What a spine's neighbor table says of the address, naming the node a MAC belongs to."""
    if found.mac is None:
        if found.failed:
            return f"does not resolve it ({found.state})"
        return f"has no neighbor entry ({found.state}: not on its segment?)"
    who = macs.get(found.mac.lower())
    named = f"{found.mac} ({who}'s)" if who else found.mac
    if answer.mac is not None and same_mac(found.mac, answer.mac):
        return f"resolves it to {named}, the owner's"
    return f"resolves it to {named} ({found.state}), not the owner's {answer.mac}"


def _mesh(status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    layer2 = (status or {}).get("layer2")
    return layer2 if isinstance(layer2, Mapping) else None


def _entry(mesh: Mapping[str, Any], address: str) -> Mapping[str, Any] | None:
    return next((entry for entry in mesh.get("addresses") or []
                 if isinstance(entry, Mapping) and entry.get("address") == address), None)


def _mac(entry: Mapping[str, Any] | None) -> str | None:
    mac = (entry or {}).get("mac")
    return str(mac) if mac else None


def _macs(statuses: Mapping[str, Mapping[str, Any] | None]) -> dict[str, str]:
    """Every worker's MAC on its layer2 interfaces (lower case) -> the worker."""
    found: dict[str, str] = {}
    for worker, status in statuses.items():
        for interface in (_mesh(status) or {}).get("interfaces") or []:
            if isinstance(interface, Mapping) and interface.get("mac"):
                found[str(interface["mac"]).lower()] = worker
    return found

