"""Graceful restart (RFC 4724) with the speaker as the restarting side, and the spines' part.

Wire and FSM: the capability's R and F bits and restart time, encoded and decoded; R=1/F=1
only in the first OPEN after a planned restart, then R=0/F=1.  Over real sockets on loopback
(an announcing speaker and a recording one playing the spine, BFD on the session): a planned
restart closes the connection with no NOTIFICATION and no withdrawal after telling BFD
AdminDown, records itself, and the next start says R=1 and F=1; a stale or missing record
says F=0; SIGTERM's shutdown still withdraws and sends Cease; End-of-RIB follows the whole
table and, with a Kubernetes source, only its first complete sync.  Spine side: the site
setting, its inventory layer and checks, the FRR and AOS-CX lines, FRR's idempotence.
"""

from __future__ import annotations

import asyncio
import json
import time
from ipaddress import IPv4Address, ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
from test_spine_bgp_frr_config import collection_module
from test_spine_golden import GOLDEN, compare_with_golden
from test_spine_model import inventory_data
from waiting import wait_for

from lab.apiserver import free_port
from spinelb.bfd import State as BfdState
from spinelb.bgp import fsm, wire
from spinelb.bgp.wire import IPV4_UNICAST, IPV6_UNICAST, GracefulRestart, GracefulRestartFamily
from spinelb.config import ConfigError, parse_config
from spinelb.deploy import SpeakerOptions, speaker_document
from spinelb.speaker.k8s_source import Decision
from spinelb.speaker.speaker import (
    Speaker,
    record_planned_restart,
    take_restart_record,
)
from spinelb.spine import SiteError, load_site, render

frr_config: Any = collection_module("plugins.module_utils.frr_config")
BFD = {"min_tx_ms": 50, "min_rx_ms": 50, "multiplier": 3}
ROUTER_ID = IPv4Address("10.252.1.10")


# --- the capability and the FSM ------------------------------------------------------------


def settings(**changes: Any) -> fsm.SessionSettings:
    base: dict[str, Any] = {"local_asn": 65531, "peer_asn": 65533, "router_id": ROUTER_ID,
                            "families": (IPV4_UNICAST, IPV6_UNICAST), "graceful_restart_time": 120}
    return fsm.SessionSettings(**{**base, **changes})


def gr_of(message: wire.Open) -> GracefulRestart:
    return next(c for c in message.capabilities if isinstance(c, GracefulRestart))


def round_trip(message: wire.Open) -> wire.Open:
    encoded = wire.encode(message, asn4=True)
    decoded = wire.decode(wire.MessageType.OPEN, encoded[wire.HEADER_LEN:], asn4=True)
    assert isinstance(decoded, wire.Open)
    return decoded


@pytest.mark.parametrize(("restarting", "forwarding"), [(False, False), (True, True)])
def test_capability_carries_r_f_and_the_restart_time_both_ways(
    restarting: bool, forwarding: bool
) -> None:
    session = fsm.Session(settings(restart_state=restarting, forwarding_preserved=forwarding))
    sent = session.build_open()
    expected = GracefulRestart(
        restart_time=120, restart_state=restarting, notification=False,
        families=(GracefulRestartFamily(1, 1, forwarding), GracefulRestartFamily(2, 1, forwarding)),
    )
    assert gr_of(sent) == expected
    assert gr_of(round_trip(sent)) == expected
    raw = wire.encode(sent, asn4=True)
    cap = raw[raw.index(bytes([64, 2 + 2 * 4])):][:2 + 2 + 2 * 4]  # code 64, length 10
    assert cap[2] >> 7 == restarting and cap[2] & 0x40 == 0  # R bit; never N (RFC 8538)
    assert int.from_bytes(cap[2:4], "big") & 0x0FFF == 120
    assert [cap[7] >> 7, cap[11] >> 7] == [forwarding, forwarding]  # F per AFI/SAFI


def test_no_graceful_restart_configured_means_no_capability() -> None:
    caps = fsm.Session(settings(graceful_restart_time=None)).build_open().capabilities
    assert not any(isinstance(c, GracefulRestart) for c in caps)


def establish(session: fsm.Session) -> None:
    session.start(0.0)
    session.handle(fsm.Event.TCP_CR_ACKED, 0.0)
    peer = wire.Open(my_as=65533, hold_time=90, bgp_id=IPv4Address("10.2.0.2"),
                     capabilities=(wire.Multiprotocol(1, 1), wire.FourOctetAs(65533)))
    session.receive(peer, 0.1)
    session.receive(wire.Keepalive(), 0.2)
    assert session.state is fsm.State.ESTABLISHED


def test_after_the_first_established_opens_say_r0_f1() -> None:
    session = fsm.Session(settings(restart_state=True, forwarding_preserved=True))
    assert gr_of(session.build_open()).restart_state
    establish(session)
    after = gr_of(session.build_open())
    assert not after.restart_state
    assert all(f.forwarding_preserved for f in after.families)
    stopped = session.stop(1.0, reason="restart", notify=False)  # the planned restart's close
    assert not any(isinstance(a, fsm.Send) for a in stopped)
    assert fsm.Disconnect() in stopped and session.state is fsm.State.IDLE


# --- the restart record -----------------------------------------------------------------------


def test_record_is_taken_once_and_only_when_fresh(tmp_path: Path) -> None:
    path = tmp_path / "run" / "gr.json"
    assert take_restart_record(path) == "no planned restart recorded"
    record_planned_restart(path, 30)
    assert path.stat().st_mode & 0o777 == 0o600
    assert take_restart_record(path) is None
    assert not path.exists()  # consumed: one planned restart, one start with F=1

    record_planned_restart(path, 30, now=time.time() - 31)
    assert "more than the restart time" in (take_restart_record(path) or "")
    record_planned_restart(path, 30)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "boot_id": "another boot"}))
    assert take_restart_record(path) == "recorded before a reboot"
    path.write_text("{not json")
    assert "is not a restart record" in (take_restart_record(path) or "")


# --- two speakers on loopback ---------------------------------------------------------------


class RecordingSpine(Speaker):
    """The receiving side: every UPDATE's prefixes and End-of-RIB in order, and NOTIFICATIONs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[str] = []
        self.notifications: list[wire.Notification] = []
        self.opens: list[wire.Open] = []

    def message_received(self, peer: str, msg: wire.Message) -> None:
        super().message_received(peer, msg)
        if isinstance(msg, wire.Update):
            family = wire.end_of_rib_family(msg)
            if family is not None:
                self.events.append("eor")
            self.events += [f"-{p}" for p in msg.withdrawn]
            self.events += [str(p) for p in msg.nlri]
        elif isinstance(msg, wire.Notification):
            self.notifications.append(msg)
        elif isinstance(msg, wire.Open):
            self.opens.append(msg)


def pair(port: int, state_file: Path, **announcer_extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    announcer = {
        "node_name": "ncn-w001", "router_id": str(ROUTER_ID), "local_asn": 65531,
        "api": {"listen": None},
        "graceful_restart": {"restart_time": 30, "state_file": str(state_file)},
        "peers": [{"name": "spine", "address": "127.0.0.1", "asn": 65533, "port": port,
                   "source_address": "127.0.0.2", "hold_time": 3, "bfd": BFD}],
        "announce": [{"prefix": f"10.92.0.{i}/32", "next_hop": str(ROUTER_ID)} for i in range(50)],
        **announcer_extra,
    }
    spine = {
        "node_name": "sw-spine-001", "router_id": "10.2.0.2", "local_asn": 65533,
        "api": {"listen": None}, "listen": {"address": "127.0.0.1", "port": port},
        "peers": [{"name": "w001", "address": "127.0.0.2", "asn": 65531, "passive": True,
                   "hold_time": 3, "source_address": "127.0.0.1", "bfd": BFD}],
    }
    return announcer, spine


def established(speaker: Speaker, name: str) -> bool:
    return speaker.sessions[name].state is fsm.State.ESTABLISHED


def test_planned_restart_says_nothing_but_admin_down_and_the_next_start_sets_r_and_f(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        state_file = tmp_path / "gr.json"
        announcer, receiver = pair(free_port(), state_file)
        spine = RecordingSpine(parse_config(receiver))
        first = Speaker(parse_config(announcer))
        await spine.start()
        await first.start()
        try:
            await wait_for(lambda: "eor" in spine.events)
            assert not gr_of(spine.opens[-1]).restart_state
            assert not any(f.forwarding_preserved for f in gr_of(spine.opens[-1]).families)
            assert spine.events.index("eor") == 50  # after the whole table

            first.request_restart()  # what SIGUSR2 does; run() then calls planned_restart()
            await first.planned_restart()
            await wait_for(lambda: not established(spine, "w001"))
            assert spine.notifications == []  # closed without a NOTIFICATION...
            assert not any(e.startswith("-") for e in spine.events)  # ...and nothing withdrawn
            assert spine.bfd is not None
            bfd = spine.bfd.session(ip_address("127.0.0.1"), ip_address("127.0.0.2"))
            assert bfd is not None and bfd.remote_state is BfdState.ADMIN_DOWN
            assert state_file.exists()

            spine.events.clear()
            second = Speaker(parse_config(announcer))
            await second.start()
            try:
                assert second.restarting and not state_file.exists()
                await wait_for(lambda: "eor" in spine.events)
                restarted = gr_of(spine.opens[-1])
                assert restarted.restart_state
                assert all(f.forwarding_preserved for f in restarted.families)
                assert spine.events.index("eor") == 50
                assert second.sessions["spine"].status()["end_of_rib_sent"] == ["1/1"]
            finally:
                await second.shutdown("test over")
            # SIGTERM's way is unchanged: withdrawals and Cease/administrative shutdown
            await wait_for(lambda: spine.notifications)
            assert (spine.notifications[-1].code, spine.notifications[-1].subcode) == (6, 2)
            assert "-10.92.0.0/32" in spine.events

            third = Speaker(parse_config(announcer))  # no record now: a crash or a reboot
            await third.start()
            try:
                await wait_for(lambda: established(third, "spine"))
                assert not third.restarting
                crashed = gr_of(spine.opens[-1])
                assert not crashed.restart_state
                assert not any(f.forwarding_preserved for f in crashed.families)
            finally:
                await third.shutdown("test over")
        finally:
            await spine.shutdown("test over")

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_end_of_rib_waits_for_the_kubernetes_first_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Speaker, "_start_source", lambda self: None)  # decisions come from here

    (tmp_path / "kubeconfig").write_text("")  # never read: the source is not started

    async def scenario() -> None:
        announcer, receiver = pair(free_port(), tmp_path / "gr.json",
                                   kubernetes={"kubeconfig": str(tmp_path / "kubeconfig")},
                                   pools=[{"name": "nmn", "addresses": ["10.92.100.0/24"],
                                           "peers": ["spine"]}])
        spine = RecordingSpine(parse_config(receiver))
        speaker = Speaker(parse_config(announcer))
        await spine.start()
        await speaker.start()
        try:
            await wait_for(lambda: established(spine, "w001") and len(spine.events) >= 50)
            await speaker.resync()  # a full round trip: everything queued has been sent
            assert "eor" not in spine.events  # the table is not whole before the first sync
            address = ip_address("10.92.100.71")
            decision = Decision(address, ("services/istio",), "nmn", True, "announced")
            speaker.service_decisions({address: decision}, True)
            await wait_for(lambda: "eor" in spine.events)
            assert spine.events.index("10.92.100.71/32") < spine.events.index("eor")
        finally:
            await speaker.shutdown("test over")
            await spine.shutdown("test over")

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_planned_restart_without_graceful_restart_is_refused() -> None:
    config = parse_config({"node_name": "ncn-w001", "router_id": str(ROUTER_ID),
                           "local_asn": 65531, "api": {"listen": None}, "peers": []})
    speaker = Speaker(config)
    speaker.request_restart()
    assert not speaker._stop.is_set()


def test_config_state_file_default_and_checks() -> None:
    base = {"node_name": "ncn-w001", "router_id": str(ROUTER_ID), "local_asn": 65531,
            "peers": []}
    gr = parse_config({**base, "graceful_restart": {"restart_time": 30}}).graceful_restart
    assert gr is not None
    assert gr.state_path("ncn-w001") == Path("/run/spinelb/graceful-restart-ncn-w001.json")
    with pytest.raises(ConfigError, match=r"graceful_restart\.state_file"):
        parse_config({**base, "graceful_restart": {"restart_time": 30, "state_file": "gr.json"}})


# --- the spines' side ----------------------------------------------------------------------------


def lab_site(**bgp: Any) -> Any:
    site_vars, hosts, groups = inventory_data("lab")
    site_vars.pop("spinelb_bgp_graceful_restart", None)
    site_vars["spinelb_bgp"].update(bgp)
    return site_vars, hosts, groups


def test_site_setting_layer_and_checks() -> None:
    site_vars, hosts, groups = lab_site(graceful_restart=True)
    assert load_site(site_vars, hosts, groups).bgp.graceful_restart_time == 30
    site_vars["spinelb_bgp"]["graceful_restart"] = {"restart_time": 90}
    assert load_site(site_vars, hosts, groups).bgp.graceful_restart_time == 90
    site_vars["spinelb_bgp_graceful_restart"] = False  # the inventory layer wins
    assert load_site(site_vars, hosts, groups).bgp.graceful_restart_time is None
    site_vars["spinelb_bgp_graceful_restart"] = {"restart_time": 0, "stale": 1}
    with pytest.raises(SiteError) as err:
        load_site(site_vars, hosts, groups)
    assert err.value.problems == [
        "spinelb_bgp_graceful_restart.stale: is not a graceful restart setting (restart_time)",
        "spinelb_bgp_graceful_restart.restart_time: 0 is outside 1..3600",
    ]
    site_vars["spinelb_bgp_graceful_restart"] = "yes"
    with pytest.raises(SiteError, match="'yes' is not true, false or a mapping"):
        load_site(site_vars, hosts, groups)


def test_speaker_documents_carry_the_restart_time() -> None:
    site = load_site(*lab_site(graceful_restart={"restart_time": 45}))
    for worker in site.workers:
        document = speaker_document(site, worker, SpeakerOptions())
        assert document["graceful_restart"] == {"restart_time": 45}
        assert parse_config(document).graceful_restart is not None
    off = load_site(*lab_site(graceful_restart=False))
    assert "graceful_restart" not in speaker_document(off, "ncn-w001", SpeakerOptions())


@pytest.mark.parametrize(("platform", "inventory"), [("frr", "lab"), ("aoscx", "reference-site")])
def test_spine_renders_the_stale_path_time(platform: str, inventory: str) -> None:
    site_vars, hosts, groups = inventory_data(inventory)
    site_vars.pop("spinelb_bgp_graceful_restart", None)
    site_vars["spinelb_bgp"]["graceful_restart"] = {"restart_time": 60}
    text = render(load_site(site_vars, hosts, groups), "sw-spine-001", platform)
    compare_with_golden(text, GOLDEN / f"{platform}-gr" / "sw-spine-001.cfg")
    assert "bgp graceful-restart stalepath-time 60" in text
    site_vars["spinelb_bgp"]["graceful_restart"] = False
    assert "graceful-restart" not in render(load_site(site_vars, hosts, groups),
                                            "sw-spine-001", platform)


def test_frr_stale_path_time_is_idempotent_and_removed_when_turned_off() -> None:
    site_vars, hosts, groups = lab_site(graceful_restart={"restart_time": 60})
    want = frr_config.parse(render(load_site(site_vars, hosts, groups), "sw-spine-001", "frr"))
    assert frr_config.commands(want, want, "replaced") == []
    site_vars["spinelb_bgp"]["graceful_restart"] = {"restart_time": 360}  # FRR's default
    default = frr_config.parse(render(load_site(site_vars, hosts, groups), "sw-spine-001", "frr"))
    running = frr_config.parse(frr_config.to_text(default))  # FRR shows no line for 360
    assert frr_config.commands(running, default, "replaced") == []
    site_vars["spinelb_bgp"]["graceful_restart"] = False
    off = frr_config.parse(render(load_site(site_vars, hosts, groups), "sw-spine-001", "frr"))
    removal = frr_config.commands(want, off, "replaced")
    assert " no bgp graceful-restart stalepath-time 60" in removal
    assert frr_config.commands(want, off, "merged") == []  # merged only adds
    predicted = frr_config.predict(want, off, "replaced", frr_config.Ownership())
    assert frr_config.commands(predicted, off, "replaced") == []
    assert ip_network("10.92.100.71/32")  # the lab's ECMP service address, in the goldens' pools
