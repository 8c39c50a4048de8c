"""Drift of logged traffic against a profile of the training data.

:func:`build_reference` profiles the training frame once (at export time, stored in the
bundle as ``drift_reference.json``); :func:`compare` tests a window of the request log
(:meth:`tweetcls.monitoring.requestlog.RequestLog.read`) against it, one test per feature:

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

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.spatial.distance import jensenshannon

from tweetcls.core.errors import ConfigError
from tweetcls.serving.settings import DRIFT_MIN_SAMPLES

#: Version of the reference profile's layout; :func:`compare` refuses other versions.
REFERENCE_FORMAT = 1
#: Category of a prediction made without a keyword.
NO_KEYWORD = "(none)"
#: Bucket of keywords (or words) outside the reference's categories.
OTHER = "(other)"
#: How many of the most frequent training words the reference keeps.
TOP_WORDS = 500
#: Minimum effect size per test for a feature to count as drifted (see the module docstring).
MIN_EFFECT = {"ks": 0.1, "chi2": 0.1, "binomial": 0.1, "jensen_shannon": 0.1}
#: Traffic sizes (texts) at which the reference stores null Jensen-Shannon distances.
NULL_SIZES = (50, 70, 100, 140, 200, 280, 400, 560, 800, 1100, 1600, 2200, 3200, 4500, 6400)
#: Resamples per size: the smallest possible p-value is 1 / (NULL_DRAWS + 1).
NULL_DRAWS = 99
#: p-value below which a feature's test rejects "same distribution".
DEFAULT_ALPHA = 0.05
#: Share of drifted features at which the whole report flags drift.
DEFAULT_DRIFT_SHARE = 0.5

_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
_WORD = re.compile(r"[a-z][a-z']+")
_WHITESPACE = re.compile(r"\s+")
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text``: URLs, @mentions and #hashtags removed."""
    return _WORD.findall(_NOISE.sub(" ", text.lower()))


def normalize_keyword(keyword: str | None) -> str:
    """A keyword as the training data spells it (``airplane%20accident`` -> ``airplane
    accident``); missing or blank -> :data:`NO_KEYWORD`."""
    if keyword is None or (not isinstance(keyword, str) and pd.isna(keyword)):
        return NO_KEYWORD
    cleaned = _WHITESPACE.sub(" ", unquote(str(keyword))).strip()
    return cleaned or NO_KEYWORD


def _distribution(values: Iterable[float]) -> dict[str, Any]:
    """Exact empirical distribution (distinct values and counts) plus summary statistics."""
    array = np.asarray(list(values), dtype=float)
    distinct, counts = np.unique(array, return_counts=True)
    return {
        "n": int(array.size),
        "mean": float(array.mean()),
        "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(array, q)) for q in _QUANTILES},
        "values": [float(v) for v in distinct],
        "counts": [int(c) for c in counts],
    }


def _summary(values: np.ndarray) -> dict[str, Any]:
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(values, q)) for q in _QUANTILES},
    }


def _token_counts(tokenizer: Any, texts: list[str], keywords: list[str | None]) -> list[int]:
    """Token counts from a serving backend (``count_tokens``, the number the request log
    stores) or a Hugging Face tokenizer (tokens of the text, special tokens included)."""
    if hasattr(tokenizer, "count_tokens"):
        return [int(c) for c in tokenizer.count_tokens(texts, keywords)]
    return [len(ids) for ids in tokenizer(texts)["input_ids"]]


def build_reference(frame: pd.DataFrame, tokenizer: Any = None, *, seed: int = 0) -> dict[str, Any]:
    """Profile the training data for :func:`compare`; the result is JSON-able.

    Args:
        frame: training rows with a ``text`` column and optionally ``keyword`` and
            ``target``; a ``label`` column (the model's predictions on these rows) is the
            better reference for the predicted-positive rate and, with ``probability``, for
            the probability distribution.
        tokenizer: a serving backend (``count_tokens(texts, keywords)``) or a Hugging Face
            tokenizer for the token-count distribution; ``None`` profiles word counts instead.
        seed: seed of the resampling behind the word test's null distribution.
    """
    if "text" not in frame.columns:
        columns = list(frame.columns)
        raise ConfigError(f"drift reference: the frame has no 'text' column (has {columns})")
    if frame.empty:
        raise ConfigError("drift reference: the frame has no rows")
    texts = [str(t) for t in frame["text"]]
    raw_keywords = list(frame["keyword"]) if "keyword" in frame.columns else [None] * len(texts)
    keywords = [normalize_keyword(k) for k in raw_keywords]
    if tokenizer is None:
        token_source, token_counts = "words", [len(words(t)) for t in texts]
    else:
        model_keywords = [None if k == NO_KEYWORD else k for k in keywords]
        token_source, token_counts = "tokenizer", _token_counts(tokenizer, texts, model_keywords)
    profile: dict[str, Any] = {
        "format": REFERENCE_FORMAT,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_samples": len(texts),
        "text_length": _distribution(len(t) for t in texts),
        "token_count": {"source": token_source, **_distribution(token_counts)},
        "keyword": {"counts": dict(Counter(keywords).most_common())},
        "words": _word_profile(texts, seed),
    }
    for column in ("label", "target"):
        if column in frame.columns:
            labels = frame[column].astype(int)
            profile["positive_rate"] = {
                "source": column,
                "rate": float(labels.mean()),
                "n": int(labels.size),
            }
            break
    if "probability" in frame.columns:
        profile["probability"] = _distribution(np.round(frame["probability"].astype(float), 3))
    return profile


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's test result.

    Args:
        name: feature name (``text_length``, ``keyword``, ...).
        test: ``ks``, ``chi2``, ``binomial`` or ``jensen_shannon``; ``none`` when skipped.
        status: ``ok`` (tested) or ``skipped`` (``detail`` says why).
        statistic: the test statistic.
        p_value: its p-value.
        effect: the effect size (see the module docstring).
        alpha: the p-value threshold.
        min_effect: the effect-size threshold.
        drifted: ``p_value < alpha and effect >= min_effect``.
        reference: summary of the reference side, for the report.
        current: summary of the traffic side, for the report.
        detail: one line for the report.
    """

    name: str
    test: str
    status: str
    statistic: float | None = None
    p_value: float | None = None
    effect: float | None = None
    alpha: float | None = None
    min_effect: float | None = None
    drifted: bool = False
    reference: dict[str, Any] = field(default_factory=dict)
    current: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class DriftReport:
    """The result of :func:`compare`.

    Args:
        status: ``ok`` or ``insufficient_data`` (then ``drift_detected`` is False).
        drift_detected: share of drifted features >= ``share_threshold``.
        share: drifted features / tested features (0 when nothing was tested).
        share_threshold: the share at which drift is detected.
        traffic_samples: logged predictions in the window.
        reference_samples: rows the reference was built from.
        min_samples: the minimum of logged predictions for a verdict.
        since: start of the window (UTC), if known.
        until: end of the window (UTC), if known.
        features: per-feature results.
        created_at: when the report was made (UTC).
    """

    status: str
    drift_detected: bool
    share: float
    share_threshold: float
    traffic_samples: int
    reference_samples: int
    min_samples: int
    since: datetime | None
    until: datetime | None
    features: tuple[FeatureDrift, ...]
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (datetimes as ISO 8601 strings)."""
        data = asdict(self)
        for key in ("since", "until", "created_at"):
            value = data[key]
            data[key] = None if value is None else value.isoformat()
        data["features"] = [asdict(f) for f in self.features]
        return data

    def summary(self) -> str:
        """One line: the verdict, the share and the drifted features."""
        if self.status != "ok":
            return (
                f"insufficient data: {self.traffic_samples} logged predictions "
                f"(need {self.min_samples}); no drift verdict"
            )
        drifted = [f.name for f in self.features if f.drifted]
        verdict = "DRIFT DETECTED" if self.drift_detected else "no drift"
        tested = sum(f.status == "ok" for f in self.features)
        return (
            f"{verdict}: {len(drifted)}/{tested} features drifted (share {self.share:.2f}, "
            f"threshold {self.share_threshold:.2f}) over {self.traffic_samples} predictions"
            + (f"; drifted: {', '.join(drifted)}" if drifted else "")
        )

    def to_html(self) -> str:
        """A self-contained HTML report (inline CSS, no scripts or external resources)."""
        from jinja2 import Environment, select_autoescape

        template_text = (
            resources.files("tweetcls.serving")
            .joinpath("templates/drift.html.j2")
            .read_text(encoding="utf-8")
        )
        env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
        env.filters["num"] = _format_number
        return env.from_string(template_text).render(report=self, summary=self.summary())


def _format_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.2e}"


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


def _skipped(name: str, detail: str) -> FeatureDrift:
    return FeatureDrift(name=name, test="none", status="skipped", detail=detail)


def _ks(name: str, profile: Mapping[str, Any], values: np.ndarray, alpha: float) -> FeatureDrift:
    if values.size == 0:
        return _skipped(name, "no values logged")
    reference = np.repeat(np.asarray(profile["values"], float), np.asarray(profile["counts"]))
    result = stats.ks_2samp(values, reference)
    ref_summary = {k: profile[k] for k in ("n", "mean", "quantiles")}
    return _verdict(
        name, "ks", result.statistic, result.pvalue, result.statistic, alpha, ref_summary,
        _summary(values),
    )  # fmt: skip


def _keyword_test(
    profile: Mapping[str, Any], keywords: Sequence[str], alpha: float
) -> FeatureDrift:
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
        return _skipped("keyword", f"{n} rows are too few for a chi-square over keywords")
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


def _rate_test(profile: Mapping[str, Any], labels: np.ndarray, alpha: float) -> FeatureDrift:
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


def _word_matrix(texts: Sequence[str], vocabulary: Sequence[str]) -> sparse.csr_matrix:
    """Texts x (vocabulary + :data:`OTHER`) word counts."""
    index = {w: i for i, w in enumerate(vocabulary)}
    rows, cols = [], []
    for row, text in enumerate(texts):
        for word in words(text):
            rows.append(row)
            cols.append(index.get(word, len(vocabulary)))
    shape = (len(texts), len(vocabulary) + 1)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


def _js_to(frequencies: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distances (base 2) of count rows to a frequency vector."""
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts, dtype=float), where=totals > 0)
    return jensenshannon(shares, np.broadcast_to(frequencies, shares.shape), base=2, axis=1)


def _word_profile(texts: Sequence[str], seed: int) -> dict[str, Any]:
    """Top words, their frequencies, and the null distribution of the Jensen-Shannon distance.

    The null distribution resamples the reference's own texts (so that words of one tweet stay
    together) at each of :data:`NULL_SIZES`, :data:`NULL_DRAWS` times.
    """
    counts = Counter(w for t in texts for w in words(t))
    vocabulary = [w for w, _ in counts.most_common(TOP_WORDS)]
    matrix = _word_matrix(texts, vocabulary)
    totals = np.asarray(matrix.sum(axis=0)).ravel()
    frequencies = _smoothed(totals)
    rng = np.random.default_rng(seed)
    null = {}
    for size in NULL_SIZES:
        picks = rng.integers(0, len(texts), size=(NULL_DRAWS, size))
        draws = np.vstack([np.asarray(matrix[p].sum(axis=0)) for p in picks])
        null[str(size)] = [round(float(d), 6) for d in _js_to(frequencies, draws)]
    return {
        "total": int(totals.sum()),
        "top": dict(zip(vocabulary, (int(c) for c in totals[:-1]), strict=True)),
        "other": int(totals[-1]),
        "null": null,
    }


def _smoothed(counts: np.ndarray) -> np.ndarray:
    return (counts + 0.5) / (counts + 0.5).sum()


def _words_test(profile: Mapping[str, Any], texts: Sequence[str], alpha: float) -> FeatureDrift:
    """Jensen-Shannon distance of traffic word frequencies to the reference's.

    The p-value is the share of the reference's null distances (texts resampled at build time,
    at the largest size not above the traffic's, else the smallest) at least as large.
    """
    vocabulary = list(profile["top"])
    current = np.asarray(_word_matrix(texts, vocabulary).sum(axis=0)).ravel()
    n_words = int(current.sum())
    if n_words == 0:
        return _skipped("words", "the logged texts contain no words")
    reference = np.asarray([*profile["top"].values(), profile["other"]], dtype=float)
    distance = float(_js_to(_smoothed(reference), current[None, :])[0])
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


def _as_utc(value: datetime | pd.Timestamp | None) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def _check_reference(reference: Mapping[str, Any]) -> None:
    if not isinstance(reference, Mapping) or reference.get("format") != REFERENCE_FORMAT:
        found = reference.get("format") if isinstance(reference, Mapping) else type(reference)
        raise ConfigError(
            f"drift reference: format {found!r} is not {REFERENCE_FORMAT} "
            "(rebuild it with `tweetcls export`)"
        )
    sections = ("n_samples", "text_length", "token_count", "keyword")
    missing = [k for k in sections if k not in reference]
    if missing:
        raise ConfigError(f"drift reference: missing section {missing[0]!r}")


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
    """Test logged traffic against a reference profile from :func:`build_reference`.

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
    _check_reference(reference)
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
    if n >= min_samples:
        features = _feature_tests(reference, traffic, alpha)
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
    )


def _feature_tests(
    reference: Mapping[str, Any], traffic: pd.DataFrame, alpha: float
) -> list[FeatureDrift]:
    texts = None
    if "text" in traffic.columns and traffic["text"].notna().any():
        texts = [str(t) for t in traffic["text"].dropna()]
    lengths = _numbers(traffic["text_length"])
    features = [_ks("text_length", reference["text_length"], lengths, alpha)]
    tokens = reference["token_count"]
    if tokens["source"] == "words":
        if texts is None:
            features.append(_skipped("token_count", "texts not logged (serve --log-text)"))
        else:
            counts = np.asarray([len(words(t)) for t in texts], float)
            features.append(_ks("token_count", tokens, counts, alpha))
    elif "token_count" in traffic.columns and traffic["token_count"].notna().any():
        features.append(_ks("token_count", tokens, _numbers(traffic["token_count"]), alpha))
    else:
        features.append(_skipped("token_count", "no token counts logged"))
    keywords = [normalize_keyword(k) for k in traffic["keyword"]]
    features.append(_keyword_test(reference["keyword"], keywords, alpha))
    if "positive_rate" in reference:
        labels = _numbers(traffic["label"])
        features.append(_rate_test(reference["positive_rate"], labels, alpha))
    else:
        features.append(_skipped("positive_rate", "the reference has no labels"))
    if "probability" in reference:
        probabilities = _numbers(traffic["probability"])
        features.append(_ks("probability", reference["probability"], probabilities, alpha))
    if "words" in reference:
        if texts is None:
            features.append(_skipped("words", "texts not logged (serve --log-text)"))
        else:
            features.append(_words_test(reference["words"], texts, alpha))
    return features


def _numbers(column: pd.Series) -> np.ndarray:
    return column.dropna().to_numpy(dtype=float)
