"""spinelb.fabric.spine_routes (module against a fake vtysh, AOS-CX against the fake switch)
and the ``spinelb_decommissioned`` path of the site_inventory module_utils."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from fake_aoscx import FakeAoscx
from test_deploy_documents import task_vars
from test_spine_bgp_frr_config import collection_module
from test_spine_model import ansible_inventory

from spinelb.spine import load_site, render

module: Any = collection_module("plugins.modules.spine_routes")
action: Any = collection_module("plugins.action.spine_routes")
site_inventory: Any = collection_module("plugins.module_utils.site_inventory")

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frr-routes"
CONVERGED = (GOLDEN / "sw-spine-001-converged.json").read_text()
W003 = ("10.252.1.12", "10.254.1.20", "10.102.5.16", "10.102.10.12")


class FakeVtysh:
    """Answers ``show ip route vrf NAME json`` from ``tables``; records every argv."""

    def __init__(self, tables: dict[str, str]) -> None:
        self.tables = tables
        self.argv: list[list[str]] = []

    def run_command(self, args: list[str], **_: Any) -> tuple[int, str, str]:
        self.argv.append(list(args))
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
