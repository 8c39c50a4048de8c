"""``tweetcls ensemble``: combine finished models into one submission, honestly.

Members (see :mod:`tweetcls.experiments.members`: fine-tuned encoders, seeds, kfold runs,
the TF-IDF model) are scored on the held-out ``val.csv``, which none of them trained on, and on
Kaggle's ``test.csv``. Two combiners:

* ``mean``: the plain average of the members' probabilities (nothing fitted);
* ``stack``: a logistic regression on the members' logits (its coefficients are the weights).
  Its validation figure is cross-fitted: each of ``--folds`` stratified folds of val is scored
  by a stacker fitted on the other folds, so no tweet is scored by weights fitted on it. The
  submission's stacker is then fitted on all of val.

The decision threshold is 0.5 unless cross-validated tuning beats it beyond bootstrap noise
(:func:`tweetcls.models.threshold.choose_threshold`). Every F1 comes with its 95% bootstrap
interval, and each combiner's gain over the best member with a paired interval: a gain whose
interval includes 0 is within noise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bootstrap import f1_interval, paired_f1_difference
from tweetcls.core.errors import ConfigError
from tweetcls.data.preprocess import read_processed
from tweetcls.experiments.members import Member, probability_columns
from tweetcls.models.threshold import DEFAULT_THRESHOLD, choose_threshold

METHODS = ("stack", "mean")
EPSILON = 1e-6


def build_parser(prog: str = "tweetcls ensemble") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Combine the probabilities of finished models on the held-out val.csv (stacking "
            "or mean), report every member and the ensemble with bootstrap intervals, and "
            "write the ensemble's submission for test.csv."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--member",
        action="append",
        required=True,
        help="NAME=SOURCE or SOURCE, repeated: 'tfidf', a model dir (<run>/model), a kfold "
        "dir, or a split,id,probability CSV",
    )
    parser.add_argument("--data_dir", default="data/processed", help="processed splits")
    parser.add_argument("--method", choices=METHODS, default="stack", help="combiner to submit")
    parser.add_argument("--folds", type=int, default=5, help="cross-fitting folds on val")
    parser.add_argument("--seed", type=int, default=0, help="seed of the folds")
    parser.add_argument("--out", default="runs/ensemble", help="test probabilities")
    parser.add_argument("--cache_dir", default="runs/members", help="member probability cache")
    parser.add_argument("--report_path", default="reports/ensemble.json", help="summary JSON")
    parser.add_argument(
        "--submission", default="predictions/submission_ensemble.csv", help="id,target CSV"
    )
    return parser


def logits(probs: np.ndarray) -> np.ndarray:
    clipped = np.clip(probs, EPSILON, 1 - EPSILON)
    return np.log(clipped / (1 - clipped))


def fit_stacker(features: np.ndarray, labels: np.ndarray) -> LogisticRegression:
    """Logistic regression on member logits (L2, C=1: a few weights, little to overfit)."""
    return stacker().fit(features, labels)


def stacker() -> LogisticRegression:
    """The unfitted stacker (see :func:`fit_stacker`)."""
    return LogisticRegression(C=1.0, max_iter=1000)


def cross_fitted_stack(features: np.ndarray, labels: np.ndarray, folds: int, seed: int):
    """Stacked probabilities where each fold is scored by a stacker fitted on the others."""
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return cross_val_predict(stacker(), features, labels, cv=cv, method="predict_proba")[:, 1]


def _row(name: str, probs: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    return {
        "name": name,
        "f1": f1_interval(probs, labels, threshold).as_dict(),
        "auroc": round(float(roc_auc_score(labels, probs)), 4),
        "threshold": round(threshold, 6),
    }


def evaluate(
    members: list[str], val: np.ndarray, test: np.ndarray, labels: np.ndarray, folds: int, seed: int
) -> tuple[dict, dict[str, np.ndarray]]:
    """The report and each combiner's test probabilities.

    ``val`` and ``test`` hold one column of probabilities per member.
    """
    rows = [_row(name, val[:, i], labels) for i, name in enumerate(members)]
    best = max(range(len(members)), key=lambda i: rows[i]["f1"]["estimate"])
    features_val, features_test = logits(val), logits(test)
    stacker = fit_stacker(features_val, labels)
    combined_val = {
        "mean": val.mean(axis=1),
        "stack": cross_fitted_stack(features_val, labels, folds, seed),
    }
    combined_test = {"mean": test.mean(axis=1), "stack": stacker.predict_proba(features_test)[:, 1]}
    combiners = {}
    for method, probs in combined_val.items():
        choice = choose_threshold(probs, labels, folds=folds, seed=seed)
        row = _row(method, probs, labels, choice.threshold)
        row["threshold_choice"] = choice.as_dict()
        row["gain_over_best_member"] = paired_f1_difference(
            probs > choice.threshold, val[:, best] > DEFAULT_THRESHOLD, labels
        ).as_dict()
        combiners[method] = row
    coefficients = stacker.coef_[0]
    report = {
        "evaluated_on": "val.csv (held out from every member's training)",
        "samples": len(labels),
        "members": rows,
        "best_member": members[best],
        "stack_weights": {
            "intercept": round(float(stacker.intercept_[0]), 4),
            **{name: round(float(c), 4) for name, c in zip(members, coefficients, strict=True)},
        },
        "stack_weights_normalised": {
            name: round(float(c / np.abs(coefficients).sum()), 4)
            for name, c in zip(members, coefficients, strict=True)
        },
        "combiners": combiners,
    }
    return report, combined_test


def markdown(report: dict) -> str:
    """The report as a Markdown table (what the command prints)."""
    lines = [
        "| model | val F1 [95% CI] | AUROC | threshold | weight |",
        "| --- | --- | --- | --- | --- |",
    ]
    weights = report["stack_weights_normalised"]
    for row in [*report["members"], *report["combiners"].values()]:
        f1 = row["f1"]
        weight = weights.get(row["name"], "")
        lines.append(
            f"| {row['name']} | {f1['estimate']:.4f} [{f1['low']:.4f}, {f1['high']:.4f}] "
            f"| {row['auroc']:.4f} | {row['threshold']:.3f} | {weight} |"
        )
    for method, row in report["combiners"].items():
        gain = row["gain_over_best_member"]
        lines.append(
            f"\n{method} - {report['best_member']}: {gain['estimate']:+.4f} "
            f"[{gain['low']:+.4f}, {gain['high']:+.4f}]"
            + (" (within noise)" if gain["low"] <= 0 <= gain["high"] else "")
        )
    return "\n".join(lines)


def run(argv: list[str] | None = None, prog: str = "tweetcls ensemble") -> dict:
    options = build_parser(prog).parse_args(argv)
    members = [Member.parse(text) for text in options.member]
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ConfigError(f"--member: names must differ, got {names}")
    if options.folds < 2:
        raise ConfigError(f"--folds: must be >= 2, got {options.folds}")
    data_dir, out = Path(options.data_dir), Path(options.out)
    val_frame = read_processed(data_dir, "val.csv")
    test_frame = read_processed(data_dir, "test.csv")
    probs = probability_columns(members, data_dir, ["val", "test"], options.cache_dir)
    for member in members:
        print(f"member {member.name}: {member.kind} {member.source}")
    report, test_probs = evaluate(
        names,
        probs["val"],
        probs["test"],
        val_frame["target"].to_numpy(),
        options.folds,
        options.seed,
    )
    report["method"] = options.method
    report["sources"] = {m.name: m.source for m in members}
    chosen = test_probs[options.method]
    threshold = report["combiners"][options.method]["threshold"]
    submission = pd.DataFrame({"id": test_frame["id"], "target": (chosen > threshold).astype(int)})
    with atomic_path(Path(options.submission)) as tmp:
        submission.to_csv(tmp, index=False)
    with atomic_path(out / "test_probabilities.csv") as tmp:
        pd.DataFrame({"id": test_frame["id"], "probability": chosen.round(6)}).to_csv(
            tmp, index=False
        )
    write_text(Path(options.report_path), json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report


def main(argv: list[str] | None = None, prog: str = "tweetcls ensemble") -> None:
    run(argv, prog)
