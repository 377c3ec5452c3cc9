"""``POST /resync`` against running speakers: the API listed again, every route resent on the wire.

The set-up is test_speaker_k8s's: the lab's API server (lab/apiserver.py), the
announcing speaker, and a second speaker acting as the spine that records
every UPDATE it receives.  A change the speaker must not see by its watches is
made while the emulator holds them (``hold_watches``): only the re-list that
``/resync`` asks for can bring it.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import yaml
from test_speaker_k8s import (
    NODE,
    STATIC,
    WORKERS,
    Spine,
    endpoint_slice,
    host,
    lab,
    lb_service,
    speakers,
)
from waiting import wait_for

from lab.apiserver import LAB_TOKEN, ApiServerProcess, free_port, node_objects
from spinelb.config import parse_config
from spinelb.speaker.speaker import Speaker


async def post(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """``POST path`` to a local API; the status code and the JSON answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def api_port(speaker: Speaker) -> int:
    assert speaker.api is not None
    return speaker.api.port


def updates_received(spine: Spine) -> float:
    """The spine's count of UPDATE messages received (the metric the observer hook keeps)."""
    for line in spine.render_metrics().decode().splitlines():
        if line.startswith('spinelb_updates_received_total{peer="w001"}'):
            return float(line.split()[-1])
    return 0.0


def test_resync_relists_and_resends_every_route_on_the_wire() -> None:
    async def scenario() -> None:
        async with lab(lb_service("web", "10.102.10.131"), lb_service("kea", "10.102.10.132"),
                       api={"listen": f"127.0.0.1:{free_port()}"}) as t:
            await t.arrives("10.102.10.131")
            await t.arrives("10.102.10.132")
            await wait_for(lambda: all(t.requests("watch")))
            lists = t.requests("list")
            expected = sorted([("announce", STATIC), ("announce", host("10.102.10.131")),
                               ("announce", host("10.102.10.132"))])
            for round_ in (1, 2):  # harmless when repeated: the same answer, the same UPDATEs
                mark, updates = len(t.spine.log), updates_received(t.spine)
                code, answer = await post(api_port(t.speaker), "/resync")
                assert code == 200
                assert answer == {"resynced": True, "kubernetes": "relisted",
                                  "peers": {"spine": "resent 3 prefixes"}, "addresses": 2}
                assert t.requests("list") == [n + round_ for n in lists]
                await wait_for(lambda: sorted(t.spine.log[mark:]) == expected)  # noqa: B023
                # The static route and the two Service addresses (one attribute set): 2 UPDATEs.
                assert updates_received(t.spine) - updates == 2
            assert t.withdrawals() == []

    asyncio.run(scenario())


def test_resync_applies_changes_the_watches_missed() -> None:
    """Services deleted, moved and created, a Local Service's endpoint gone: all while no watch runs."""

    async def scenario() -> None:
        async with lab(lb_service("keep", "10.102.10.140"), lb_service("gone", "10.102.10.141"),
                       lb_service("moved", "10.102.10.142"),
                       lb_service("kea", "10.102.10.145", local=True),
                       endpoint_slice("kea", NODE),
                       api={"listen": f"127.0.0.1:{free_port()}"}) as t:
            for last in (140, 141, 142, 145):
                await t.arrives(f"10.102.10.{last}")
            await wait_for(lambda: all(t.requests("watch")))
            watches = t.requests("watch")
            t.api.hold_watches()
            try:
                assert t.api.expire_watches() == 3
                await wait_for(lambda: t.requests("watch") == [w + 1 for w in watches])
                t.api.delete_object("services", "services", "gone")
                t.api.put_object(lb_service("moved", "10.102.10.143"))
                t.api.create_object(lb_service("new", "10.102.10.144"))
                t.api.delete_object("endpointslices", "services", "kea-abcde")

                code, answer = await post(api_port(t.speaker), "/resync")
                assert code == 200
                assert answer == {"resynced": True, "kubernetes": "relisted",
                                  "peers": {"spine": "resent 4 prefixes"}, "addresses": 3}
                want = {STATIC, *(host(f"10.102.10.{last}") for last in (140, 143, 144))}
                await wait_for(lambda: t.received == want)
                assert sorted(t.withdrawals()) == sorted(
                    host(f"10.102.10.{last}") for last in (141, 142, 145))
                assert t.entry("10.102.10.145")["reason"] == (
                    f"Local policy: no ready endpoint on {NODE}")
                # Each reflector watches again from its new list (held by the emulator still).
                await wait_for(lambda: t.requests("watch") == [w + 2 for w in watches])
            finally:
                t.api.release_watches()

    asyncio.run(scenario())


def test_resync_with_the_api_unreachable_keeps_every_route(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(yaml.safe_dump_all([*node_objects(WORKERS),
                                        lb_service("web", "10.102.10.150")]))

    async def scenario() -> None:
        kubeconfig = tmp_path / "kubeconfig"
        server = ApiServerProcess(free_port(), kubeconfig, [seed])
        await server.start()
        try:
            async with speakers(kubeconfig, None) as t:
                await t.arrives("10.102.10.150")
                await server.stop()
                await wait_for(lambda: not t.speaker.status()["kubernetes"]["connected"])
                mark = len(t.spine.log)
                answer = await t.speaker.resync(timeout=0.5)
                assert answer["kubernetes"].startswith("unreachable: ")
                assert LAB_TOKEN not in json.dumps(answer)
                assert answer["peers"] == {"spine": "resent 2 prefixes"}
                assert answer["addresses"] == 1
                want = sorted([("announce", STATIC), ("announce", host("10.102.10.150"))])
                await wait_for(lambda: sorted(t.spine.log[mark:]) == want)
                assert t.withdrawals() == []

                await server.start()
                answer = await t.speaker.resync()
                assert answer["kubernetes"] == "relisted"
                assert t.withdrawals() == []
        finally:
            await server.stop()

    asyncio.run(scenario())


def test_resync_without_kubernetes_resends_to_established_peers_only() -> None:
    async def scenario() -> None:
        port = free_port()
        announcer = {
            "node_name": "ncn-w001", "router_id": "10.252.1.10", "local_asn": 65531,
            "api": {"listen": f"127.0.0.1:{free_port()}"},
            "peers": [
                {"name": "spine", "address": "127.0.0.1", "asn": 65533, "port": port,
                 "source_address": "127.0.0.2", "hold_time": 3},
                # nobody listens there: never Established
                {"name": "spine-2", "address": "127.0.0.1", "asn": 65533, "port": free_port(),
                 "source_address": "127.0.0.3", "hold_time": 3},
            ],
            "announce": [{"prefix": f"10.92.0.{i}/32", "next_hop": "10.252.1.10"}
                         for i in range(20)],
        }
        receiver = {
            "node_name": "sw-spine-001", "router_id": "10.2.0.2", "local_asn": 65533,
            "api": {"listen": None}, "listen": {"address": "127.0.0.1", "port": port},
            "peers": [{"name": "w001", "address": "127.0.0.2", "asn": 65531, "passive": True,
                       "hold_time": 3}],
        }
        speaker, spine = Speaker(parse_config(announcer)), Spine(parse_config(receiver))
        await spine.start()
        await speaker.start()
        try:
            await wait_for(lambda: len(spine.routes) == 20)
            mark, updates = len(spine.log), updates_received(spine)
            code, answer = await post(api_port(speaker), "/resync")
            assert code == 200
            assert answer["kubernetes"] == "not configured"
            assert answer["addresses"] == 0
            assert answer["peers"]["spine"] == "resent 20 prefixes"
            # refused and waiting out its backoff: tried again at once (or still connecting)
            assert re.fullmatch(r"(Idle|Active), connecting now|Connect, not resent",
                                answer["peers"]["spine-2"]), answer["peers"]["spine-2"]
            await wait_for(lambda: len(spine.log) - mark == 20)
            assert sorted(p for _, p in spine.log[mark:]) == sorted(spine.routes)
            assert updates_received(spine) - updates == 1  # 20 prefixes, one attribute set
        finally:
            await speaker.shutdown("test over")
            await spine.shutdown("test over")

    asyncio.run(scenario())


def test_withdraw_takes_a_static_announcement_off_the_wire_until_the_file_is_loaded_again(
        tmp_path: Path) -> None:
    """``POST /withdraw?prefix=P`` (reconciliation's repair of a stale static announcement):
    the spine sees P withdrawn and nothing else; a prefix that is not static is refused,
    naming it, with nothing changed; a reload from the unchanged file announces P again."""
    async def scenario() -> None:
        port = free_port()
        announcer = {
            "node_name": "ncn-w001", "router_id": "10.252.1.10", "local_asn": 65531,
            "api": {"listen": f"127.0.0.1:{free_port()}"},
            "peers": [{"name": "spine", "address": "127.0.0.1", "asn": 65533, "port": port,
                       "source_address": "127.0.0.2", "hold_time": 3}],
            "announce": [{"prefix": f"10.92.0.{i}/32", "next_hop": "10.252.1.10"}
                         for i in range(5)],
        }
        receiver = {
            "node_name": "sw-spine-001", "router_id": "10.2.0.2", "local_asn": 65533,
            "api": {"listen": None}, "listen": {"address": "127.0.0.1", "port": port},
            "peers": [{"name": "w001", "address": "127.0.0.2", "asn": 65531, "passive": True,
                       "hold_time": 3}],
        }
        config_file = tmp_path / "speaker.yaml"
        config_file.write_text(yaml.safe_dump(announcer))
        speaker = Speaker(parse_config(announcer), config_path=config_file)
        spine = Spine(parse_config(receiver))
        await spine.start()
        await speaker.start()
        try:
            await wait_for(lambda: len(spine.routes) == 5)
            code, answer = await post(api_port(speaker), "/withdraw?prefix=10.92.0.3%2F32")
            assert (code, answer["withdrawn"]) == (200, ["10.92.0.3/32"])
            await wait_for(lambda: len(spine.routes) == 4)
            assert [str(p) for kind, p in spine.log if kind == "withdraw"] == ["10.92.0.3/32"]
            assert speaker.status()["withdrawn"] == ["10.92.0.3/32"]

            for bad in ("10.92.0.9/32", "not-a-prefix"):
                code, answer = await post(api_port(speaker), f"/withdraw?prefix={bad}")
                assert code == 400 and bad in answer["error"], answer
                assert answer["error"].startswith("prefix: ")
            code, answer = await post(api_port(speaker), "/withdraw")
            assert code == 400 and answer["error"].startswith("prefix: ")
            assert len(speaker.config.announcements) == 4

            await speaker.reload()  # the file still has it
            await wait_for(lambda: len(spine.routes) == 5)
            assert speaker.status()["withdrawn"] == []
        finally:
            await speaker.shutdown("test over")
            await spine.shutdown("test over")

    asyncio.run(scenario())
