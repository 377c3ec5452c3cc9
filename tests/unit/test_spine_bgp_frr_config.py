"""spine_bgp's FRR side: parsing running configs, the commands of each state, password masking.

The module_utils file is imported the way Ansible imports it, from a symlink tree
``ansible_collections/spinelb/fabric`` -> this repository (built in a temporary directory).
"""

from __future__ import annotations

import atexit
import importlib
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from test_spine_render import with_options

from spinelb.spine import render

REPO = Path(__file__).resolve().parents[2]
OWNED = {
    "prefix_lists": r"^(pl-\S+|single-path-\d+)$",
    "route_maps": r"^\S+-(nmn|cmn)$",
    "neighbors": r"^\S+-(nmn|cmn)$|^(sw-spine-001|sw-spine-002)$",
}


def collection_root() -> Path:
    """A directory holding ``ansible_collections/spinelb/fabric`` (a link to the repo), on sys.path."""
    root = Path(tempfile.mkdtemp(prefix="spinelb-coll-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "ansible_collections" / "spinelb").mkdir(parents=True)
    (root / "ansible_collections" / "spinelb" / "fabric").symlink_to(REPO)
    sys.path.insert(0, str(root))
    return root


def collection_module(name: str) -> ModuleType:
    """Import ``ansible_collections.spinelb.fabric.<name>``, making the tree on first use."""
    if not any(Path(p, "ansible_collections", "spinelb", "fabric").exists() for p in sys.path):
        collection_root()
    return importlib.import_module(f"ansible_collections.spinelb.fabric.{name}")


fc: Any = collection_module("plugins.module_utils.frr_config")


def ownership() -> Any:
    return fc.Ownership(**OWNED)


def golden_text() -> str:
    """sw-spine-001 of the lab without BFD (the lab's own layer turns it on; BFD has its tests)."""
    return render(with_options("lab"), "sw-spine-001", "frr")


def golden() -> dict[str, Any]:
    parsed: dict[str, Any] = fc.parse(golden_text())
    return parsed


# FRR prints the address family's lines in its own order and sorts neighbors; the
# structure compares lines as sets inside each object, so that order does not matter.
RUNNING = """Building configuration...

Current configuration:
!
frr version 8.4.4
frr defaults traditional
hostname vm
service integrated-vtysh-config
!
interface eth0
 ip address 10.9.9.9/24
exit
!
router bgp 65533
 bgp router-id 10.2.0.2
 neighbor 10.252.1.12 remote-as 65531
 neighbor 10.252.1.12 description ncn-w003-nmn
 neighbor 10.252.1.12 password s3cret-Pw
 neighbor 192.0.2.1 remote-as 64999
 neighbor 192.0.2.1 description someone-elses-peer
 !
 address-family ipv4 unicast
  neighbor 10.252.1.12 activate
  neighbor 10.252.1.12 route-map ncn-w003-nmn in
  neighbor 192.0.2.1 activate
  neighbor 192.0.2.1 route-map their-policy in
 exit-address-family
exit
!
ip prefix-list their-list seq 5 permit 192.0.2.0/24
ip prefix-list pl-old-pool seq 10 permit 10.99.0.0/24 ge 32 le 32
!
route-map ncn-w003-nmn permit 10
 match ip address prefix-list pl-node-management
exit
!
route-map their-policy permit 10
exit
!
end
"""


def test_parse_keeps_only_bgp_objects_and_groups_lines_by_neighbor() -> None:
    parsed = fc.parse(RUNNING)
    assert set(parsed["prefix_lists"]) == {"their-list", "pl-old-pool"}
    assert parsed["route_maps"]["their-policy"] == {"route-map their-policy permit 10": []}
    instance = parsed["bgp"]["router bgp 65533"]
    assert instance["lines"] == ["bgp router-id 10.2.0.2"]
    assert instance["neighbors"]["192.0.2.1"] == [
        "neighbor 192.0.2.1 remote-as 64999",
        "neighbor 192.0.2.1 description someone-elses-peer",
    ]
    family = instance["address_families"]["address-family ipv4 unicast"]
    assert family["neighbors"]["10.252.1.12"] == [
        "neighbor 10.252.1.12 activate",
        "neighbor 10.252.1.12 route-map ncn-w003-nmn in",
    ]
    assert "interface eth0" not in fc.to_text(parsed)


def test_to_text_parses_back_to_the_same_structure() -> None:
    assert fc.parse(fc.to_text(golden())) == golden()


def test_merged_from_nothing_sends_every_line_and_nothing_when_done() -> None:
    want = golden()
    commands = fc.commands(fc.empty(), want, "merged", ownership())
    assert fc.parse("\n".join(commands)) == want
    for state in ("merged", "replaced", "overridden"):
        assert fc.commands(want, want, state, ownership()) == [], state


def test_order_of_lines_inside_an_object_is_not_a_change() -> None:
    want = golden()
    shuffled = fc.parse(fc.to_text(want))
    for instance in shuffled["bgp"].values():
        for family in instance["address_families"].values():
            family["lines"].reverse()
            for lines in family["neighbors"].values():
                lines.reverse()
    assert fc.commands(shuffled, want, "replaced", ownership()) == []


def test_new_entries_come_before_bgp_that_refers_to_them() -> None:
    commands = fc.commands(fc.empty(), golden(), "merged", ownership())
    first_bgp = commands.index("router bgp 65533")
    assert commands.index("ip prefix-list pl-node-management seq 10 permit "
                          "10.92.100.0/24 ge 32 le 32") < first_bgp
    assert commands.index("route-map ncn-w003-nmn permit 40") < first_bgp


def test_overridden_removes_the_decommissioned_worker_and_nothing_it_does_not_own() -> None:
    have = fc.parse(RUNNING)
    want = golden()
    for address in ("10.252.1.12", "10.102.5.16"):
        want["bgp"]["router bgp 65533"]["neighbors"].pop(address)
        want["bgp"]["router bgp 65533"]["address_families"][
            "address-family ipv4 unicast"]["neighbors"].pop(address)
    del want["route_maps"]["ncn-w003-nmn"], want["route_maps"]["ncn-w003-cmn"]
    commands = fc.commands(have, want, "overridden", ownership())
    assert " no neighbor 10.252.1.12" in commands
    assert "no route-map ncn-w003-nmn" in commands
    assert "no ip prefix-list pl-old-pool" in commands
    text = "\n".join(commands)
    assert "192.0.2.1" not in text
    assert "their-policy" not in text
    assert "their-list" not in text
    # merged and replaced never remove an object the data does not name
    for state in ("merged", "replaced"):
        assert not [c for c in fc.commands(have, want, state, ownership())
                    if "no neighbor 10.252.1.12" in c or c.startswith("no route-map")], state


def test_replaced_removes_lines_the_data_does_not_say_inside_named_objects() -> None:
    want = golden()
    have = fc.parse(fc.to_text(want))
    instance = have["bgp"]["router bgp 65533"]
    instance["neighbors"]["10.252.1.10"].append("neighbor 10.252.1.10 shutdown")
    instance["address_families"]["address-family ipv4 unicast"]["neighbors"][
        "10.252.1.10"].append("neighbor 10.252.1.10 allowas-in 1")
    have["route_maps"]["ncn-w001-nmn"]["route-map ncn-w001-nmn permit 10"].append("set metric 5")
    have["route_maps"]["ncn-w001-nmn"]["route-map ncn-w001-nmn permit 90"] = []
    have["prefix_lists"]["pl-node-management"].append(
        "ip prefix-list pl-node-management seq 20 permit 10.0.0.0/8")
    assert fc.commands(have, want, "merged", ownership()) == []
    assert fc.commands(have, want, "replaced", ownership()) == [
        "no ip prefix-list pl-node-management seq 20 permit 10.0.0.0/8",
        "no route-map ncn-w001-nmn permit 90",
        "route-map ncn-w001-nmn permit 10",
        " no set metric 5",
        "exit",
        "router bgp 65533",
        " no neighbor 10.252.1.10 shutdown",
        " address-family ipv4 unicast",
        "  no neighbor 10.252.1.10 allowas-in 1",
        " exit-address-family",
        "exit",
    ]


def test_a_neighbor_whose_as_changed_is_recreated_with_all_its_lines() -> None:
    want = golden()
    have = fc.parse(fc.to_text(want).replace(
        "neighbor 10.252.1.10 remote-as 65531", "neighbor 10.252.1.10 remote-as 64000"))
    commands = fc.commands(have, want, "merged", ownership())
    assert commands[:2] == ["router bgp 65533", " no neighbor 10.252.1.10"]
    assert " neighbor 10.252.1.10 remote-as 65531" in commands
    assert "  neighbor 10.252.1.10 route-map ncn-w001-nmn in" in commands


def test_deleted_removes_what_the_data_names_only() -> None:
    have = fc.parse(RUNNING)
    commands = fc.commands(have, golden(), "deleted", ownership())
    assert commands == [
        "router bgp 65533", " no neighbor 10.252.1.12", "exit", "no route-map ncn-w003-nmn",
    ]
    assert fc.commands(fc.empty(), golden(), "deleted", ownership()) == []


def test_states_without_changes_are_refused() -> None:
    with pytest.raises(ValueError, match="gathered"):
        fc.commands(fc.empty(), golden(), "gathered")


def test_passwords_are_masked_in_data_and_lines_and_restored_for_the_device() -> None:
    parsed = fc.mask(fc.parse(RUNNING))
    assert "s3cret-Pw" not in repr(parsed)
    assert "neighbor 10.252.1.12 password <redacted>" in (
        parsed["bgp"]["router bgp 65533"]["neighbors"]["10.252.1.12"])
    assert fc.mask_line(" neighbor 10.0.0.1 password s3cret-Pw") == (
        " neighbor 10.0.0.1 password <redacted>")
    assert fc.unmask(" neighbor 10.0.0.1 password <redacted>\n", "p4ss") == (
        " neighbor 10.0.0.1 password p4ss\n")
    assert fc.unmask("x <redacted>", None) == "x <redacted>"


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden", "deleted"])
def test_predicted_after_matches_what_the_commands_make(state: str) -> None:
    """Check mode's diff: named objects as the data says, foreign objects kept, owned ones per state."""
    have = fc.parse(RUNNING)
    want = golden()
    predicted = fc.predict(have, want, state, ownership())
    view = fc.changed_view(predicted, want, ownership(), state)
    if state == "deleted":
        assert not view["route_maps"] and not view["prefix_lists"]
        assert "10.252.1.12" not in predicted["bgp"]["router bgp 65533"]["neighbors"]
        assert "192.0.2.1" in predicted["bgp"]["router bgp 65533"]["neighbors"]
        return
    if state == "merged":  # merged keeps what else the entry says: the prediction is a union
        entry = view["route_maps"]["ncn-w003-nmn"]["route-map ncn-w003-nmn permit 10"]
        assert set(want["route_maps"]["ncn-w003-nmn"]["route-map ncn-w003-nmn permit 10"]) < set(
            entry)
    else:
        assert view["route_maps"] == want["route_maps"]
    assert view["prefix_lists"] == want["prefix_lists"]
    assert ("pl-old-pool" in predicted["prefix_lists"]) == (state != "overridden")
    assert "their-policy" in predicted["route_maps"]
    neighbors = predicted["bgp"]["router bgp 65533"]["neighbors"]
    assert "192.0.2.1" in neighbors
    assert neighbors["10.252.1.10"] == want["bgp"]["router bgp 65533"]["neighbors"]["10.252.1.10"]


# Static routes as FRR 8.4 prints them (checked against a real FRR in a namespace): global
# ones at the top level, a VRF's inside its ``vrf NAME`` block (also when configured as
# ``ip route ... vrf NAME``).
POOLS = ["10.92.100.0/24", "10.102.5.64/26", "fd00:92::/64"]
STATIC = """!
ip route 10.92.100.71/32 10.252.1.10
ip route 10.92.100.72/32 10.252.1.11 tag 5 20
ip route 10.92.100.0/24 10.252.0.1
ip route 10.99.0.5/32 10.252.0.1
ip route 0.0.0.0/0 10.9.9.1
ipv6 route fd00:92::7/128 fd00:252::10
ipv6 route fd00:92::/64 fd00:252::1
ipv6 route fd00:99::7/128 fd00:252::1
!
vrf CSM
 ip route 10.102.5.71/32 10.102.5.14
 ip route 10.102.5.0/25 10.102.5.1
exit-vrf
!
"""
OWNED_STATIC = {
    "default": ["ip route 10.92.100.71/32 10.252.1.10",
                "ip route 10.92.100.72/32 10.252.1.11 tag 5 20",
                "ipv6 route fd00:92::7/128 fd00:252::10"],
    "CSM": ["ip route 10.102.5.71/32 10.102.5.14"],
}
KEPT_STATIC = {
    "default": ["ip route 10.92.100.0/24 10.252.0.1", "ip route 10.99.0.5/32 10.252.0.1",
                "ip route 0.0.0.0/0 10.9.9.1", "ipv6 route fd00:92::/64 fd00:252::1",
                "ipv6 route fd00:99::7/128 fd00:252::1"],
    "CSM": ["ip route 10.102.5.0/25 10.102.5.1"],
}


def pool_ownership() -> Any:
    return fc.Ownership(**OWNED, pools=POOLS)


def with_static_routes() -> dict[str, Any]:
    parsed: dict[str, Any] = fc.parse(RUNNING.replace("end\n", STATIC + "end\n"))
    return parsed


def test_parse_reads_static_routes_globally_and_per_vrf_block_v4_and_v6() -> None:
    parsed = with_static_routes()
    assert parsed["static_routes"] == {
        "default": ["ip route 10.92.100.71/32 10.252.1.10",
                    "ip route 10.92.100.72/32 10.252.1.11 tag 5 20",
                    "ip route 10.92.100.0/24 10.252.0.1",
                    "ip route 10.99.0.5/32 10.252.0.1",
                    "ip route 0.0.0.0/0 10.9.9.1",
                    "ipv6 route fd00:92::7/128 fd00:252::10",
                    "ipv6 route fd00:92::/64 fd00:252::1",
                    "ipv6 route fd00:99::7/128 fd00:252::1"],
        "CSM": ["ip route 10.102.5.71/32 10.102.5.14", "ip route 10.102.5.0/25 10.102.5.1"],
    }
    assert fc.parse(RUNNING)["static_routes"] == {}
    assert fc.parse(fc.to_text(parsed)) == parsed
    assert "vrf CSM\n ip route 10.102.5.71/32 10.102.5.14\n" in fc.to_text(parsed)


def test_ownership_of_static_routes_is_a_host_route_inside_a_pool() -> None:
    owner = pool_ownership()
    for prefix in ("10.92.100.71/32", "10.102.5.127/32", "fd00:92::7/128", "10.92.100.71"):
        assert owner.owns_prefix(prefix), prefix
    for prefix in ("10.92.100.0/24", "10.92.100.64/30", "10.99.0.5/32", "0.0.0.0/0",
                   "fd00:92::/64", "fd00:99::7/128", "10.102.5.63/32", "not-a-prefix"):
        assert not owner.owns_prefix(prefix), prefix
    assert owner.owns_static_route("ip route 10.92.100.71/32 blackhole")
    assert not owner.owns_static_route("ip prefix-list pl-x seq 5 permit 10.92.100.71/32")
    assert not fc.Ownership(**OWNED).owns_prefix("10.92.100.71/32")  # no pools: nothing


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
def test_converging_states_remove_static_routes_to_pool_addresses_only(state: str) -> None:
    have = with_static_routes()
    want = fc.parse(fc.to_text(golden()))
    have["bgp"], have["route_maps"], have["prefix_lists"] = (
        want["bgp"], want["route_maps"], want["prefix_lists"])
    commands = fc.commands(have, want, state, pool_ownership())
    assert commands == [
        "no ip route 10.92.100.71/32 10.252.1.10",
        "no ip route 10.92.100.72/32 10.252.1.11 tag 5 20",
        "no ipv6 route fd00:92::7/128 fd00:252::10",
        "vrf CSM",
        " no ip route 10.102.5.71/32 10.102.5.14",
        "exit-vrf",
    ]
    after = fc.predict(have, want, state, pool_ownership())
    assert after["static_routes"] == KEPT_STATIC
    assert fc.commands(after, want, state, pool_ownership()) == []
    # the diff shows exactly the removed routes
    assert fc.changed_view(have, want, pool_ownership(), state)["static_routes"] == OWNED_STATIC
    assert fc.changed_view(after, want, pool_ownership(), state)["static_routes"] == {}


def test_static_route_removals_come_last_and_only_in_converging_states() -> None:
    have = with_static_routes()
    merged = fc.commands(have, golden(), "merged", pool_ownership())
    removals = fc.static_route_commands(have, golden(), "merged", pool_ownership())
    assert merged[-len(removals):] == removals and len(removals) == 6
    assert fc.static_route_commands(have, golden(), "deleted", pool_ownership()) == []
    deleted = fc.commands(have, golden(), "deleted", pool_ownership())
    assert not [line for line in deleted if "route " in line and "route-map" not in line]
    assert fc.predict(have, golden(), "deleted", pool_ownership())["static_routes"] == (
        have["static_routes"])
    assert fc.changed_view(have, golden(), pool_ownership(), "deleted")["static_routes"] == {}
    # without pools (an older action plugin) nothing is owned
    assert fc.static_route_commands(have, golden(), "merged", ownership()) == []


def test_ownership_from_the_modules_owned_option() -> None:
    owner = fc.Ownership.from_owned(dict(OWNED, pools=POOLS))
    assert owner.owns_prefix("10.92.100.71/32") and owner.route_maps.search("ncn-w001-nmn")
    assert not fc.Ownership.from_owned({}).owns_prefix("10.92.100.71/32")
    assert not fc.Ownership.from_owned(None).route_maps.search("ncn-w001-nmn")


# --- the BFD profile -----------------------------------------------------------------------------

BFD_GOLDEN = REPO / "tests" / "golden" / "frr-bfd" / "sw-spine-001.cfg"  # 100 ms x 3
# A ``bfd`` block as FRR 8.4's bfdd prints it (seen here): timers at their defaults (3, 300,
# 300) are left out, the other profiles and the peers are someone else's.
RUNNING_BFD = """!
bfd
 profile spinelb
  transmit-interval 100
  receive-interval 100
 exit
 !
 profile other
  detect-multiplier 5
 exit
 !
 peer 10.9.9.1 local-address 10.9.9.9
  detect-multiplier 7
 exit
 !
exit
!
"""
SPINELB_100MS = ["detect-multiplier 3", "receive-interval 100", "transmit-interval 100"]


def bfd_golden() -> dict[str, Any]:
    parsed: dict[str, Any] = fc.parse(BFD_GOLDEN.read_text())
    return parsed


def test_parse_reads_only_the_spinelb_profile_with_bfdds_defaults_spelt_out() -> None:
    assert fc.parse(RUNNING_BFD)["bfd_profiles"] == {"spinelb": SPINELB_100MS}
    # the rendered profile (every timer written) reads the same as bfdd's print of it
    assert bfd_golden()["bfd_profiles"] == {"spinelb": SPINELB_100MS}
    assert fc.parse(" profile spinelb\n")["bfd_profiles"] == {}  # only inside ``bfd``
    defaults = fc.parse("bfd\n profile spinelb\n exit\nexit\n")["bfd_profiles"]["spinelb"]
    assert defaults == ["detect-multiplier 3", "receive-interval 300", "transmit-interval 300"]
    assert fc.parse(fc.to_text(bfd_golden())) == bfd_golden()


def test_the_profile_is_made_before_the_neighbors_that_name_it_then_nothing_to_do() -> None:
    want = bfd_golden()
    commands = fc.commands(fc.empty(), want, "merged", ownership())
    profile = commands.index(" profile spinelb")
    assert commands[profile - 1 : profile + 6] == [
        "bfd", " profile spinelb", "  detect-multiplier 3", "  receive-interval 100",
        "  transmit-interval 100", " exit", "exit",
    ]
    assert profile < commands.index(" neighbor 10.252.1.10 bfd profile spinelb")
    # the device as bfdd shows it afterwards: defaults left out, other profiles beside it
    have = fc.parse(fc.to_text({**want, "bfd_profiles": {}}) + RUNNING_BFD)
    for state in ("merged", "replaced", "overridden"):
        assert fc.commands(have, want, state, ownership()) == [], state


def test_new_timers_are_set_without_no_forms() -> None:
    have = fc.parse(fc.to_text({**bfd_golden(), "bfd_profiles": {}}) + RUNNING_BFD)
    want = fc.parse(BFD_GOLDEN.read_text().replace("receive-interval 100", "receive-interval 300")
                    .replace("detect-multiplier 3", "detect-multiplier 4"))
    for state in ("merged", "replaced", "overridden"):
        assert fc.commands(have, want, state, ownership()) == [
            "bfd", " profile spinelb", "  detect-multiplier 4", "  receive-interval 300",
            " exit", "exit",
        ], state
        after = fc.predict(have, want, state, ownership())
        assert after["bfd_profiles"] == want["bfd_profiles"]


def test_replaced_clears_a_flag_the_data_does_not_set_and_merged_keeps_it() -> None:
    have = fc.parse(fc.to_text(bfd_golden()).replace("  transmit-interval 100\n",
                                                     "  transmit-interval 100\n  shutdown\n"))
    want = bfd_golden()
    assert fc.commands(have, want, "merged", ownership()) == []
    assert fc.commands(have, want, "replaced", ownership()) == [
        "bfd", " profile spinelb", "  no shutdown", " exit", "exit"]


def test_bfd_turned_off_overridden_removes_the_profile_after_its_neighbors() -> None:
    have = fc.parse(fc.to_text({**bfd_golden(), "bfd_profiles": {}}) + RUNNING_BFD)
    want = golden()  # the same site without BFD
    assert not any("profile" in line for line in fc.commands(have, want, "merged", ownership()))
    replaced = fc.commands(have, want, "replaced", ownership())
    assert " no neighbor 10.252.1.10 bfd" in replaced
    # ``no neighbor X bfd`` takes the profile line along; sent after it, that line would turn
    # BFD back on (FRR 8.4)
    assert not any("bfd profile" in line for line in replaced)
    assert " no profile spinelb" not in replaced  # replaced only edits what the data names
    overridden = fc.commands(have, want, "overridden", ownership())
    assert overridden[-3:] == ["bfd", " no profile spinelb", "exit"]
    assert overridden.index(" no neighbor 10.252.1.10 bfd") < len(overridden) - 3
    assert not any("other" in line for line in overridden)
    predicted = fc.predict(have, want, "overridden", ownership())
    assert predicted["bfd_profiles"] == {}
    view = fc.changed_view(have, want, ownership(), "overridden")
    assert "profile spinelb" in fc.to_text(view)  # the diff shows what goes


def test_deleted_removes_the_profile_the_data_names() -> None:
    have = bfd_golden()
    commands = fc.commands(have, bfd_golden(), "deleted", ownership())
    assert commands[-3:] == ["bfd", " no profile spinelb", "exit"]
    assert fc.predict(have, bfd_golden(), "deleted", ownership())["bfd_profiles"] == {}
    without = fc.commands(golden(), bfd_golden(), "deleted", ownership())
    assert not any("profile" in line for line in without)  # nothing to remove


def test_configs_without_bfd_profiles_key_are_read_as_none() -> None:
    """aoscx_config's parsed form has no ``bfd_profiles``: the same functions must serve it."""
    have, want = golden(), golden()
    del have["bfd_profiles"], want["bfd_profiles"]
    assert fc.commands(have, want, "overridden", ownership()) == []
    assert "bfd_profiles" not in fc.predict(have, want, "overridden", ownership())
    assert fc.changed_view(have, want, ownership(), "overridden")["bfd_profiles"] == {}
    assert "bfd" not in fc.to_text(have)
