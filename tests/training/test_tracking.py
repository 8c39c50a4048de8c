"""W&B tracking: offline runs hold the config, metrics, provenance and model artifact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml
from helpers.paths import ROOT, SHORT_FIT

import tweetcls.core.provenance as provenance_module
from tweetcls.cli import main
from tweetcls.core.provenance import provenance
from tweetcls.training.tracking import TrackedWandbLogger, wandb_credentials_available


def test_offline_wandb_run_holds_config_metrics_provenance_and_model(tiny_run, tmp_path):
    main(
        tiny_run(
            "fit",
            "--config",
            str(ROOT / "configs" / "logger" / "wandb.yaml"),
            "--config",
            str(SHORT_FIT),
        )
    )
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, "one offline run under <default_root_dir>/wandb"
    saved = yaml.safe_load((runs[0] / "files" / "config.yaml").read_text())
    assert saved["model"]["learning_rate"] == pytest.approx(1e-3)
    assert saved["trainer"]["default_root_dir"] == str(tmp_path / "run")
    records = next(runs[0].glob("run-*.wandb")).read_bytes()  # protobuf records, strings raw
    for needle in (
        b"train/loss",  # per step
        b"val/f1",  # per epoch
        b"git_commit",
        b"data_md5",
        b"max_length",  # from the whole resolved config, not only the module's hparams
        b"model-",  # the checkpoint artifact
    ):
        assert needle in records, needle


def test_no_credentials_means_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert not wandb_credentials_available()
    assert TrackedWandbLogger(save_dir=str(tmp_path))._offline


FALLBACK_SCRIPT = """
import sys
from tweetcls.training.tracking import TrackedWandbLogger
logger = TrackedWandbLogger(save_dir=sys.argv[1], init_timeout=3)
assert not logger._offline, "credentials exist: online first"
run = logger.experiment
logger.log_metrics({"val/f1": 0.5}, step=0)
logger.finalize("success")
print("mode", run.settings.mode)
"""


def test_unreachable_server_falls_back_to_offline(tmp_path):
    # a fresh process: wandb keeps process-wide settings from earlier runs
    env = {k: v for k, v in os.environ.items() if k != "WANDB_MODE"}
    env.update(WANDB_API_KEY="x" * 40, WANDB_BASE_URL="http://127.0.0.1:9")  # nothing listens
    result = subprocess.run(
        [sys.executable, "-c", FALLBACK_SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "W&B unreachable" in result.stderr and "logging offline instead" in result.stderr
    assert "mode offline" in result.stdout
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def git(repo, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    done = subprocess.run(["git", *identity, *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_provenance_is_the_package_sources_commit_not_head(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    package = repo / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "code.py").write_text("x = 1\n")
    (repo / "data").mkdir()
    shutil.copy(ROOT / "data" / "raw.dvc", repo / "data" / "raw.dvc")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-02T03:04:05+01:00")
    git(repo, "commit", "-q", "-m", "code")
    monkeypatch.delenv("GIT_COMMITTER_DATE")
    commit = git(repo, "rev-parse", "HEAD")
    monkeypatch.setattr(provenance_module, "PACKAGE_DIR", package)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    dvc = yaml.safe_load((ROOT / "data" / "raw.dvc").read_text())
    expected = {
        "git_commit": commit,
        "git_dirty": False,
        "source_date": "2026-01-02T02:04:05+00:00",  # the commit's time, in UTC
        "data_dvc_file": "data/raw.dvc",
        "data_md5": dvc["outs"][0]["md5"],
    }
    assert provenance("data/raw") == expected
    # a commit outside the package (dvc.lock after a run) and untracked files change nothing
    (repo / "dvc.lock").write_text("schema: '2.0'\n")
    git(repo, "add", "dvc.lock")
    git(repo, "commit", "-q", "-m", "lock")
    (package / "notes.txt").write_text("untracked\n")
    assert provenance("data/raw") == expected
    # a changed tracked file of the package makes it dirty; the date follows SOURCE_DATE_EPOCH
    (package / "code.py").write_text("x = 2\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    info = provenance("data/raw")
    assert (info["git_commit"], info["git_dirty"]) == (commit, True)
    assert info["source_date"] == "2023-11-14T22:13:20+00:00"


def test_provenance_outside_git_and_without_dvc_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(provenance_module, "PACKAGE_DIR", tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert provenance("data/raw") == {
        "git_commit": None,
        "git_dirty": None,
        "source_date": None,
        "data_dvc_file": "data/raw.dvc",
        "data_md5": None,
    }
