"""Runs that need their own processes: killed fits that resume, DDP on two CPU processes."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import torch
from helpers.paths import CPU, DDP_CPU, ROOT

from tweetcls.training.cli import TweetCLI, main, run_cli_class


def start(args: list[str], log) -> subprocess.Popen:
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


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
@pytest.mark.filterwarnings("ignore:You're resuming from a checkpoint that ended before the epoch")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_killed_fit_resumes_from_last(sig, tiny_run, tmp_path, processed_dir):
    # steps of one epoch: train.csv in batches of 64 (configs/tiny.yaml), at most 40
    epoch = min(40, math.ceil(len(pd.read_csv(processed_dir / "train.csv")) / 64))
    args = tiny_run(
        "fit",
        "--trainer.max_epochs",
        "2",
        "--trainer.limit_train_batches",
        str(epoch),
        "--recovery.every_n_train_steps",
        "5",
    )
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    with open(tmp_path / "killed.log", "w") as log:
        proc = start(args, log)
        wait_for(last, proc)
        time.sleep(0.3)
        proc.send_signal(sig)
        proc.wait(timeout=120)
    saved = torch.load(last, map_location="cpu", weights_only=False)
    assert 0 < saved["global_step"] < epoch, "killed in the first epoch"
    main([*args, "--ckpt_path", "last"])
    final = torch.load(last, map_location="cpu", weights_only=False)
    # resumed mid-epoch and finished both epochs (Lightning skips the batches already seen,
    # give or take the one in flight when the process died)
    assert 2 * epoch - 5 <= final["global_step"] <= 2 * epoch
    metrics = pd.read_csv(tmp_path / "run" / "logs" / "metrics.csv")
    assert set(metrics.dropna(subset=["val/f1"])["epoch"]) == {0, 1}


def test_ddp_two_cpu_processes_match_one_process(tiny_run, tmp_path):
    """configs/trainer/ddp.yaml on 2 CPU processes (gloo): it trains, and the val/f1 it logs
    equals what one process computes from the same checkpoint on the same validation set."""
    args = tiny_run(
        "fit",
        "--config",
        str(ROOT / "configs" / "trainer" / "ddp.yaml"),
        "--config",
        str(CPU),
        "--config",
        str(DDP_CPU),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "6",
    )
    with open(tmp_path / "ddp.log", "w") as log:
        returncode = start(args, log).wait(timeout=600)
    assert returncode == 0, (tmp_path / "ddp.log").read_text()[-3000:]
    best_path = tmp_path / "run" / "checkpoints" / "best.ckpt"
    best = torch.load(best_path, weights_only=False)
    assert best["global_step"] == 6
    assert (tmp_path / "run" / "model" / "tweetcls.json").is_file()
    ddp_f1 = pd.read_csv(tmp_path / "run" / "logs" / "metrics.csv")["val/f1"].dropna()
    assert len(ddp_f1) == 1

    single = run_cli_class(TweetCLI, tiny_run("validate", "--ckpt_path", str(best_path)))
    assert float(single.trainer.callback_metrics["val/f1"]) == pytest.approx(
        float(ddp_f1.iloc[0]), abs=1e-6
    )
