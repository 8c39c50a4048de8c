"""The documentation site builds --strict, and its generated pages match the sources."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from helpers.paths import ROOT, VENV_BIN
from mkdocs.exceptions import PluginError

from tweetcls.core.commands import COMMANDS

MKDOCS = VENV_BIN / "mkdocs"
REPORTS = ROOT / "reports"


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generated_hook", ROOT / "docs/hooks/generated.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _build(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    result = _build(ROOT, out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def reports_copy(tmp_path: Path) -> Path:
    """A copy of ``reports/`` (the JSON reports and ``bench/``) to edit."""
    copy = tmp_path / "reports"
    shutil.copytree(REPORTS, copy, ignore=shutil.ignore_patterns("figures", "*.csv"))
    return copy


def _text(page: Path) -> str:
    """A built page's text: tags (syntax highlighting included) removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def _edit(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_cli_page_shows_every_commands_usage(site: Path) -> None:
    page = (site / "cli/index.html").read_text()
    text = _text(site / "cli/index.html")
    for name, command in COMMANDS.items():
        prog = "tweetcls [options]" if command.lightning else "tweetcls"
        assert f"usage: {prog} {name} " in text, name
        assert f'id="tweetcls-{name}"' in page, name
    # a short help is shown whole, a LightningCLI one is summarised with its option groups
    assert "--num_folds" in text and "--trainer.*" in text
    fit = page.split('id="tweetcls-fit"')[1].split("<h3")[0]
    assert "--trainer.max_epochs" not in fit and "configuration/" in fit


def test_results_page_shows_the_values_of_the_reports(site: Path) -> None:
    fmt = _hook().fmt
    text = _text(site / "results/index.html")
    metrics = json.loads((REPORTS / "metrics.json").read_text())
    assert fmt(metrics["f1"]) in text
    for fold in json.loads((REPORTS / "kfold.json").read_text())["folds"]:
        assert fmt(fold["heldout_f1"]) in text
    export = json.loads((REPORTS / "export.json").read_text())
    assert fmt(export["backends"]["onnx-int8"]["agreement"]) in text
    manifest = json.loads((REPORTS / "bench/manifest.json").read_text())
    for entry in manifest.values():
        assert entry["command"] in text
        assert entry["host"] in text and entry["cpu"] in text


@pytest.mark.parametrize(
    ("name", "edit", "shown"),
    [
        ("metrics.json", lambda d: d.update(f1=0.123456), "**0.1235**"),
        ("export.json", lambda d: d["backends"]["onnx-int8"].update(agreement=0.5551), "0.5551"),
        ("kfold.json", lambda d: d["folds"][2].update(heldout_f1=0.111111), "0.1111"),
        ("ensemble.json", lambda d: d["stack_weights_normalised"].update(mpnet=0.642), "0.642"),
        ("ablation.json", lambda d: d["rows"][1].update(oof_f1=0.333333), "0.3333"),
        ("data.json", lambda d: d["val"].update(rows=12345), "12,345"),
    ],
)
def test_results_tables_follow_an_edited_report(
    reports_copy: Path, name: str, edit, shown: str
) -> None:
    hook = _hook()
    assert shown not in hook.render_results(reports_copy)
    _edit(reports_copy / name, edit)
    assert shown in hook.render_results(reports_copy)


def test_bench_tables_follow_an_edited_json(reports_copy: Path) -> None:
    hook = _hook()
    bench = reports_copy / "bench"
    manifest = json.loads((bench / "manifest.json").read_text())
    name = next(n for n, e in manifest.items() if "bench_train_overhead.py" in e["command"])
    assert "98765.4" not in hook.render_bench(bench)
    _edit(
        bench / manifest[name]["file"], lambda d: d["rows"][0].update(samples_per_s_median=98765.4)
    )
    assert "98765.4" in hook.render_bench(bench)


def test_malformed_report_fails_naming_the_file(reports_copy: Path) -> None:
    hook = _hook()
    (reports_copy / "kfold.json").write_text("{not json")
    with pytest.raises(PluginError, match=r"kfold\.json"):
        hook.render_results(reports_copy)
    (reports_copy / "kfold.json").write_text('{"folds": []}')
    with pytest.raises(PluginError, match=r"kfold\.json is malformed"):
        hook.render_results(reports_copy)


def test_missing_bench_json_fails_naming_the_file(reports_copy: Path) -> None:
    hook = _hook()
    bench = reports_copy / "bench"
    manifest = json.loads((bench / "manifest.json").read_text())
    missing = next(iter(manifest.values()))["file"]
    (bench / missing).unlink()
    with pytest.raises(PluginError, match=missing.replace(".", r"\.") + " is missing"):
        hook.render_bench(bench)


def test_broken_link_fails_the_strict_build(site: Path, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", root)
    shutil.copytree(ROOT / "docs", root / "docs")
    shutil.copytree(REPORTS, root / "reports", ignore=shutil.ignore_patterns("figures", "*.csv"))
    # the same sources: the CLI section comes from the cache the first build filled
    (root / "src").symlink_to(ROOT / "src")
    index = root / "docs/index.md"
    index.write_text(index.read_text() + "\nSee [the scripts](../scripts/README.md).\n")
    result = _build(root, tmp_path / "site")
    assert result.returncode != 0
    assert "contains a link '../scripts/README.md'" in result.stderr
    assert result.stderr.count("WARNING") == 1  # that link alone


def test_architecture_has_mermaid_and_reference_pages_exist(site: Path) -> None:
    assert 'class="mermaid"' in (site / "architecture/index.html").read_text()
    for page in (ROOT / "docs/reference").glob("*.md"):
        assert (site / "reference" / page.stem / "index.html").is_file()


def test_readme_is_small_and_has_the_quickstart() -> None:
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) <= 10_240
    text = readme.decode()
    assert "./install.sh && . .venv/bin/activate && dvc pull data/raw && dvc repro" in text
    assert "./install.sh && . .venv/bin/activate && dvc pull data/raw && pytest" in text
