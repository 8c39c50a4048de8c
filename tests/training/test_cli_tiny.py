"""fit -> test -> predict through the CLI in-process on the tiny config."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml
from helpers.paths import ROOT, SHORT_FIT
from helpers.runs import EVALUATING_A_COPY, copy_run, snapshot

from tweetcls.cli import main


@pytest.fixture
def fitted(tiny_run, tmp_path):
    """A fit of this test's own (what fit writes, and resuming it, are the subject here)."""
    main(tiny_run("fit", "--config", str(SHORT_FIT)))
    return tmp_path


def test_fit_writes_checkpoints_config_and_export(fitted):
    run = fitted / "run"
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    # the decision threshold is configuration (0.5 unless set), not tuned state
    assert "threshold" not in best["state_dict"]
    assert best["hyper_parameters"]["decision_threshold"] == 0.5
    assert best["hyper_parameters"]["pretrained_model"].endswith("tiny-roberta")
    assert (run / "checkpoints" / "last.ckpt").is_file()
    config = yaml.safe_load((run / "logs" / "config.yaml").read_text())
    # linked, so written once: under model, and the DataModule received the same value
    assert "pretrained_model" not in config["data"]
    linked = best["datamodule_hyper_parameters"]["pretrained_model"]
    assert linked == config["model"]["pretrained_model"]
    assert config["trainer"]["default_root_dir"] == str(run)  # checkpoints/ and model/ follow
    metrics = pd.read_csv(run / "logs" / "metrics.csv")
    assert metrics["val/f1"].dropna().between(0, 1).all()
    exported = run / "model"
    meta = json.loads((exported / "tweetcls.json").read_text())
    assert meta["threshold"] == 0.5
    assert meta["use_keyword"] is True and meta["max_length"] == 64
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (exported / name).is_file()


@pytest.mark.filterwarnings(EVALUATING_A_COPY)
def test_test_and_predict(tiny_fit, tiny_run, tmp_path, raw_dir):
    run = copy_run(tiny_fit, tmp_path / "run")  # tiny_run's default_root_dir: test writes there
    ckpt = str(run / "checkpoints" / "best.ckpt")
    logs = snapshot(run / "logs")
    main(tiny_run("test", "--ckpt_path", ckpt))
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    for key in ("f1", "precision", "recall", "accuracy", "auroc", "f1_at_0.5", "threshold"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["samples"] == 691  # val.csv (normaliser 2)
    curve = pd.read_csv(tmp_path / "reports" / "pr_curve.csv")
    assert len(curve) == 101 and curve["precision"].between(0, 1).all()

    main(tiny_run("predict", "--ckpt_path", ckpt))
    submission = pd.read_csv(tmp_path / "predictions" / "submission.csv")
    assert list(submission.columns) == ["id", "target"]
    assert len(submission) == 3263
    assert list(submission["id"]) == list(pd.read_csv(raw_dir / "test.csv")["id"])
    assert set(submission["target"]) <= {0, 1}
    # evaluation runs do not touch the training logs
    assert snapshot(run / "logs") == logs


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_resume_from_last(fitted, tiny_run):
    first = torch.load(fitted / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    main(
        tiny_run(
            "fit", "--config", str(SHORT_FIT), "--trainer.max_epochs", "2", "--ckpt_path", "last"
        )
    )
    last = torch.load(fitted / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert first["global_step"] == 20 and last["global_step"] == 40


def test_same_seed_same_metrics(tiny_run, tmp_path):
    scores = []
    for name in ("a", "b"):
        args = tiny_run(
            "fit",
            "--config",
            str(SHORT_FIT),
            "--trainer.limit_train_batches",
            "15",
            "--trainer.default_root_dir",
            str(tmp_path / name),
        )
        main(args)
        metrics = pd.read_csv(tmp_path / name / "logs" / "metrics.csv")
        scores.append(metrics[["val/f1", "val/auroc", "val/loss"]].dropna().round(4).to_numpy())
    assert (scores[0] == scores[1]).all()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--model.learning_rate", "-1", "model.learning_rate: must be > 0, got -1.0"),
        ("--data.batch_size", "0", "data.batch_size: must be >= 1, got 0"),
        ("--model.warmup_ratio", "1.5", "model.warmup_ratio: must lie in [0, 1), got 1.5"),
    ],
)
def test_bad_config_value(tiny_run, tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main(tiny_run("fit", option, value))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {message}"]
    assert not (tmp_path / "run").exists()


def test_missing_processed_data(tiny_run, tmp_path, capsys):
    args = tiny_run("test", "--ckpt_path", str(tmp_path / "none.ckpt"))
    args[args.index("--data.data_dir") + 1] = str(tmp_path / "nowhere")
    args[args.index("--data.raw_dir") + 1] = str(tmp_path / "no-raw")
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert f"{tmp_path / 'no-raw' / 'train.csv'}: file not found" in capsys.readouterr().err


def test_print_config(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(ROOT / "configs" / "minilm.yaml"), "--print_config"])
    assert exit_info.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["pretrained_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert printed["checkpoint"]["monitor"] == "val/f1"
    # the recipe chosen out of fold: mean-pooling head at its own learning rate, layer decay
    model = printed["model"]
    assert (model["pooling"], model["head_learning_rate"], model["layer_decay"]) == (
        "mean",
        1e-3,
        0.9,
    )


@pytest.mark.parametrize("command", ["validate", "test", "predict"])
def test_evaluations_refuse_to_score_an_untrained_head(tiny_run, tmp_path, capsys, command):
    """Without --ckpt_path the model is the encoder with a fresh head: one line that says which
    flag to add (the run's best checkpoint once there is one), exit 2, no output written."""
    with pytest.raises(SystemExit) as exit_info:
        main(tiny_run(command))
    assert exit_info.value.code == 2
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: {command}: no --ckpt_path, so it would score the pretrained encoder with an "
        f"untrained classification head; add `--ckpt_path` with a checkpoint of `tweetcls fit` "
        f"(none at {best}: fit first), or `--untrained true` to do so on purpose"
    ]
    assert not (tmp_path / "reports").exists() and not (tmp_path / "predictions").exists()


@pytest.mark.filterwarnings(EVALUATING_A_COPY)
def test_the_refusal_names_the_best_checkpoint_and_untrained_opts_in(
    tiny_fit, tiny_run, tmp_path, capsys
):
    run = copy_run(tiny_fit, tmp_path / "run")
    with pytest.raises(SystemExit):
        main(tiny_run("predict"))
    assert f"add `--ckpt_path {run / 'checkpoints' / 'best.ckpt'}` (this config's best" in (
        capsys.readouterr().err
    )
    main(tiny_run("predict", "--untrained", "true"))
    assert len(pd.read_csv(tmp_path / "predictions" / "submission.csv")) == 3263
