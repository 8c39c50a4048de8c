"""Temperature scaling: the fit recovers a known temperature, decisions survive it, the
calibration error measures it; a bundle's temperature reaches every backend and its threshold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from tweetcls.core.bundle import INFO_FILE, load_bundle
from tweetcls.core.calibration import (
    calibrate,
    calibration_error,
    fit_temperature,
    margins,
    reliability,
    scale,
    scaled_threshold,
)
from tweetcls.core.errors import ConfigError
from tweetcls.inference.backends import load_backend

TWEETS = ["Forest fire near La Ronge Sask. Canada", "I love fruits", "Flood warning tonight"]


def overconfident(temperature: float, n: int = 20_000, seed: int = 0):
    """Labels drawn from ``expit(z)`` and a model reporting ``expit(z * temperature)``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.5, n)
    labels = (rng.random(n) < expit(z)).astype(int)
    return expit(z * temperature), labels


def test_the_fit_recovers_the_temperature_and_removes_the_error() -> None:
    reported, labels = overconfident(1.8)
    assert fit_temperature(reported, labels) == pytest.approx(1.8, rel=0.05)
    result = calibrate(reported, labels)
    assert result["ece_before"] > 0.05
    assert result["ece_after"] < 0.015
    assert result["ece_after_range"][0] <= result["ece_after"] <= result["ece_after_range"][1]
    assert sum(row["tweets"] for row in result["reliability_after"]) == len(labels)


def test_decisions_are_the_same_at_the_scaled_threshold() -> None:
    reported, _ = overconfident(1.8, n=2_000)
    for threshold in (0.3, 0.5, 0.72):
        moved = scaled_threshold(threshold, 1.8)
        assert np.array_equal(reported >= threshold, scale(reported, 1.8) >= moved)
    assert scaled_threshold(0.5, 3.0) == 0.5
    assert scaled_threshold(0.0, 3.0) == 0.0 and scaled_threshold(1.0, 3.0) == 1.0


def test_reliability_bins_and_error() -> None:
    probabilities = np.array([0.05, 0.05, 0.95, 0.95, 0.55])
    labels = np.array([0, 0, 1, 1, 0])
    rows = reliability(probabilities, labels)
    assert [row["tweets"] for row in rows] == [2, 1, 2]
    assert rows[1] == {
        "bin": [0.5, 0.6],
        "tweets": 1,
        "mean_probability": 0.55,
        "disaster_share": 0.0,
    }
    assert calibration_error(probabilities, labels) == pytest.approx((0.1 + 0.55 + 0.1) / 5)
    assert np.isfinite(margins(np.array([0.0, 1.0]))).all()  # saturated float32 probabilities


def test_a_bundles_temperature_reaches_every_backend_and_its_threshold(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    plain = load_bundle(tiny_bundle)
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    info = json.loads((copy / INFO_FILE).read_text())
    info["calibration"] = {**info["calibration"], "temperature": 2.5}
    (copy / INFO_FILE).write_text(json.dumps(info))
    hot = load_bundle(copy)
    assert hot.temperature == 2.5
    assert hot.threshold == pytest.approx(scaled_threshold(float(plain.meta["threshold"]), 2.5))
    assert hot.versions()["temperature"] == 2.5
    for kind in ("onnx", "onnx-int8", "pytorch"):
        base = load_backend(plain, kind).predict_proba(TWEETS, [None] * 3)
        hotter = load_backend(hot, kind).predict_proba(TWEETS, [None] * 3)
        expected = scale(scale(base, 1 / plain.temperature), 2.5)  # back to T=1, then T=2.5
        np.testing.assert_allclose(hotter, expected, atol=1e-5)


def test_a_bad_temperature_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    info = json.loads((copy / INFO_FILE).read_text())
    info["calibration"]["temperature"] = 0
    (copy / INFO_FILE).write_text(json.dumps(info))
    with pytest.raises(ConfigError, match=r"'calibration\.temperature' must be > 0, got 0"):
        load_bundle(copy)
