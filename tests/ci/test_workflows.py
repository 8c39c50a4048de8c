"""Checks of the CI files: check-jsonschema's vendored schemas (offline), actionlint, and what
the workflows install (the lock) and test (the Python versions pyproject.toml supports)."""

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from helpers.paths import ROOT, VENV_BIN

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK = VENV_BIN / "check-jsonschema"
ACTIONLINT = ROOT / ".github" / "actionlint" / "run"
LOCK = "requirements/constraints.txt"


def _check(schema: str, *files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _steps(wf: dict):
    for job in wf["jobs"].values():
        yield from job.get("steps", [])


def test_workflows_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"ci.yml", "contract.yml", "data.yml", "model.yml", "docker.yml", "docs.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_valid(path):
    r = _check("vendor.github-workflows", path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_dependabot_valid():
    r = _check("vendor.dependabot", ROOT / ".github" / "dependabot.yml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_cloudbuild_valid():
    r = _check("vendor.cloudbuild", ROOT / "cloud" / "cloudbuild.yaml")
    assert r.returncode == 0, r.stdout + r.stderr


def test_broken_workflow_fails(tmp_path):
    wf = _load(ROOT / ".github" / "workflows" / "ci.yml")
    del wf["jobs"]["lint"]["runs-on"]
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(wf))
    assert _check("vendor.github-workflows", broken).returncode != 0


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_pinned(path):
    for step in _steps(_load(path)):
        if "uses" in step:
            ref = step["uses"].rpartition("@")[2]
            assert re.fullmatch(r"v\d+(\.\d+)*|[0-9a-f]{40}", ref), step["uses"]


def test_matrix():
    """Three Python versions from pyproject's lowest supported one on, plus a macOS job."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    major, minor = map(int, re.fullmatch(r">=(\d+)\.(\d+)", requires).groups())
    matrix = _load(ROOT / ".github" / "workflows" / "ci.yml")["jobs"]["test"]["strategy"]["matrix"]
    assert matrix["python"] == [f"{major}.{minor + i}" for i in range(3)]
    assert any(inc["os"].startswith("macos") for inc in matrix["include"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_installs_and_caches_by_the_lock(path):
    """pip's cache is keyed on pyproject.toml and the lock, and every pip install uses the lock."""
    for step in _steps(_load(path)):
        if step.get("uses", "").startswith("actions/setup-python"):
            keys = step["with"]["cache-dependency-path"].split()
            assert sorted(keys) == ["pyproject.toml", LOCK]
        for command in re.findall(r"pip install [^&\n]*", step.get("run", "")):
            if "lower_bounds.py" not in command:  # the oldest-deps job's deliberate override
                assert f"--constraint {LOCK}" in command, command


def test_oldest_deps_job_installs_the_lower_bounds():
    steps = [
        s.get("run", "")
        for s in _load(ROOT / ".github/workflows/ci.yml")["jobs"]["oldest-deps"]["steps"]
    ]
    assert "pip install $(python scripts/lower_bounds.py torch lightning)" in steps


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_finds_nothing(path):
    r = subprocess.run([str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr


def test_actionlint_flags_untrusted_input_in_a_script(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: issues\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
    )
    r = subprocess.run([str(ACTIONLINT), str(bad)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert f"{bad}:6:" in r.stdout and "potentially untrusted" in r.stdout


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_event_interpolation_in_run(path):
    for step in _steps(_load(path)):
        assert "${{ github.event." not in step.get("run", ""), step["run"]
