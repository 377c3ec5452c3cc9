"""The speaker: one BGP session per configured peer, carrying the configured announcements.

It turns the config into per-peer session settings and per-peer route tables,
runs the sessions over :mod:`spinelb.bgp.transport`, serves the local API, and
handles the process signals: SIGTERM withdraws everything and closes every
session with Cease/Administrative Shutdown; SIGHUP reloads the config and
changes only what changed; SIGUSR2, with ``graceful_restart`` configured, is a
planned restart (RFC 4724, docs/graceful-restart.md): BFD AdminDown, every
connection closed without a NOTIFICATION, the restart recorded, exit 0, so the
spines keep the routes until the next process has sent its whole table again.

With a ``kubernetes`` section, the Service addresses this node should announce
(:mod:`spinelb.speaker.k8s_source`) join the static announcements as dynamic
routes; each decision that changes adds or withdraws its one prefix on the
sessions that carry its pool, without walking the rest of the table.

With a ``layer2`` section, the addresses of layer2 pools never reach a BGP
table: the speakers on the segment run BFD with each other, every one computes
the owner of each address over the live eligible nodes
(:mod:`spinelb.l2.announcer`), and this node's responders answer ARP/NDP for
what it owns: :class:`spinelb.speaker.layer2.Layer2Engine` (docs/layer2.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, ip_network
from pathlib import Path
from typing import Any

from spinelb import __version__
from spinelb.bfd import BfdSettings, BfdTransport, State, StateChanged, diag_name
from spinelb.bfd import Session as BfdSession
from spinelb.bgp import fsm, wire
from spinelb.bgp.rib import PathAttributes
from spinelb.bgp.transport import Listener, PeerSession, PeerTarget
from spinelb.bgp.wire import Address, Family, Prefix
from spinelb.config import (
    MODE_LAYER2,
    ConfigError,
    PeerConfig,
    RouteAttributes,
    SpeakerConfig,
    family_name,
    load_config,
)
from spinelb.l2.responder import Responder
from spinelb.speaker.api import (
    ApiServer,
    Query,
    ServiceAddressStatus,
    announced_status,
)
from spinelb.speaker.k8s_source import Decision, KubernetesSource, node_problems
from spinelb.speaker.layer2 import LOGGED_ADDRESSES, Layer2Engine, ResponderFactory
from spinelb.speaker.metrics import SpeakerMetrics

log = logging.getLogger("spinelb.speaker")

SHUTDOWN_REASON = "spinelb speaker stopping"
RESTART_REASON = "spinelb speaker restarting (graceful restart)"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
RESYNC_TIMEOUT = 10.0  # seconds a resync waits for the Kubernetes lists


def session_settings(config: SpeakerConfig, peer: PeerConfig) -> fsm.SessionSettings:
    """The FSM's view of one peer: what goes into the OPEN and the timers.

    Graceful restart, if configured, starts with R=0 and F=0: a spine drops whatever
    it kept of ours as soon as the session is up.  :func:`restarting_settings` is the
    first OPEN after a planned restart.
    """
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
        send_hold_time=peer.send_hold_time,
    )


def restarting_settings(settings: fsm.SessionSettings) -> fsm.SessionSettings:
    """``settings`` for the first OPEN after a planned restart: R=1 and F=1 (RFC 4724)."""
    if settings.graceful_restart_time is None:
        return settings
    return replace(settings, restart_state=True, forwarding_preserved=True)


# --- the planned-restart record (RFC 4724 restarting speaker) ---------------------------


def boot_id() -> str:
    """This boot's id: a record from before a reboot is never taken for a planned restart."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def record_planned_restart(path: Path, restart_time: int, *, now: float | None = None) -> None:
    """Write the record a planned restart leaves for the next start (atomically, mode 0600)."""
    record = {"restarting_at": time.time() if now is None else now, "boot_id": boot_id(),
              "restart_time": restart_time, "pid": os.getpid()}
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(record, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def take_restart_record(path: Path, *, now: float | None = None) -> str | None:
    """Consume the record at ``path``: None when it says this start is a planned restart,
    else why not (no record, unreadable, another boot, older than its restart time).

    The record is removed either way: one planned restart, one start with F=1.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return "no planned restart recorded"
    except OSError as err:
        return f"cannot read {path}: {err.strerror or err}"
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
    try:
        record = json.loads(text)
        at, boot, restart_time = (float(record["restarting_at"]), str(record["boot_id"]),
                                  int(record["restart_time"]))
    except (ValueError, KeyError, TypeError):
        return f"{path} is not a restart record"
    age = (time.time() if now is None else now) - at
    if boot != boot_id():
        return "recorded before a reboot"
    if not 0 <= age <= restart_time:
        return f"recorded {age:.0f} s ago, more than the restart time ({restart_time} s)"
    return None


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


def family_of(prefix: Prefix) -> Family:
    return wire.IPV4_UNICAST if prefix.version == 4 else wire.IPV6_UNICAST


def host_prefix(address: Address) -> Prefix:
    """The /32 (or /128) that announces one Service address."""
    return ip_network(address)


@dataclass(frozen=True, slots=True)
class DynamicRoute:
    """A Service address this node announces: to which peers, with its pool's attributes."""

    peers: tuple[str, ...]
    attributes: RouteAttributes


class RouteTable:
    """Each peer's announcements, grouped by the attributes they ask for, plus the dynamic routes.

    Announcements that ask for the same attributes share one RouteAttributes
    object; per peer they become one PathAttributes, so they pack into the same
    UPDATEs and the table for 100,000 prefixes is built with a few dict copies.

    Dynamic routes (Service addresses from Kubernetes) are kept apart, one entry
    per prefix, so one can change without touching the static groups.  Where a
    prefix is both static and dynamic for the same peer, the static entry wins.
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
        self.dynamic: dict[Prefix, DynamicRoute] = {}
        self._static_peers: dict[Prefix, set[str]] | None = None  # built on first need
        self._path_attributes: dict[
            tuple[str, RouteAttributes, Family, Address], PathAttributes | None
        ] = {}

    def routes_for(
        self, peer: PeerConfig, local: Address, families: frozenset[Family]
    ) -> dict[Prefix, PathAttributes]:
        routes: dict[Prefix, PathAttributes] = {}
        for (family, wanted), prefixes in self.groups.get(peer.name, {}).items():
            if family not in families:
                continue
            attrs = self.path_attributes(peer, wanted, family, local)
            if attrs is not None:
                routes.update(dict.fromkeys(prefixes, attrs))
        for prefix, route in self.dynamic.items():
            family = family_of(prefix)
            if peer.name not in route.peers or family not in families:
                continue
            attrs = self.path_attributes(peer, route.attributes, family, local)
            if attrs is not None:
                routes.setdefault(prefix, attrs)  # a static entry wins
        return routes

    def set_dynamic(self, prefix: Prefix, route: DynamicRoute | None) -> DynamicRoute | None:
        """Make ``route`` the dynamic route of ``prefix`` (None: none); return the previous one."""
        if route is None:
            return self.dynamic.pop(prefix, None)
        old = self.dynamic.get(prefix)
        self.dynamic[prefix] = route
        return old

    def is_static(self, peer: str, prefix: Prefix) -> bool:
        """Whether a static announcement gives ``prefix`` to ``peer``."""
        if self._static_peers is None:
            index: dict[Prefix, set[str]] = {}
            for ann in self.config.announcements:
                index.setdefault(ann.prefix, set()).update(ann.peers)
            self._static_peers = index
        return peer in self._static_peers.get(prefix, ())

    def path_attributes(
        self, peer: PeerConfig, wanted: RouteAttributes, family: Family, local: Address
    ) -> PathAttributes | None:
        """What ``peer`` receives with a route asking for ``wanted`` (one shared object each)."""
        key = (peer.name, wanted, family, local)
        try:
            return self._path_attributes[key]
        except KeyError:
            attrs = self._attributes(wanted, family, peer, local, not peer.ibgp)
            self._path_attributes[key] = attrs
            return attrs

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
    def __init__(
        self,
        config: SpeakerConfig,
        *,
        config_path: Path | None = None,
        responder_factory: ResponderFactory = Responder,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.metrics = SpeakerMetrics()
        self.table = RouteTable(config)
        self.sessions: dict[str, PeerSession] = {}
        self.api: ApiServer | None = None
        self.listener: Listener | None = None
        self.source: KubernetesSource | None = None
        self.decisions: dict[Address, Decision] = {}  # the source's, as last applied
        self.withdrawn: set[Prefix] = set()  # static announcements withdrawn by an operator
        self.bfd: BfdTransport | None = None  # created when a peer asks for BFD
        self._bfd_peers: dict[tuple[Address, Address], str] = {}  # (local, peer) -> peer name
        self._stop = asyncio.Event()
        self._restart_requested = False  # SIGUSR2: leave as a planned restart
        self.restarting = False  # this start follows a planned restart (R=1, F=1)
        self.table_complete = True  # False until a Kubernetes source's first sync
        self.layer2 = Layer2Engine(  # docs/layer2.md
            config=lambda: self.config,
            decisions=lambda: self.decisions,
            bfd=lambda: self.bfd,
            start_bfd=self._bfd_transport,
            bgp_bfd_paths=self._bfd_peers,
            node_status=self._node_status,
            metrics=self.metrics,
            responder_factory=responder_factory,
        )

    # --- running -------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self.reload()))
        loop.add_signal_handler(signal.SIGUSR2, self.request_restart)
        await self.start()
        log.info("speaker running", extra={"node": self.config.node_name,
                                            "peers": len(self.sessions),
                                            "announcements": len(self.config.announcements),
                                            "graceful_restart": self.restarting})
        await self._stop.wait()
        if self._restart_requested:
            await self.planned_restart()
        else:
            await self.shutdown(SHUTDOWN_REASON)
        return 0

    async def start(self) -> None:
        _settle()
        gr = self.config.graceful_restart
        if gr is not None:
            why_not = take_restart_record(gr.state_path(self.config.node_name))
            self.restarting = why_not is None
            log.info("graceful restart", extra={
                "restarting": self.restarting, "restart_time": gr.restart_time,
                "forwarding_preserved": self.restarting, "reason": why_not or "planned restart"})
        self.table_complete = self.config.kubernetes is None
        if self.config.api.enabled:
            assert self.config.api.address is not None
            self.api = ApiServer(
                str(self.config.api.address),
                self.config.api.port,
                status=self.status,
                metrics=self.render_metrics,
                healthy=lambda: True,
                actions={"/resync": self._resync_action, "/withdraw": self._withdraw_action},
            )
            await self.api.start()
        for peer in self.config.peers:
            self._add_session(peer, restarting=self.restarting)
        self._start_listener()  # before dialling, so a peer dialling back finds it
        for peer in self.config.peers:
            if peer.bfd is None:
                self.sessions[peer.name].start()
            else:  # BGP waits for BFD Up (_bfd_changed starts it)
                self._add_bfd(peer)
        self.metrics.announcements(len(self.config.announcements))
        self._start_source()
        self.layer2.update()

    def stop(self) -> None:
        """Ask :meth:`run` to shut down (as SIGTERM does)."""
        self._stop.set()

    def request_restart(self) -> None:
        """Ask :meth:`run` for a planned restart (as SIGUSR2 does); without
        ``graceful_restart`` configured there is none to make, and nothing happens."""
        if self.config.graceful_restart is None:
            log.warning("planned restart refused: graceful_restart is not configured "
                        "(SIGTERM stops the speaker, withdrawing its routes)")
            return
        self._restart_requested = True
        self._stop.set()

    async def planned_restart(self) -> None:
        """Leave so that the spines keep our routes until the next start re-announces them.

        The restart is recorded first (if that fails, the ordinary shutdown runs:
        withdrawn routes are safe, a restart the next start cannot recognise is not).
        Then BFD says AdminDown, so the spines' BFD does not take the silence for a
        failure (RFC 5882 3.2), and every BGP connection is closed with no
        NOTIFICATION and no withdrawal: the start of an RFC 4724 restart.
        """
        gr = self.config.graceful_restart
        assert gr is not None
        path = gr.state_path(self.config.node_name)
        try:
            record_planned_restart(path, gr.restart_time)
        except OSError as err:
            log.error("cannot record the planned restart; stopping as on SIGTERM instead",
                      extra={"path": str(path), "error": err.strerror or str(err)})
            await self.shutdown(SHUTDOWN_REASON)
            return
        log.info("planned restart", extra={"restart_time": gr.restart_time, "record": str(path)})
        await self._stop_source()
        self.layer2.stop()
        await asyncio.gather(*(s.stop(RESTART_REASON, withdraw=False, notify=False)
                               for s in self.sessions.values()))
        await self._close_after_sessions()  # BFD after the connections: see the docstring

    async def shutdown(self, reason: str) -> None:
        log.info("shutting down", extra={"reason": reason})
        await self._stop_source()
        self.layer2.stop()  # first: the other speakers take our addresses over at once
        await asyncio.gather(*(s.stop(reason) for s in self.sessions.values()))
        await self._close_after_sessions()  # after the Cease: AdminDown says it is planned

    async def _close_after_sessions(self) -> None:
        """BFD (AdminDown to every peer), the listener and the API, once the sessions are closed."""
        if self.bfd is not None:
            self.bfd.close(admin_down=True)
            self.bfd = None
        if self.listener is not None:
            await self.listener.close()
        if self.api is not None:
            await self.api.close()

    def _add_session(self, peer: PeerConfig, *, restarting: bool = False) -> PeerSession:
        def routes(local: Address, families: frozenset[Family]) -> Mapping[Prefix, PathAttributes]:
            return self.table.routes_for(self.config.peer(peer.name), local, families)

        settings = session_settings(self.config, peer)
        if restarting:
            settings = restarting_settings(settings)
        session = PeerSession(peer_target(peer), settings, routes=routes, observer=self)
        session.table_complete = self.table_complete  # End-of-RIB waits for the first sync
        self.sessions[peer.name] = session
        return session

    def _start_source(self) -> None:
        kubernetes = self.config.kubernetes
        if kubernetes is None or self.source is not None:
            return
        self.source = KubernetesSource(
            kubernetes, self.config.node_name, self.config.pools, self.service_decisions
        )
        self.source.start()

    async def _stop_source(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            await source.stop()

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
        self.withdrawn.clear()  # the file is the config again
        _settle()

    async def apply(self, new: SpeakerConfig) -> None:
        """Move to ``new``: restart only sessions whose settings changed, send route differences."""
        old = self.config
        old_peers = {p.name: p for p in old.peers}
        new_peers = {p.name: p for p in new.peers}
        await self._reconfigure_source(old, new)
        self.config = new
        self.table = RouteTable(new)
        for address, decision in self.decisions.items():
            self.table.set_dynamic(host_prefix(address), self._route(decision))
        self._count_service_addresses()
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
                self._add_session(peer)
                if peer.bfd is None:
                    self.sessions[name].start()
                else:
                    self._add_bfd(peer)
            else:
                if old_peers[name].bfd != peer.bfd:
                    self._change_bfd(old_peers[name], peer)
                self.sessions[name].refresh_routes()
        if (old.listen, old.api) != (new.listen, new.api):
            log.warning("api/listen changes take effect at the next restart")
        if self.listener is not None:
            self.listener.sessions = {s.target.address: s for s in self.sessions.values()}
        self.metrics.announcements(len(new.announcements))
        self.layer2.update()  # the mesh, the pools' interfaces and the addresses, as now configured
        log.info("config reloaded", extra={"peers": len(new.peers),
                                           "announcements": len(new.announcements)})

    async def _reconfigure_source(self, old: SpeakerConfig, new: SpeakerConfig) -> None:
        """Follow a reload: restart the source for a new API or node, or re-decide for new pools.

        A restarted source's decisions stand until its first sync replaces them;
        a removed ``kubernetes`` section drops them all.
        """
        if new.kubernetes is None:
            await self._stop_source()
            self.decisions = {}
            return
        restart = (old.kubernetes, old.node_name) != (new.kubernetes, new.node_name)
        if self.source is None or restart:
            await self._stop_source()
            self.source = KubernetesSource(
                new.kubernetes, new.node_name, new.pools, self.service_decisions
            )
            self.source.start()
            return
        for address, decision in self.source.reconfigure(new.pools).items():
            if decision is None:
                self.decisions.pop(address, None)
            else:
                self.decisions[address] = decision

    async def _drop(self, name: str, subcode: int, reason: str) -> None:
        session = self.sessions.pop(name)
        await session.stop(reason, subcode=subcode)
        self._remove_bfd(name)
        self.metrics.remove_peer(name)

    # --- BFD (RFC 5880/5882): the path's liveness gates the BGP session --------------------

    def _add_bfd(self, peer: PeerConfig) -> None:
        """A BFD session on ``peer``'s path; its BGP session starts when BFD comes Up."""
        assert peer.bfd is not None and peer.source_address is not None  # validated
        settings = BfdSettings(min_tx_ms=peer.bfd.min_tx_ms, min_rx_ms=peer.bfd.min_rx_ms,
                               multiplier=peer.bfd.multiplier)
        self._bfd_peers[(peer.source_address, peer.address)] = peer.name
        self._bfd_transport().add_session(peer.source_address, peer.address, settings)

    def _bfd_transport(self) -> BfdTransport:
        """The one BFD transport, shared by the BGP peers and the layer2 mesh."""
        if self.bfd is None:
            self.bfd = BfdTransport(self._bfd_changed)
        return self.bfd

    def _change_bfd(self, old: PeerConfig, new: PeerConfig) -> None:
        """A reload that changes only a kept peer's ``bfd``: its BGP session is not restarted.

        BFD off: our BFD session says AdminDown and goes; a BGP session that BFD had torn
        down starts again.  BFD on: a BFD session starts beside the running BGP session
        (which it tears down if it goes from Up to Down).  New timers: a Poll sequence on
        the running BFD session.
        """
        session = self.sessions[new.name]
        if new.bfd is None:
            self._remove_bfd(new.name)
            if session.state is fsm.State.IDLE:
                session.start()
        elif old.bfd is None:
            self._add_bfd(new)
        else:
            assert new.source_address is not None  # validated with bfd
            found = self.bfd.session(new.source_address, new.address) if self.bfd else None
            if self.bfd is not None and found is not None:
                self.bfd.reconfigure(found, BfdSettings(
                    min_tx_ms=new.bfd.min_tx_ms, min_rx_ms=new.bfd.min_rx_ms,
                    multiplier=new.bfd.multiplier))
        log.info("bfd reconfigured", extra={"peer": new.name, "bfd": new.bfd is not None})

    def _remove_bfd(self, name: str) -> None:
        for key, peer in list(self._bfd_peers.items()):
            if peer == name:
                del self._bfd_peers[key]
                found = self.bfd.session(*key) if self.bfd is not None else None
                if self.bfd is not None and found is not None:
                    self.bfd.remove_session(found)

    def bfd_state(self, name: str) -> str | None:
        """The BFD state of peer ``name``'s path ("Up", "Down", ...), None without BFD."""
        for (local, address), peer in self._bfd_peers.items():
            if peer == name and self.bfd is not None:
                found = self.bfd.session(local, address)
                return found.state.label if found is not None else None
        return None

    def _bfd_changed(self, bfd: BfdSession, change: StateChanged) -> None:
        """BFD Up starts the BGP session; Up -> Down tears it down at once (Cease 10).

        BFD disabled, by the peer (it says AdminDown) or here (our session goes
        AdminDown), is not a failure (RFC 5882 3.2): the BGP session is left alone.
        A layer2 peer's session goes to :meth:`Layer2Engine.bfd_changed` instead.
        """
        if self.layer2.bfd_changed(bfd, change):
            return
        name = self._bfd_peers.get((bfd.local_address, bfd.peer_address))
        session = self.sessions.get(name) if name is not None else None
        if session is None:
            return
        log.info("bfd state", extra={"peer": name, "old": change.old.label,
                                     "new": change.new.label, "diag": diag_name(change.diag)})
        if change.new is State.UP:
            if session.state is fsm.State.IDLE:
                session.start()
        elif (change.old is State.UP and change.new is State.DOWN
              and bfd.remote_state is not State.ADMIN_DOWN):
            reason = f"BFD down: {diag_name(change.diag)}"
            log.warning("bgp session torn down by bfd", extra={"peer": name, "reason": reason})
            asyncio.get_running_loop().create_task(session.stop(
                reason, subcode=wire.CeaseSubcode.BFD_DOWN, withdraw=False, timeout=0.2))

    # --- Service addresses (the Kubernetes source's decisions) ---------------------------

    def service_decisions(self, changed: Mapping[Address, Decision | None], complete: bool) -> None:
        """Apply the source's changed decisions: add or withdraw just those prefixes.

        ``complete`` means ``changed`` is every decision (a first sync): addresses
        not in it are withdrawn.
        """
        if complete:
            changed = {**dict.fromkeys(self.decisions.keys() - changed.keys()), **changed}
        add: dict[str, dict[Prefix, RouteAttributes]] = {}
        remove: dict[str, list[Prefix]] = {}
        for address, decision in changed.items():
            if decision is None:
                self.decisions.pop(address, None)
            else:
                self.decisions[address] = decision
            prefix = host_prefix(address)
            route = None if decision is None else self._route(decision)
            old = self.table.set_dynamic(prefix, route)
            old_peers = frozenset(old.peers) if old is not None else frozenset()
            new_peers = frozenset(route.peers) if route is not None else frozenset()
            for name in old_peers - new_peers:
                remove.setdefault(name, []).append(prefix)
            if route is not None:
                for name in new_peers:
                    if old is None or name not in old_peers or old.attributes != route.attributes:
                        add.setdefault(name, {})[prefix] = route.attributes
        for name in add.keys() | remove.keys():
            self._send_route_changes(name, add.get(name, {}), remove.get(name, []))
        if complete and not self.table_complete:  # the first sync: the table is whole now
            self.table_complete = True
            for session in self.sessions.values():
                session.complete_table()  # End-of-RIB after the routes just queued
        self._count_service_addresses()
        self.layer2.update()
        if changed:
            up = sorted(str(a) for a, d in changed.items() if d is not None and d.announce)
            down = sorted(str(a) for a, d in changed.items() if d is None or not d.announce)
            log.info("service addresses changed", extra={
                "announce": len(up), "not_announce": len(down),
                "addresses": " ".join([*up, *(f"-{a}" for a in down)][:LOGGED_ADDRESSES]),
            })

    def _route(self, decision: Decision) -> DynamicRoute | None:
        """The route for an address decided "announce": its pool's peers that carry the family."""
        if not decision.announce or decision.pool is None or decision.mode == MODE_LAYER2:
            return None  # a layer2 address is answered by ARP/NDP, never announced
        try:
            pool = self.config.pool(decision.pool)
        except KeyError:  # decided with pools a reload has replaced; re-decided there
            return None
        if pool.layer2:  # decided before a reload made the pool layer2; re-decided there
            return None
        family = family_of(host_prefix(decision.address))
        peers = tuple(name for name in pool.peers if self.config.peer(name).carries(family))
        return DynamicRoute(peers, pool.attributes) if peers else None

    def _send_route_changes(
        self, name: str, add: Mapping[Prefix, RouteAttributes], remove: list[Prefix]
    ) -> None:
        """Give one session its changed dynamic routes (those a static entry overrides stay)."""
        session = self.sessions.get(name)
        if session is None or session.rib is None or session.local_address is None:
            return  # not Established: it takes the whole table when it is
        peer = self.config.peer(name)
        local = session.local_address
        put: dict[Prefix, PathAttributes] = {}
        for prefix, wanted in add.items():
            if self.table.is_static(name, prefix):
                continue
            attrs = self.table.path_attributes(peer, wanted, family_of(prefix), local)
            if attrs is not None:
                put[prefix] = attrs
        gone = [prefix for prefix in remove if not self.table.is_static(name, prefix)]
        session.update_routes(put, gone)

    def _count_service_addresses(self) -> None:
        self.metrics.service_addresses(
            known=len(self.decisions),
            announced=sum(1 for d in self.decisions.values() if self._route(d) is not None),
        )

    def services_status(self) -> list[ServiceAddressStatus]:
        """Per Service address: which Services use it, and whether and why it is announced."""
        entries: list[ServiceAddressStatus] = []
        for address in sorted(self.decisions, key=lambda a: (a.version, a)):
            decision = self.decisions[address]
            prefix = host_prefix(address)
            route = self.table.dynamic.get(prefix)
            reason = decision.reason
            peers: list[str] = []
            if decision.mode == MODE_LAYER2:
                chosen = self.layer2.assignment.owners.get(address)
                reason += (f"; layer2: answered by {chosen}" if chosen is not None
                           else "; layer2: no live eligible node answers it")
            elif decision.announce and route is None and decision.pool is not None:
                reason += (f"; no peer of pool {decision.pool} carries "
                           f"IPv{address.version}")
            elif route is not None:
                peers = list(route.peers)
                static = [name for name in peers if self.table.is_static(name, prefix)]
                if static:
                    reason += f"; the static announcement wins on {', '.join(static)}"
            entries.append({
                "address": str(address),
                "pool": decision.pool,
                "services": list(decision.services),
                "announced": bool(peers),
                "reason": reason,
                "peers": peers,
            })
        return entries

    # --- Layer 2: the engine decides (docs/layer2.md); what it reads of the speaker --------

    def set_node_eligible(self, eligible: bool) -> None:
        """Without a Kubernetes source: whether this node may answer layer2 addresses.

        With a source, its Node status decides (Ready, not excluded) and this is overridden.
        """
        self.layer2.set_node_eligible(eligible)

    def _node_status(self) -> bool | None:
        """Whether this node's Node is Ready and not excluded (as decide() rules).

        None, which leaves the engine's last answer standing, until a Kubernetes source has
        synced, and without one.
        """
        source = self.source
        if source is None or not source.synced:
            return None
        return not node_problems(source.node, source.nodes.get(source.node))

    # --- resynchronising (POST /resync) -------------------------------------------------

    async def resync(self, *, timeout: float = RESYNC_TIMEOUT) -> dict[str, Any]:
        """What an operator means by "resynchronise": the API read again, every route resent.

        With a Kubernetes source, Services, EndpointSlices and the Node are listed
        again (only the difference is applied; an unreachable API changes
        nothing) and every address is decided anew.  Then every Established
        peer gets its whole Adj-RIB-Out again, as after its ROUTE-REFRESH
        (RFC 2918), and a peer waiting out its connect backoff is tried at
        once.  Harmless when repeated.
        """
        kubernetes = "not configured"
        if self.source is not None:
            kubernetes = await self.source.relist(timeout)
        peers = {name: self._resend(session) for name, session in self.sessions.items()}
        addresses = sum(1 for d in self.decisions.values() if self._route(d) is not None)
        log.info("resynchronised", extra={"kubernetes": kubernetes, "addresses": addresses,
                                          "peers": "; ".join(f"{n}: {r}" for n, r in peers.items())})
        return {"resynced": True, "kubernetes": kubernetes, "peers": peers, "addresses": addresses}

    async def _resync_action(self, query: Query) -> tuple[int, dict[str, Any]]:
        return 200, await self.resync()

    async def withdraw_static(self, prefixes: Iterable[Prefix]) -> dict[str, Any]:
        """Stop announcing static ``prefixes`` until the config file is next loaded.

        For an announcement no Service stands behind (reconciliation's
        ``stale``): the running config loses those announcements and every
        session gets the difference, as on a reload; the file is not touched,
        so the next reload or restart announces them again unless the file
        changed.  Refuses, changing nothing, a prefix that is not a static
        announcement.
        """
        wanted = set(prefixes)
        static = {ann.prefix for ann in self.config.announcements}
        unknown = sorted(str(p) for p in wanted - static)
        if unknown:
            raise ValueError(f"prefix: {', '.join(unknown)} is not a static announcement of "
                             "this speaker")
        kept = tuple(ann for ann in self.config.announcements if ann.prefix not in wanted)
        self.withdrawn |= wanted
        await self.apply(replace(self.config, announcements=kept))
        done = sorted(str(p) for p in wanted)
        log.warning("static announcements withdrawn until the next reload",
                    extra={"prefixes": ",".join(done)})
        return {"withdrawn": done, "until": "the config file is loaded again (reload, restart)"}

    async def _withdraw_action(self, query: Query) -> tuple[int, dict[str, Any]]:
        texts = query.get("prefix") or []
        if not texts:
            return 400, {"error": "prefix: give one or more, ?prefix=10.92.100.255/32"}
        try:
            prefixes = [ip_network(text) for text in texts]
            return 200, await self.withdraw_static(prefixes)
        except ValueError as err:
            return 400, {"error": str(err) if str(err).startswith("prefix") else
                         f"prefix: {err}"}

    def _resend(self, session: PeerSession) -> str:
        """Give an Established session its whole table again; what was done, for a person."""
        session.refresh_routes()  # first bring the Adj-RIB-Out in line with the route table
        rib = session.rib
        if rib is None or session.state is not fsm.State.ESTABLISHED:
            state = session.state.value
            if session.retry_now():  # a spine fixed meanwhile: no need to wait out the backoff
                return f"{state}, connecting now"
            return f"{state}, not resent"
        for family in sorted(rib.families):
            rib.refresh(family)  # what the session does on a received ROUTE-REFRESH
        session.schedule_pump()
        return f"resent {rib.wanted} prefixes"

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
                bfd=self.bfd_state(peer.name),
            )
            peers.append(entry)
        return {
            "node_name": self.config.node_name,
            "router_id": str(self.config.router_id),
            "version": __version__,
            "peers": peers,
            "announced": announced_status(self.config.announcements),
            "withdrawn": sorted(str(p) for p in self.withdrawn),
            "kubernetes": None if self.source is None else self.source.status(),
            "services": self.services_status(),
            "layer2": self.layer2.status(),
        }

    def render_metrics(self) -> bytes:
        for name, session in self.sessions.items():
            status = session.status()
            self.metrics.advertised(name, status["advertised"])
            self.metrics.received(name, status["received"])
        if self.source is not None:
            self.metrics.kubernetes_connected(self.source.connected)
        self.layer2.count_requests()
        return self.metrics.render()

