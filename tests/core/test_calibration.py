"""Platt scaling: the fit recovers a known temperature and bias, decisions survive it, the
calibration error measures it; a bundle's calibration reaches every backend and its threshold."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from tweetcls.core.bundle import INFO_FILE, load_bundle
from tweetcls.core.calibration import (
    Calibration,
    calibrate,
    calibration_error,
    margins,
    reliability,
    sampling_floor,
)
from tweetcls.core.errors import ConfigError
from tweetcls.inference.backends import load_backend

TWEETS = ["Forest fire near La Ronge Sask. Canada", "I love fruits", "Flood warning tonight"]


def miscalibrated(temperature: float, bias: float, n: int = 20_000, seed: int = 0):
    """Labels drawn from ``expit(z)`` and a model reporting ``expit((z - bias) * temperature)``:
    the calibration that undoes it is ``(temperature, bias)``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2.5, n)
    labels = (rng.random(n) < expit(z)).astype(int)
    return expit((z - bias) * temperature), labels


def test_the_fit_recovers_temperature_and_bias_and_removes_the_error() -> None:
    reported, labels = miscalibrated(1.8, -0.4)
    fitted = Calibration.fit(reported, labels)
    assert fitted.temperature == pytest.approx(1.8, rel=0.05)
    assert fitted.bias == pytest.approx(-0.4, abs=0.06)
    assert Calibration.fit(reported, labels, bias=False).bias == 0.0
    found, result = calibrate(reported, labels)
    assert found == fitted
    assert result["method"] == "platt scaling"
    assert result["ece_before"] > 0.05
    assert result["ece_after"] < 0.015 < result["ece_temperature_only"]  # the bias is needed
    assert result["ece_after_range"][0] <= result["ece_after"] <= result["ece_after_range"][1]
    assert result["ece_sampling_floor"] < result["ece_after"] + 0.01
    assert sum(row["tweets"] for row in result["reliability_after"]) == len(labels)


def test_a_calibration_needs_both_labels() -> None:
    with pytest.raises(ConfigError, match="tweets of both labels"):
        Calibration.fit(np.array([0.2, 0.9, 0.7]), np.array([1, 1, 1]))


def test_decisions_are_the_same_at_the_moved_threshold() -> None:
    reported, _ = miscalibrated(1.8, -0.4, n=2_000)
    calibration = Calibration(1.8, -0.4)
    for threshold in (0.3, 0.5, 0.72):
        moved = calibration.threshold(threshold)
        assert np.array_equal(reported >= threshold, calibration.apply(reported) >= moved)
    assert Calibration(3.0).threshold(0.5) == 0.5
    assert calibration.threshold(0.0) == 0.0 and calibration.threshold(1.0) == 1.0


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


def test_the_sampling_floor_shrinks_with_the_tweets() -> None:
    rng = np.random.default_rng(0)
    small, large = rng.random(500), rng.random(20_000)
    assert sampling_floor(large) < sampling_floor(small) / 3  # ~ 1 / sqrt(tweets per bin)


def test_a_bundles_calibration_reaches_every_backend_and_its_threshold(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    plain = load_bundle(tiny_bundle)
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    info = json.loads((copy / INFO_FILE).read_text())
    info["calibration"] = {**info["calibration"], "temperature": 2.5, "bias": -0.5}
    (copy / INFO_FILE).write_text(json.dumps(info))
    hot = load_bundle(copy)
    assert hot.calibration == Calibration(2.5, -0.5)
    assert hot.threshold == pytest.approx(Calibration(2.5, -0.5).threshold(plain.meta["threshold"]))
    assert hot.versions()["calibration"] == {"temperature": 2.5, "bias": -0.5}
    for kind in ("onnx", "onnx-int8", "pytorch"):
        base = load_backend(plain, kind).predict_proba(TWEETS, [None] * 3)
        hotter = load_backend(hot, kind).predict_proba(TWEETS, [None] * 3)
        old = plain.calibration
        uncalibrated = expit((margins(base) - old.bias) * old.temperature)
        np.testing.assert_allclose(hotter, hot.calibration.apply(uncalibrated), atol=1e-5)


def test_a_bundle_without_calibration_is_uncalibrated(tiny_bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    info = json.loads((copy / INFO_FILE).read_text())
    del info["calibration"]
    (copy / INFO_FILE).write_text(json.dumps(info))
    bundle = load_bundle(copy)
    assert bundle.calibration == Calibration(1.0, 0.0)
    assert bundle.threshold == bundle.meta["threshold"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("temperature", 0, r"'calibration\.temperature' must be > 0, got 0"),
        ("temperature", "hot", r"'calibration\.temperature' must be a number, got 'hot'"),
        ("bias", float("nan"), r"'calibration\.bias' must be finite, got nan"),
        ("bias", True, r"'calibration\.bias' must be a number, got True"),
    ],
)
def test_a_bad_calibration_is_refused(
    tiny_bundle: Path, tmp_path: Path, field: str, value: object, message: str
) -> None:
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    info = json.loads((copy / INFO_FILE).read_text())
    info["calibration"][field] = value
    (copy / INFO_FILE).write_text(json.dumps(info))
    with pytest.raises(ConfigError, match=f"serving.json: {message}"):
        load_bundle(copy)
