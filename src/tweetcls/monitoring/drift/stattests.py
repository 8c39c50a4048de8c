"""One statistical test per feature, each a :class:`~.report.FeatureDrift` verdict.

A feature drifts when its p-value is below ``alpha`` and its effect size reaches
:data:`MIN_EFFECT` of its test (see :mod:`tweetcls.monitoring.drift`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from tweetcls.monitoring.drift.features import OTHER, js_to, smoothed, summary, word_matrix
from tweetcls.monitoring.drift.report import FeatureDrift

#: Minimum effect size per test for a feature to count as drifted.
MIN_EFFECT = {"ks": 0.1, "chi2": 0.1, "binomial": 0.1, "jensen_shannon": 0.1}
#: p-value below which a feature's test rejects "same distribution".
DEFAULT_ALPHA = 0.05


def _verdict(
    name: str,
    test: str,
    statistic: float,
    p_value: float,
    effect: float,
    alpha: float,
    reference: dict[str, Any],
    current: dict[str, Any],
    detail: str = "",
) -> FeatureDrift:
    min_effect = MIN_EFFECT[test]
    return FeatureDrift(
        name=name,
        test=test,
        status="ok",
        statistic=float(statistic),
        p_value=float(p_value),
        effect=float(effect),
        alpha=alpha,
        min_effect=min_effect,
        drifted=bool(p_value < alpha and effect >= min_effect),
        reference=reference,
        current=current,
        detail=detail,
    )


def skipped(name: str, detail: str) -> FeatureDrift:
    """The verdict of a feature that could not be tested (``detail`` says why)."""
    return FeatureDrift(name=name, test="none", status="skipped", detail=detail)


def ks_test(
    name: str, profile: Mapping[str, Any], values: np.ndarray, alpha: float
) -> FeatureDrift:
    """Two-sample Kolmogorov-Smirnov of ``values`` against a reference distribution."""
    if values.size == 0:
        return skipped(name, "no values logged")
    reference = np.repeat(np.asarray(profile["values"], float), np.asarray(profile["counts"]))
    result = stats.ks_2samp(values, reference)
    ref_summary = {k: profile[k] for k in ("n", "mean", "quantiles")}
    return _verdict(
        name, "ks", result.statistic, result.pvalue, result.statistic, alpha, ref_summary,
        summary(values),
    )  # fmt: skip


def keyword_test(profile: Mapping[str, Any], keywords: Sequence[str], alpha: float) -> FeatureDrift:
    """Chi-square of traffic keyword counts against reference frequencies.

    Keywords are binned in order of reference frequency so that every bin expects at least 5
    traffic rows (the test's validity rule); the last bin holds the rarest reference keywords
    together with every keyword the reference never saw (:data:`OTHER`).
    """
    ref_counts = sorted(profile["counts"].items(), key=lambda kv: (-kv[1], kv[0]))
    ref_n = sum(c for _, c in ref_counts)
    n = len(keywords)
    bins: list[list[str]] = [[]]
    expected = [0.0]
    for keyword, count in ref_counts:
        if expected[-1] >= 5:
            bins.append([])
            expected.append(0.0)
        bins[-1].append(keyword)
        expected[-1] += n * count / ref_n
    if len(bins) > 1 and expected[-1] < 5:  # fold a short last bin into the previous one
        last_bin, last_expected = bins.pop(), expected.pop()
        bins[-1].extend(last_bin)
        expected[-1] += last_expected
    if len(bins) < 2:
        return skipped("keyword", f"{n} rows are too few for a chi-square over keywords")
    bin_of = {k: i for i, ks in enumerate(bins) for k in ks}
    observed = np.bincount([bin_of.get(k, len(bins) - 1) for k in keywords], minlength=len(bins))
    result = stats.chisquare(observed, expected)
    cramers_v = math.sqrt(result.statistic / (n * (len(bins) - 1)))
    unseen = sum(k not in bin_of for k in keywords)
    return _verdict(
        "keyword",
        "chi2",
        result.statistic,
        result.pvalue,
        cramers_v,
        alpha,
        {"keywords": len(ref_counts), "top": {k: c / ref_n for k, c in ref_counts[:5]}},
        {
            "keywords": len(set(keywords)),
            "unseen_share": unseen / n,
            "top": {k: c / n for k, c in Counter(keywords).most_common(5)},
        },
        f"{len(bins)} bins of reference keywords; unseen keywords join the last",
    )


def rate_test(profile: Mapping[str, Any], labels: np.ndarray, alpha: float) -> FeatureDrift:
    """Exact binomial test of the predicted-positive rate against the reference rate."""
    k, n = int(labels.sum()), int(labels.size)
    rate = profile["rate"]
    result = stats.binomtest(k, n, rate)
    return _verdict(
        "positive_rate",
        "binomial",
        k / n,
        result.pvalue,
        abs(k / n - rate),
        alpha,
        {"rate": rate, "source": profile["source"], "n": profile["n"]},
        {"rate": k / n, "n": n},
    )


def words_test(profile: Mapping[str, Any], texts: Sequence[str], alpha: float) -> FeatureDrift:
    """Jensen-Shannon distance of traffic word frequencies to the reference's.

    The p-value is the share of the reference's null distances (texts resampled at build time,
    at the largest size not above the traffic's, else the smallest) at least as large.
    """
    vocabulary = list(profile["top"])
    current = np.asarray(word_matrix(texts, vocabulary).sum(axis=0)).ravel()
    n_words = int(current.sum())
    if n_words == 0:
        return skipped("words", "the logged texts contain no words")
    reference = np.asarray([*profile["top"].values(), profile["other"]], dtype=float)
    distance = float(js_to(smoothed(reference), current[None, :])[0])
    sizes = sorted(int(s) for s in profile["null"])
    size = max((s for s in sizes if s <= len(texts)), default=sizes[0])
    null = np.asarray(profile["null"][str(size)])
    p_value = (1 + int((null >= distance).sum())) / (1 + null.size)
    return _verdict(
        "words",
        "jensen_shannon",
        distance,
        p_value,
        distance,
        alpha,
        {
            "words": int(reference.sum()),
            "out_of_vocabulary": float(reference[-1] / reference.sum()),
        },
        {"words": n_words, "out_of_vocabulary": float(current[-1] / n_words)},
        f"top {len(vocabulary)} training words + {OTHER}; null of {null.size} resamples "
        f"of {size} training texts",
    )
