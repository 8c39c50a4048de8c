"""Drift of logged traffic against a profile of the training data.

:func:`build_reference` (:mod:`.reference`) profiles the training frame once (at export time,
stored in the bundle as ``drift_reference.json``); :func:`compare` (:mod:`.compare`) tests a
window of the request log (:meth:`tweetcls.monitoring.requestlog.RequestLog.read`) against it,
one test per feature (:mod:`.stattests`), into a :class:`DriftReport` (:mod:`.report`: JSON,
summary line, HTML whose pictures, reference and live histograms over the same bins and the
positive rate over time, come from :mod:`.pictures`):

========================  ==============================  ==============================
feature                   test (scipy)                    effect size
========================  ==============================  ==============================
text length, token count  two-sample Kolmogorov-Smirnov   KS statistic D
predicted probability     two-sample Kolmogorov-Smirnov   KS statistic D
keyword                   chi-square goodness of fit      Cramér's V
predicted-positive rate   exact binomial test             absolute rate difference
word tokens (texts)       Jensen-Shannon distance, p by   Jensen-Shannon distance
                          parametric bootstrap
========================  ==============================  ==============================

A feature drifts when its p-value is below ``alpha`` *and* its effect size reaches the
feature's minimum: with enough traffic every test turns significant on differences too small
to matter. Drift is detected when the share of drifted features reaches ``drift_share``.
Fewer than ``min_samples`` logged predictions give an "insufficient data" report, never drift.
"""

from tweetcls.monitoring.drift.detect import DEFAULT_DRIFT_SHARE, compare
from tweetcls.monitoring.drift.features import NO_KEYWORD, OTHER, normalize_keyword, words
from tweetcls.monitoring.drift.reference import (
    NULL_DRAWS,
    NULL_SIZES,
    REFERENCE_FORMAT,
    TOP_WORDS,
    build_reference,
)
from tweetcls.monitoring.drift.report import DriftReport, FeatureDrift
from tweetcls.monitoring.drift.stattests import DEFAULT_ALPHA, MIN_EFFECT

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DRIFT_SHARE",
    "MIN_EFFECT",
    "NO_KEYWORD",
    "NULL_DRAWS",
    "NULL_SIZES",
    "OTHER",
    "REFERENCE_FORMAT",
    "TOP_WORDS",
    "DriftReport",
    "FeatureDrift",
    "build_reference",
    "compare",
    "normalize_keyword",
    "words",
]
