"""spine_bgp's AOS-CX REST push of BFD: ``bfd``, the SVIs' timers and ``fall-over bfd``.

Against the fake switch, which keeps BFD as fields and prints the CLI from them
(tests/unit/fake_aoscx.py), so what is read back is normalised as on a real switch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_aoscx import API, FakeAoscx, cli_to_json, json_to_cli
from test_spine_bgp_aoscx import (
    FOREIGN,
    GOLDEN,
    WITH_POOLS,
    ac,
    action,
    add_static_routes,
    run,
    writes,
)
from test_spine_golden import with_bfd

GOLDEN_BFD = Path(__file__).resolve().parents[1] / "golden" / "aoscx-bfd" / "sw-spine-001.cfg"
OWNED_BFD = dict(WITH_POOLS, vlans=[2, 6])
SVI_2 = """interface vlan 2
    vsx-sync active-gateways
    ip mtu 9198
    ip address 10.252.0.2/17
    active-gateway ip mac 12:00:00:00:6b:00
    active-gateway ip 10.252.0.1
    ip ospf 1 area 0.0.0.0
"""
SVI_6 = """interface vlan 6
    ip mtu 9198
    ip address 10.102.5.2/25
    active-gateway ip 10.102.5.1
"""
BASE = "hostname sw-spine-001\ninterface mgmt\n    ip static 192.0.2.10/24\n" + SVI_2 + SVI_6
TIMERS = ["    bfd min-transmit-interval 500", "    bfd min-receive-interval 500",
          "    bfd detect-multiplier 3"]


@pytest.fixture
def switch() -> Iterator[FakeAoscx]:
    fake = FakeAoscx(running_config=BASE, startup_config=BASE, pending_polls=1)
    fake.start()
    yield fake
    fake.stop()


def push(switch: FakeAoscx, state: str, intent: str, **kwargs: Any) -> dict[str, Any]:
    return run(switch, state, intent, owned=kwargs.pop("owned", OWNED_BFD), **kwargs)


def block(text: str, header: str) -> list[str]:
    """The lines of the top-level block ``header`` of ``text`` (header included)."""
    lines = text.splitlines()
    start = lines.index(header)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")),
               len(lines))
    return lines[start:end]


def fall_overs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().endswith("fall-over bfd")]


def retimed(text: str, tx: int, rx: int, multiplier: int) -> str:
    return (text.replace("bfd min-transmit-interval 500", f"bfd min-transmit-interval {tx}")
            .replace("bfd min-receive-interval 500", f"bfd min-receive-interval {rx}")
            .replace("bfd detect-multiplier 3", f"bfd detect-multiplier {multiplier}"))


def test_bfd_pushed_into_the_existing_svis_then_idempotent(switch: FakeAoscx) -> None:
    intent = GOLDEN_BFD.read_text()
    result = push(switch, "merged", intent, diff=True)
    assert result["changed"] is True and "failed" not in result
    assert result["commands"][:5] == ["bfd", "interface vlan 6", *TIMERS]
    assert "    neighbor 10.102.5.14 fall-over bfd" in result["commands"]
    running = switch.running_config
    # every line the SVIs had stays, in its order; the timers join them
    assert block(running, "interface vlan 2") == SVI_2.splitlines() + TIMERS
    assert block(running, "interface vlan 6") == SVI_6.splitlines() + TIMERS
    assert running.splitlines()[:3] == ["hostname sw-spine-001", "bfd", "interface mgmt"]
    assert len(fall_overs(running)) == len(fall_overs(intent)) == 8
    assert ac.parse(running) == ac.parse(intent) == result["after"]
    assert switch.startup_config == running
    as_json = cli_to_json(running)
    assert as_json["System"]["bfd_enable"] is True
    assert as_json["Interface"]["vlan6"] == {"bfd_min_tx_interval": 500,
                                             "bfd_min_rx_interval": 500,
                                             "bfd_detect_multiplier": 3}
    assert "bfd\ninterface vlan 2\n" + "\n".join(TIMERS) in result["diff"]["after"]
    assert "bfd" not in result["diff"]["before"]

    switch.requests.clear()
    for state in ("merged", "replaced", "overridden"):
        again = push(switch, state, intent, check_mode=state == "merged", diff=True)
        assert again["changed"] is False and again["commands"] == [], state
    assert writes(switch) == [] and switch.running_config == running


def test_check_mode_reports_bfd_and_changes_nothing(switch: FakeAoscx) -> None:
    result = push(switch, "merged", GOLDEN_BFD.read_text(), check_mode=True, diff=True)
    assert result["changed"] is True and "after" not in result
    assert result["commands"][:2] == ["bfd", "interface vlan 6"]
    assert "interface vlan 2\n" + "\n".join(TIMERS) in result["diff"]["after"]
    assert ("POST", f"{API}/configs/running-config?dryrun") in switch.requests
    assert writes(switch) == [] and switch.running_config == BASE


def test_a_missing_svi_fails_naming_the_vlan_before_anything_changes(switch: FakeAoscx) -> None:
    switch.running_config = BASE.replace(SVI_6, "")
    add_static_routes(switch)  # stale routes would be deleted first, were the SVI there
    before = switch.running_config
    for check_mode in (False, True):
        result = push(switch, "overridden", GOLDEN_BFD.read_text(), check_mode=check_mode)
        assert result["failed"] is True and result["changed"] is False
        assert "interface vlan 6" in result["msg"] and "vlan 2" not in result["msg"]
        assert "Nothing was changed" in result["msg"]
        assert [r for r in switch.requests if r[0] in ("PUT", "DELETE")] == []
        assert switch.running_config == before and not switch.checkpoints


def test_retimed_and_a_default_timer_reads_back_equal(switch: FakeAoscx) -> None:
    push(switch, "merged", GOLDEN_BFD.read_text())
    slower = retimed(GOLDEN_BFD.read_text(), 1000, 1000, 5)  # 5: AOS-CX's default multiplier
    result = push(switch, "merged", slower)
    assert result["changed"] is True
    commands = result["commands"]
    at = commands.index("interface vlan 6")
    assert commands[at:at + 3] == ["interface vlan 6", "    bfd min-transmit-interval 1000",
                                   "    bfd min-receive-interval 1000"]
    assert commands.count("    no bfd detect-multiplier") == 2  # back to the default: no line
    assert block(switch.running_config, "interface vlan 6") == [
        *SVI_6.splitlines(), "    bfd min-transmit-interval 1000",
        "    bfd min-receive-interval 1000"]
    assert push(switch, "merged", slower)["changed"] is False


def test_overridden_without_bfd_removes_exactly_the_bfd_lines(switch: FakeAoscx) -> None:
    switch.running_config = BASE + "interface vlan 7\n    bfd detect-multiplier 2\n"
    push(switch, "merged", GOLDEN_BFD.read_text())
    plain = GOLDEN.read_text()
    # merged keeps all of it; replaced takes only the neighbors' fall-over bfd
    assert push(switch, "merged", plain)["changed"] is False
    replaced = push(switch, "replaced", plain)
    assert replaced["changed"] is True and fall_overs(switch.running_config) == []
    assert "bfd" in switch.running_config.splitlines()

    result = push(switch, "overridden", plain, diff=True)
    assert result["changed"] is True
    assert result["commands"] == ["interface vlan 2", "    no bfd min-transmit-interval",
                                  "    no bfd min-receive-interval",
                                  "    no bfd detect-multiplier", "interface vlan 6",
                                  "    no bfd min-transmit-interval",
                                  "    no bfd min-receive-interval",
                                  "    no bfd detect-multiplier"]
    # vlan 7 is not a peering network's: its timer is someone else's, and keeps "bfd"
    assert switch.running_config == (
        "hostname sw-spine-001\nbfd\n" + BASE.split("\n", 1)[1]
        + "interface vlan 7\n    bfd detect-multiplier 2\n" + ac.to_text(ac.parse(plain)))
    assert "interface vlan 6\n" + "\n".join(TIMERS) in result["diff"]["before"]
    assert push(switch, "overridden", plain)["changed"] is False


def test_bfd_goes_once_nothing_else_uses_it(switch: FakeAoscx) -> None:
    push(switch, "merged", GOLDEN_BFD.read_text())
    result = push(switch, "overridden", GOLDEN.read_text())
    assert result["commands"][-1] == "no bfd"
    assert switch.running_config == BASE + ac.to_text(ac.parse(GOLDEN.read_text()))
    assert push(switch, "overridden", GOLDEN.read_text())["changed"] is False


def test_a_foreign_neighbors_fall_over_bfd_keeps_bfd(switch: FakeAoscx) -> None:
    foreign = FOREIGN.replace("    neighbor 10.102.5.99 description firewall\n",
                              "    neighbor 10.102.5.99 description firewall\n"
                              "    neighbor 10.102.5.99 fall-over bfd\n")
    switch.running_config = BASE + foreign
    push(switch, "merged", GOLDEN_BFD.read_text())
    result = push(switch, "overridden", GOLDEN.read_text())
    assert result["changed"] is True and "no bfd" not in result["commands"]
    assert "bfd" in switch.running_config.splitlines()
    assert fall_overs(switch.running_config) == ["neighbor 10.102.5.99 fall-over bfd"]


def test_deleted_removes_the_bfd_the_data_names(switch: FakeAoscx) -> None:
    push(switch, "merged", GOLDEN_BFD.read_text())
    result = push(switch, "deleted", GOLDEN_BFD.read_text())
    assert result["changed"] is True and result["commands"][-1] == "no bfd"
    running = switch.running_config
    assert not any(" bfd" in line or line == "bfd" for line in running.splitlines())
    assert running.startswith(BASE)  # the SVIs as they were; the empty router bgp stays
    assert push(switch, "deleted", GOLDEN_BFD.read_text())["changed"] is False


def test_a_timer_the_switch_refuses_fails_the_dry_run_untouched(switch: FakeAoscx) -> None:
    result = push(switch, "merged", retimed(GOLDEN_BFD.read_text(), 20, 500, 3))
    assert result["failed"] is True
    assert "% Invalid range: bfd min-transmit-interval 20 (50-20000)" in result["msg"]
    assert switch.running_config == BASE and writes(switch) == []


def test_candidate_merges_timers_into_svis_and_keeps_the_rest() -> None:
    running = BASE.replace(SVI_6, SVI_6 + "    bfd min-transmit-interval 700\n")
    have = ac.parse(running)
    assert have["bfd"] == [] and have["bfd_interfaces"] == {
        "interface vlan 6": ["bfd min-transmit-interval 700"]}
    want = ac.parse(GOLDEN_BFD.read_text())
    assert ac.missing_svis(running, want) == []
    assert ac.missing_svis(BASE.replace(SVI_2, ""), want) == [2]
    text = ac.candidate(running, dict(have, bfd=["bfd"], bfd_interfaces=want["bfd_interfaces"]))
    assert text.splitlines()[:3] == ["hostname sw-spine-001", "bfd", "interface mgmt"]
    assert block(text, "interface vlan 6") == [*SVI_6.splitlines(), *TIMERS]  # 700 replaced
    assert block(text, "interface vlan 2") == [*SVI_2.splitlines(), *TIMERS]


def test_the_fake_prints_what_it_stores() -> None:
    text = "bfd\n" + SVI_6 + "    bfd detect-multiplier 5\n    bfd min-receive-interval 300\n"
    config = cli_to_json(text)
    assert config["Interface"] == {"vlan6": {"bfd_min_rx_interval": 300}}  # 5 is the default
    assert json_to_cli(config) == "bfd\n" + SVI_6 + "    bfd min-receive-interval 300\n"
    assert json_to_cli(json.loads(json.dumps(cli_to_json(BASE)))) == BASE


def test_spinelb_owns_the_timers_of_the_peering_networks_svis() -> None:
    site = with_bfd("reference-site", {"min_rx_ms": 500, "min_tx_ms": 500})
    owned = action.aoscx_ownership(site)
    assert owned["vlans"] == [2, 6]
    assert {k: v for k, v in owned.items() if k != "vlans"} == action.ownership(site)


def with_graceful_restart(text: str, seconds: int) -> str:
    """``text`` with graceful restart's stale-path time in every instance, as rendered."""
    out = []
    for line in text.splitlines():
        out.append(line)
        if line.strip().startswith("distance bgp "):
            indent = line[:len(line) - len(line.lstrip())]
            out.append(f"{indent}bgp graceful-restart stalepath-time {seconds}")
    return "\n".join(out) + "\n"


def test_graceful_restart_lines_go_with_the_push(switch: FakeAoscx) -> None:
    intent = with_graceful_restart(GOLDEN_BFD.read_text(), 120)
    assert push(switch, "merged", intent)["changed"] is True
    lines = [line.strip() for line in switch.running_config.splitlines()]
    assert lines.count("bgp graceful-restart stalepath-time 120") == 2  # default VRF and CSM
    assert push(switch, "merged", intent)["changed"] is False
    result = push(switch, "overridden", GOLDEN_BFD.read_text())
    assert "    no bgp graceful-restart stalepath-time 120" in result["commands"]
    assert "graceful-restart" not in switch.running_config
    assert "bfd" in switch.running_config.splitlines()
