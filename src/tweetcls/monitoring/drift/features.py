"""What the drift tests look at: word tokens, keyword categories, distribution summaries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.spatial.distance import jensenshannon

from tweetcls.core.inputs import clean_keyword

#: Category of a prediction made without a keyword.
NO_KEYWORD = "(none)"
#: Bucket of keywords (or words) outside the reference's categories.
OTHER = "(other)"

_NOISE = re.compile(r"https?://\S+|www\.\S+|[@#]\w+")
_WORD = re.compile(r"[a-z][a-z']+")
_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def words(text: str) -> list[str]:
    """Lower-case word tokens of ``text``: URLs, @mentions and #hashtags removed."""
    return _WORD.findall(_NOISE.sub(" ", text.lower()))


def normalize_keyword(keyword: str | None) -> str:
    """A keyword as the training data spells it (``airplane%20accident`` -> ``airplane
    accident``, :func:`tweetcls.core.inputs.clean_keyword`); missing or blank ->
    :data:`NO_KEYWORD`."""
    if keyword is None or (not isinstance(keyword, str) and pd.isna(keyword)):
        return NO_KEYWORD
    return clean_keyword(str(keyword)) or NO_KEYWORD


def summary(values: np.ndarray) -> dict[str, Any]:
    """Size, mean and quantiles (p05 ... p95) of ``values``."""
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(values, q)) for q in _QUANTILES},
    }


def word_matrix(texts: Sequence[str], vocabulary: Sequence[str]) -> sparse.csr_matrix:
    """Texts x (vocabulary + :data:`OTHER`) word counts."""
    index = {w: i for i, w in enumerate(vocabulary)}
    rows, cols = [], []
    for row, text in enumerate(texts):
        for word in words(text):
            rows.append(row)
            cols.append(index.get(word, len(vocabulary)))
    shape = (len(texts), len(vocabulary) + 1)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


def smoothed(counts: np.ndarray) -> np.ndarray:
    """Frequencies of ``counts`` with half a count added to each (no zero frequency)."""
    return (counts + 0.5) / (counts + 0.5).sum()


def js_to(frequencies: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distances (base 2) of count rows to a frequency vector."""
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts, dtype=float), where=totals > 0)
    return jensenshannon(shares, np.broadcast_to(frequencies, shares.shape), base=2, axis=1)
