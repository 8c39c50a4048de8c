"""Probabilities that mean what they say: Platt scaling and its measures.

Platt scaling (Platt, 1999; scikit-learn's ``CalibratedClassifierCV(method="sigmoid")``) maps the
model's logit margin ``z = logit_disaster - logit_other`` through a logistic regression fitted
to held-out tweets by maximum likelihood, written here as a temperature and a bias:
``p = expit(z / T + b)``. ``T > 1`` softens an overconfident model, ``T < 1`` sharpens an
underconfident one; ``b`` moves every tweet's log-odds by the same amount, which a model that
is biased towards one class needs (temperature scaling, Guo et al. 2017, is the case ``b = 0``;
on out-of-fold predictions of all labelled tweets the bias roughly halves its error, see
``docs/trust.md``). The map is increasing, so the order of the tweets is unchanged and a
decision rule keeps its meaning when its threshold moves with the probabilities: ``p >= t``
before is ``p' >= expit(logit(t) / T + b)`` after (:meth:`Calibration.threshold`).

Measured by the expected calibration error (ECE): the tweets in ``BINS`` equal-width bins of
their probability, the mean |share of disasters - mean probability| weighted by the bins'
sizes (the binary ECE of torchmetrics' ``binary_calibration_error``, which ``test`` reports).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, logit

from tweetcls.core.errors import ConfigError

#: Bins of the reliability table and of the expected calibration error.
BINS = 10
#: The fitted temperature's range: beyond it a model is broken, not miscalibrated.
TEMPERATURE_BOUNDS = (0.05, 20.0)
#: Probabilities are clipped this far from 0 and 1 before their logit (float32 saturates).
_EPS = 1e-7
#: The method's name in ``serving.json`` and the reports.
METHOD = "platt scaling"


def margins(probabilities: np.ndarray) -> np.ndarray:
    """The logit margins behind probabilities (``logit(p)``, float64, clipped near 0 and 1)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1 - _EPS)
    return logit(p)


@dataclass(frozen=True)
class Calibration:
    """The map ``p = expit(z / temperature + bias)`` of a logit margin ``z``.

    Args:
        temperature: Divides the margin (> 0; 1: unchanged).
        bias: Added to the divided margin, in log-odds (0: unchanged).
    """

    temperature: float = 1.0
    bias: float = 0.0

    @classmethod
    def fit(cls, probabilities: np.ndarray, labels: np.ndarray, bias: bool = True) -> Calibration:
        """The maximum-likelihood map of ``probabilities`` (uncalibrated) to ``labels``:
        scikit-learn's unpenalised logistic regression on their margins (``bias=False``:
        through the origin, i.e. temperature scaling). The temperature is kept within
        :data:`TEMPERATURE_BOUNDS`."""
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(labels)
        if np.unique(y).size < 2:
            raise ConfigError(f"calibration needs tweets of both labels, got only {y[0]!r}")
        model = LogisticRegression(C=np.inf, fit_intercept=bias)
        model.fit(margins(probabilities)[:, None], y)
        slope = float(model.coef_[0, 0])
        low, high = TEMPERATURE_BOUNDS
        temperature = high if slope <= 1 / high else min(max(1 / slope, low), high)
        return cls(temperature, float(model.intercept_[0]) if bias else 0.0)

    @classmethod
    def of(cls, info: Mapping[str, Any], where: str) -> Calibration:
        """The calibration in ``serving.json``'s contents (none recorded: the identity).

        Raises:
            ConfigError: a temperature that is not > 0 or a bias that is not finite, naming
                ``where``.
        """
        recorded = info.get("calibration", {})
        temperature = recorded.get("temperature", 1.0)
        bias = recorded.get("bias", 0.0)
        numbers = {"temperature": temperature, "bias": bias}
        for name, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: 'calibration.{name}' must be a number, got {value!r}")
        if not (0 < temperature < np.inf):
            raise ConfigError(f"{where}: 'calibration.temperature' must be > 0, got {temperature}")
        if not np.isfinite(bias):
            raise ConfigError(f"{where}: 'calibration.bias' must be finite, got {bias}")
        return cls(float(temperature), float(bias))

    def on_margins(self, z: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of logit margins ``z`` (float32, like the backends')."""
        dtype = np.float32
        return expit(np.asarray(z, dtype) / dtype(self.temperature) + dtype(self.bias))

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        """The calibrated probabilities of uncalibrated ones (float32)."""
        return self.on_margins(margins(probabilities))

    def threshold(self, threshold: float) -> float:
        """The threshold on calibrated probabilities that makes the same decisions as
        ``threshold`` on uncalibrated ones (0 and 1 stay)."""
        if threshold <= 0 or threshold >= 1 or (self.temperature == 1 and self.bias == 0):
            return float(threshold)
        return float(expit(logit(threshold) / self.temperature + self.bias))

    def as_dict(self) -> dict[str, float]:
        """``temperature`` and ``bias``, rounded as ``serving.json`` records them."""
        return {"temperature": round(self.temperature, 6), "bias": round(self.bias, 6)}


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


def sampling_floor(probabilities: np.ndarray, draws: int = 200, seed: int = 0) -> float:
    """The mean calibration error of perfectly calibrated ``probabilities``: labels drawn from
    them ``draws`` times. No calibration can be shown below this on as many tweets."""
    rng = np.random.default_rng(seed)
    p = np.asarray(probabilities, dtype=np.float64)
    return float(np.mean([calibration_error(p, rng.random(p.size) < p) for _ in range(draws)]))


def cross_fitted(
    probabilities: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0, bias: bool = True
) -> np.ndarray:
    """Each tweet's probability calibrated by a map fitted on the other folds (stratified):
    an estimate of the calibration a map fitted on all of them has on new tweets."""
    from sklearn.model_selection import StratifiedKFold

    p = np.asarray(probabilities)
    y = np.asarray(labels)
    out = np.empty(len(y), dtype=np.float32)
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fit_rows, held_out in split.split(np.zeros(len(y)), y):
        out[held_out] = Calibration.fit(p[fit_rows], y[fit_rows], bias).apply(p[held_out])
    return out


def calibrate(
    probabilities: np.ndarray, labels: np.ndarray, repeats: int = 5
) -> tuple[Calibration, dict[str, Any]]:
    """Fit the calibration on all tweets, and measure it: the calibration error before and
    after (the mean over ``repeats`` differently seeded 5-fold :func:`cross_fitted` runs, and
    their range), beside temperature scaling alone (the same runs without the bias) and the
    :func:`sampling_floor` of these many tweets, and the reliability tables of both (after:
    the first run)."""
    calibration = Calibration.fit(probabilities, labels)
    runs = [cross_fitted(probabilities, labels, seed=seed) for seed in range(repeats)]
    errors = [calibration_error(after, labels) for after in runs]
    temperature_only = [
        calibration_error(cross_fitted(probabilities, labels, seed=seed, bias=False), labels)
        for seed in range(repeats)
    ]
    report = {
        "method": METHOD,
        **calibration.as_dict(),
        "samples": len(labels),
        "ece_before": round(calibration_error(probabilities, labels), 6),
        "ece_after": round(float(np.mean(errors)), 6),
        "ece_after_range": [round(min(errors), 6), round(max(errors), 6)],
        "ece_after_in_sample": round(
            calibration_error(calibration.apply(probabilities), labels), 6
        ),
        "ece_temperature_only": round(float(np.mean(temperature_only)), 6),
        "ece_sampling_floor": round(sampling_floor(runs[0]), 6),
        "reliability_before": reliability(probabilities, labels),
        "reliability_after": reliability(runs[0], labels),
    }
    return calibration, report
