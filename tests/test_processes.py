"""Runs that need their own processes: killed fits that resume, DDP on two CPU processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from tweetcls.cli import main


def start(args: list[str], log_path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "tweetcls", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )


def wait_for(path, proc, timeout=240.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "training ended before the checkpoint appeared"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_fit_resumes_from_last(sig, tiny_run, tmp_path):
    args = tiny_run(
        "fit",
        "--trainer.max_epochs",
        "2",
        "--trainer.callbacks+=tweetcls.callbacks.RecoveryCheckpoint",
        "--trainer.callbacks.every_n_train_steps",
        "5",
    )
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    proc = start(args, tmp_path / "killed.log")
    wait_for(last, proc)
    time.sleep(1.0)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) != 0
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert 0 < saved["global_step"] < 106, "killed in the first epoch"
    main([*args, "--ckpt_path", "last"])
    final = torch.load(last, map_location="cpu", weights_only=False)
    assert final["epoch"] == 1 and final["global_step"] == 2 * 106
    metrics = pd.read_csv(tmp_path / "run" / "logs" / "metrics.csv")
    assert metrics["epoch"].max() == 1


def test_ddp_two_cpu_processes(tiny_run, tmp_path):
    args = tiny_run(
        "fit",
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "6",
        "--trainer.strategy",
        "ddp",
        "--trainer.devices",
        "2",
        "--trainer.accelerator",
        "cpu",
    )
    proc = start(args, tmp_path / "ddp.log")
    assert proc.wait(timeout=600) == 0, (tmp_path / "ddp.log").read_text()[-3000:]
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=False)
    assert best["global_step"] == 6
    metrics = pd.read_csv(tmp_path / "run" / "logs" / "metrics.csv")
    assert metrics["val/f1"].dropna().between(0, 1).all()
    assert (tmp_path / "run" / "model" / "tweetcls.json").is_file()
