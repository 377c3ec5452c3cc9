"""Prometheus metrics of the speaker's sessions and announcements.

:class:`SpeakerMetrics` owns its own registry (never the process-wide
default), so several speakers in one test process do not collide.  The
speaker calls the methods below as things happen; ``GET /metrics`` serves
:meth:`SpeakerMetrics.render`.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

#: The RFC 4271 session states, as the ``state`` label spells them.
SESSION_STATES = ("Idle", "Connect", "Active", "OpenSent", "OpenConfirm", "Established")

Direction = Literal["sent", "received"]


class SpeakerMetrics:
    """The speaker's metrics (``spinelb_*``), with the calls that update them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.session_up = Gauge(
            "spinelb_session_up",
            "1 when the BGP session is Established, else 0",
            ["peer"],
            registry=r,
        )
        self.session_state_gauge = Gauge(
            "spinelb_session_state",
            "1 for the session's current RFC 4271 state, 0 for the others",
            ["peer", "state"],
            registry=r,
        )
        self.updates_sent = Counter(
            "spinelb_updates_sent", "UPDATE messages sent", ["peer"], registry=r
        )
        self.updates_received = Counter(
            "spinelb_updates_received", "UPDATE messages received", ["peer"], registry=r
        )
        self.prefixes_advertised = Gauge(
            "spinelb_prefixes_advertised",
            "Prefixes in the peer's Adj-RIB-Out",
            ["peer"],
            registry=r,
        )
        self.prefixes_received = Gauge(
            "spinelb_prefixes_received",
            "Prefixes the peer has announced to us",
            ["peer"],
            registry=r,
        )
        self.notifications_sent = Counter(
            "spinelb_notifications_sent",
            "NOTIFICATION messages sent, by error code and subcode",
            ["peer", "code", "subcode"],
            registry=r,
        )
        self.notifications_received = Counter(
            "spinelb_notifications_received",
            "NOTIFICATION messages received, by error code and subcode",
            ["peer", "code", "subcode"],
            registry=r,
        )
        self.session_flaps = Counter(
            "spinelb_session_flaps", "Times the session left Established", ["peer"], registry=r
        )
        self.announcements_gauge = Gauge(
            "spinelb_announcements", "Announcements in the speaker's config", registry=r
        )
        self.kubernetes_connected_gauge = Gauge(
            "spinelb_kubernetes_connected",
            "1 when every watch of the Kubernetes source is connected to the API server, else 0",
            registry=r,
        )
        self.service_addresses_gauge = Gauge(
            "spinelb_service_addresses",
            "Service addresses (status ingress of our Services) the Kubernetes source knows",
            registry=r,
        )
        self.service_addresses_announced_gauge = Gauge(
            "spinelb_service_addresses_announced",
            "Service addresses this node announces to at least one peer",
            registry=r,
        )
        self.layer2_owned_gauge = Gauge(
            "spinelb_layer2_owned",
            "Layer2 addresses this node answers (ARP/NDP)",
            registry=r,
        )
        self.layer2_takeovers = Counter(
            "spinelb_layer2_takeovers",
            "Layer2 addresses this node began to answer (each announced at once)",
            registry=r,
        )
        self.layer2_requests_answered_counter = Counter(
            "spinelb_layer2_requests_answered",
            "ARP requests and neighbor solicitations answered for layer2 addresses",
            ["interface"],
            registry=r,
        )
        self.layer2_peer_live = Gauge(
            "spinelb_layer2_peer_live",
            "1 when the BFD session with the layer2 peer is Up (it may answer addresses), else 0",
            ["node"],
            registry=r,
        )
        self._states: dict[str, str] = {}
        self._answered: dict[str, int] = {}  # interface -> the responder's count last seen
        self._notification_labels: dict[str, set[tuple[str, str, Direction]]] = {}

    def session_state(self, peer: str, state_name: str) -> None:
        """The peer's session is now in ``state_name`` (an RFC 4271 name, see SESSION_STATES)."""
        if state_name not in SESSION_STATES:
            raise ValueError(f"not an RFC 4271 session state: {state_name!r}")
        previous = self._states.get(peer)
        self._states[peer] = state_name
        for state in SESSION_STATES:
            self.session_state_gauge.labels(peer, state).set(1 if state == state_name else 0)
        self.session_up.labels(peer).set(1 if state_name == "Established" else 0)
        if previous == "Established" and state_name != "Established":
            self.session_flaps.labels(peer).inc()
        else:
            self.session_flaps.labels(peer)  # show the peer's counter at 0 from the start

    def update_sent(self, peer: str, n: int = 1) -> None:
        self.updates_sent.labels(peer).inc(n)

    def update_received(self, peer: str, n: int = 1) -> None:
        self.updates_received.labels(peer).inc(n)

    def notification(self, peer: str, code: int, subcode: int, direction: Direction) -> None:
        """A NOTIFICATION (``code``/``subcode``) was sent to or received from the peer."""
        counter = self.notifications_sent if direction == "sent" else self.notifications_received
        labels = (str(int(code)), str(int(subcode)))
        counter.labels(peer, *labels).inc()
        self._notification_labels.setdefault(peer, set()).add((*labels, direction))

    def advertised(self, peer: str, count: int) -> None:
        """The peer's Adj-RIB-Out now holds ``count`` prefixes."""
        self.prefixes_advertised.labels(peer).set(count)

    def received(self, peer: str, count: int) -> None:
        """The peer has ``count`` prefixes announced to us."""
        self.prefixes_received.labels(peer).set(count)

    def announcements(self, count: int) -> None:
        """The config now has ``count`` announcements."""
        self.announcements_gauge.set(count)

    def kubernetes_connected(self, connected: bool) -> None:
        self.kubernetes_connected_gauge.set(1 if connected else 0)

    def service_addresses(self, *, known: int, announced: int) -> None:
        """The Kubernetes source knows ``known`` Service addresses; ``announced`` are announced."""
        self.service_addresses_gauge.set(known)
        self.service_addresses_announced_gauge.set(announced)

    def layer2_owned(self, count: int, taken: int = 0) -> None:
        """This node now answers ``count`` layer2 addresses, ``taken`` of them new."""
        self.layer2_owned_gauge.set(count)
        if taken:
            self.layer2_takeovers.inc(taken)

    def layer2_requests_answered(self, interface: str, total: int) -> None:
        """The responder on ``interface`` has answered ``total`` requests since it opened."""
        last = self._answered.get(interface, 0)
        if total < last:  # a new responder on the interface: its count starts again
            last = 0
        self.layer2_requests_answered_counter.labels(interface).inc(total - last)
        self._answered[interface] = total

    def layer2_interface_closed(self, interface: str) -> None:
        """The responder on ``interface`` is gone; a new one counts from zero."""
        self._answered.pop(interface, None)

    def layer2_peer(self, node: str, live: bool | None) -> None:
        """The layer2 peer ``node`` is live or not; None: no longer a peer (its series goes)."""
        if live is None:
            _remove(self.layer2_peer_live, node)
        else:
            self.layer2_peer_live.labels(node).set(1 if live else 0)

    def remove_peer(self, peer: str) -> None:
        """Forget a peer removed from the config (its series disappear from /metrics)."""
        for metric in (
            self.session_up,
            self.updates_sent,
            self.updates_received,
            self.prefixes_advertised,
            self.prefixes_received,
            self.session_flaps,
        ):
            _remove(metric, peer)
        for state in SESSION_STATES:
            _remove(self.session_state_gauge, peer, state)
        for code, subcode, direction in self._notification_labels.pop(peer, set()):
            counter = (
                self.notifications_sent if direction == "sent" else self.notifications_received
            )
            _remove(counter, peer, code, subcode)
        self._states.pop(peer, None)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return bytes(generate_latest(self.registry))


def _remove(metric: Gauge | Counter, *labels: str) -> None:
    with suppress(KeyError):  # never set for this peer
        metric.remove(*labels)
