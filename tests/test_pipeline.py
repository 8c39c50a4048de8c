"""The DVC side: `dvc pull` restores the raw data; `dvc repro` runs and then is a no-op."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers.paths import ROOT, VENV_BIN

RAW_MD5 = {
    "train.csv": "f147942c91d00d754503775341d13682",
    "test.csv": "ff248529f207ea164d73636e5b1b251d",
    "sample_submission.csv": "e07af9cfb75c09d368437c2c1c7900e9",
}
DVC = str(VENV_BIN / "dvc")


def dvc_env() -> dict[str, str]:
    """Stage commands call `python -m tweetcls`: put this interpreter first on PATH."""
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}


def dvc(*args: str, cwd: Path) -> str:
    done = subprocess.run([DVC, *args], cwd=cwd, capture_output=True, text=True, env=dvc_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def make_project(tmp_path: Path) -> Path:
    """A git+DVC copy of the repository's pipeline files, remote resolved to an absolute path."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "configs", project / "configs")
    shutil.copytree(
        ROOT / ".dvc",
        project / ".dvc",
        ignore=shutil.ignore_patterns("cache", "tmp", "config.local"),
    )
    (project / "data").mkdir()
    shutil.copy(ROOT / "data" / "raw.dvc", project / "data" / "raw.dvc")
    # the dvc.yaml deps name the package sources by repository path
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    remote = (ROOT / ".dvc" / "config").read_text()
    remote = remote.replace("../../shared/dvc-remote", str(ROOT.parent / "shared" / "dvc-remote"))
    (project / ".dvc" / "config").write_text(remote)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    return project


def without_lists(value):
    """A JSON object without its list values, at every depth."""
    if not isinstance(value, dict):
        return value
    return {k: without_lists(v) for k, v in value.items() if not isinstance(v, list)}


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory, tiny_model_dir) -> list[Path]:
    """Two git+DVC projects of the same commit in two directories, each pulled and built by
    ``dvc repro`` on the tiny pipeline (the first is also what a fresh clone's user gets)."""
    projects = []
    for name in ("first", "second-checkout"):
        project = make_project(tmp_path_factory.mktemp(name))
        tiny_pipeline(project, tiny_model_dir)
        dvc("pull", "data/raw", cwd=project)
        projects.append(project)
    # both at once: each stage is mostly one busy core, and the two share nothing
    builds = [
        subprocess.Popen(
            [DVC, "repro"],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dvc_env(),
        )
        for project in projects
    ]
    for build in builds:
        output = build.communicate(timeout=900)[0]
        assert build.returncode == 0, output[-5000:]
    return projects


def test_pull_then_repro_then_noop(checkouts):
    project = checkouts[0]
    for name, md5 in RAW_MD5.items():
        assert hashlib.md5((project / "data" / "raw" / name).read_bytes()).hexdigest() == md5

    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert 0 <= metrics["f1"] <= 1 and metrics["samples"] == 691  # val.csv (normaliser 2)
    submission = pd.read_csv(project / "predictions" / "submission.csv")
    assert len(submission) == 3263
    assert (project / "runs" / "pipeline" / "model" / "tweetcls.json").is_file()
    bundle = project / "runs" / "pipeline" / "serving"
    assert (bundle / "onnx" / "model.int8.onnx").is_file()
    export = json.loads((project / "reports" / "export.json").read_text())
    assert set(export["backends"]) == {"pytorch", "onnx", "onnx-int8"}
    assert (project / "dvc.lock").is_file()

    second = dvc("repro", cwd=project)
    assert "Running stage" not in second and "up to date" in second
    # DVC reads the three metrics files of dvc.yaml as written, less their lists (f1_ci,
    # quantization's node names): those are no metrics to it
    shown = json.loads(dvc("metrics", "show", "--json", cwd=project))
    files = ("reports/data.json", "reports/metrics.json", "reports/export.json")
    written = {name: without_lists(json.loads((project / name).read_text())) for name in files}
    assert shown == {"": {"data": {name: {"data": data} for name, data in written.items()}}}


def tiny_pipeline(project: Path, tiny_model_dir: Path) -> None:
    """Point ``project``'s pipeline at the tiny config (a short fit of the tiny model); the
    barely trained model sits near its threshold, so int8 may flip many labels: no F1 guard."""
    config = yaml.safe_load((project / "configs" / "tiny.yaml").read_text())
    config["model"]["pretrained_model"] = str(tiny_model_dir)
    config["trainer"].update(max_epochs=1, limit_train_batches=10)
    (project / "configs" / "tiny.yaml").write_text(yaml.safe_dump(config))
    (project / "params.yaml").write_text(yaml.safe_dump({"config": "configs/tiny.yaml"}))
    stages = (project / "dvc.yaml").read_text()
    export = "--report_path reports/export.json"
    assert export in stages
    (project / "dvc.yaml").write_text(stages.replace(export, f"{export} --max_f1_drop 1"))


def locked_outputs(project: Path) -> dict[str, str]:
    """Every stage output's hash in ``dvc.lock`` (md5 of a file, of a directory's listing)."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return {
        f"{stage}: {out['path']}": out["md5"]
        for stage, entry in lock["stages"].items()
        for out in entry.get("outs", [])
    }


def test_two_checkouts_build_the_same_bytes_and_name_neither(checkouts):
    """Same commit and data, two directories: every output hashes the same, no output names
    the directory it was built in, and no staging directory is left behind."""
    projects = checkouts
    first, second = (locked_outputs(p) for p in projects)
    assert len(first) >= 7
    differ = {path for path in first if first[path] != second.get(path)}
    assert not differ, f"outputs that differ between the two checkouts: {sorted(differ)}"
    for project in projects:
        named = []
        for path in project.rglob("*"):
            parts = path.relative_to(project).parts
            built = path.is_file() and parts[0] not in (".dvc", ".git", "src", "configs")
            if built and str(project).encode() in path.read_bytes():
                named.append(str(path.relative_to(project)))
        assert not named, f"outputs that name their checkout {project}: {named}"
        staged = [str(p) for p in project.rglob(".*") if p.is_dir() and p.name.count(".") >= 2]
        assert not staged, f"staging directories left behind: {staged}"
