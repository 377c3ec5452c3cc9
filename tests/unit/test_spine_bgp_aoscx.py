"""spine_bgp's AOS-CX push over REST (the action plugin's ``run_aoscx``) against the fake switch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_aoscx import FakeAoscx
from test_spine_bgp_frr_config import OWNED, POOLS, collection_module

action: Any = collection_module("plugins.action.spine_bgp")
ac: Any = collection_module("plugins.module_utils.aoscx_config")
fc: Any = collection_module("plugins.module_utils.frr_config")

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "aoscx" / "sw-spine-001.cfg"
BGP_PASSWORD = "Md5-Secret-9"
BASE = """hostname sw-spine-001
!
interface mgmt
    no shutdown
    ip static 192.0.2.10/24
!
interface 1/1/1
    no shutdown
    description uplink
"""
FOREIGN = """route-map rm-firewall permit seq 10
     match ip address prefix-list fw-only
router bgp 65533
    neighbor 10.102.5.99 remote-as 65000
    neighbor 10.102.5.99 description firewall
    address-family ipv4 unicast
        neighbor 10.102.5.99 activate
        neighbor 10.102.5.99 route-map rm-firewall in
    exit-address-family
"""
W003 = ("ncn-w003", "10.102.5.16", "10.252.1.12")


def without_w003(text: str) -> str:
    """The intended config once worker ncn-w003 is decommissioned."""
    out, skipping = [], False
    for line in text.splitlines():
        if not line.startswith(" "):
            skipping = line.startswith("route-map ncn-w003-")
        if not skipping and not any(word in line for word in W003):
            out.append(line)
    return "\n".join(out) + "\n"


def with_password(text: str) -> str:
    """The intended config with an MD5 password (masked, as the action plugin renders it)."""
    return text.replace(
        "    neighbor 10.102.5.14 passive\n",
        "    neighbor 10.102.5.14 passive\n    neighbor 10.102.5.14 password plaintext <redacted>\n",
    )


@pytest.fixture
def switch() -> Iterator[FakeAoscx]:
    fake = FakeAoscx(running_config=BASE, startup_config=BASE, pending_polls=1)
    fake.start()
    yield fake
    fake.stop()


def run(switch: FakeAoscx, state: str, config: str, **kwargs: Any) -> dict[str, Any]:
    connection = {"host": "127.0.0.1", "port": switch.port, "scheme": "http",
                  "username": switch.username, "password": switch.password}
    owned = kwargs.pop("owned", OWNED)
    result: dict[str, Any] = action.run_aoscx(
        connection, state, config, kwargs.pop("bgp_password", None), owned,
        poll_interval=0.01, **kwargs)
    return result


def writes(switch: FakeAoscx) -> list[tuple[str, str]]:
    return [r for r in switch.requests if r[0] == "PUT"]


def test_parse_and_to_text_round_trip_the_golden_config() -> None:
    text = GOLDEN.read_text()
    parsed = ac.parse(text)
    assert "router bgp 65533 vrf CSM" in parsed["bgp"]
    assert "10.252.1.10" in parsed["bgp"]["router bgp 65533 vrf CSM"]["neighbors"]
    assert "10.252.1.10" not in parsed["bgp"]["router bgp 65533"]["neighbors"]
    assert ac.to_text(parsed) == text


def test_configures_from_a_config_without_bgp_then_is_idempotent(switch: FakeAoscx) -> None:
    golden = GOLDEN.read_text()
    first = run(switch, "merged", golden)
    assert first["changed"] is True and "failed" not in first
    assert "router bgp 65533" in first["commands"]
    assert "    vrf CSM" in first["commands"]
    assert ac.parse(switch.running_config) == ac.parse(golden)
    assert switch.running_config.startswith(BASE.split("!")[0])
    assert "interface 1/1/1\n    no shutdown\n    description uplink\n" in switch.running_config
    assert first["after"] == ac.parse(golden)
    assert switch.startup_config == switch.running_config  # confirmed and saved

    switch.requests.clear()
    running = switch.running_config
    second = run(switch, "merged", golden)
    assert second == {"changed": False, "before": ac.parse(golden), "commands": []}
    assert writes(switch) == [] and switch.running_config == running
    assert run(switch, "replaced", golden)["changed"] is False
    assert run(switch, "overridden", golden)["changed"] is False


def test_check_mode_dry_runs_and_reports_but_never_writes(switch: FakeAoscx) -> None:
    result = run(switch, "merged", GOLDEN.read_text(), check_mode=True, diff=True)
    assert result["changed"] is True and result["commands"]
    assert "after" not in result
    assert result["diff"]["before"] == ""
    assert "route-map ncn-w001-cmn permit seq 10" in result["diff"]["after"]
    assert ("POST", "/rest/v10.09/configs/running-config?dryrun") in switch.requests
    assert writes(switch) == []
    assert switch.running_config == BASE and not switch.checkpoints


def test_overridden_removes_only_the_decommissioned_workers_objects(switch: FakeAoscx) -> None:
    golden = GOLDEN.read_text()
    switch.running_config = BASE + FOREIGN
    assert run(switch, "merged", golden)["changed"] is True
    before = ac.parse(switch.running_config)
    assert "10.102.5.99" in before["bgp"]["router bgp 65533"]["neighbors"]

    # merged and replaced keep what the data no longer names; overridden removes it
    intent = without_w003(golden)
    assert run(switch, "replaced", intent)["changed"] is False
    result = run(switch, "overridden", intent, diff=True)
    assert result["changed"] is True
    after = ac.parse(switch.running_config)
    assert not any(word in switch.running_config for word in W003)
    assert "rm-firewall" in after["route_maps"]
    assert after["bgp"]["router bgp 65533"]["neighbors"]["10.102.5.99"] == [
        "neighbor 10.102.5.99 remote-as 65000", "neighbor 10.102.5.99 description firewall"]
    assert set(after["route_maps"]) == set(before["route_maps"]) - {"ncn-w003-cmn",
                                                                   "ncn-w003-nmn"}
    assert after["prefix_lists"] == before["prefix_lists"]
    for header in ("router bgp 65533", "router bgp 65533 vrf CSM"):
        gone = set(before["bgp"][header]["neighbors"]) - set(after["bgp"][header]["neighbors"])
        assert gone == ({"10.102.5.16"} if "vrf" not in header else {"10.252.1.12"})
    assert "no route-map ncn-w003-cmn" in result["commands"]
    assert "ncn-w003" in result["diff"]["before"] and "ncn-w003" not in result["diff"]["after"]
    assert "interface 1/1/1" in switch.running_config
    assert run(switch, "overridden", intent)["changed"] is False


def test_deleted_removes_what_the_data_names(switch: FakeAoscx) -> None:
    golden = GOLDEN.read_text()
    switch.running_config = BASE + FOREIGN
    run(switch, "merged", golden)
    result = run(switch, "deleted", golden)
    assert result["changed"] is True
    after = ac.parse(switch.running_config)
    assert set(after["route_maps"]) == {"rm-firewall"} and after["prefix_lists"] == {}
    assert set(after["bgp"]["router bgp 65533"]["neighbors"]) == {"10.102.5.99"}


def test_gathered_reads_without_writing(switch: FakeAoscx) -> None:
    switch.running_config = BASE + FOREIGN
    result = run(switch, "gathered", "")
    assert result["gathered"]["route_maps"]["rm-firewall"]
    assert writes(switch) == []


def test_failed_dry_run_reports_the_switch_text_and_leaves_it_identical(
    switch: FakeAoscx,
) -> None:
    switch.invalid_commands = ("route-map ncn-w002-nmn",)
    for check_mode in (False, True):
        result = run(switch, "merged", GOLDEN.read_text(), check_mode=check_mode)
        assert result["failed"] is True
        assert "% Invalid input: route-map ncn-w002-nmn permit seq 10" in result["msg"]
        assert "nothing was applied" in result["msg"]
        assert switch.running_config == BASE and writes(switch) == []
        assert switch.startup_config == BASE and not switch.checkpoints


def test_password_never_in_results_diff_or_errors(switch: FakeAoscx) -> None:
    intent = with_password(GOLDEN.read_text())
    result = run(switch, "merged", intent, bgp_password=BGP_PASSWORD, diff=True)
    assert result["changed"] is True
    assert f"neighbor 10.102.5.14 password plaintext {BGP_PASSWORD}" in switch.running_config
    again = run(switch, "merged", intent, bgp_password=BGP_PASSWORD, check_mode=True, diff=True)
    assert again["changed"] is False
    for outcome in (result, again):
        text = json.dumps(outcome)
        assert BGP_PASSWORD not in text and switch.password not in text
    assert "neighbor 10.102.5.14 password plaintext <redacted>" in result["diff"]["after"]
    assert "    neighbor 10.102.5.14 password plaintext <redacted>" in result["commands"]

    switch.running_config = BASE
    switch.invalid_commands = ("neighbor 10.102.5.14 password",)
    failed = run(switch, "merged", intent, bgp_password=BGP_PASSWORD)
    assert failed["failed"] is True and "Invalid input" in failed["msg"]
    assert BGP_PASSWORD not in json.dumps(failed) and "<redacted>" in failed["msg"]


def test_connection_from_the_spines_variables() -> None:
    host_vars = {"ansible_host": "192.0.2.10", "spinelb_aoscx_username": "admin",
                 "spinelb_aoscx_password": "pw", "spinelb_aoscx_validate_certs": False}
    assert action.aoscx_connection(host_vars, "sw-spine-001") == {
        "host": "192.0.2.10", "username": "admin", "password": "pw", "port": None,
        "scheme": "https", "verify": False}
    host_vars.update(spinelb_aoscx_host="sw.example", spinelb_aoscx_port=8443,
                     spinelb_aoscx_validate_certs=True, spinelb_aoscx_ca_file="/ca.pem")
    connection = action.aoscx_connection(host_vars, "sw-spine-001")
    assert (connection["host"], connection["port"], connection["verify"]) == (
        "sw.example", 8443, "/ca.pem")
    del host_vars["spinelb_aoscx_password"]
    with pytest.raises(Exception, match="spinelb_aoscx_password") as info:
        action.aoscx_connection(host_vars, "sw-spine-001")
    assert "pw" not in str(info.value).replace("spinelb_aoscx_password", "")


WITH_POOLS = dict(OWNED, pools=POOLS)
STALE = ["ip route 10.92.100.71/32 10.252.1.10 vrf CSM", "ip route 10.102.5.71/32 10.102.5.14"]
FOREIGN_ROUTES = ["ip route 10.92.100.0/24 10.252.0.1 vrf CSM", "ip route 10.99.0.5/32 10.252.0.1",
                  "ip route 0.0.0.0/0 192.0.2.1"]


def add_static_routes(switch: FakeAoscx) -> None:
    """Two hand-made routes to pool addresses and three that are not spinelb's."""
    switch.add_static_route("10.92.100.71/32", "10.252.1.10", vrf="CSM")
    switch.add_static_route("10.102.5.71/32", "10.102.5.14")
    switch.add_static_route("10.92.100.0/24", "10.252.0.1", vrf="CSM")
    switch.add_static_route("10.99.0.5/32", "10.252.0.1")
    switch.add_static_route("0.0.0.0/0", "192.0.2.1")


def static_lines(switch: FakeAoscx) -> list[str]:
    return [line for line in switch.running_config.splitlines() if line.startswith("ip route ")]


def test_static_routes_to_pool_addresses_are_deleted_over_rest(switch: FakeAoscx) -> None:
    golden = GOLDEN.read_text()
    assert run(switch, "merged", golden)["changed"] is True
    add_static_routes(switch)
    switch.requests.clear()

    check = run(switch, "merged", golden, owned=WITH_POOLS, check_mode=True, diff=True)
    assert check["changed"] is True and "after" not in check
    assert check["commands"] == ["no " + line for line in reversed(STALE)]  # default VRF first
    before, after = (check["diff"][k].splitlines() for k in ("before", "after"))
    assert before[-2:] == list(reversed(STALE)) and before[:-2] == after  # only the routes go
    assert sorted(static_lines(switch)) == sorted(STALE + FOREIGN_ROUTES)  # check mode: untouched
    assert [r for r in switch.requests if r[0] in ("PUT", "DELETE")] == []

    result = run(switch, "merged", golden, owned=WITH_POOLS, diff=True)
    assert result["changed"] is True
    assert sorted(static_lines(switch)) == sorted(FOREIGN_ROUTES)
    deletes = [path for method, path in switch.requests if method == "DELETE"]
    assert deletes == ["/rest/v10.09/system/vrfs/CSM/static_routes/10.92.100.71%2F32",
                       "/rest/v10.09/system/vrfs/default/static_routes/10.102.5.71%2F32"]
    assert ("POST", "/rest/v10.09/configs/running-config?dryrun") not in switch.requests
    assert switch.startup_config == switch.running_config  # saved
    assert result["after"]["static_routes"] == {
        "CSM": ["ip route 10.92.100.0/24 10.252.0.1 vrf CSM"],
        "default": ["ip route 10.99.0.5/32 10.252.0.1", "ip route 0.0.0.0/0 192.0.2.1"]}
    assert run(switch, "merged", golden, owned=WITH_POOLS)["changed"] is False


def test_static_routes_go_with_a_bgp_push_and_stay_gone(switch: FakeAoscx) -> None:
    add_static_routes(switch)
    result = run(switch, "overridden", GOLDEN.read_text(), owned=WITH_POOLS, save=False)
    assert result["changed"] is True
    assert sorted(static_lines(switch)) == sorted(FOREIGN_ROUTES)
    assert ac.parse(switch.running_config)["bgp"] == ac.parse(GOLDEN.read_text())["bgp"]
    assert switch.startup_config == BASE  # save: false saves nothing
    # the candidate pushed after the deletes does not bring them back
    again = run(switch, "overridden", GOLDEN.read_text(), owned=WITH_POOLS)
    assert again["changed"] is False


def test_deleted_and_gathered_leave_static_routes_alone(switch: FakeAoscx) -> None:
    golden = GOLDEN.read_text()
    run(switch, "merged", golden)
    add_static_routes(switch)
    gathered = run(switch, "gathered", "", owned=WITH_POOLS)
    routes = [line for lines in gathered["gathered"]["static_routes"].values() for line in lines]
    assert sorted(routes) == sorted(STALE + FOREIGN_ROUTES)
    result = run(switch, "deleted", golden, owned=WITH_POOLS)
    assert result["changed"] is True
    assert sorted(static_lines(switch)) == sorted(STALE + FOREIGN_ROUTES)
    assert [r for r in switch.requests if r[0] == "DELETE"] == []


def test_candidate_drops_only_the_static_routes_the_prediction_removed() -> None:
    running = BASE + "\n".join(STALE + FOREIGN_ROUTES) + "\n"
    have = ac.parse(running)
    owner = fc.Ownership.from_owned(WITH_POOLS)
    after = fc.predict(have, ac.parse(GOLDEN.read_text()), "merged", owner)
    text = ac.candidate(running, after)
    assert [line for line in text.splitlines() if line.startswith("ip route")] == FOREIGN_ROUTES
    assert "router bgp 65533" in text and "interface 1/1/1" in text
