"""The collection tarball carries the speaker's source, so roles can install it on workers.

Builds the collection with ``ansible-galaxy collection build`` into a temporary directory and
inspects what it packed: the speaker package and its pyproject.toml must be there, the
development leftovers (virtualenv, caches, lab run state) must not.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


def _ansible_galaxy() -> str:
    beside_python = Path(sys.executable).with_name("ansible-galaxy")
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("ansible-galaxy")
    assert found, "ansible-galaxy is not installed (pyproject.toml's test extra installs it)"
    return found


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("collection-build")
    subprocess.run(
        [_ansible_galaxy(), "collection", "build", "--output-path", str(output), str(REPO_ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    built = sorted(output.glob("*.tar.gz"))
    assert len(built) == 1, built
    return built[0]


@pytest.fixture(scope="module")
def member_names(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as archive:
        return {name.removeprefix("./").rstrip("/") for name in archive.getnames()}


def test_tarball_is_named_after_galaxy_yml(tarball: Path) -> None:
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("spinelb", "fabric")
    assert tarball.name == f"spinelb-fabric-{galaxy['version']}.tar.gz"


def test_tarball_contains_the_speaker_source(member_names: set[str]) -> None:
    assert "src/spinelb/__init__.py" in member_names
    assert "pyproject.toml" in member_names
    source_files = {
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "src" / "spinelb").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert sorted(source_files - member_names) == []


def test_tarball_contains_the_collection_metadata(
    tarball: Path, member_names: set[str]
) -> None:
    assert {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md"} <= member_names
    with tarfile.open(tarball) as archive:
        manifest_file = archive.extractfile("MANIFEST.json")
        assert manifest_file is not None
        manifest = json.load(manifest_file)
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"]) == ("spinelb", "fabric")
    assert info["license"] == ["GPL-3.0-or-later"]


@pytest.mark.parametrize(
    "excluded",
    [".venv", ".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "lab/run"],
)
def test_tarball_leaves_out_development_state(member_names: set[str], excluded: str) -> None:
    offending = sorted(
        name
        for name in member_names
        if name == excluded or name.startswith(f"{excluded}/") or f"/{excluded}/" in f"/{name}/"
    )
    assert offending == []


def test_installed_collection_holds_an_installable_speaker(tarball: Path, tmp_path: Path) -> None:
    # --force: this checkout is on ansible.cfg's collections_path, so galaxy would call it installed.
    subprocess.run(
        [_ansible_galaxy(), "collection", "install", "--offline", "--force", "-p", str(tmp_path),
         str(tarball)],
        check=True,
        capture_output=True,
        text=True,
    )
    installed = tmp_path / "ansible_collections" / "spinelb" / "fabric"
    assert (installed / "pyproject.toml").is_file()
    assert (installed / "src" / "spinelb" / "__init__.py").is_file()
