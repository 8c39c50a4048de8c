"""Bootstrap intervals and the rule that keeps 0.5 unless tuning wins beyond noise."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from tweetcls.core.bootstrap import f1_interval, paired_f1_difference
from tweetcls.models.threshold import best_f1_threshold, choose_threshold


def calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities that are calibrated, so 0.5 is close to the best cut for F1 already."""
    rng = np.random.default_rng(seed)
    probs = rng.beta(0.7, 0.7, n)
    return probs, (rng.random(n) < probs).astype(int)


def test_f1_interval_brackets_the_estimate_and_matches_sklearn():
    probs, labels = calibrated(750, 0)
    interval = f1_interval(probs, labels, 0.5)
    assert interval.estimate == pytest.approx(f1_score(labels, probs > 0.5))
    assert interval.low < interval.estimate < interval.high
    assert 0.02 < interval.high - interval.low < 0.1  # about +-0.03 on 750 tweets
    assert f1_interval(probs, labels, 0.5) == interval  # seeded: reproducible


def test_paired_difference_of_identical_predictions_is_exactly_zero():
    probs, labels = calibrated(300, 1)
    same = paired_f1_difference(probs > 0.5, probs > 0.5, labels)
    assert (same.estimate, same.low, same.high) == (0, 0, 0)
    better = paired_f1_difference(labels == 1, probs > 0.5, labels)  # the oracle vs a model
    assert better.low > 0


def test_tuning_calibrated_probabilities_is_within_noise_so_half_is_kept():
    kept = [choose_threshold(*calibrated(750, seed), seed=seed) for seed in range(5)]
    assert all(not choice.adopted and choice.threshold == 0.5 for choice in kept)
    # the in-sample tuned cut still "wins" in-sample: the optimism the rule guards against
    probs, labels = calibrated(750, 0)
    _, tuned_f1 = best_f1_threshold(probs, labels)
    assert tuned_f1 > kept[0].f1_at_default


def test_a_real_shift_of_the_best_cut_is_adopted():
    probs, labels = calibrated(750, 2)
    shifted = probs**3  # under-confident on positives: the best cut lies far below 0.5
    choice = choose_threshold(shifted, labels)
    assert choice.adopted and choice.threshold < 0.3
    assert choice.gain.low > 0
    assert choice.as_dict()["threshold"] == pytest.approx(choice.threshold, abs=1e-6)
