"""Golden files: the reference site's spine configs as committed under tests/golden/.

``tests/golden/aoscx/`` is ``inventories/reference-site`` (production, AOS-CX)
and ``tests/golden/frr/`` is ``inventories/lab`` (the same site with FRR spines,
VRFs collapsed), both read through ``ansible-inventory`` as the role will read
them.  ``tests/golden/aoscx-bfd/`` and ``tests/golden/frr-bfd/`` are the same
inventories with BFD on (CSM's VLANs on the peering networks; 500 ms x 3 on
AOS-CX, the lab's 100 ms x 3 on FRR).  Any difference fails; after an intended
change, regenerate with

    SPINELB_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_spine_golden.py

and review the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from test_spine_model import REPO, ansible_inventory, inventory_data

from spinelb.spine import Site, load_site, render, site_from_inventory

GOLDEN = REPO / "tests" / "golden"
UPDATE = os.environ.get("SPINELB_UPDATE_GOLDEN") == "1"
CASES = [
    ("aoscx", "reference-site", "sw-spine-001"),
    ("aoscx", "reference-site", "sw-spine-002"),
    ("frr", "lab", "sw-spine-001"),
    ("frr", "lab", "sw-spine-002"),
]
#: (platform, inventory, spine, spinelb_bgp.bfd) rendered into tests/golden/<platform>-bfd/.
BFD_CASES = [
    ("aoscx", "reference-site", "sw-spine-001", {"min_rx_ms": 500, "min_tx_ms": 500}),
    ("frr", "lab", "sw-spine-001", {"min_rx_ms": 100, "min_tx_ms": 100, "multiplier": 3}),
]
CSM_VLANS = {"nmn": 2, "cmn": 6}


def with_bfd(inventory: str, bfd: dict[str, int]) -> Site:
    site_vars, hosts, groups = inventory_data(inventory)
    site_vars["spinelb_bgp"]["bfd"] = bfd
    for network, vlan in CSM_VLANS.items():
        site_vars["spinelb_networks"][network]["vlan"] = vlan
    return load_site(site_vars, hosts, groups)


@pytest.mark.parametrize(("platform", "inventory", "spine"), CASES)
def test_render_matches_golden_file(platform: str, inventory: str, spine: str) -> None:
    site = site_from_inventory(ansible_inventory(inventory))
    assert site.spines[spine].platform == platform
    compare_with_golden(render(site, spine, platform), GOLDEN / platform / f"{spine}.cfg")


@pytest.mark.parametrize(("platform", "inventory", "spine", "bfd"), BFD_CASES)
def test_render_with_bfd_matches_golden_file(
    platform: str, inventory: str, spine: str, bfd: dict[str, int]
) -> None:
    site = with_bfd(inventory, bfd)
    assert site.spines[spine].platform == platform
    path = GOLDEN / f"{platform}-bfd" / f"{spine}.cfg"
    compare_with_golden(render(site, spine, platform), path)


def compare_with_golden(rendered: str, path: Path) -> None:
    """Fail with a diff unless ``rendered`` is ``path``'s text (write it when updating)."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), (
        f"{path} is missing: regenerate with SPINELB_UPDATE_GOLDEN=1 (see {__name__})"
    )
    expected = path.read_text()
    if rendered != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                rendered.splitlines(keepends=True),
                f"{path.relative_to(REPO)} (golden)",
                "rendered now",
            )
        )
        pytest.fail(
            f"the rendered config differs from its golden file {path.name}.\n"
            "If the change is intended: SPINELB_UPDATE_GOLDEN=1 .venv/bin/pytest "
            f"tests/unit/test_spine_golden.py, then review and commit tests/golden/.\n{diff}"
        )
