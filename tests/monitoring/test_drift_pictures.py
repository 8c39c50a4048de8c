"""The drift report's pictures: histograms over shared bins, the positive rate over time, and
the inline SVG of the HTML report (the browser's view: tests/serving/test_drift_page.py)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from tweetcls.monitoring import drift
from tweetcls.monitoring.drift.pictures import (
    category_histogram,
    numeric_histogram,
    rate_series,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_numeric_histogram_bins_both_sides_alike():
    profile = {"values": [10.0, 20.0, 30.0], "counts": [5, 3, 2]}
    live = np.array([30.0, 40.0, 40.0, 50.0])
    histogram = numeric_histogram("text_length", profile, live, bins=4)
    assert histogram.edges == (10.0, 20.0, 30.0, 40.0, 50.0)  # spans both sides
    assert histogram.reference == (5, 3, 2, 0)  # counts weigh the distinct values
    assert histogram.live == (0, 0, 1, 3)  # the last bin holds its right edge
    assert histogram.labels[0] == "10-20"
    assert histogram.reference_shares == (0.5, 0.3, 0.2, 0.0)
    assert sum(histogram.live_shares) == pytest.approx(1)


def test_category_histogram_keeps_the_largest_shares_and_lumps_the_rest():
    reference = {"fire": 50, "flood": 30, "storm": 15, "(none)": 5}
    live = {"fire": 2, "crypto": 6, "storm": 2}
    histogram = category_histogram("keyword", reference, live, top=3)
    assert histogram.edges is None
    assert histogram.labels == ("crypto (new)", "fire", "flood", "(other)")
    assert histogram.reference == (0, 50, 30, 20)
    assert histogram.live == (6, 2, 0, 2)
    assert histogram.live_shares[0] == pytest.approx(0.6)


def test_rate_series_buckets_the_traffic_span():
    times = pd.Series([T0 + timedelta(minutes=m) for m in range(60)])
    labels = pd.Series([int(m < 30) for m in range(60)])
    series = rate_series(times, labels, reference_rate=0.4, buckets=6)
    assert len(series.starts) == 6 and series.starts[0] == T0
    assert series.end == T0 + timedelta(minutes=59)
    assert series.totals == (10,) * 6
    assert series.rates == (1.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    assert series.reference_rate == 0.4

    gap = pd.Series([T0, T0 + timedelta(minutes=1), T0 + timedelta(hours=1)] * 5)
    gapped = rate_series(gap, pd.Series([1, 0, 1] * 5), None, buckets=3)
    assert gapped.totals == (10, 0, 5)  # 15 predictions: 3 buckets of 5 on average
    assert gapped.rates == (0.5, None, 1.0)

    one_moment = rate_series(pd.Series([T0] * 40), pd.Series([1] * 40), None)
    assert one_moment.totals == (40,) and one_moment.rates == (1.0,)
    few = rate_series(times[:12], labels[:12], None)
    assert len(few.totals) == 2  # under 5 predictions per bucket: fewer buckets
    with pytest.raises(ValueError, match="no predictions"):
        rate_series(pd.Series([], dtype=object), pd.Series([], dtype=int), None)


def _traffic(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A training frame and logged traffic like it."""
    rng = np.random.default_rng(seed)
    subjects = ["forest fire", "flood water", "lovely day", "new phone", "storm damage"]
    texts = [f"{rng.choice(subjects)} near town {i % 7}" for i in range(n)]
    keywords = [rng.choice(["fire", "flood", "", "storm"]) for _ in range(n)]
    labels = rng.integers(0, 2, n)
    train = pd.DataFrame({"text": texts, "keyword": keywords, "target": labels})
    traffic = pd.DataFrame(
        {
            "time": [T0 + timedelta(seconds=10 * i) for i in range(n)],
            "text_length": [len(t) for t in texts],
            "token_count": None,
            "keyword": [k or None for k in keywords],
            "probability": rng.random(n),
            "label": labels,
            "text": texts,
        }
    )
    return train, traffic


def test_report_carries_pictures_to_html_not_to_json():
    train, traffic = _traffic(200)
    reference = drift.build_reference(train)
    report = drift.compare(reference, traffic, min_samples=50)
    assert report.status == "ok"
    tested = {f.name for f in report.features if f.status == "ok"}
    assert {h.feature for h in report.histograms} == tested - {"positive_rate"}
    for histogram in report.histograms:  # every row (or word) of either side in some bin
        words = histogram.feature == "words"
        assert sum(histogram.reference) == (reference["words"]["total"] if words else 200)
        assert sum(histogram.live) == (sum(histogram.reference) if words else 200)
    assert report.rate_series is not None and sum(report.rate_series.totals) == 200

    data = report.to_dict()
    assert "histograms" not in data and "rate_series" not in data
    json.dumps(data)

    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>")
    charts = re.findall(r'<svg class="chart [^"]*" data-feature="([a-z_]+)"', html)
    assert sorted(charts) == sorted(tested)
    assert html.count("<title id=") == html.count("<desc id=") == len(tested)
    assert "<script" not in html and " style=" not in html


def test_insufficient_data_has_no_pictures():
    train, traffic = _traffic(30)
    report = drift.compare(drift.build_reference(train), traffic, min_samples=50)
    assert report.histograms == () and report.rate_series is None
    assert "<svg" not in report.to_html()
