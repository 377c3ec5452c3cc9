"""The FRR and AOS-CX renderers: what each line says, secrets masking, and FRR's own syntax check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from test_spine_model import inventory_data, reference_site

from spinelb.spine import Site, load_site, render

VTYSH = shutil.which("vtysh")
SECRET = "md5-s3cret"


#: CSM's VLANs of the peering networks (the AOS-CX SVIs that carry BFD timers).
CSM_VLANS = {"nmn": 2, "cmn": 6}


def with_options(inventory: str = "reference-site", **bgp: object) -> Site:
    """An inventory's site with ``spinelb_bgp`` options added (``password`` goes to its own variable).

    With ``bfd``, the peering networks get CSM's VLANs (AOS-CX needs them).
    """
    site_vars, hosts, groups = inventory_data(inventory)
    site_vars.pop("spinelb_bgp_bfd", None)  # the lab's own BFD layer would win over the options
    password = bgp.pop("password", None)
    if bgp.get("bfd"):
        for network, vlan in CSM_VLANS.items():
            site_vars["spinelb_networks"][network]["vlan"] = vlan
    site_vars["spinelb_bgp"].update(bgp)
    if password is not None:
        site_vars["spinelb_bgp_password"] = password
    return load_site(site_vars, hosts, groups)


def block(text: str, start: str) -> list[str]:
    """The lines of the block that begins with ``start``, up to the next unindented line."""
    lines = text.splitlines()
    index = lines.index(start)
    end = next(
        (i for i in range(index + 1, len(lines)) if lines[i] and not lines[i].startswith(" ")),
        len(lines),
    )
    return lines[index:end]


def vtysh_check(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    assert VTYSH is not None
    path = tmp_path / "frr.conf"
    path.write_text(text)
    return subprocess.run(
        [VTYSH, "-C", "-f", str(path)], capture_output=True, text=True, check=False
    )


# --- FRR -----------------------------------------------------------------------------------------


def test_frr_router_settings_and_multipath() -> None:
    text = render(reference_site("lab"), "sw-spine-001", "frr")
    assert text.startswith("frr defaults datacenter\nhostname sw-spine-001\n")
    router = block(text, "router bgp 65533")
    for line in (
        " bgp router-id 10.2.0.2",
        " no bgp ebgp-requires-policy",
        " bgp bestpath as-path multipath-relax",
        " timers bgp 1 3",
        "  maximum-paths 32",
        "  maximum-paths ibgp 32",
        "  distance bgp 20 70 20",
    ):
        assert line in router
    assert text.endswith("end\n")


def test_frr_passive_worker_neighbors_with_speaker_as_and_route_map() -> None:
    router = block(render(reference_site("lab"), "sw-spine-002", "frr"), "router bgp 65533")
    assert " neighbor 10.252.1.11 remote-as 65531" in router
    assert " neighbor 10.252.1.11 passive" in router
    assert " neighbor 10.102.5.15 remote-as 65532" in router
    assert "  neighbor 10.102.5.15 route-map ncn-w002-cmn in" in router
    assert "  neighbor 10.102.5.15 maximum-prefix 132" in router
    assert "  neighbor 10.102.5.15 soft-reconfiguration inbound" in router  # the lab keeps them
    assert " neighbor 10.102.5.2 remote-as 65533" in router  # iBGP to sw-spine-001
    assert " neighbor 10.102.5.2 passive" not in router
    assert not any("10.102.5.2 route-map" in line for line in router)


def test_frr_prefix_lists_accept_host_routes_only() -> None:
    text = render(reference_site("lab"), "sw-spine-001", "frr")
    assert "ip prefix-list pl-hardware-management seq 10 permit 10.94.100.0/24 ge 32 le 32" in text
    assert "ip prefix-list single-path-1 seq 10 permit 10.92.100.60/32" in text.splitlines()


def test_frr_route_map_pins_single_path_and_rewrites_next_hop() -> None:
    text = render(reference_site("lab"), "sw-spine-001", "frr")
    assert block(text, "route-map ncn-w003-nmn permit 20") == [
        "route-map ncn-w003-nmn permit 20",
        " match ip address prefix-list single-path-2",
        " set local-preference 1000",
        " set ip next-hop 10.254.1.20",
    ]
    assert block(text, "route-map ncn-w003-nmn permit 40") == [
        "route-map ncn-w003-nmn permit 40",
        " match ip address prefix-list pl-node-management",
    ]


def test_frr_keeps_vrfs_unless_collapsed() -> None:
    site = reference_site()  # production data: collapse_vrfs false
    text = render(site, "sw-spine-001", "frr")
    assert "router bgp 65533 vrf CSM" in text
    csm = block(text, "router bgp 65533 vrf CSM")
    assert " neighbor 10.252.1.10 remote-as 65531" in csm
    assert not any("10.102.5.14" in line for line in csm)
    collapsed = render(site, "sw-spine-001", "frr", collapse_vrfs=True)
    assert "vrf CSM" not in collapsed
    assert " neighbor 10.252.1.10 remote-as 65531" in block(collapsed, "router bgp 65533")
    assert "soft-reconfiguration" not in collapsed


def test_frr_bfd_and_password_and_masking() -> None:
    site = with_options(bfd=True, password=SECRET)
    text = render(site, "sw-spine-001", "frr")
    assert f" neighbor 10.252.1.10 password {SECRET}" in text
    assert " neighbor 10.252.1.10 bfd" in text
    masked = render(site, "sw-spine-001", "frr", mask_secrets=True)
    assert SECRET not in masked
    assert " neighbor 10.252.1.10 password <redacted>" in masked
    assert "password" not in render(reference_site(), "sw-spine-001", "frr")


def test_frr_bfd_timers_are_one_profile_every_neighbor_names() -> None:
    site = with_options("lab", bfd={"min_rx_ms": 100, "min_tx_ms": 150, "multiplier": 4})
    text = render(site, "sw-spine-001", "frr")
    assert block(text, "bfd") == [
        "bfd",
        " profile spinelb",
        "  receive-interval 100",
        "  transmit-interval 150",
        "  detect-multiplier 4",
        " exit",
    ]
    assert text.index("bfd\n profile spinelb") < text.index("router bgp")  # before its users
    router = block(text, "router bgp 65533")
    neighbors = {line.split()[1] for line in router if line.startswith(" neighbor ")}
    assert len(neighbors) == 7  # the other spine, three workers on two networks
    for address in neighbors:
        assert router.index(f" neighbor {address} bfd") + 1 == router.index(
            f" neighbor {address} bfd profile spinelb"
        )
    off = render(with_options("lab"), "sw-spine-001", "frr")  # the site's own bfd: false
    assert "bfd" not in off


def test_frr_configured_maximum_prefix() -> None:
    text = render(with_options(maximum_prefix=50), "sw-spine-001", "frr")
    assert "  neighbor 10.252.1.10 maximum-prefix 50" in text


@pytest.mark.skipif(VTYSH is None, reason="vtysh (FRR) is not installed; CI installs it")
@pytest.mark.parametrize("inventory", ["lab", "reference-site"])
@pytest.mark.parametrize("spine", ["sw-spine-001", "sw-spine-002"])
def test_frr_config_passes_vtysh_check(tmp_path: Path, inventory: str, spine: str) -> None:
    result = vtysh_check(tmp_path, render(reference_site(inventory), spine, "frr"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(VTYSH is None, reason="vtysh (FRR) is not installed; CI installs it")
def test_frr_config_with_every_option_passes_vtysh_check(tmp_path: Path) -> None:
    site = with_options("lab", bfd=True, password=SECRET, maximum_paths=64, maximum_prefix=10)
    result = vtysh_check(tmp_path, render(site, "sw-spine-001", "frr", collapse_vrfs=False))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(VTYSH is None, reason="vtysh (FRR) is not installed; CI installs it")
def test_frr_config_with_bfd_timers_passes_vtysh_check(tmp_path: Path) -> None:
    site = with_options("lab", bfd={"min_rx_ms": 10, "min_tx_ms": 60000, "multiplier": 255})
    text = render(site, "sw-spine-001", "frr")
    assert "  detect-multiplier 255" in text
    result = vtysh_check(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(VTYSH is None, reason="vtysh (FRR) is not installed; CI installs it")
def test_vtysh_check_does_catch_a_bad_line(tmp_path: Path) -> None:
    text = render(reference_site("lab"), "sw-spine-001", "frr").replace(
        "  maximum-paths 32", "  maximum-paths 1000"
    )
    assert vtysh_check(tmp_path, text).returncode != 0


# --- AOS-CX --------------------------------------------------------------------------------------


def test_aoscx_canu_structure() -> None:
    text = render(reference_site(), "sw-spine-001", "aoscx")
    lines = text.splitlines()
    router = lines[lines.index("router bgp 65533") :]
    assert router[1:5] == [
        "    bgp router-id 10.2.0.2",
        "    maximum-paths 32",
        "    timers bgp 1 3",
        "    distance bgp 20 70",
    ]
    vrf = router.index("    vrf CSM")
    default, csm = router[:vrf], router[vrf:]
    assert "    neighbor 10.102.5.14 remote-as 65532" in default
    assert "    neighbor 10.102.5.14 passive" in default
    assert "        neighbor 10.102.5.14 route-map ncn-w001-cmn in" in default
    assert "    neighbor 10.102.5.3 remote-as 65533" in default
    assert "        neighbor 10.252.1.10 remote-as 65531" in csm
    assert "            neighbor 10.252.1.10 route-map ncn-w001-nmn in" in csm
    assert "        neighbor 10.252.0.3 remote-as 65533" in csm
    assert csm[-1] == "        exit-address-family"
    assert not any("10.102.5" in line for line in csm)


def test_aoscx_prefix_lists_and_route_maps() -> None:
    text = render(reference_site(), "sw-spine-002", "aoscx")
    lines = text.splitlines()
    assert "ip prefix-list pl-node-management seq 10 permit 10.92.100.0/24 ge 32 le 32" in lines
    assert "ip prefix-list single-path-1 seq 10 permit 10.92.100.60/32 ge 32 le 32" in lines
    start = lines.index("route-map ncn-w001-nmn permit seq 20")
    assert lines[start : start + 4] == [
        "route-map ncn-w001-nmn permit seq 20",
        "     match ip address prefix-list single-path-2",
        "     set local-preference 1200",
        "     set ip next-hop 10.254.1.16",
    ]
    assert "multipath-relax" not in text
    assert "vrf default" not in text


def test_aoscx_bfd_password_and_masking() -> None:
    site = with_options(bfd=True, password=SECRET)
    text = render(site, "sw-spine-001", "aoscx")
    assert f"    neighbor 10.102.5.14 password plaintext {SECRET}" in text
    assert "        neighbor 10.252.1.10 fall-over bfd" in text
    masked = render(site, "sw-spine-001", "aoscx", mask_secrets=True)
    assert SECRET not in masked
    assert masked == text.replace(SECRET, "<redacted>")


def test_aoscx_bfd_timers_go_on_each_peering_networks_interface() -> None:
    site = with_options(bfd={"min_rx_ms": 500, "min_tx_ms": 400, "multiplier": 3})
    lines = render(site, "sw-spine-002", "aoscx").splitlines()
    assert lines[:9] == [
        "bfd",
        "interface vlan 6",  # cmn, then nmn: by network name
        "    bfd min-transmit-interval 400",
        "    bfd min-receive-interval 500",
        "    bfd detect-multiplier 3",
        "interface vlan 2",
        "    bfd min-transmit-interval 400",
        "    bfd min-receive-interval 500",
        "    bfd detect-multiplier 3",
    ]
    assert lines[9].startswith("ip prefix-list ")
    fall_over = [line for line in lines if line.endswith(" fall-over bfd")]
    assert len(fall_over) == 8  # per VRF: the other spine and three workers
    off = render(reference_site(), "sw-spine-002", "aoscx")
    assert "bfd" not in off and "interface" not in off


def test_aoscx_refuses_collapsed_vrfs_and_unknown_platforms() -> None:
    site = reference_site()
    with pytest.raises(ValueError, match="collapse_vrfs is for FRR only"):
        render(site, "sw-spine-001", "aoscx", collapse_vrfs=True)
    with pytest.raises(ValueError, match="platform 'eos' is not one of aoscx, frr"):
        render(site, "sw-spine-001", "eos")
    with pytest.raises(KeyError, match="ncn-w001"):
        render(site, "ncn-w001", "frr")


# --- both ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", ["frr", "aoscx"])
def test_output_does_not_depend_on_inventory_order(platform: str) -> None:
    site_vars, hosts, groups = inventory_data()
    site_vars["spinelb_pools"] = dict(reversed(site_vars["spinelb_pools"].items()))
    site_vars["spinelb_networks"] = dict(reversed(site_vars["spinelb_networks"].items()))
    groups = {name: list(reversed(members)) for name, members in groups.items()}
    hosts = dict(reversed(hosts.items()))
    shuffled = load_site(site_vars, hosts, groups)
    assert render(shuffled, "sw-spine-001", platform) == render(
        reference_site(), "sw-spine-001", platform
    )


@pytest.mark.parametrize("platform", ["frr", "aoscx"])
def test_a_decommissioned_worker_disappears_entirely(platform: str) -> None:
    site_vars, hosts, groups = inventory_data()
    groups["workers"].remove("ncn-w003")
    del hosts["ncn-w003"]
    for entry in site_vars["spinelb_bgp"]["single_path"]:
        entry["workers"].remove("ncn-w003")
    text = render(load_site(site_vars, hosts, groups), "sw-spine-001", platform)
    assert "ncn-w003" not in text
    assert "10.252.1.12" not in text and "10.102.5.16" not in text
    assert "ncn-w002-nmn" in text
