"""spinelb.fabric.spine_routes (module against a fake vtysh, AOS-CX against the fake switch)
and the ``spinelb_decommissioned`` path of the site_inventory module_utils."""

from __future__ import annotations

import json
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from fake_aoscx import FakeAoscx
from test_deploy_documents import task_vars
from test_spine_bgp_frr_config import collection_module
from test_spine_model import ansible_inventory

from spinelb.spine import bgp_state, load_site, render

module: Any = collection_module("plugins.modules.spine_routes")
action: Any = collection_module("plugins.action.spine_routes")
site_inventory: Any = collection_module("plugins.module_utils.site_inventory")

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frr-routes"
CONVERGED = (GOLDEN / "sw-spine-001-converged.json").read_text()
BGP_GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frr-bgp"
BGP_IPV4 = (BGP_GOLDEN / "sw-spine-001-bgp-ipv4.json").read_text()
SUMMARY = (BGP_GOLDEN / "sw-spine-001-summary.json").read_text()
W003 = ("10.252.1.12", "10.254.1.20", "10.102.5.16", "10.102.10.12")


class FakeVtysh:
    """Answers ``show ip route vrf NAME json`` from ``tables`` and any other command from
    ``answers`` (command -> output); records every argv."""

    def __init__(self, tables: dict[str, str], answers: dict[str, str] | None = None) -> None:
        self.tables = tables
        self.answers = answers or {}
        self.argv: list[list[str]] = []

    def run_command(self, args: list[str], **_: Any) -> tuple[int, str, str]:
        self.argv.append(list(args))
        if args[-1] in self.answers:
            return 0, self.answers[args[-1]], ""
        words = args[-1].split()
        if words[:4] == ["show", "ip", "route", "vrf"] and words[4] in self.tables:
            return 0, self.tables[words[4]], ""
        return 1, "", f"% VRF {words[4]} not found"


def run_module(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
               vtysh: FakeVtysh, **args: Any) -> dict[str, Any]:
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, argv, **kw: vtysh.run_command(argv, **kw))
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, required=False, opt_dirs=None: "/usr/bin/" + name)
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_module_reads_each_vrf_in_the_pathspace_and_changes_nothing(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    vtysh = FakeVtysh({"default": CONVERGED, "CSM": "{}"})
    result = run_module(monkeypatch, capsys, vtysh, pathspace="lab-sw-spine-001",
                        vrfs=["default", "CSM"], _ansible_check_mode=True)
    assert result["changed"] is False
    assert result["tables"]["default"] == json.loads(CONVERGED)
    assert result["tables"]["CSM"] == {}
    assert vtysh.argv == [
        ["/usr/bin/vtysh", "-N", "lab-sw-spine-001", "-c", "show ip route vrf default json"],
        ["/usr/bin/vtysh", "-N", "lab-sw-spine-001", "-c", "show ip route vrf CSM json"],
    ]


def test_module_fails_on_a_missing_vrf_or_an_answer_that_is_not_json(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_module(monkeypatch, capsys, FakeVtysh({}), vrfs=["CSM"])
    assert result["failed"] is True
    assert "VRF CSM not found" in result["msg"]
    result = run_module(monkeypatch, capsys, FakeVtysh({"default": "% Unknown command"}))
    assert result["failed"] is True
    assert "did not answer JSON" in result["msg"]


def test_module_reads_the_bgp_tables_of_each_vrf_and_family_and_the_summary(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    vtysh = FakeVtysh({"default": CONVERGED}, {
        "show bgp vrf default ipv4 unicast json": BGP_IPV4,
        "show bgp vrf default ipv6 unicast json": "{}",
        "show bgp vrf all summary json": SUMMARY,
    })
    result = run_module(monkeypatch, capsys, vtysh, bgp=True, families=["ipv4", "ipv6"])
    assert result["bgp_tables"] == {"default": {"ipv4": json.loads(BGP_IPV4), "ipv6": {}}}
    assert result["bgp_summary"] == json.loads(SUMMARY)
    assert [argv[-1] for argv in vtysh.argv] == [
        "show ip route vrf default json", "show bgp vrf default ipv4 unicast json",
        "show bgp vrf default ipv6 unicast json", "show bgp vrf all summary json"]
    # without bgp, nothing but the route tables is read
    vtysh.argv.clear()
    plain = run_module(monkeypatch, capsys, vtysh)
    assert "bgp_tables" not in plain and "bgp_summary" not in plain
    assert [argv[-1] for argv in vtysh.argv] == ["show ip route vrf default json"]


def with_host_vars(listing: dict[str, Any], host: str, **extra: Any) -> dict[str, Any]:
    """``task_vars`` with ``extra`` among ``host``'s variables (set_fact, -e or inventory)."""
    hostvars = dict(listing["_meta"]["hostvars"])
    hostvars[host] = dict(hostvars[host], **extra)
    return dict(task_vars(listing, host), hostvars=hostvars)


def site(**extra: Any) -> Any:
    listing = ansible_inventory("reference-site")
    return load_site(*site_inventory.site_arguments(
        with_host_vars(listing, "sw-spine-001", **extra), "sw-spine-001"))


def test_report_keeps_the_pool_prefixes_and_filters_by_through() -> None:
    from spinelb.spine.routes import frr_route_table

    tables = [frr_route_table(json.loads(CONVERGED))]
    everything = action.report(tables, site(), [])
    assert len(everything) == 16
    through = action.report(tables, site(), ["10.252.1.11"])
    assert set(through) == {"10.92.100.71/32", "10.92.100.222/32", "10.92.100.225/32"}
    assert through["10.92.100.71/32"] == ["10.252.1.10", "10.252.1.11", "10.252.1.12"]


# --- the action plugin's run, bgp: true -------------------------------------------------------


def run_action(task_args: dict[str, Any], variables: dict[str, Any],
               module_answer: dict[str, Any] | None = None
               ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``ActionModule.run`` for sw-spine-001; the module's answer is ``module_answer``.

    Returns the task's result and the arguments each module call got.
    """
    task = SimpleNamespace(args=task_args, delegate_to=None, async_val=0, check_mode=False,
                           action="spinelb.fabric.spine_routes")
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/nonexistent"))
    plugin = action.ActionModule(task, connection, SimpleNamespace(), None, None)
    calls: list[dict[str, Any]] = []

    def execute_module(module_name: str, module_args: dict[str, Any], **_: Any) -> Any:
        assert module_name == "spinelb.fabric.spine_routes"
        calls.append(module_args)
        return module_answer
    plugin._execute_module = execute_module
    return plugin.run(task_vars=variables), calls


def frr_spine() -> dict[str, Any]:
    """``task_vars`` with sw-spine-001 as an FRR spine (the reference site's are AOS-CX)."""
    return with_host_vars(ansible_inventory("reference-site"), "sw-spine-001",
                          spinelb_platform="frr")


#: CSM's BGP table: a path leaked from outside every pool, accepted from ncn-w003's NMN address.
LEAK = {"routes": {"198.51.100.7/32": [{"valid": True, "peerId": "10.252.1.12"}]}}


def test_bgp_reports_every_prefix_accepted_per_neighbor_and_the_sessions_of_an_frr_spine() -> None:
    answer = {
        "tables": {"default": json.loads(CONVERGED), "CSM": {}},
        "bgp_tables": {"default": {"ipv4": json.loads(BGP_IPV4)}, "CSM": {"ipv4": LEAK}},
        "bgp_summary": json.loads(SUMMARY),
    }
    variables = frr_spine()
    result, calls = run_action({"bgp": True}, variables, answer)
    assert not result.get("failed"), result
    assert calls == [{"pathspace": "", "vrfs": ["default", "CSM"], "bgp": True,
                      "families": ["ipv4"]}]
    assert len(result["routes"]) == 16 and result["vrfs"] == ["default", "CSM"]
    received = result["received"]
    # the NMN sessions carry node- and hardware-management; the leak is kept, though in no pool
    assert received["10.252.1.10"] == [
        "10.92.100.60/32", "10.92.100.71/32", "10.92.100.225/32", "10.94.100.60/32",
        "10.94.100.71/32"]
    assert "198.51.100.7/32" in received["10.252.1.12"]
    assert "10.92.100.222/32" in received["10.252.1.11"]
    assert "10.92.100.222/32" not in received["10.252.1.10"]
    assert list(received) == sorted(received, key=lambda a: tuple(map(int, a.split("."))))
    assert received["10.102.5.3"]  # the other spine, over iBGP
    sessions = result["sessions"]
    assert set(sessions) == {"10.252.1.10", "10.252.1.11", "10.252.1.12", "10.102.5.14",
                             "10.102.5.15", "10.102.5.16", "10.102.5.3"}
    assert sessions["10.252.1.10"] == {
        "state": "Established", "vrf": "default", "uptime_seconds": 10.0,
        "remote_asn": 65531, "description": "ncn-w001-nmn", "accepted": 5}
    assert "warnings" not in result


def test_without_bgp_the_module_is_asked_for_routes_only_and_nothing_else_is_returned() -> None:
    variables = frr_spine()
    answer = {"tables": {"default": json.loads(CONVERGED), "CSM": {}}}
    result, calls = run_action({}, variables, answer)
    assert calls == [{"pathspace": "", "vrfs": ["default", "CSM"]}]
    assert len(result["routes"]) == 16
    assert "received" not in result and "sessions" not in result


def test_a_failed_module_fails_the_task_with_its_message() -> None:
    variables = frr_spine()
    result, _ = run_action({"bgp": True}, variables,
                           {"failed": True, "msg": "vtysh could not run 'show bgp'"})
    assert result["failed"] is True and "show bgp" in result["msg"]


# --- AOS-CX over REST -------------------------------------------------------------------------

ROUTES = {
    "bgp,10.92.100.71%2F32": {
        "prefix": "10.92.100.71/32", "from": "bgp",
        "nexthops": {"10.252.1.10": "/rest/v10.09/system/vrfs/CSM/routes/bgp,10.92.100.71%2F32/"
                                    "nexthops/10.252.1.10",
                     "10.252.1.12": {"ip_address": "10.252.1.12", "selected": True}},
    },
}
NEXTHOP = {"ip_address": "10.252.1.10", "selected": True, "distance": 20}
CAN = {"bgp,10.102.10.129%2F32": {"prefix": "10.102.10.129/32", "from": "bgp",
                                  "nexthops": [{"ip_address": "10.102.10.12"}]}}


@pytest.fixture
def switch() -> Iterator[FakeAoscx]:
    fake = FakeAoscx(resources={
        "system/vrfs/CSM/routes?depth=2": ROUTES,
        "system/vrfs/CSM/routes/bgp,10.92.100.71%2F32/nexthops/10.252.1.10": NEXTHOP,
        "system/vrfs/default/routes?depth=2": CAN,
    })
    fake.start()
    yield fake
    fake.stop()


def connection(switch: FakeAoscx) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": switch.port, "scheme": "http",
            "username": switch.username, "password": switch.password}


def test_aoscx_tables_read_every_vrf_and_expand_next_hop_uris(switch: FakeAoscx) -> None:
    tables = action.aoscx_tables(connection(switch), ["default", "CSM"])
    report = action.report(tables, site(), W003)
    assert report == {"10.92.100.71/32": ["10.252.1.10", "10.252.1.12"],
                      "10.102.10.129/32": ["10.102.10.12"]}
    assert all(method == "GET" or path in ("/rest/v10.09/login", "/rest/v10.09/logout")
               for method, path in switch.requests)
    assert switch.logins == switch.logouts == 1


def test_aoscx_errors_name_the_vrf_never_the_password(switch: FakeAoscx) -> None:
    with pytest.raises(Exception, match="VRF 'blue'") as caught:
        action.aoscx_tables(connection(switch), ["blue"])
    assert switch.password not in str(caught.value)
    bad = dict(connection(switch), password="wrong-" + switch.password)
    with pytest.raises(Exception, match="login") as caught:
        action.aoscx_tables(bad, ["CSM"])
    assert switch.password not in str(caught.value)


NEIGHBORS_DEFAULT = {
    "10.102.5.14": {"remote_as": 65532, "description": "ncn-w001-cmn",
                    "status": {"bgp_peer_state": "Established"}},
    "10.102.5.16": {"remote_as": 65532, "status": {"bgp_peer_state": "Idle"}},
    "10.102.5.3": {"remote_as": 65533, "status": {"bgp_peer_state": "Established"}},
    "cmn-workers": {"is_peer_group": True, "remote_as": 65532},
}
NEIGHBORS_CSM = {
    "10.252.1.10": {"remote_as": 65531, "description": "ncn-w001-nmn",
                    "status": {"bgp_peer_state": "Established"}},
    "10.252.1.12": {"remote_as": 65531, "status": {}},
}


def aoscx_spine(switch: FakeAoscx, **extra: Any) -> dict[str, Any]:
    """``task_vars`` for sw-spine-001 as an AOS-CX spine behind ``switch``, with its sessions."""
    switch.resources.update({
        "system/vrfs/default/bgp_routers/65533/bgp_neighbors?depth=2": NEIGHBORS_DEFAULT,
        "system/vrfs/CSM/bgp_routers/65533/bgp_neighbors?depth=2": NEIGHBORS_CSM,
    })
    return with_host_vars(
        ansible_inventory("reference-site"), "sw-spine-001", spinelb_platform="aoscx",
        spinelb_aoscx_host="127.0.0.1", spinelb_aoscx_port=switch.port,
        spinelb_aoscx_scheme="http", spinelb_aoscx_username=switch.username,
        spinelb_aoscx_password=switch.password, **extra)


def test_aoscx_bgp_reads_the_sessions_of_every_vrf_and_says_received_is_unknown(
        switch: FakeAoscx) -> None:
    variables = aoscx_spine(switch)
    result, calls = run_action({"bgp": True}, variables)
    assert not result.get("failed"), result
    assert calls == []  # AOS-CX is read from the controller, never through the module
    assert result["routes"] == {"10.92.100.71/32": ["10.252.1.10", "10.252.1.12"],
                                "10.102.10.129/32": ["10.102.10.12"]}
    assert result["received"] is None
    assert any("received is null" in warning for warning in result["warnings"])
    assert result["sessions"] == {
        "10.102.5.3": {"state": "Established", "vrf": "default", "uptime_seconds": None,
                       "remote_asn": 65533, "description": None, "accepted": None},
        "10.102.5.14": {"state": "Established", "vrf": "default", "uptime_seconds": None,
                        "remote_asn": 65532, "description": "ncn-w001-cmn", "accepted": None},
        "10.102.5.16": {"state": "Idle", "vrf": "default", "uptime_seconds": None,
                        "remote_asn": 65532, "description": None, "accepted": None},
        "10.252.1.10": {"state": "Established", "vrf": "CSM", "uptime_seconds": None,
                        "remote_asn": 65531, "description": "ncn-w001-nmn", "accepted": None},
        "10.252.1.12": {"state": "Idle", "vrf": "CSM", "uptime_seconds": None,
                        "remote_asn": 65531, "description": None, "accepted": None},
    }
    assert switch.logins == switch.logouts == 1  # routes and sessions in one REST session
    assert all(method == "GET" or path in ("/rest/v10.09/login", "/rest/v10.09/logout")
               for method, path in switch.requests)
    assert switch.password not in json.dumps(result)


#: ``show ip bgp neighbors 10.252.1.10 routes vrf CSM`` as AOS-CX prints it (its manual's layout)
CLI_ROUTES = """Status codes: s suppressed, d damped, h history, * valid, > best, = multipath,
              i internal, e external S Stale, R Removed
Origin codes: i - IGP, e - EGP, ? - incomplete

VRF : CSM
Local router-id 10.2.0.2

    Network            Nexthop        Metric     LocPrf     Weight Path
*=e 10.92.100.71/32    10.252.1.10    0          100        0      65531 ?
*>e 10.92.100.60/32    10.252.1.10    0          100        0      65531 ?
 Re 10.92.100.99/32    10.252.1.10    0          100        0      65531 ?
Total number of entries 3
"""


def test_aoscx_cli_output_gives_the_valid_paths_only() -> None:
    assert sorted(map(str, bgp_state.aoscx_cli_accepted(CLI_ROUTES))) == [
        "10.92.100.60/32", "10.92.100.71/32"]
    assert bgp_state.aoscx_cli_accepted("% No such neighbor\n") == set()
    assert bgp_state.aoscx_cli_command(ip_address("10.252.1.10"), "CSM") == (
        "show ip bgp neighbors 10.252.1.10 routes vrf CSM")
    assert bgp_state.aoscx_cli_command(ip_address("10.102.5.14"), "default") == (
        "show ip bgp neighbors 10.102.5.14 routes")


def test_aoscx_bgp_over_network_cli_reads_what_each_neighbor_was_accepted_for(
        switch: FakeAoscx) -> None:
    variables = aoscx_spine(switch, ansible_connection="ansible.netcommon.network_cli")
    task = SimpleNamespace(args={"bgp": True}, delegate_to=None, async_val=0, check_mode=False,
                           action="spinelb.fabric.spine_routes")
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/nonexistent"))
    plugin = action.ActionModule(task, connection, SimpleNamespace(), None, None)
    commands: list[str] = []

    def execute_module(module_name: str, module_args: dict[str, Any], **_: Any) -> Any:
        assert module_name == "ansible.netcommon.cli_command"
        commands.append(module_args["command"])
        return {"stdout": CLI_ROUTES if "10.252.1.10 " in module_args["command"] else ""}
    plugin._execute_module = execute_module
    result = plugin.run(task_vars=variables)
    assert not result.get("failed"), result
    assert "show ip bgp neighbors 10.252.1.10 routes vrf CSM" in commands
    assert "show ip bgp neighbors 10.102.5.14 routes" in commands
    assert result["received"]["10.252.1.10"] == ["10.92.100.60/32", "10.92.100.71/32"]
    assert result["received"]["10.102.5.14"] == []
    assert not any("received is null" in warning for warning in result.get("warnings", []))


def test_aoscx_bgp_fails_naming_the_vrf_when_the_switch_has_no_such_bgp_router(
        switch: FakeAoscx) -> None:
    variables = with_host_vars(
        ansible_inventory("reference-site"), "sw-spine-001", spinelb_platform="aoscx",
        spinelb_aoscx_host="127.0.0.1", spinelb_aoscx_port=switch.port,
        spinelb_aoscx_scheme="http", spinelb_aoscx_username=switch.username,
        spinelb_aoscx_password=switch.password)
    result, _ = run_action({"bgp": True}, variables)
    assert result["failed"] is True
    assert "BGP neighbors of VRF 'default'" in result["msg"]
    assert switch.password not in result["msg"]


# --- spinelb_decommissioned ---------------------------------------------------------------------


def test_a_decommissioned_worker_is_left_out_of_the_site_and_the_single_path_lists() -> None:
    whole = site()
    without = site(spinelb_decommissioned=["ncn-w003"])
    assert set(whole.workers) == {"ncn-w001", "ncn-w002", "ncn-w003"}
    assert set(without.workers) == {"ncn-w001", "ncn-w002"}
    assert [sp.workers for sp in without.single_path] == [("ncn-w001", "ncn-w002")] * 2
    config = render(without, "sw-spine-001", "frr")
    assert not set(W003) & set(config.split())
    assert "ncn-w003" not in config
    assert "ncn-w002-nmn" in render(without, "sw-spine-001", "frr")
    # a single name works too; a worker left alone in a list takes the list with it
    assert set(site(spinelb_decommissioned="ncn-w003").workers) == {"ncn-w001", "ncn-w002"}
    gone = site(spinelb_decommissioned=["ncn-w001", "ncn-w002"])
    assert [sp.workers for sp in gone.single_path] == [("ncn-w003",)] * 2


def test_without_the_variable_nothing_changes_for_the_other_plugins() -> None:
    listing = ansible_inventory("reference-site")
    plain = site_inventory.site_arguments(task_vars(listing, "ncn-w001"), "ncn-w001")
    empty = site_inventory.site_arguments(
        with_host_vars(listing, "ncn-w001", spinelb_decommissioned=[]), "ncn-w001")
    assert plain[2] == empty[2]
    assert load_site(*plain) == load_site(*empty)
    assert plain[2]["workers"] == ["ncn-w001", "ncn-w002", "ncn-w003"]


# --- neighbors: what a layer2 pool's addresses resolve to on the spine's segment (issue 8) ------

#: ``ip -j neigh show`` as Linux 6.1 prints it: just after the datagrams, then once ARP gave up
#: on one address while a host answered for another (captured in a namespace with a veth pair)
NEIGH_ASKING = json.dumps([
    {"dst": "10.102.10.241", "dev": "can", "state": ["INCOMPLETE"]},
    {"dst": "10.102.10.242", "dev": "can", "state": ["INCOMPLETE"]},
    {"dst": "10.102.10.1", "dev": "can", "lladdr": "02:00:0a:66:0a:01", "state": ["STALE"]},
])
NEIGH_DONE = json.dumps([
    {"dst": "10.102.10.241", "dev": "can", "lladdr": "02:00:0A:66:0A:0B", "state": ["REACHABLE"]},
    {"dst": "10.102.10.242", "dev": "can", "state": ["FAILED"]},
    {"dst": "10.102.10.1", "dev": "can", "lladdr": "02:00:0a:66:0a:01", "state": ["STALE"]},
])
LAYER2_POOLS = {"lab-l2": {"cidr": "10.102.10.240/29", "network": "can", "mode": "layer2",
                           "interfaces": ["bond0.can0"]}}


class FakeLinux(FakeVtysh):
    """vtysh, plus the datagram sender (prints the addresses it cannot send to) and
    ``ip -j neigh show``, which answers ``neigh`` in turn (the last one from then on)."""

    def __init__(self, neigh: list[str], unsendable: str = "") -> None:
        super().__init__({"default": "{}"})
        self.neigh = neigh
        self.unsendable = unsendable

    def run_command(self, args: list[str], **kw: Any) -> tuple[int, str, str]:
        if "-c" in args and args[args.index("-c") + 1].startswith("import socket"):
            self.argv.append(list(args))
            return 0, self.unsendable, ""
        if args[-3:] == ["-j", "neigh", "show"]:
            self.argv.append(list(args))
            return 0, self.neigh.pop(0) if len(self.neigh) > 1 else self.neigh[0], ""
        return super().run_command(args, **kw)


def test_linux_neighbor_reads_the_mac_or_why_there_is_none() -> None:
    from spinelb.spine.routes import linux_neighbor

    done = json.loads(NEIGH_DONE)
    assert linux_neighbor(done, "10.102.10.241") == {"mac": "02:00:0a:66:0a:0b",
                                                     "state": "REACHABLE"}
    assert linux_neighbor(done, ip_address("10.102.10.242")) == {"mac": None, "state": "FAILED"}
    assert linux_neighbor(json.loads(NEIGH_ASKING), "10.102.10.241") == {
        "mac": None, "state": "INCOMPLETE"}
    assert linux_neighbor([], "10.102.10.243") == {"mac": None, "state": "NONE"}
    assert linux_neighbor({"not": "a list"}, "10.102.10.243") == {"mac": None, "state": "NONE"}
    # an older iproute2 says the state as a word
    old = [{"dst": "10.102.10.241", "lladdr": "02:00:0a:66:0a:0b", "state": "STALE"}]
    assert linux_neighbor(old, "10.102.10.241") == {"mac": "02:00:0a:66:0a:0b", "state": "STALE"}


def test_only_the_addresses_of_a_layer2_pool_are_resolved() -> None:
    from spinelb.spine.routes import layer2_neighbors

    assert layer2_neighbors(layer2_spine_site(), ["10.102.10.242", "10.92.100.71", "10.102.10.241",
                                     "10.102.10.242", "no address", "10.102.10.129"]) == [
        "10.102.10.241", "10.102.10.242"]
    assert layer2_neighbors(site(), ["10.102.10.241"]) == []


def layer2_spine_site() -> Any:
    variables = layer2_spine()
    return load_site(*site_inventory.site_arguments(variables, "sw-spine-001"))


def layer2_spine(**extra: Any) -> dict[str, Any]:
    """``task_vars`` with sw-spine-001 an FRR spine of the reference site plus a layer2 pool."""
    listing = ansible_inventory("reference-site")
    pools = dict(listing["_meta"]["hostvars"]["sw-spine-001"]["spinelb_pools"], **LAYER2_POOLS)
    return with_host_vars(listing, "sw-spine-001", spinelb_platform="frr",
                          spinelb_pools=pools, **extra)


def test_module_makes_the_kernel_resolve_each_address_in_the_namespace_and_waits_for_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    linux = FakeLinux([NEIGH_ASKING, NEIGH_DONE], unsendable="10.102.10.243 Network is unreachable\n")
    result = run_module(monkeypatch, capsys, linux, pathspace="lab-sw-spine-001",
                        neighbors=["10.102.10.241", "10.102.10.242", "10.102.10.243"],
                        netns="lab-sw-spine-001")
    assert not result.get("failed"), result
    send, first, second = linux.argv[1:]
    assert send[:4] == ["ip", "netns", "exec", "lab-sw-spine-001"]
    assert send[-3:] == ["10.102.10.241", "10.102.10.242", "10.102.10.243"]
    assert first == second == ["/usr/bin/ip", "-n", "lab-sw-spine-001", "-j", "neigh", "show"]
    table = result["neighbor_table"]
    assert table["10.102.10.241"][0]["lladdr"] == "02:00:0A:66:0A:0B"
    assert table["10.102.10.242"][0]["state"] == ["FAILED"]
    assert table["10.102.10.243"] == []
    assert result["neighbor_errors"] == {"10.102.10.243": "Network is unreachable"}
    # without neighbors nothing is sent and no neighbor table is read
    linux.argv.clear()
    plain = run_module(monkeypatch, capsys, linux)
    assert "neighbor_table" not in plain and len(linux.argv) == 1


def test_frr_spine_reports_the_mac_each_layer2_address_resolves_to() -> None:
    answer = {"tables": {"default": {}, "CSM": {}},
              "neighbor_table": {"10.102.10.241": json.loads(NEIGH_DONE)[:1],
                                 "10.102.10.242": json.loads(NEIGH_DONE)[1:2]},
              "neighbor_errors": {"10.102.10.243": "Network is unreachable"}}
    variables = layer2_spine(ansible_netns="lab-sw-spine-001")
    result, calls = run_action(
        {"neighbors": ["10.92.100.71", "10.102.10.243", "10.102.10.242", "10.102.10.241"]},
        variables, answer)
    assert not result.get("failed"), result
    assert calls == [{"pathspace": "", "vrfs": ["default", "CSM"],
                      "neighbors": ["10.102.10.241", "10.102.10.242", "10.102.10.243"],
                      "netns": "lab-sw-spine-001"}]
    assert result["neighbors"] == {
        "10.102.10.241": {"mac": "02:00:0a:66:0a:0b", "state": "REACHABLE"},
        "10.102.10.242": {"mac": None, "state": "FAILED"},
        "10.102.10.243": {"mac": None, "state": "NONE (Network is unreachable)"},
    }
    # reached through the netns connection, the module already runs in the namespace
    inside = layer2_spine(ansible_netns="lab-sw-spine-001",
                          ansible_connection="spinelb.fabric.netns")
    _, calls = run_action({"neighbors": ["10.102.10.241"]}, inside, answer)
    assert calls[0]["netns"] is None
    # no layer2 address among them: the module is not asked, the answer is empty
    _, calls = run_action({"neighbors": ["10.92.100.71"]}, variables, answer)
    result, _ = run_action({"neighbors": ["10.92.100.71"]}, variables, answer)
    assert "neighbors" not in calls[0] and result["neighbors"] == {}


def test_aoscx_spine_says_it_cannot_resolve(switch: FakeAoscx) -> None:
    listing = ansible_inventory("reference-site")
    pools = dict(listing["_meta"]["hostvars"]["sw-spine-001"]["spinelb_pools"], **LAYER2_POOLS)
    variables = aoscx_spine(switch, spinelb_pools=pools)
    result, calls = run_action({"neighbors": ["10.102.10.241"]}, variables)
    assert not result.get("failed"), result
    assert calls == [] and result["neighbors"] is None
    assert any("ARP table" in warning for warning in result["warnings"])
