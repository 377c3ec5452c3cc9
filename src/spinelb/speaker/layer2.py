"""The speaker's Layer 2 engine: who answers each layer2 address, and this node's responders.

The speakers on a segment run BFD with each other over the speaker's one
:class:`~spinelb.bfd.BfdTransport`; every one computes the owner of each
address of a layer2 pool over the live eligible nodes
(:func:`spinelb.l2.announcer.assign`), and this node's responders answer
ARP/NDP for what it owns (docs/layer2.md).  The :class:`~spinelb.speaker.speaker.Speaker`
owns one :class:`Layer2Engine` and calls :meth:`Layer2Engine.update` whenever the
decisions, the config or this node's eligibility change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Protocol

from spinelb.bfd import BfdSettings, BfdTransport, State, StateChanged, diag_name
from spinelb.bfd import Session as BfdSession
from spinelb.bgp.wire import Address
from spinelb.config import MODE_LAYER2, SpeakerConfig
from spinelb.l2.announcer import Assignment, assign
from spinelb.l2.packet import MacAddress
from spinelb.l2.responder import L2Counters
from spinelb.speaker.api import (
    Layer2AddressStatus,
    Layer2InterfaceStatus,
    Layer2PeerStatus,
    Layer2Status,
)
from spinelb.speaker.k8s_source import Decision
from spinelb.speaker.metrics import SpeakerMetrics

log = logging.getLogger("spinelb.speaker")  # the speaker's lines, as before the engine had a module

#: Seconds a speaker whose layer2 BFD sessions just started waits for its peers to come Up
#: before it takes addresses: a lost first packet is sent again after the 1 s slow rate.
LAYER2_HOLD = 2.5
LOGGED_ADDRESSES = 20  # a burst logs counts and the first few addresses, not all of them

#: A BFD session's address pair: (our source address, the peer's address).
BfdPath = tuple[Address, Address]


class AddressResponder(Protocol):
    """What the speaker needs of a :class:`spinelb.l2.Responder` (tests give a fake)."""

    interface: str
    mac: MacAddress
    counters: L2Counters

    @property
    def addresses(self) -> frozenset[Address]: ...

    def set_addresses(self, addresses: Iterable[Address]) -> None: ...

    def announce(self, addresses: Iterable[Address] | None = None) -> None: ...

    def close(self) -> None: ...


#: Opens the responder of one interface (raises OSError without the interface or CAP_NET_RAW).
ResponderFactory = Callable[[str], AddressResponder]


def _order(address: Address) -> tuple[int, Address]:
    """IPv4 before IPv6, each in address order."""
    return (address.version, address)


class Layer2Engine:
    """Owners, the BFD mesh with the other speakers, and the responders of one node.

    What it reads of the speaker is passed in: ``config`` and ``decisions`` (as
    they are now: a reload replaces both), ``bfd`` (the shared transport, None
    until someone needs it) and ``start_bfd`` (which creates it), ``bgp_bfd_paths``
    (the address pairs of the BGP peers' BFD sessions, which a layer2 peer may not
    take), and ``node_status`` (whether the Kubernetes source says this node's Node
    is Ready and not excluded; None until it has synced, or without a source).
    """

    def __init__(
        self,
        *,
        config: Callable[[], SpeakerConfig],
        decisions: Callable[[], Mapping[Address, Decision]],
        bfd: Callable[[], BfdTransport | None],
        start_bfd: Callable[[], BfdTransport],
        bgp_bfd_paths: Container[BfdPath],
        node_status: Callable[[], bool | None],
        metrics: SpeakerMetrics,
        responder_factory: ResponderFactory,
    ) -> None:
        self._config = config
        self._decisions = decisions
        self._bfd = bfd
        self._start_bfd = start_bfd
        self._bgp_bfd_paths = bgp_bfd_paths
        self._node_status = node_status
        self.metrics = metrics
        self.responder_factory = responder_factory
        self.responders: dict[str, AddressResponder] = {}  # interface -> its responder
        self.responder_errors: dict[str, str] = {}  # interface -> why it has no responder
        self.peers: dict[BfdPath, str] = {}  # the running layer2 BFD sessions -> node name
        # Whether this node may answer layer2 addresses: its Node Ready and not excluded, once
        # a Kubernetes source has synced (never before: it would be given addresses it cannot
        # know yet); without a source, True (set_node_eligible changes it).
        self.eligible = config().kubernetes is None
        self.assignment = Assignment(config().node_name, frozenset(), {})
        self.answering: frozenset[Address] = frozenset()  # owned, less what a hold keeps back
        self.hold = LAYER2_HOLD
        self._hold_until: float | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self.takeovers = 0
        self.released = 0
        self._stopped = False
        self._updating = False
        self._again = False

    def set_node_eligible(self, eligible: bool) -> None:
        """Without a Kubernetes source: whether this node may answer layer2 addresses.

        With a source, its Node status decides (Ready, not excluded) and this is overridden.
        """
        self.eligible = eligible
        self.update()

    def _own_eligibility(self) -> bool:
        """This node may answer: its Node is Ready and not excluded (as decide() rules).

        Before a Kubernetes source has synced, the last answer stands (at start: False).
        """
        status = self._node_status()
        if status is not None:
            self.eligible = status
        return self.eligible

    def decisions(self) -> dict[Address, Decision]:
        """The decisions of the addresses of layer2 pools (as configured now)."""
        config = self._config()
        found: dict[Address, Decision] = {}
        if not any(pool.layer2 for pool in config.pools):
            return found  # without walking a BGP-only table on every change
        for address, decision in self._decisions().items():
            if decision.mode != MODE_LAYER2 or decision.pool is None:
                continue
            try:
                if config.pool(decision.pool).layer2:
                    found[address] = decision
            except KeyError:  # a pool a reload removed: re-decided there
                continue
        return found

    def live_peers(self) -> set[str]:
        """The other speakers whose BFD session with us is Up (an AdminDown one is Down)."""
        bfd = self._bfd()
        live = set()
        for key, node in self.peers.items():
            found = bfd.session(*key) if bfd is not None else None
            if found is not None and found.state is State.UP:
                live.add(node)
        return live

    def update(self) -> None:
        """Recompute the owners and give each responder this node's share of the addresses.

        Runs whenever the decisions, a layer2 peer's BFD state, this node's
        eligibility or the config change.  A node that is not eligible takes its
        layer2 BFD sessions AdminDown (they are removed, saying so), so the others
        drop it without waiting for Kubernetes, and answers nothing.
        """
        if self._stopped:
            return
        if self._updating:  # a BFD change while the sessions are being set up
            self._again = True
            return
        self._updating = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._update_once()
        finally:
            self._updating = False

    def _update_once(self) -> None:
        config = self._config()
        eligible = config.layer2 is not None and self._own_eligibility()
        self._sync_bfd(eligible)
        decisions = self.decisions()
        live = self.live_peers()
        self.assignment = assign({a: d.nodes for a, d in decisions.items()},
                                 config.node_name, eligible, live)
        owned = self.assignment.owned
        before = self.answering
        if self._holding(live):  # our view is not whole yet: take nothing new
            owned &= before
        self.answering = owned
        taken, given = owned - before, before - owned
        self.takeovers += len(taken)
        self.released += len(given)
        self.metrics.layer2_owned(len(owned), len(taken))
        if taken or given:
            log.info("layer2 addresses moved", extra={
                "taken": len(taken), "released": len(given), "answering": len(owned),
                "live": " ".join(sorted(self.assignment.live)),
                "addresses": " ".join([*(str(a) for a in sorted(taken, key=_order)),
                                       *(f"-{a}" for a in sorted(given, key=_order))]
                                      [:LOGGED_ADDRESSES]),
            })
        self._sync_responders(decisions, owned)

    def _holding(self, live: set[str]) -> bool:
        """Whether BFD sessions started lately may still come Up (then we take nothing new).

        A speaker that has just started (or become eligible again) sees no peer
        live yet and would own, and announce, every address, pulling the clients'
        caches away from the real owners.  So it waits until every layer2 peer is
        Up, or for :attr:`hold` seconds after its last session started (a peer
        that is not Up by then is taken for dead).
        """
        layer2 = self._config().layer2
        if self._hold_until is None or layer2 is None:
            return False
        loop = asyncio.get_running_loop()
        if loop.time() >= self._hold_until or {p.node for p in layer2.peers} <= live:
            self._hold_until = None
            if self._hold_timer is not None:
                self._hold_timer.cancel()
                self._hold_timer = None
            return False
        return True

    def _start_hold(self) -> None:
        """A layer2 BFD session has started: hold (see :meth:`_holding`), then decide."""
        loop = asyncio.get_running_loop()
        self._hold_until = loop.time() + self.hold
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        self._hold_timer = loop.call_at(self._hold_until, self.update)

    def _sync_bfd(self, eligible: bool) -> None:
        """One BFD session per layer2 peer while this node is eligible; none (AdminDown) else."""
        layer2 = self._config().layer2
        wanted: dict[BfdPath, str] = {}
        if layer2 is not None and eligible:
            wanted = {(layer2.source_address, p.address): p.node for p in layer2.peers}
        for key, node in list(self.peers.items()):
            if key not in wanted:
                del self.peers[key]  # first: its AdminDown is not taken for news
                bfd = self._bfd()
                found = bfd.session(*key) if bfd is not None else None
                if bfd is not None and found is not None:
                    bfd.remove_session(found)  # says AdminDown
                self.metrics.layer2_peer(node, None)
        if layer2 is None or not wanted:
            return
        settings = BfdSettings(min_tx_ms=layer2.bfd.min_tx_ms, min_rx_ms=layer2.bfd.min_rx_ms,
                               multiplier=layer2.bfd.multiplier)
        for key, node in wanted.items():
            bfd = self._bfd()
            found = bfd.session(*key) if bfd is not None else None
            if key in self.peers and found is not None:  # running: new timers poll in
                self.peers[key] = node
                if bfd is not None and found.settings != settings:
                    bfd.reconfigure(found, settings)
                continue
            if key in self._bgp_bfd_paths:
                log.error("layer2 peer has the addresses of a BGP peer's BFD session; skipped",
                          extra={"node": node, "address": str(key[1])})
                continue
            self.peers[key] = node
            try:
                self._start_bfd().add_session(*key, settings)
            except OSError as err:  # our source address is not (yet) on this host
                del self.peers[key]
                log.error("cannot start BFD with a layer2 peer; retried at the next change",
                          extra={"node": node, "address": str(key[1]),
                                 "error": err.strerror or str(err)})
                continue
            self.metrics.layer2_peer(node, False)
            self._start_hold()

    def bfd_changed(self, bfd: BfdSession, change: StateChanged) -> bool:
        """Take a BFD state change if ``bfd`` is a layer2 peer's session; whether it was.

        A layer2 peer came Up (it may answer) or left Up (its addresses move at once).
        """
        node = self.peers.get((bfd.local_address, bfd.peer_address))
        if node is None:
            return False
        log.info("layer2 peer bfd state", extra={"node": node, "old": change.old.label,
                                                 "new": change.new.label,
                                                 "diag": diag_name(change.diag)})
        self.metrics.layer2_peer(node, change.new is State.UP)
        if State.UP in (change.old, change.new):
            self.update()
        if change.new is State.UP:
            # A peer is back: while we could not see it (our link, or its, was down) it may have
            # taken addresses we kept answering in our own view. Announce ours again, or clients
            # would stay with its MAC for as long as their traffic keeps the entry fresh.
            for responder in self.responders.values():
                responder.announce()
        return True

    def _sync_responders(self, decisions: Mapping[Address, Decision], owned: frozenset[Address]
                         ) -> None:
        """A responder per interface of a layer2 pool, answering the owned addresses of its pools."""
        config = self._config()
        wanted: dict[str, set[Address]] = {}
        for pool in config.pools:
            if pool.layer2:
                for interface in pool.interfaces:
                    wanted.setdefault(interface, set())
        for address in owned:
            pool_name = decisions[address].pool
            assert pool_name is not None  # decisions() keeps only addresses in a pool
            for interface in config.pool(pool_name).interfaces:
                wanted[interface].add(address)
        for interface in list(self.responders.keys() - wanted.keys()):
            self._close_responder(interface)
        for interface in self.responder_errors.keys() - wanted.keys():
            del self.responder_errors[interface]
        for interface, addresses in wanted.items():
            responder = self.responders.get(interface)
            if responder is None:
                responder = self._open_responder(interface)
                if responder is None:
                    continue
            if responder.addresses != addresses:
                responder.set_addresses(addresses)  # new ones are announced (gratuitous ARP/NA)

    def _open_responder(self, interface: str) -> AddressResponder | None:
        try:
            responder = self.responder_factory(interface)
        except (OSError, ValueError) as err:  # no such interface, no CAP_NET_RAW, not Ethernet
            error = str(err) if isinstance(err, ValueError) else (err.strerror or str(err))
            if self.responder_errors.get(interface) != error:
                log.error("cannot answer ARP/NDP on this interface; retried at the next change",
                          extra={"interface": interface, "error": error})
            self.responder_errors[interface] = error
            return None
        self.responder_errors.pop(interface, None)
        self.responders[interface] = responder
        log.info("layer2 responder open", extra={"interface": interface, "mac": str(responder.mac)})
        return responder

    def _close_responder(self, interface: str) -> None:
        responder = self.responders.pop(interface)
        self.metrics.layer2_requests_answered(interface, responder.counters.requests_answered)
        self.metrics.layer2_interface_closed(interface)
        responder.close()

    def stop(self) -> None:
        """Stop answering, and tell the other speakers (BFD AdminDown): they take over at once."""
        self._stopped = True
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None
        for interface in list(self.responders):
            self._close_responder(interface)
        self._sync_bfd(False)

    def count_requests(self) -> None:
        """Bring the answered-requests counters of the open responders into the metrics."""
        for interface, responder in self.responders.items():
            self.metrics.layer2_requests_answered(interface, responder.counters.requests_answered)

    def status(self) -> Layer2Status | None:
        """The ``layer2`` section of the status: owners, this node's answers, peers, counters."""
        config = self._config()
        layer2 = config.layer2
        if layer2 is None:
            return None
        decisions = self.decisions()
        owners = self.assignment.owners
        addresses: list[Layer2AddressStatus] = []
        for address in sorted(decisions, key=_order):
            pool = decisions[address].pool
            assert pool is not None
            here = [i for i in config.pool(pool).interfaces
                    if (r := self.responders.get(i)) is not None and address in r.addresses]
            addresses.append({
                "address": str(address),
                "pool": pool,
                "owner": owners.get(address),
                "answered_here": bool(here),
                "mac": str(self.responders[here[0]].mac) if here else None,
                "interfaces": here,
            })
        bfd = self._bfd()
        peers: list[Layer2PeerStatus] = []
        for peer in layer2.peers:
            key = (layer2.source_address, peer.address)
            found = bfd.session(*key) if key in self.peers and bfd else None
            peers.append({
                "node": peer.node,
                "address": str(peer.address),
                "bfd": found.state.label if found is not None else State.ADMIN_DOWN.label,
                "live": found is not None and found.state is State.UP,
            })
        interfaces: list[Layer2InterfaceStatus] = []
        for interface in sorted(self.responders.keys() | self.responder_errors.keys()):
            responder = self.responders.get(interface)
            counters = responder.counters if responder is not None else L2Counters()
            interfaces.append({
                "interface": interface,
                "mac": str(responder.mac) if responder is not None else None,
                "error": self.responder_errors.get(interface),
                "addresses": len(responder.addresses) if responder is not None else 0,
                "received": counters.received,
                "requests_answered": counters.requests_answered,
                "announcements_sent": counters.announcements_sent,
                "send_errors": counters.send_errors,
            })
        return {
            "eligible": self.eligible,
            "source_address": str(layer2.source_address),
            "live": sorted(self.assignment.live),
            "addresses": addresses,
            "peers": peers,
            "interfaces": interfaces,
            "holding": self._hold_until is not None,
            "owned": len(self.answering),
            "takeovers": self.takeovers,
            "released": self.released,
        }
