"""The speaker: one BGP session per configured peer, carrying the configured announcements.

It turns the config into per-peer session settings and per-peer route tables,
runs the sessions over :mod:`spinelb.bgp.transport`, serves the local API, and
handles the process signals: SIGTERM withdraws everything and closes every
session with Cease/Administrative Shutdown; SIGHUP reloads the config and
changes only what changed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Mapping
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from spinelb import __version__
from spinelb.bgp import fsm, wire
from spinelb.bgp.rib import PathAttributes
from spinelb.bgp.transport import Listener, PeerSession, PeerTarget
from spinelb.bgp.wire import Address, Family, Prefix
from spinelb.config import (
    ConfigError,
    PeerConfig,
    RouteAttributes,
    SpeakerConfig,
    family_name,
    load_config,
)
from spinelb.speaker.api import ApiServer, announced_status
from spinelb.speaker.metrics import SpeakerMetrics

log = logging.getLogger("spinelb.speaker")

SHUTDOWN_REASON = "spinelb speaker stopping"


def session_settings(config: SpeakerConfig, peer: PeerConfig) -> fsm.SessionSettings:
    """The FSM's view of one peer: what goes into the OPEN and the timers."""
    router_id = config.router_id
    assert isinstance(router_id, IPv4Address)
    gr = config.graceful_restart
    return fsm.SessionSettings(
        local_asn=peer.local_asn,
        peer_asn=peer.asn,
        router_id=router_id,
        hold_time=peer.hold_time,
        keepalive=peer.keepalive,
        passive=peer.passive,
        families=peer.families,
        connect_retry_time=peer.connect_retry,
        graceful_restart_time=None if gr is None else gr.restart_time,
    )


def peer_target(peer: PeerConfig) -> PeerTarget:
    return PeerTarget(
        name=peer.name,
        address=peer.address,
        port=peer.port,
        source_address=peer.source_address,
        ttl=peer.multihop_ttl,
        password=peer.password,
        passive=peer.passive,
    )


def _settle() -> None:
    """Keep the long-lived config out of the cyclic garbage collector's passes.

    A config of 100,000 announcements is a million objects that never form
    cycles; a full collection over them stalls the event loop for a quarter of
    a second, late enough to delay a keepalive.  ``gc.freeze`` moves what
    exists now out of the collector's sight (reference counting still frees it).
    """
    gc.collect()
    gc.freeze()


class RouteTable:
    """Each peer's announcements, grouped by the attributes they ask for.

    Announcements that ask for the same attributes share one RouteAttributes
    object; per peer they become one PathAttributes, so they pack into the same
    UPDATEs and the table for 100,000 prefixes is built with a few dict copies.
    """

    def __init__(self, config: SpeakerConfig) -> None:
        self.config = config
        # peer -> (family, attributes) -> prefixes
        self.groups: dict[str, dict[tuple[Family, RouteAttributes], list[Prefix]]] = {
            p.name: {} for p in config.peers
        }
        for ann in config.announcements:
            key = (ann.family, ann.attributes)
            for name in ann.peers:
                by_attrs = self.groups[name]
                prefixes = by_attrs.get(key)
                if prefixes is None:
                    prefixes = by_attrs[key] = []
                prefixes.append(ann.prefix)

    def routes_for(
        self, peer: PeerConfig, local: Address, families: frozenset[Family]
    ) -> dict[Prefix, PathAttributes]:
        ebgp = not peer.ibgp
        routes: dict[Prefix, PathAttributes] = {}
        for (family, wanted), prefixes in self.groups.get(peer.name, {}).items():
            if family not in families:
                continue
            attrs = self._attributes(wanted, family, peer, local, ebgp)
            if attrs is not None:
                routes.update(dict.fromkeys(prefixes, attrs))
        return routes

    @staticmethod
    def _attributes(
        wanted: RouteAttributes, family: Family, peer: PeerConfig, local: Address, ebgp: bool
    ) -> PathAttributes | None:
        next_hop = wanted.next_hop if wanted.next_hop is not None else local
        if next_hop.version != (4 if family == wire.IPV4_UNICAST else 6):
            log.warning(
                "no next hop of this family on the session (set next_hop); not announced",
                extra={"peer": peer.name, "family": family_name(family)},
            )
            return None
        attrs: list[wire.PathAttribute] = [
            wire.Origin(wire.OriginValue.IGP),
            wire.AsPath.sequence(peer.local_asn) if ebgp else wire.AsPath(),
        ]
        if wanted.med is not None:
            attrs.append(wire.MultiExitDisc(wanted.med))
        if not ebgp:
            attrs.append(wire.LocalPref(100 if wanted.local_pref is None else wanted.local_pref))
        if wanted.communities:
            attrs.append(wire.Communities(wanted.communities))
        if wanted.large_communities:
            attrs.append(wire.LargeCommunities(wanted.large_communities))
        return PathAttributes(tuple(attrs), next_hop)


class Speaker:
    def __init__(self, config: SpeakerConfig, *, config_path: Path | None = None) -> None:
        self.config = config
        self.config_path = config_path
        self.metrics = SpeakerMetrics()
        self.table = RouteTable(config)
        self.sessions: dict[str, PeerSession] = {}
        self.api: ApiServer | None = None
        self.listener: Listener | None = None
        self._stop = asyncio.Event()

    # --- running -------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        await self.start()
        log.info("speaker running", extra={"node": self.config.node_name,
                                            "peers": len(self.sessions),
                                            "announcements": len(self.config.announcements)})
        await self._stop.wait()
        await self.shutdown(SHUTDOWN_REASON)
        return 0

    async def start(self) -> None:
        _settle()
        if self.config.api.enabled:
            assert self.config.api.address is not None
            self.api = ApiServer(
                str(self.config.api.address),
                self.config.api.port,
                status=self.status,
                metrics=self.render_metrics,
                healthy=lambda: True,
            )
            await self.api.start()
        for peer in self.config.peers:
            self._add_session(peer)
        self._start_listener()  # before dialling, so a peer dialling back finds it
        for session in self.sessions.values():
            session.start()
        self.metrics.announcements(len(self.config.announcements))

    def stop(self) -> None:
        """Ask :meth:`run` to shut down (as SIGTERM does)."""
        self._stop.set()

    async def shutdown(self, reason: str) -> None:
        log.info("shutting down", extra={"reason": reason})
        await asyncio.gather(*(s.stop(reason) for s in self.sessions.values()))
        if self.listener is not None:
            await self.listener.close()
        if self.api is not None:
            await self.api.close()

    def _add_session(self, peer: PeerConfig) -> PeerSession:
        def routes(local: Address, families: frozenset[Family]) -> Mapping[Prefix, PathAttributes]:
            return self.table.routes_for(self.config.peer(peer.name), local, families)

        session = PeerSession(
            peer_target(peer), session_settings(self.config, peer), routes=routes, observer=self
        )
        self.sessions[peer.name] = session
        return session

    def _start_listener(self) -> None:
        listen = self.config.listen
        if listen is None:
            return
        by_address = {s.target.address: s for s in self.sessions.values()}
        self.listener = Listener(str(listen.address), listen.port, by_address)
        self.listener.start()

    # --- SIGHUP --------------------------------------------------------------------

    async def reload(self) -> None:
        if self.config_path is None:
            return
        try:
            new = load_config(self.config_path)
        except ConfigError as err:
            log.error("config reload refused; the running config stays", extra={"problems": str(err)})
            return
        except OSError as err:
            log.error("config reload failed", extra={"error": str(err)})
            return
        await self.apply(new)
        _settle()

    async def apply(self, new: SpeakerConfig) -> None:
        """Move to ``new``: restart only sessions whose settings changed, send route differences."""
        old = self.config
        old_peers = {p.name: p for p in old.peers}
        new_peers = {p.name: p for p in new.peers}
        self.config = new
        self.table = RouteTable(new)
        stops = []
        for name, peer in old_peers.items():
            if name not in new_peers:
                stops.append(self._drop(name, wire.CeaseSubcode.PEER_DECONFIGURED, "peer removed"))
            elif (peer_target(peer), session_settings(old, peer)) != (
                peer_target(new_peers[name]), session_settings(new, new_peers[name])
            ):
                stops.append(self._drop(name, wire.CeaseSubcode.OTHER_CONFIGURATION_CHANGE,
                                        "peer settings changed"))
        await asyncio.gather(*stops)
        for name, peer in new_peers.items():
            if name not in self.sessions:
                self._add_session(peer).start()
            else:
                self.sessions[name].refresh_routes()
        if (old.listen, old.api) != (new.listen, new.api):
            log.warning("api/listen changes take effect at the next restart")
        if self.listener is not None:
            self.listener.sessions = {s.target.address: s for s in self.sessions.values()}
        self.metrics.announcements(len(new.announcements))
        log.info("config reloaded", extra={"peers": len(new.peers),
                                           "announcements": len(new.announcements)})

    async def _drop(self, name: str, subcode: int, reason: str) -> None:
        session = self.sessions.pop(name)
        await session.stop(reason, subcode=subcode)
        self.metrics.remove_peer(name)

    # --- observer hooks (SessionObserver) -------------------------------------------

    def state_changed(self, peer: str, old: fsm.State, new: fsm.State) -> None:
        self.metrics.session_state(peer, new.value)

    def message_sent(self, peer: str, msg_type: int, count: int) -> None:
        if msg_type == wire.MessageType.UPDATE:
            self.metrics.update_sent(peer, count)

    def message_received(self, peer: str, msg: wire.Message) -> None:
        if isinstance(msg, wire.Update):
            self.metrics.update_received(peer)
        elif isinstance(msg, wire.Notification):
            self.metrics.notification(peer, msg.code, msg.subcode, "received")

    def notification_sent(self, peer: str, msg: wire.Notification) -> None:
        self.metrics.notification(peer, msg.code, msg.subcode, "sent")

    # --- API ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        peers = []
        for peer in self.config.peers:
            session = self.sessions.get(peer.name)
            if session is None:
                continue
            entry = session.status()
            entry.update(
                asn=peer.asn,
                local_asn=peer.local_asn,
                families=[family_name(f) for f in peer.families],
            )
            peers.append(entry)
        return {
            "node_name": self.config.node_name,
            "router_id": str(self.config.router_id),
            "version": __version__,
            "peers": peers,
            "announced": announced_status(self.config.announcements),
        }

    def render_metrics(self) -> bytes:
        for name, session in self.sessions.items():
            status = session.status()
            self.metrics.advertised(name, status["advertised"])
            self.metrics.received(name, status["received"])
        return self.metrics.render()

