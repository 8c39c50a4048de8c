"""Compare a window of the request log with the reference: every feature test, one report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from tweetcls.core.errors import ConfigError
from tweetcls.monitoring.drift.features import OTHER, normalize_keyword, words
from tweetcls.monitoring.drift.pictures import (
    Histogram,
    RateSeries,
    category_histogram,
    numeric_histogram,
    rate_series,
)
from tweetcls.monitoring.drift.reference import check_reference
from tweetcls.monitoring.drift.report import DriftReport, FeatureDrift
from tweetcls.monitoring.drift.stattests import (
    DEFAULT_ALPHA,
    keyword_test,
    ks_test,
    rate_test,
    skipped,
    words_test,
)
from tweetcls.monitoring.settings import DRIFT_MIN_SAMPLES

#: Share of drifted features at which the whole report flags drift.
DEFAULT_DRIFT_SHARE = 0.5
#: Why the text features are skipped when the service does not log texts.
_NO_TEXTS = "texts not logged (serve --log_text)"


def _as_utc(value: datetime | pd.Timestamp | None) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def compare(
    reference: Mapping[str, Any],
    traffic: pd.DataFrame,
    *,
    min_samples: int = DRIFT_MIN_SAMPLES,
    alpha: float = DEFAULT_ALPHA,
    drift_share: float = DEFAULT_DRIFT_SHARE,
    since: datetime | None = None,
    until: datetime | None = None,
) -> DriftReport:
    """Test logged traffic against a reference profile from ``build_reference``.

    Args:
        reference: the profile (``drift_reference.json``).
        traffic: request-log rows (:meth:`RequestLog.read`): ``text_length``, ``token_count``,
            ``keyword``, ``probability``, ``label``, optionally ``time`` and ``text``.
        min_samples: fewer logged predictions give an ``insufficient_data`` report.
        alpha: p-value threshold of every test.
        drift_share: drift is detected when this share of the tested features drifted.
        since: start of the window (default: the earliest logged time).
        until: end of the window (default: the latest logged time).
    """
    check_reference(reference)
    if min_samples < 1:
        raise ConfigError(f"drift: min_samples must be >= 1, got {min_samples}")
    if not 0 < alpha < 1:
        raise ConfigError(f"drift: alpha must be in (0, 1), got {alpha}")
    if not 0 < drift_share <= 1:
        raise ConfigError(f"drift: drift_share must be in (0, 1], got {drift_share}")
    required = ["text_length", "keyword", "probability", "label"]
    missing = [c for c in required if c not in traffic.columns]
    if missing:
        raise ConfigError(f"drift: the traffic frame has no {missing[0]!r} column")
    n = len(traffic)
    times = traffic["time"] if "time" in traffic.columns and n else None
    window_start = _as_utc(since) or (_as_utc(times.min()) if times is not None else None)
    window_end = _as_utc(until) or (_as_utc(times.max()) if times is not None else None)
    features: list[FeatureDrift] = []
    histograms: list[Histogram] = []
    rates: RateSeries | None = None
    if n >= min_samples:
        features, histograms = _feature_tests(reference, traffic, alpha)
        if times is not None and times.notna().all():
            reference_rate = reference.get("positive_rate", {}).get("rate")
            rates = rate_series(times, traffic["label"], reference_rate)
    tested = [f for f in features if f.status == "ok"]
    share = sum(f.drifted for f in tested) / len(tested) if tested else 0.0
    status = "ok" if tested else "insufficient_data"
    return DriftReport(
        status=status,
        drift_detected=bool(tested) and share >= drift_share,
        share=share,
        share_threshold=drift_share,
        traffic_samples=n,
        reference_samples=int(reference["n_samples"]),
        min_samples=min_samples,
        since=window_start,
        until=window_end,
        features=tuple(features),
        created_at=datetime.now(timezone.utc),
        histograms=tuple(histograms),
        rate_series=rates,
    )


def _feature_tests(
    reference: Mapping[str, Any], traffic: pd.DataFrame, alpha: float
) -> tuple[list[FeatureDrift], list[Histogram]]:
    """Every feature's verdict, and the histogram of each tested feature (the report's
    pictures; the positive rate's is :func:`rate_series`)."""
    texts = None
    if "text" in traffic.columns and traffic["text"].notna().any():
        texts = [str(t) for t in traffic["text"].dropna()]
    lengths = _numbers(traffic["text_length"])
    features = [ks_test("text_length", reference["text_length"], lengths, alpha)]
    histograms = [numeric_histogram("text_length", reference["text_length"], lengths)]
    tokens = reference["token_count"]
    counts = None
    if tokens["source"] == "words":
        if texts is not None:
            counts = np.asarray([len(words(t)) for t in texts], float)
    elif "token_count" in traffic.columns and traffic["token_count"].notna().any():
        counts = _numbers(traffic["token_count"])
    if counts is None:
        why = _NO_TEXTS if tokens["source"] == "words" else "no token counts logged"
        features.append(skipped("token_count", why))
    else:
        features.append(ks_test("token_count", tokens, counts, alpha))
        histograms.append(numeric_histogram("token_count", tokens, counts))
    keywords = [normalize_keyword(k) for k in traffic["keyword"]]
    features.append(keyword_test(reference["keyword"], keywords, alpha))
    histograms.append(
        category_histogram("keyword", reference["keyword"]["counts"], Counter(keywords))
    )
    if "positive_rate" in reference:
        labels = _numbers(traffic["label"])
        features.append(rate_test(reference["positive_rate"], labels, alpha))
    else:
        features.append(skipped("positive_rate", "the reference has no labels"))
    if "probability" in reference:
        probabilities = _numbers(traffic["probability"])
        features.append(ks_test("probability", reference["probability"], probabilities, alpha))
        histograms.append(numeric_histogram("probability", reference["probability"], probabilities))
    if "words" in reference:
        if texts is None:
            features.append(skipped("words", _NO_TEXTS))
        else:
            features.append(words_test(reference["words"], texts, alpha))
            top = reference["words"]["top"]  # as the test counts them: the rest is OTHER
            ref_words = {**top, OTHER: reference["words"]["other"]}
            live_words = Counter(w if w in top else OTHER for t in texts for w in words(t))
            histograms.append(category_histogram("words", ref_words, live_words))
    tested = {f.name for f in features if f.status == "ok"}
    return features, [h for h in histograms if h.feature in tested]


def _numbers(column: pd.Series) -> np.ndarray:
    return column.dropna().to_numpy(dtype=float)
