"""The callbacks every run has are CLI groups with defaults; library noise stays quiet."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter

import pytest
import yaml
from helpers.paths import ROOT
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from transformers import AutoModel

from tweetcls.cli import main
from tweetcls.training.callbacks import RecoveryCheckpoint
from tweetcls.training.checkpointing import RelativeModelCheckpoint
from tweetcls.training.cli import DEFAULT_CALLBACKS, TweetCLI, run_cli_class
from tweetcls.training.preprocess_cli import PreprocessCLI

BASES = ["configs/minilm.yaml", "configs/mpnet.yaml", "configs/roberta.yaml", "configs/tiny.yaml"]
GROUPS = (EarlyStopping, LearningRateMonitor, RecoveryCheckpoint)


@pytest.mark.parametrize("base", BASES)
def test_configs_resolve_to_the_default_callbacks(base, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert "callbacks" not in yaml.safe_load((ROOT / base).read_text())["trainer"]
    config = run_cli_class(PreprocessCLI, ["--config", base], run=False).config
    assert config.trainer.callbacks is None
    assert config.early_stopping.monitor == "val/f1"
    assert config.early_stopping.mode == "max"
    assert config.early_stopping.patience == 2
    assert config.lr_monitor.logging_interval == "step"
    steps = 20 if base.endswith("tiny.yaml") else 100
    assert config.recovery.every_n_train_steps == steps


def build(tiny_run, *extra: str) -> TweetCLI:
    """The CLI of a tiny fit, instantiated (model, data, trainer) but not run."""
    args = tiny_run("fit", "--trainer.logger", "false", *extra)[1:]
    return run_cli_class(TweetCLI, args, run=False)


def test_fit_has_each_callback_once(tiny_run):
    trainer = build(tiny_run).trainer
    counts = Counter(type(c) for c in trainer.callbacks)
    for kind in (*GROUPS, RelativeModelCheckpoint):
        assert counts[kind] == 1, kind
    early = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    assert (early.monitor, early.mode, early.patience) == ("val/f1", "max", 2)
    recovery = next(c for c in trainer.callbacks if isinstance(c, RecoveryCheckpoint))
    assert recovery.every_n_train_steps == 20  # configs/tiny.yaml
    # the order the configs listed them in, ahead of tweetcls' artifact callbacks
    names = [type(c).__name__ for c in trainer.callbacks]
    expected = ["EarlyStopping", "LearningRateMonitor", "RecoveryCheckpoint", "ExportBestModel"]
    assert names[:4] == expected


def test_groups_change_from_the_command_line(tiny_run):
    trainer = build(
        tiny_run, "--early_stopping.patience", "5", "--recovery.every_n_train_steps", "7"
    ).trainer
    early = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    recovery = next(c for c in trainer.callbacks if isinstance(c, RecoveryCheckpoint))
    assert early.patience == 5 and recovery.every_n_train_steps == 7


def test_trainer_callbacks_add_to_the_groups(tiny_run):
    cli = build(tiny_run, "--trainer.callbacks+=lightning.pytorch.callbacks.EMAWeightAveraging")
    names = [type(c).__name__ for c in cli.trainer.callbacks]
    assert names.count("EMAWeightAveraging") == 1 and names.count("EarlyStopping") == 1


def test_help_tells_how_to_change_the_groups(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for key, *_ in DEFAULT_CALLBACKS:
        assert f"--{key}." in text
    assert "--early_stopping.patience 5" in " ".join(text.split())


@pytest.fixture
def headless_model_dir(tiny_model_dir, tmp_path):
    """The tiny encoder without its classification head, like a Hub encoder: loading it for
    sequence classification makes transformers print its LOAD REPORT (head MISSING)."""
    target = tmp_path / "headless"
    AutoModel.from_pretrained(tiny_model_dir).save_pretrained(target)
    for name in os.listdir(tiny_model_dir):
        if "token" in name or name in ("vocab.json", "merges.txt"):
            shutil.copy(tiny_model_dir / name, target / name)
    return target


def run_tweetcls(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tweetcls", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        cwd=ROOT,
        timeout=600,
    )


def test_no_load_report_or_tips_on_the_terminal(tiny_run, headless_model_dir, tmp_path):
    # control: without tweetcls' filters this model does print a load report
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from transformers import AutoModelForSequenceClassification as A; "
            "A.from_pretrained(sys.argv[1], num_labels=2)",
            str(headless_model_dir),
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert "LOAD REPORT" in probe.stdout + probe.stderr

    model = ["--model.pretrained_model", str(headless_model_dir)]
    fit = tiny_run(
        "fit",
        *model,
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "3",
        "--trainer.limit_val_batches",
        "2",
    )
    best = str(tmp_path / "run" / "checkpoints" / "best.ckpt")
    test = tiny_run("test", *model, "--ckpt_path", best)
    for args in (fit, test):
        done = run_tweetcls(args)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-3000:]
        assert "LOAD REPORT" not in output
        assert "MISSING" not in output
        assert "Tip:" not in output and "litmodels" not in output and "litlogger" not in output


def test_subcommand_options_from_the_environment(monkeypatch, capsys):
    """TWEETCLS_<SUBCOMMAND>__<KEY> sets a key; a --config file and a flag beat it."""
    monkeypatch.setenv("TWEETCLS_FIT__MODEL__ADAM_EPSILON", "1e-6")  # minilm.yaml has none
    monkeypatch.setenv("TWEETCLS_FIT__TRAINER__MAX_EPOCHS", "7")  # minilm.yaml sets 2
    monkeypatch.setenv("TWEETCLS_FIT__DATA__BATCH_SIZE", "8")
    monkeypatch.setenv("TWEETCLS_TEST__DATA__BATCH_SIZE", "99")  # another subcommand's
    config = str(ROOT / "configs" / "minilm.yaml")
    with pytest.raises(SystemExit):
        main(["fit", "--config", config, "--data.batch_size", "16", "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["adam_epsilon"] == 1e-6
    assert printed["trainer"]["max_epochs"] == 2  # the config file wins over the variable
    assert printed["data"]["batch_size"] == 16  # and the flag over both
