"""Stratified folds in the DataModule and the ``kfold`` command (train, OOF, ensemble)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers.paths import QUIET, TINY_CONFIG, tiny_args

from tweetcls.cli import main
from tweetcls.core.calibration import calibration_error
from tweetcls.core.errors import ConfigError
from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.experiments.ablation import paired_gain


def test_folds_partition_train_stratified_and_keep_val_held_out(
    processed_dir, tiny_model_dir, tmp_path
):
    train = pd.read_csv(processed_dir / "train.csv").set_index("id")
    held_out = set(pd.read_csv(processed_dir / "val.csv")["id"])
    seen: list[int] = []
    for fold in range(3):
        data = DisasterTweetsDataModule(
            str(tiny_model_dir),
            data_dir=str(processed_dir),
            cache_dir=str(tmp_path / "cache"),
            num_folds=3,
            fold=fold,
        )
        data.setup("fit")
        data.setup("test")
        val, rest = set(data.ids["val"]), set(data.ids["train"])
        assert not val & rest and val | rest == set(train.index)
        assert set(data.ids["test"]) == held_out
        positive = train.loc[list(val), "target"].mean()
        assert positive == pytest.approx(train["target"].mean(), abs=0.01)
        seen += data.ids["val"]
    assert sorted(seen) == sorted(train.index)  # every tweet validates exactly once


@pytest.mark.parametrize(("num_folds", "fold"), [(0, 0), (3, 3), (3, -1)])
def test_bad_fold_settings(num_folds, fold, tiny_model_dir):
    with pytest.raises(ConfigError, match=r"data\.(num_folds|fold)"):
        DisasterTweetsDataModule(str(tiny_model_dir), num_folds=num_folds, fold=fold)


def test_kfold_trains_folds_reports_oof_and_ensembles(
    raw_dir, processed_dir, tiny_model_dir, tmp_path, capsys
):
    args = [
        "kfold",
        "--num_folds",
        "2",
        "--out",
        str(tmp_path / "runs"),
        "--report_path",
        str(tmp_path / "kfold.json"),
        "--submission",
        str(tmp_path / "submission.csv"),
        "--",
        *tiny_args(raw_dir, processed_dir, tiny_model_dir, tmp_path / "cache"),
        "--config",
        str(QUIET),
        "--trainer.max_epochs",
        "2",
        "--trainer.limit_train_batches",
        "5",
        "--checkpoint.mode",  # would keep the first epoch (the worse, or the first of a tie)
        "min",
    ]
    main(args)
    report = json.loads((tmp_path / "kfold.json").read_text())
    assert report["num_folds"] == 2 and len(report["folds"]) == 2
    for fold in range(2):  # the final weights scored the fold, whatever val/f1 said
        checkpoints = tmp_path / "runs" / f"fold-{fold}" / "checkpoints"
        final = torch.load(checkpoints / "last.ckpt", weights_only=False)
        assert final["global_step"] == 10 and report["folds"][fold]["epochs"] == 2
    assert report["heldout_samples"] == len(pd.read_csv(processed_dir / "val.csv"))
    for key in ("oof_f1", "oof_f1_tuned", "single_heldout_f1_mean", "ensemble_heldout_f1"):
        assert 0 <= report[key] <= 1
    for fold in range(2):
        predictions = pd.read_csv(tmp_path / "runs" / f"fold-{fold}" / "predictions.csv")
        assert set(predictions["role"]) == {"oof", "heldout", "test"}
    submission = pd.read_csv(tmp_path / "submission.csv")
    test = pd.read_csv(processed_dir / "test.csv")
    assert list(submission.columns) == ["id", "target"]
    assert sorted(submission["id"]) == sorted(test["id"])
    assert set(submission["target"]) <= {0, 1}

    capsys.readouterr()
    main(args)  # every fold is done: reused, not retrained
    out = capsys.readouterr().out
    assert "fold 0: reusing" in out and "fold 1: reusing" in out
    assert json.loads((tmp_path / "kfold.json").read_text()) == report


def test_kfold_rejects_one_fold(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["kfold", "--num_folds", "1", "--", "--config", str(TINY_CONFIG)])
    assert exc.value.code == 2
    assert "error: --num_folds: must be >= 2, got 1" in capsys.readouterr().err


def test_kfold_needs_a_fit_config_after_the_separator(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["kfold", "--num_folds", "2"])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: kfold: name the fit config after `--`, e.g. `-- --config configs/minilm.yaml`"
    )


def test_kfold_print_config_shows_its_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["kfold", "--num_folds", "3", "--print_config"])
    assert exc.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["num_folds"] == 3 and printed["out"] == "runs/kfold"


def _labelled_kfold(name, tmp_path, raw_dir, processed_dir, tiny_model_dir, *extra):
    """A 2-fold run over all labelled tweets; returns its report path."""
    report = tmp_path / f"{name}.json"
    main(
        [
            "kfold",
            "--num_folds",
            "2",
            "--out",
            str(tmp_path / name),
            "--report_path",
            str(report),
            "--submission",
            str(tmp_path / name / "submission.csv"),
            "--",
            *tiny_args(raw_dir, processed_dir, tiny_model_dir, tmp_path / "cache"),
            "--config",
            str(QUIET),
            "--data.fold_pool",
            "labelled",
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "3",
            *extra,
        ]
    )
    return report


def test_labelled_folds_score_every_labelled_tweet_and_ablation_pairs_them(
    raw_dir, processed_dir, tiny_model_dir, tmp_path
):
    labelled = pd.concat([pd.read_csv(processed_dir / n) for n in ("train.csv", "val.csv")])
    reference = _labelled_kfold("reference", tmp_path, raw_dir, processed_dir, tiny_model_dir)
    report = json.loads(reference.read_text())
    assert report["oof_samples"] == len(labelled) and "heldout_samples" not in report
    oof = pd.read_csv(report["oof_path"])
    assert sorted(oof["id"]) == sorted(labelled["id"])
    targets = labelled.set_index("id")["target"]
    assert (oof["target"].to_numpy() == targets.loc[oof["id"]].to_numpy()).all()
    assert report["command"].startswith("tweetcls kfold --num_folds 2 --out ")
    assert report["fit_seconds"] > 0
    variant = _labelled_kfold(
        "smoothed",
        tmp_path,
        raw_dir,
        processed_dir,
        tiny_model_dir,
        "--model.label_smoothing",
        "0.2",
    )
    main(
        [
            "ablation",
            "--reports",
            json.dumps([str(reference), str(variant)]),
            "--report_path",
            str(tmp_path / "ablation.json"),
        ]
    )
    rows = json.loads((tmp_path / "ablation.json").read_text())["rows"]
    assert [r["variant"] for r in rows] == ["reference", "smoothed"]
    calibration = rows[0]["calibration"]  # measured on the out-of-fold probabilities
    assert calibration["samples"] == len(labelled)
    before = calibration_error(oof["probability"].to_numpy(), oof["target"].to_numpy())
    assert calibration["ece_before"] == pytest.approx(before, abs=1e-6)
    comparison = rows[1]["vs_reference"]
    assert comparison["shared"] == len(labelled)
    gain = comparison["gain"]
    assert gain["low"] <= gain["estimate"] <= gain["high"]
    assert gain["estimate"] == pytest.approx(rows[1]["oof_f1"] - rows[0]["oof_f1"], abs=1e-3)
    assert "vs_previous" not in rows[1]  # the row above is the reference: said once
    for chained in ("true", "false"):
        main(
            [
                "ablation",
                "--reports",
                json.dumps([str(reference), str(variant), str(variant)]),
                "--chained",
                chained,
                "--report_path",
                str(tmp_path / f"chained-{chained}.json"),
            ]
        )
    chained_rows = json.loads((tmp_path / "chained-true.json").read_text())["rows"]
    assert chained_rows[2]["vs_previous"]["gain"]["estimate"] == 0  # a recipe against itself
    assert "vs_previous" not in json.loads((tmp_path / "chained-false.json").read_text())["rows"][2]


def test_paired_gain_is_zero_for_equal_recipes_and_positive_for_a_better_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    noisy = np.where(rng.random(2000) < 0.3, 1 - labels, labels).astype(float)
    better = np.where(rng.random(2000) < 0.1, 1 - labels, labels).astype(float)
    assert paired_gain(labels, noisy, noisy) == {"estimate": 0.0, "low": 0.0, "high": 0.0}
    gain = paired_gain(labels, better, noisy)
    assert 0 < gain["low"] < gain["estimate"] < gain["high"]


def test_ablation_needs_two_reports(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["ablation", "--reports", '["a.json"]'])
    assert exc.value.code == 2
    assert "--reports: name at least two kfold reports" in capsys.readouterr().err
