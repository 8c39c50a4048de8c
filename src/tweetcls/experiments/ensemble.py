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

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from tweetcls.core.arguments import run_function
from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bootstrap import f1_interval, paired_f1_difference
from tweetcls.core.errors import ConfigError
from tweetcls.data.preprocess import read_processed
from tweetcls.experiments.members import Member, probability_columns
from tweetcls.models.threshold import DEFAULT_THRESHOLD, choose_threshold

METHODS = ("stack", "mean")
EPSILON = 1e-6


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


def ensemble(
    member: list[str],
    data_dir: str = "data/processed",
    method: Literal["stack", "mean"] = "stack",
    folds: int = 5,
    seed: int = 0,
    out: str = "runs/ensemble",
    cache_dir: str = "runs/members",
    report_path: str = "reports/ensemble.json",
    submission: str = "predictions/submission_ensemble.csv",
) -> dict:
    """Combine the probabilities of finished models on the held-out val.csv (stacking or mean),
    report every member and the ensemble with bootstrap intervals, and write the ensemble's
    submission for test.csv.

    Args:
        member: ``NAME=SOURCE`` or ``SOURCE``, the flag repeated per member: ``tfidf``, a model
            directory (``<run>/model``), a kfold directory, or a ``split,id,probability`` CSV.
        data_dir: The processed splits.
        method: The combiner whose predictions are submitted.
        folds: Cross-fitting folds on val (the stacker's honest validation figure).
        seed: Seed of those folds.
        out: Directory of the ensemble's test probabilities.
        cache_dir: Cache of the members' probabilities.
        report_path: The summary JSON.
        submission: The ``id,target`` CSV of the ensemble.
    """
    members = [Member.parse(text) for text in member]
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ConfigError(f"--member: names must differ, got {names}")
    if folds < 2:
        raise ConfigError(f"--folds: must be >= 2, got {folds}")
    data_path, out_path = Path(data_dir), Path(out)
    val_frame = read_processed(data_path, "val.csv")
    test_frame = read_processed(data_path, "test.csv")
    probs = probability_columns(members, data_path, ["val", "test"], cache_dir)
    for one in members:
        print(f"member {one.name}: {one.kind} {one.source}")
    report, test_probs = evaluate(
        names, probs["val"], probs["test"], val_frame["target"].to_numpy(), folds, seed
    )
    report["method"] = method
    report["sources"] = {m.name: m.source for m in members}
    chosen = test_probs[method]
    threshold = report["combiners"][method]["threshold"]
    table = pd.DataFrame({"id": test_frame["id"], "target": (chosen > threshold).astype(int)})
    with atomic_path(Path(submission)) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_path / "test_probabilities.csv") as tmp:
        pd.DataFrame({"id": test_frame["id"], "probability": chosen.round(6)}).to_csv(
            tmp, index=False
        )
    write_text(Path(report_path), json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report


def main(args: list[str] | None = None, prog: str = "tweetcls ensemble") -> None:
    """Run ``tweetcls ensemble --member A --member B ...``."""
    run_function(ensemble, list(args or []), prog)
