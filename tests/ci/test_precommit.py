"""`pre-commit run --all-files` on a clean copy of the repository: it passes, and it fails on a
file with a lint error or a data file added to git."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.paths import ROOT, VENV_BIN


def run(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(home),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files plus .pre-commit-config.yaml in a fresh git repository."""
    dest = tmp_path_factory.mktemp("precommit") / "repo"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    for args in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(args, cwd=dest, check=True)
    return dest


def test_hooks_pass_on_the_repository(copy: Path, tmp_path: Path) -> None:
    result = run(["pre-commit", "run", "--all-files"], copy, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hooks_fail_on_a_lint_error(copy: Path, tmp_path: Path) -> None:
    bad = copy / "src" / "tweetcls" / "lint_error.py"
    bad.write_text('"""Bad."""\n\nimport os\n', encoding="utf-8")
    subprocess.run(["git", "add", str(bad)], cwd=copy, check=True)
    try:
        result = run(["pre-commit", "run", "--files", str(bad)], copy, tmp_path)
    finally:
        subprocess.run(["git", "rm", "-q", "-f", str(bad)], cwd=copy, check=True)
    assert result.returncode != 0
    assert "F401" in result.stdout and "lint_error.py" in result.stdout


def test_hooks_refuse_a_data_file(copy: Path, tmp_path: Path) -> None:
    data = copy / "data" / "x.csv"
    data.write_text("id,text\n1,a\n", encoding="utf-8")
    subprocess.run(["git", "add", "-f", str(data)], cwd=copy, check=True)
    try:
        result = run(["pre-commit", "run", "--files", str(data)], copy, tmp_path)
    finally:
        subprocess.run(["git", "rm", "-q", "-f", str(data)], cwd=copy, check=True)
    assert result.returncode != 0
    assert "DVC" in result.stdout


def test_lock_hook_regenerates_the_lock_when_a_range_changes(copy: Path, tmp_path: Path) -> None:
    """Narrowing a range in pyproject.toml makes the `lock` hook rewrite the lock, and fail."""
    pyproject, lock = copy / "pyproject.toml", copy / "requirements" / "constraints.txt"
    text = pyproject.read_text(encoding="utf-8")
    assert '"pytest-timeout>=2.4.0,<3"' in text and "\npytest-timeout==2.4.0\n" in lock.read_text()
    pyproject.write_text(text.replace('"pytest-timeout>=2.4.0,<3"', '"pytest-timeout<2.4"'))
    try:
        result = run(["pre-commit", "run", "lock", "--files", str(pyproject)], copy, tmp_path)
        relocked = lock.read_text(encoding="utf-8")
    finally:
        subprocess.run(["git", "checkout", "-q", "--", "."], cwd=copy, check=True)
    assert result.returncode != 0
    assert "files were modified by this hook" in result.stdout
    assert "\npytest-timeout==2.3." in relocked and "pytest-timeout==2.4.0" not in relocked
