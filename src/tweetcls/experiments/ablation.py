"""``tweetcls ablation``: recipes compared on out-of-fold predictions, with paired intervals.

Each recipe is one ``tweetcls kfold`` run (``--data.fold_pool labelled``: every labelled tweet
is scored once by a model that did not train on it). Its report names the run's out-of-fold
predictions (``oof_path``). The first report is the reference: every other recipe's F1 is
compared with it, and with the recipe before it, on the tweets both scored, by a paired
bootstrap (:func:`tweetcls.core.bootstrap.paired_f1_difference`: ``scipy.stats.bootstrap``
resampling the tweets once for both recipes). A change is
beyond noise when its interval excludes 0.

Each recipe's out-of-fold probabilities also measure the calibration export would fit
(:func:`oof_calibration`): ~7k held-out tweets instead of the validation split's ~700.

Recipes whose normaliser merges more near-duplicates score fewer tweets; they are compared on
the tweets both runs kept with the same label (``shared``; ``label_changes`` counts the others).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tweetcls.core.arguments import run_function
from tweetcls.core.atomic import write_text
from tweetcls.core.bootstrap import paired_f1_difference
from tweetcls.core.bundle import read_json
from tweetcls.core.calibration import calibrate
from tweetcls.core.errors import ConfigError


def _read_report(path: Path) -> dict:
    report = read_json(path)
    if "oof_path" not in report:
        raise ConfigError(f"{path}: no 'oof_path' (write it with `tweetcls kfold`)")
    return report


def _read_oof(report: dict, where: Path) -> pd.DataFrame:
    path = Path(report["oof_path"])
    if not path.is_file():
        raise ConfigError(f"{where}: its out-of-fold predictions {path} are missing")
    return pd.read_csv(path).set_index("id")


def oof_calibration(oof: pd.DataFrame) -> dict:
    """How well a calibration map (:mod:`tweetcls.core.calibration`) fitted on a recipe's
    out-of-fold predictions calibrates them, cross-fitted: the expected calibration error
    before and after, temperature scaling alone, and the sampling floor of as many tweets."""
    _, report = calibrate(oof["probability"].to_numpy(), oof["target"].to_numpy())
    return {key: value for key, value in report.items() if not key.startswith("reliability")}


def paired_gain(
    labels: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """F1(a) - F1(b) at ``threshold`` on the same tweets, with its paired 95% interval.

    Args:
        labels: 0/1 labels.
        probs_a: Probabilities of recipe a for the same tweets.
        probs_b: Probabilities of recipe b.
        threshold: Decision threshold of both.
    """
    return paired_f1_difference(probs_a > threshold, probs_b > threshold, labels).as_dict()


def compare(reference: pd.DataFrame, other: pd.DataFrame) -> dict:
    """``other`` against ``reference`` on the tweets both scored with the same label.

    A recipe that resolves conflicting labels differently (its normaliser merges texts that
    the other keeps apart) gives a few shared tweets another label: those are left out and
    counted (``label_changes``).
    """
    shared = reference.index.intersection(other.index)
    agree = reference.loc[shared, "target"].to_numpy() == other.loc[shared, "target"].to_numpy()
    compared = shared[agree]
    return {
        "shared": len(compared),
        "label_changes": int((~agree).sum()),
        "gain": paired_gain(
            reference.loc[compared, "target"].to_numpy(),
            other.loc[compared, "probability"].to_numpy(),
            reference.loc[compared, "probability"].to_numpy(),
        ),
    }


def ablation(
    reports: list[str],
    report_path: str = "reports/ablation.json",
    descriptions: list[str] | None = None,
    chained: bool = True,
) -> dict:
    """Compare recipes by their ``tweetcls kfold`` runs: out-of-fold F1 with its interval and
    the paired gain over the first recipe and over the one before.

    Args:
        reports: kfold report JSONs, the reference recipe first, then each variant in order.
        report_path: The comparison JSON (read by the docs' ablation table).
        descriptions: One line per report saying what its recipe changes; the report's file
            name by default.
        chained: Also compare each recipe with the one before it (recipes built up one on
            another); ``false`` for independent variants of the reference (another seed, one
            lever alone, a share of the training data).
    """
    if len(reports) < 2:
        raise ConfigError("--reports: name at least two kfold reports (reference first)")
    if descriptions is not None and len(descriptions) != len(reports):
        raise ConfigError(f"--descriptions: {len(descriptions)} given for {len(reports)} reports")
    paths = [Path(p) for p in reports]
    loaded = [_read_report(p) for p in paths]
    oofs = [_read_oof(r, p) for r, p in zip(loaded, paths, strict=True)]
    rows = []
    for i, (path, report, oof) in enumerate(zip(paths, loaded, oofs, strict=True)):
        row = {
            "variant": path.stem,
            "description": descriptions[i] if descriptions else path.stem,
            "oof_samples": len(oof),
            "oof_f1": report["oof_f1"],
            "oof_f1_ci": report["oof_f1_ci"],
            "calibration": oof_calibration(oof),
            "fit_seconds": report.get("fit_seconds"),
            "command": report.get("command"),
        }
        if i > 0:
            row["vs_reference"] = compare(oofs[0], oof)
            if chained and i > 1:
                row["vs_previous"] = compare(oofs[i - 1], oof)
        rows.append(row)
    result = {"reference": paths[0].stem, "chained": chained, "rows": rows}
    write_text(Path(report_path), json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


def main(args: list[str] | None = None, prog: str = "tweetcls ablation") -> None:
    """Run ``tweetcls ablation --reports A.json B.json ...``."""
    run_function(ablation, list(args or []), prog)
