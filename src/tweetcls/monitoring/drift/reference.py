"""The drift reference: a JSON-able profile of the training data, built once at export time."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tweetcls.core.errors import ConfigError
from tweetcls.monitoring.drift.features import (
    NO_KEYWORD,
    js_to,
    normalize_keyword,
    smoothed,
    summary,
    word_matrix,
    words,
)

#: Version of the reference profile's layout; :func:`compare` refuses other versions.
REFERENCE_FORMAT = 1
#: How many of the most frequent training words the reference keeps.
TOP_WORDS = 500
#: Traffic sizes (texts) at which the reference stores null Jensen-Shannon distances.
NULL_SIZES = (50, 70, 100, 140, 200, 280, 400, 560, 800, 1100, 1600, 2200, 3200, 4500, 6400)
#: Resamples per size: the smallest possible p-value is 1 / (NULL_DRAWS + 1).
NULL_DRAWS = 99


def _distribution(values: Iterable[float]) -> dict[str, Any]:
    """Exact empirical distribution (distinct values and counts) plus summary statistics."""
    array = np.asarray(list(values), dtype=float)
    distinct, counts = np.unique(array, return_counts=True)
    return {
        **summary(array),
        "values": [float(v) for v in distinct],
        "counts": [int(c) for c in counts],
    }


def _token_counts(token_counter: Any, texts: list[str], keywords: list[str | None]) -> list[int]:
    """Token counts from a serving backend (``count_tokens``, the number the request log
    stores) or a Hugging Face tokenizer (tokens of the text, special tokens included)."""
    if hasattr(token_counter, "count_tokens"):
        return [int(c) for c in token_counter.count_tokens(texts, keywords)]
    return [len(ids) for ids in token_counter(texts)["input_ids"]]


def build_reference(
    frame: pd.DataFrame, token_counter: Any = None, *, seed: int = 0
) -> dict[str, Any]:
    """Profile the training data for :func:`~tweetcls.monitoring.drift.compare`; JSON-able.

    Args:
        frame: training rows with a ``text`` column and optionally ``keyword`` and
            ``target``; a ``label`` column (the model's predictions on these rows) is the
            better reference for the predicted-positive rate and, with ``probability``, for
            the probability distribution.
        token_counter: a serving backend (``count_tokens(texts, keywords)``) or a Hugging Face
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
    if token_counter is None:
        token_source, token_counts = "words", [len(words(t)) for t in texts]
    else:
        model_keywords = [None if k == NO_KEYWORD else k for k in keywords]
        token_source, token_counts = (
            "tokenizer",
            _token_counts(token_counter, texts, model_keywords),
        )
    profile: dict[str, Any] = {
        "format": REFERENCE_FORMAT,
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


def _word_profile(texts: Sequence[str], seed: int) -> dict[str, Any]:
    """Top words, their frequencies, and the null distribution of the Jensen-Shannon distance.

    The null distribution resamples the reference's own texts (so that words of one tweet stay
    together) at each of :data:`NULL_SIZES`, :data:`NULL_DRAWS` times.
    """
    counts = Counter(w for t in texts for w in words(t))
    vocabulary = [w for w, _ in counts.most_common(TOP_WORDS)]
    matrix = word_matrix(texts, vocabulary)
    totals = np.asarray(matrix.sum(axis=0)).ravel()
    frequencies = smoothed(totals)
    rng = np.random.default_rng(seed)
    null = {}
    for size in NULL_SIZES:
        picks = rng.integers(0, len(texts), size=(NULL_DRAWS, size))
        draws = np.vstack([np.asarray(matrix[p].sum(axis=0)) for p in picks])
        null[str(size)] = [round(float(d), 6) for d in js_to(frequencies, draws)]
    return {
        "total": int(totals.sum()),
        "top": dict(zip(vocabulary, (int(c) for c in totals[:-1]), strict=True)),
        "other": int(totals[-1]),
        "null": null,
    }


def check_reference(reference: Mapping[str, Any]) -> None:
    """Refuse a profile of another format or without the sections every comparison reads."""
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
