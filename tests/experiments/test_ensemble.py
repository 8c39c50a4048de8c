"""``tweetcls ensemble`` and ``tweetcls soft-targets``: members, stacking, caching, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tweetcls.cli import main
from tweetcls.experiments import members as members_module
from tweetcls.experiments.ensemble import cross_fitted_stack, evaluate, logits


def ensemble_args(tmp_path, processed_dir, *members: str) -> list[str]:
    args = ["ensemble", "--data_dir", str(processed_dir), "--out", str(tmp_path / "ens")]
    args += ["--cache_dir", str(tmp_path / "members")]
    for member in members:
        args += ["--member", member]
    return [
        *args,
        "--report_path",
        str(tmp_path / "ensemble.json"),
        "--submission",
        str(tmp_path / "submission.csv"),
    ]


def test_ensemble_of_a_model_and_tfidf_reports_members_and_submits(
    tiny_bundle, processed_dir, tmp_path, monkeypatch, capsys
):
    args = ensemble_args(tmp_path, processed_dir, f"tiny={tiny_bundle}", "tfidf")
    main(args)
    report = json.loads((tmp_path / "ensemble.json").read_text())
    val = pd.read_csv(processed_dir / "val.csv")
    assert report["samples"] == len(val)
    assert [row["name"] for row in report["members"]] == ["tiny", "tfidf"]
    for row in [*report["members"], *report["combiners"].values()]:
        f1 = row["f1"]
        assert 0 <= f1["low"] <= f1["estimate"] <= f1["high"] <= 1
        assert 0 <= row["auroc"] <= 1
    assert set(report["stack_weights"]) == {"intercept", "tiny", "tfidf"}
    # the barely trained tiny model is close to chance; TF-IDF is the better member
    assert report["best_member"] == "tfidf"
    assert report["members"][1]["f1"]["estimate"] > 0.6
    for combiner in report["combiners"].values():
        assert set(combiner["threshold_choice"]) == {
            "threshold",
            "tuned",
            "adopted",
            "f1_at_0.5",
            "f1_cross_validated_tuning",
            "tuning_gain",
        }
    submission = pd.read_csv(tmp_path / "submission.csv")
    test = pd.read_csv(processed_dir / "test.csv")
    assert list(submission.columns) == ["id", "target"]
    assert submission["id"].tolist() == test["id"].tolist()
    assert set(submission["target"]) <= {0, 1}
    out = capsys.readouterr().out
    assert "| tfidf |" in out and "stack - tfidf:" in out

    # a second run reads every member from its cache
    def no_compute(*_args, **_kwargs):
        raise AssertionError("member probabilities recomputed despite a current cache")

    monkeypatch.setattr(members_module, "_compute", no_compute)
    main(args)
    assert json.loads((tmp_path / "ensemble.json").read_text())["members"] == report["members"]


def test_stacking_weights_the_informative_member_and_cross_fitting_does_not_leak():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 600)
    informative = np.clip(0.5 + (labels - 0.5) * 0.6 + rng.normal(0, 0.2, 600), 0.01, 0.99)
    noise = rng.uniform(0.01, 0.99, 600)
    val = np.column_stack([informative, noise])
    report, test = evaluate(["good", "noise"], val, val[:50], labels, folds=5, seed=0)
    weights = report["stack_weights"]
    assert abs(weights["good"]) > 5 * abs(weights["noise"])
    assert report["best_member"] == "good"
    assert test["stack"].shape == (50,)
    # pure-noise members: an in-sample stacker would find signal, a cross-fitted one must not
    noise_members = rng.uniform(0.01, 0.99, size=(600, 8))
    random_labels = rng.integers(0, 2, 600)
    probs = cross_fitted_stack(logits(noise_members), random_labels, folds=5, seed=0)
    agreement = ((probs > 0.5) == random_labels).mean()
    assert 0.42 < agreement < 0.58


def test_members_from_a_probabilities_csv_and_kfold_dir(processed_dir, tmp_path):
    val = pd.read_csv(processed_dir / "val.csv")
    test = pd.read_csv(processed_dir / "test.csv")
    train = pd.read_csv(processed_dir / "train.csv")
    table = pd.concat(
        [
            pd.DataFrame(
                {"split": "val", "id": val["id"], "probability": val["target"] * 0.8}
            ).assign(probability=lambda f: f["probability"] + 0.1),
            pd.DataFrame({"split": "test", "id": test["id"], "probability": 0.3}),
        ]
    )
    table.to_csv(tmp_path / "oracle.csv", index=False)
    # a kfold dir: two folds whose held-out probabilities average to the labels' side
    for fold, shift in enumerate((0.05, -0.05)):
        fold_dir = tmp_path / "kfold" / f"fold-{fold}"
        fold_dir.mkdir(parents=True)
        pd.concat(
            [
                pd.DataFrame({"role": "heldout", "id": val["id"], "probability": 0.5 + shift}),
                pd.DataFrame({"role": "test", "id": test["id"], "probability": 0.5 + shift}),
                pd.DataFrame({"role": "oof", "id": train["id"][fold::2], "probability": 0.4}),
            ]
        ).assign(threshold=0.5).to_csv(fold_dir / "predictions.csv", index=False)
    main(
        ensemble_args(
            tmp_path, processed_dir, f"oracle={tmp_path / 'oracle.csv'}", str(tmp_path / "kfold")
        )
    )
    report = json.loads((tmp_path / "ensemble.json").read_text())
    assert report["members"][0]["f1"]["estimate"] == 1.0
    assert report["members"][1]["name"] == "kfold"
    assert report["members"][1]["auroc"] == 0.5  # the fold mean is 0.5 for every tweet
    cache = pd.read_csv(tmp_path / "members" / "kfold-val.csv")
    assert cache["probability"].eq(0.5).all() and set(cache["split"]) == {"val"}


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (["tfidf", "tfidf"], "names must differ"),
        (["nothing-here"], "nothing-here is not 'tfidf', a model directory"),
    ],
)
def test_ensemble_bad_members_fail_with_one_line(members, message, processed_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(ensemble_args(tmp_path, processed_dir, *members))
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "submission.csv").exists()
    assert not (tmp_path / "ensemble.json").exists()


def test_a_member_missing_tweets_is_named(processed_dir, tmp_path, capsys):
    val = pd.read_csv(processed_dir / "val.csv")
    pd.DataFrame({"split": "val", "id": val["id"][1:], "probability": 0.5}).to_csv(
        tmp_path / "partial.csv", index=False
    )
    with pytest.raises(SystemExit):
        main(ensemble_args(tmp_path, processed_dir, f"partial={tmp_path / 'partial.csv'}"))
    err = capsys.readouterr().err
    assert "member partial" in err and "no val probability for 1 of" in err
    assert not (tmp_path / "submission.csv").exists()
