"""What the drift report's pictures show: reference and live counts over the same bins, and the
predicted-positive rate over time (drawn as inline SVG by ``templates/drift.html.j2``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from tweetcls.monitoring.drift.features import OTHER

#: Bins of a numeric feature's histogram.
NUMERIC_BINS = 20
#: Categories of a keyword or word histogram before the rest go to :data:`OTHER`.
TOP_CATEGORIES = 10
#: Most time buckets of the positive-rate chart.
RATE_BUCKETS = 12
#: Fewest predictions per time bucket on average (fewer buckets for little traffic).
MIN_PER_BUCKET = 5


def _shares(counts: Sequence[int]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(c / total if total else 0.0 for c in counts)


@dataclass(frozen=True)
class Histogram:
    """Reference and live counts of one feature over the same bins.

    Args:
        feature: feature name (as in :class:`~.report.FeatureDrift`).
        labels: one label per bin (a category, or the bin's range).
        edges: bin edges of a numeric feature (``len(labels) + 1``); ``None`` for categories.
        reference: reference rows (or words) per bin.
        live: logged rows (or words) per bin.
    """

    feature: str
    labels: tuple[str, ...]
    edges: tuple[float, ...] | None
    reference: tuple[int, ...]
    live: tuple[int, ...]

    @property
    def reference_shares(self) -> tuple[float, ...]:
        """Share of the reference per bin (the sides differ in size by orders of magnitude)."""
        return _shares(self.reference)

    @property
    def live_shares(self) -> tuple[float, ...]:
        """Share of the live window per bin."""
        return _shares(self.live)


@dataclass(frozen=True)
class RateSeries:
    """The predicted-positive rate of equal time buckets from the first logged prediction to
    the last.

    Args:
        starts: start of each bucket (UTC); the last bucket ends at ``end``.
        end: the last logged prediction's time.
        positives: predictions labelled disaster per bucket.
        totals: predictions per bucket.
        reference_rate: the reference's positive rate, if it has one.
    """

    starts: tuple[datetime, ...]
    end: datetime
    positives: tuple[int, ...]
    totals: tuple[int, ...]
    reference_rate: float | None

    @property
    def rates(self) -> tuple[float | None, ...]:
        """Positive rate per bucket; ``None`` for a bucket without predictions."""
        return tuple(p / t if t else None for p, t in zip(self.positives, self.totals, strict=True))


def numeric_histogram(
    feature: str, profile: Mapping[str, Any], values: np.ndarray, bins: int = NUMERIC_BINS
) -> Histogram:
    """Histogram of a reference distribution (``values`` and ``counts`` of the reference
    profile) and live ``values`` over ``bins`` equal bins spanning both."""
    ref_values = np.asarray(profile["values"], float)
    ref_counts = np.asarray(profile["counts"], float)
    low = min(ref_values.min(), values.min()) if values.size else ref_values.min()
    high = max(ref_values.max(), values.max()) if values.size else ref_values.max()
    edges = np.histogram_bin_edges([low, high], bins=bins)
    reference, _ = np.histogram(ref_values, edges, weights=ref_counts)
    live, _ = np.histogram(values, edges)
    labels = tuple(f"{a:.4g}-{b:.4g}" for a, b in pairwise(edges))
    return Histogram(
        feature=feature,
        labels=labels,
        edges=tuple(float(e) for e in edges),
        reference=tuple(int(c) for c in reference),
        live=tuple(int(c) for c in live),
    )


def category_histogram(
    feature: str,
    reference: Mapping[str, int],
    live: Mapping[str, int],
    top: int = TOP_CATEGORIES,
) -> Histogram:
    """Histogram of the ``top`` categories with the largest share on either side (a live
    category the reference lacks is labelled ``(new)``), then one :data:`OTHER` bin for the
    rest of both sides."""
    ref_total, live_total = sum(reference.values()) or 1, sum(live.values()) or 1
    known = {k for k in (*reference, *live) if k != OTHER}
    share = {k: max(reference.get(k, 0) / ref_total, live.get(k, 0) / live_total) for k in known}
    shown = sorted(known, key=lambda k: (-share[k], k))[:top]
    ref_counts = [int(reference.get(k, 0)) for k in shown]
    live_counts = [int(live.get(k, 0)) for k in shown]
    ref_counts.append(int(sum(reference.values())) - sum(ref_counts))
    live_counts.append(int(sum(live.values())) - sum(live_counts))
    labels = [k if k in reference else f"{k} (new)" for k in shown]
    return Histogram(
        feature=feature,
        labels=(*labels, OTHER),
        edges=None,
        reference=tuple(ref_counts),
        live=tuple(live_counts),
    )


def rate_series(
    times: pd.Series,
    labels: pd.Series,
    reference_rate: float | None,
    buckets: int = RATE_BUCKETS,
) -> RateSeries:
    """The positive rate (share of ``labels`` equal to 1) in equal time buckets from the first
    of ``times`` to the last: ``buckets`` of them, fewer when there would be under
    :data:`MIN_PER_BUCKET` predictions per bucket on average, at least one."""
    stamps = pd.to_datetime(times, utc=True)
    if stamps.empty:
        raise ValueError("rate_series: no predictions")
    first, last = stamps.min(), stamps.max()
    count = max(1, min(buckets, len(stamps) // MIN_PER_BUCKET))
    span = (last - first) / count
    if span == pd.Timedelta(0):
        index = np.zeros(len(stamps), int)
        count = 1
    else:
        index = np.minimum(((stamps - first) / span).to_numpy(float).astype(int), count - 1)
    positives = np.bincount(
        index, weights=(labels.to_numpy(float) == 1).astype(float), minlength=count
    )
    totals = np.bincount(index, minlength=count)
    return RateSeries(
        starts=tuple((first + i * span).to_pydatetime() for i in range(count)),
        end=last.to_pydatetime(),
        positives=tuple(int(p) for p in positives),
        totals=tuple(int(t) for t in totals),
        reference_rate=reference_rate,
    )
