"""The bundle's backends scored side by side on the validation split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tweetcls.core.bootstrap import f1_interval
from tweetcls.core.bundle import BACKENDS, Bundle
from tweetcls.inference.base import predict_frame


def score_backends(bundle: Bundle, val: pd.DataFrame) -> tuple[dict, dict[str, np.ndarray]]:
    from tweetcls.inference.backends import load_backend

    backends = {kind: load_backend(bundle, kind) for kind in BACKENDS}
    return backends, {kind: predict_frame(b, val) for kind, b in backends.items()}


def compare_backends(
    targets: np.ndarray, probabilities: dict[str, np.ndarray], threshold: float
) -> dict[str, dict[str, float]]:
    """Per backend: classification metrics at ``threshold`` and agreement with ``pytorch``.

    A tweet is labelled a disaster when its probability is at least ``threshold``.
    """
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    reference = probabilities["pytorch"]
    results = {}
    for kind, probs in probabilities.items():
        labels = (probs >= threshold).astype(int)
        interval = f1_interval(probs, targets, np.nextafter(threshold, 0))  # ">=" as ">"
        precision, recall, f1, _ = precision_recall_fscore_support(
            targets, labels, average="binary", zero_division=0
        )
        results[kind] = {
            "f1": round(float(f1), 6),
            # 95% bootstrap interval over tweets: backends closer than its width are tied
            "f1_ci": [round(interval.low, 6), round(interval.high, 6)],
            "precision": round(float(precision), 6),
            "recall": round(float(recall), 6),
            "accuracy": round(float(accuracy_score(targets, labels)), 6),
            "agreement": round(float(np.mean(labels == (reference >= threshold))), 6),
            "max_abs_prob_diff": round(float(np.max(np.abs(probs - reference))), 6),
        }
    return results
