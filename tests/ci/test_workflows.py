"""Schema checks of the CI files (check-jsonschema's vendored schemas, offline)."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.paths import ROOT, VENV_BIN

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK = VENV_BIN / "check-jsonschema"


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
    assert {"ci.yml", "data.yml", "model.yml", "docker.yml", "docs.yml"} <= names


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
    matrix = _load(ROOT / ".github" / "workflows" / "ci.yml")["jobs"]["test"]["strategy"]["matrix"]
    assert {"3.10", "3.11", "3.12"} <= set(matrix["python"])
    assert any(inc["os"].startswith("macos") for inc in matrix["include"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_event_interpolation_in_run(path):
    for step in _steps(_load(path)):
        assert "${{ github.event." not in step.get("run", ""), step["run"]
