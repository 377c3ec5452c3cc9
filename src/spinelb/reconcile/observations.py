"""What one spine shows: installed routes per VRF, BGP paths per neighbor, session states,
and the MAC each layer2 address resolves to on its segment.

Filled in by whoever reads the spine (FRR's ``vtysh`` JSON, AOS-CX's REST or
``show`` output); the comparison only reads it.  Neighbors are keyed by their
address as text (``"10.252.1.10"``), prefixes are ``ip_network`` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

from spinelb.bgp.wire import Prefix
from spinelb.spine.routes import RouteTable

#: A session's state as the spine names it ("Established", "Active", ...) and
#: the seconds since it entered that state (None when the spine does not say).
SessionState = tuple[str, float | None]


@dataclass(frozen=True, slots=True)
class Resolution:
    """What a spine's neighbor table says of one address after it tried to reach it.

    ``mac`` is None when it did not resolve; ``state`` is the table's word for the
    entry (``REACHABLE``, ``STALE``, ``FAILED``, ...; ``NONE`` without an entry,
    as on a spine that is not on the address's segment).
    """

    mac: str | None
    state: str

    @property
    def failed(self) -> bool:
        """The spine asked and nobody answered."""
        return self.mac is None and self.state.upper() in ("FAILED", "INCOMPLETE")


@dataclass(frozen=True, slots=True)
class SpineObservation:
    """One spine's routes, received paths and sessions at the time it was read.

    ``routes``: per VRF, the installed routes (:mod:`spinelb.spine.routes` tables).
    ``received``: per neighbor address, the paths accepted after inbound policy.
    ``rejected``: per neighbor address, paths the policy refused (optional: only
    when the spine keeps them, FRR's soft-reconfiguration inbound).
    ``sessions``: per configured neighbor address, its state; a neighbor absent
    here is not configured on the spine.
    ``resolved``: per layer2 address (as text), what the spine resolved it to;
    None when it was not asked or cannot say (AOS-CX over REST).
    """

    routes: Mapping[str, RouteTable] = field(default_factory=dict)
    received: Mapping[str, AbstractSet[Prefix]] = field(default_factory=dict)
    sessions: Mapping[str, SessionState] = field(default_factory=dict)
    rejected: Mapping[str, AbstractSet[Prefix]] = field(default_factory=dict)
    resolved: Mapping[str, Resolution] | None = None

    def installed(self, prefix: Prefix, vrfs: AbstractSet[str] | None) -> tuple[str, ...]:
        """The next hops of ``prefix`` installed in ``vrfs`` (None: any VRF), sorted, as text."""
        hops = {
            hop
            for vrf, table in self.routes.items()
            if vrfs is None or vrf in vrfs
            for hop in table.get(prefix, ())
        }
        return tuple(str(hop) for hop in sorted(hops, key=lambda a: (a.version, a)))

    def vrfs_with(self, prefix: Prefix) -> list[str]:
        """The VRFs in which ``prefix`` is installed, by name."""
        return sorted(vrf for vrf, table in self.routes.items() if prefix in table)

    def received_from(self, prefix: Prefix) -> list[str]:
        """The neighbor addresses ``prefix`` was received (and accepted) from."""
        return sorted(neighbor for neighbor, paths in self.received.items() if prefix in paths)

    def established(self, neighbor: str) -> bool:
        """Whether the session with ``neighbor`` is up."""
        state = self.sessions.get(neighbor)
        return state is not None and state[0].lower() == "established"
