"""Probabilities that mean what they say: temperature scaling and its measures.

Temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks") divides the
model's logit margin ``z = logit_disaster - logit_other`` by one number ``T`` fitted to
held-out tweets by maximum likelihood: ``p = expit(z / T)``. ``T > 1`` softens an overconfident
model, ``T < 1`` sharpens an underconfident one. The order of the tweets is unchanged, so a
decision rule keeps its meaning when its threshold moves with the probabilities:
``p >= t`` before is ``p' >= expit(logit(t) / T)`` after (:func:`scaled_threshold`; 0.5 stays
0.5).

Measured by the expected calibration error (ECE): the tweets in ``BINS`` equal-width bins of
their probability, the mean |share of disasters - mean probability| weighted by the bins'
sizes (the binary ECE of torchmetrics' ``binary_calibration_error``, which ``test`` reports).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit

#: Bins of the reliability table and of the expected calibration error.
BINS = 10
#: The fitted temperature's range: beyond it a model is broken, not miscalibrated.
LOG_T_BOUNDS = (np.log(0.05), np.log(20.0))
#: Probabilities are clipped this far from 0 and 1 before their logit (float32 saturates).
_EPS = 1e-7


def margins(probabilities: np.ndarray) -> np.ndarray:
    """The logit margins behind probabilities (``logit(p)``, float64, clipped near 0 and 1)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1 - _EPS)
    return logit(p)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the log loss of ``expit(margins / T)`` on ``labels``
    (scipy's bounded scalar minimiser over ``log T``)."""
    z = margins(probabilities)
    y = np.asarray(labels, dtype=np.float64)

    def log_loss(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        # -log sigmoid(s) = logaddexp(0, -s): stable for any margin
        return float(np.mean(y * np.logaddexp(0, -scaled) + (1 - y) * np.logaddexp(0, scaled)))

    result = minimize_scalar(log_loss, bounds=LOG_T_BOUNDS, method="bounded")
    return float(np.exp(result.x))


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """The probabilities at ``temperature`` (float32, like the backends' output)."""
    return expit(margins(probabilities) / temperature).astype(np.float32)


def scaled_threshold(threshold: float, temperature: float) -> float:
    """The threshold on probabilities at ``temperature`` that makes the same decisions as
    ``threshold`` at temperature 1 (0 and 1 stay)."""
    if threshold <= 0 or threshold >= 1 or temperature == 1:
        return float(threshold)
    return float(expit(logit(threshold) / temperature))


def _bins(probabilities: np.ndarray, labels: np.ndarray) -> Iterator[tuple[int, int, float, float]]:
    """``(bin, tweets, mean probability, share of disasters)`` of each non-empty bin."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    index = np.minimum((p * BINS).astype(int), BINS - 1)
    for b in range(BINS):
        mask = index == b
        if mask.any():
            yield b, int(mask.sum()), float(p[mask].mean()), float(y[mask].mean())


def reliability(probabilities: np.ndarray, labels: np.ndarray) -> list[dict[str, Any]]:
    """Per non-empty bin of the probability: its range, tweets, mean probability and share of
    disasters (the reliability diagram as a table)."""
    return [
        {
            "bin": [round(b / BINS, 2), round((b + 1) / BINS, 2)],
            "tweets": tweets,
            "mean_probability": round(mean, 4),
            "disaster_share": round(share, 4),
        }
        for b, tweets, mean, share in _bins(probabilities, labels)
    ]


def calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Expected calibration error over :data:`BINS` equal-width bins."""
    gaps = [(tweets, abs(share - mean)) for _, tweets, mean, share in _bins(probabilities, labels)]
    return sum(tweets * gap for tweets, gap in gaps) / sum(tweets for tweets, _ in gaps)


def cross_fitted(
    probabilities: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Each tweet's probability scaled by a temperature fitted on the other folds (stratified):
    an estimate of the calibration a temperature fitted on all of them has on new tweets."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels)
    out = np.empty(len(y), dtype=np.float32)
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fit_rows, held_out in split.split(np.zeros(len(y)), y):
        temperature = fit_temperature(probabilities[fit_rows], y[fit_rows])
        out[held_out] = scale(probabilities[held_out], temperature)
    return out


def calibrate(probabilities: np.ndarray, labels: np.ndarray, repeats: int = 5) -> dict[str, Any]:
    """Fit the temperature on all tweets and measure it: the calibration error before and
    after (the mean over ``repeats`` differently seeded 5-fold :func:`cross_fitted` runs, and
    their range), and the reliability tables of both (after: the first run)."""
    temperature = fit_temperature(probabilities, labels)
    runs = [cross_fitted(probabilities, labels, seed=seed) for seed in range(repeats)]
    errors = [calibration_error(after, labels) for after in runs]
    return {
        "method": "temperature scaling",
        "temperature": round(temperature, 6),
        "samples": len(labels),
        "ece_before": round(calibration_error(probabilities, labels), 6),
        "ece_after": round(float(np.mean(errors)), 6),
        "ece_after_range": [round(min(errors), 6), round(max(errors), 6)],
        "ece_after_in_sample": round(
            calibration_error(scale(probabilities, temperature), labels), 6
        ),
        "reliability_before": reliability(probabilities, labels),
        "reliability_after": reliability(runs[0], labels),
    }
