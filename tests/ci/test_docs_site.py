"""The documentation site builds --strict, and its generated pages match the sources."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers.paths import ROOT, VENV_BIN
from mkdocs.exceptions import PluginError

from tweetcls.cli import COMMANDS

MKDOCS = VENV_BIN / "mkdocs"


def _hook():
    spec = importlib.util.spec_from_file_location(
        "generated_hook", ROOT / "docs/hooks/generated.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return out


def test_cli_page_lists_every_command(site: Path) -> None:
    html = (site / "cli/index.html").read_text()
    for name in COMMANDS:
        assert f"tweetcls {name}" in html


def test_results_page_shows_the_measured_f1(site: Path) -> None:
    f1 = json.loads((ROOT / "reports/metrics.json").read_text())["f1"]
    assert _hook().fmt(f1) in (site / "results/index.html").read_text()


def test_architecture_has_mermaid_and_reference_pages_exist(site: Path) -> None:
    assert 'class="mermaid"' in (site / "architecture/index.html").read_text()
    for page in (ROOT / "docs/reference").glob("*.md"):
        assert (site / "reference" / page.stem / "index.html").is_file()


def test_malformed_report_fails_naming_the_file(tmp_path: Path) -> None:
    hook = _hook()
    for name in hook.REPORT_FILES:
        (tmp_path / name).write_text("{}")
    (tmp_path / "kfold.json").write_text("{not json")
    with pytest.raises(PluginError, match=r"kfold\.json"):
        hook.render_results(tmp_path)


def test_readme_is_small_and_has_the_quickstart() -> None:
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) <= 10_240
    text = readme.decode()
    assert "./install.sh && . .venv/bin/activate && dvc pull data/raw && dvc repro" in text
    assert "./install.sh && . .venv/bin/activate && dvc pull data/raw && pytest" in text
