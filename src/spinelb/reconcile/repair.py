"""The repair plan: what ``state: reconciled`` may do safely, and what it leaves for a person.

Four kinds of action, each idempotent and harmless when repeated:

- ``resync_speaker(worker)``: ask the speaker to resynchronise with the API
  and resend its routes (its ``/status`` disagrees with its own decision, or
  it announces an address no Service has);
- ``soft_clear(spine, neighbor)``: a soft inbound clear (route refresh) of one
  session on a spine whose table is stale or lacks a route;
- ``assign(service)``: ask the controller to assign a pending Service's address;
- ``withdraw_static(worker, prefix)``: ask a speaker to stop announcing a static
  announcement in a pool that no Service has, until its config file is next
  loaded (the inventory still needs correcting: a ``needs_person`` says so);
- ``needs_person(reason)``: anything that is spine or speaker configuration
  drift (leaks, wrong next hops, static routes): the reason says what to run.

Nothing here deletes a Service or edits a configuration.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from .report import Report

ActionKind = Literal["resync_speaker", "soft_clear", "assign", "withdraw_static", "needs_person"]
SPINES_PLAYBOOK = "run playbooks/spines.yml -e spine_state=replaced"


@dataclass(frozen=True, slots=True)
class Action:
    """One repair; ``addresses`` are those it is for (filled in by :func:`plan`)."""

    kind: ActionKind
    reason: str
    worker: str | None = None
    spine: str | None = None
    neighbor: str | None = None  # the neighbor's address on the spine
    service: str | None = None  # "namespace/name"
    prefix: str | None = None  # a static announcement to withdraw
    addresses: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str | None, ...]:
        """What makes two actions the same action (the reason only tells people apart)."""
        reason = self.reason if self.kind == "needs_person" else None
        return (self.kind, self.worker, self.spine, self.neighbor, self.service, self.prefix,
                reason)

    @property
    def safe(self) -> bool:
        """Whether ``state: reconciled`` may do it (a person must do ``needs_person``)."""
        return self.kind != "needs_person"

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"action": self.kind}
        for name in ("worker", "spine", "neighbor", "service", "prefix"):
            value = getattr(self, name)
            if value is not None:
                entry[name] = value
        entry["reason"] = self.reason
        entry["addresses"] = list(self.addresses)
        return entry

    def __str__(self) -> str:
        target = ", ".join(
            f"{name} {value}"
            for name in ("worker", "spine", "neighbor", "service", "prefix")
            if (value := getattr(self, name)) is not None
        )
        head = f"{self.kind}({target})" if target else self.kind
        return f"{head}: {self.reason}"


def resync_speaker(worker: str, reason: str) -> Action:
    return Action("resync_speaker", reason, worker=worker)


def soft_clear(spine: str, neighbor: str, reason: str) -> Action:
    return Action("soft_clear", reason, spine=spine, neighbor=neighbor)


def assign(service: str, reason: str) -> Action:
    return Action("assign", reason, service=service)


def withdraw_static(worker: str, prefix: str, reason: str) -> Action:
    return Action("withdraw_static", reason, worker=worker, prefix=prefix)


def needs_person(reason: str) -> Action:
    return Action("needs_person", reason)


def plan(report: Report) -> list[Action]:
    """The repairs for every address that is not ``ok``, each action once, in report order.

    An action several addresses need appears once, with all of them in
    ``addresses`` (and the first reason given for it).
    """
    actions: dict[tuple[str | None, ...], Action] = {}
    for prefix in report.problems():
        for action in prefix.repairs:
            known = actions.get(action.key)
            if known is None:
                actions[action.key] = replace(action, addresses=(prefix.address,))
            elif prefix.address not in known.addresses:
                actions[action.key] = replace(
                    known, addresses=(*known.addresses, prefix.address)
                )
    return list(actions.values())
