"""Distillation: ``tweetcls soft-targets``, ``data.soft_targets`` and the distillation loss."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from tweetcls.cli import main
from tweetcls.models.classifier import TweetClassifier


@pytest.fixture(scope="module")
def soft_targets(tiny_bundle, processed_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("soft")
    out = root / "teacher.csv"
    main(
        [
            "soft-targets",
            "--teacher",
            f"tiny={tiny_bundle}",
            "--data_dir",
            str(processed_dir),
            "--out",
            str(out),
            "--cache_dir",
            str(root / "members"),
        ]
    )
    return out


def test_soft_targets_cover_train_with_probabilities(soft_targets, processed_dir):
    table = pd.read_csv(soft_targets)
    train = pd.read_csv(processed_dir / "train.csv")
    assert list(table.columns) == ["id", "probability"]
    assert table["id"].tolist() == train["id"].tolist()
    assert table["probability"].between(0, 1).all()
    summary = json.loads(soft_targets.with_suffix(".json").read_text())
    assert summary["teachers"]["tiny"]["kind"] == "model"
    assert summary["tweets"] == len(train)
    assert 0 <= summary["val_f1_of_teacher"]["estimate"] <= 1


def test_student_fit_on_soft_targets_logs_both_losses(tiny_run, soft_targets, tmp_path):
    main(
        tiny_run(
            "fit",
            "--data.soft_targets",
            str(soft_targets),
            "--model.distill_weight",
            "0.5",
            "--model.distill_temperature",
            "2",
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "4",
            "--trainer.log_every_n_steps",
            "1",
        )
    )
    metrics = pd.read_csv(tmp_path / "run" / "logs" / "metrics.csv")
    for column in ("train/distill_loss", "train/label_loss", "train/loss"):
        assert metrics[column].notna().sum() == 4  # every step of limit_train_batches
    rows = metrics.dropna(subset=["train/distill_loss"])
    expected = 0.5 * rows["train/label_loss"] + 0.5 * rows["train/distill_loss"]
    assert rows["train/loss"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-4)
    assert (rows["train/distill_loss"] >= 0).all()


def test_distill_weight_without_teacher_is_one_clear_error(tiny_run, capsys):
    with pytest.raises(SystemExit) as exc:
        main(tiny_run("fit", "--model.distill_weight", "0.5", "--trainer.fast_dev_run", "1"))
    assert exc.value.code == 2
    assert "model.distill_weight > 0 needs a teacher: set data.soft_targets" in (
        capsys.readouterr().err
    )


def test_soft_targets_missing_tweets_are_named(tiny_run, soft_targets, tmp_path, capsys):
    partial = tmp_path / "partial.csv"
    pd.read_csv(soft_targets).iloc[5:].to_csv(partial, index=False)
    with pytest.raises(SystemExit):
        main(tiny_run("fit", "--data.soft_targets", str(partial), "--trainer.fast_dev_run", "1"))
    err = capsys.readouterr().err
    assert f"{partial}: no probability for 5 of" in err
    missing = tmp_path / "missing.csv"
    with pytest.raises(SystemExit):
        main(tiny_run("fit", "--data.soft_targets", str(missing), "--trainer.fast_dev_run", "1"))
    assert f"{missing}: soft targets not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"), [("distill_weight", "1.5"), ("distill_temperature", "0")]
)
def test_bad_distillation_settings(option, value, tiny_run, capsys):
    with pytest.raises(SystemExit):
        main(tiny_run("fit", f"--model.{option}", value, "--trainer.fast_dev_run", "1"))
    assert f"model.{option}: must" in capsys.readouterr().err


def test_distillation_loss_is_zero_at_the_teacher_and_grows_away_from_it(tiny_model_dir):
    model = TweetClassifier(str(tiny_model_dir), distill_weight=0.5, distill_temperature=2.0)
    teacher = torch.tensor([0.9, 0.2, 0.5])
    margin = torch.special.logit(teacher)  # student logits whose margin equals the teacher's
    at_teacher = torch.stack([torch.zeros(3), margin], dim=1)
    assert float(model.distillation_loss(at_teacher, teacher)) == pytest.approx(0, abs=1e-6)
    away = torch.stack([torch.zeros(3), -margin], dim=1)
    assert float(model.distillation_loss(away, teacher)) > 0.05
