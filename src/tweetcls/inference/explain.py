"""Why a label: per-word attributions by occlusion, with whatever backend serves.

A tweet's words (split on whitespace, as a reader sees them) are left out one at a time; the
tweet and each of its variants are scored together (one batch, any backend: no gradients, no
torch), and a word's attribution is how much the probability of "disaster" falls without it:
``p(tweet) - p(tweet without the word)``. Positive: the word pushes towards "disaster";
negative: away from it. Cost: ``1 + min(words, max_words)`` tweets per explanation; words past
``max_words`` get no attribution (``None``).

:func:`faithfulness` checks that the attributions point at the words the model uses: leaving
out the k words that most support the predicted label must change its probability more than
leaving out k random words (the "comprehensiveness" of DeYoung et al., 2020, ERASER). Export
runs it (:func:`check_explanations`) and records in the bundle whether the check passed; the
service explains only a bundle whose attributions passed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Most words of a tweet that get an attribution (a tweet of 280 characters has ~50).
MAX_WORDS = 64
#: ``serving.json``'s record of the faithfulness check.
EXPLANATIONS_KEY = "explanations"
#: Tweets per backend call in :func:`faithfulness`.
CHUNK = 256

#: Probabilities of "disaster" of texts with their keywords (a backend's ``predict_proba``).
ScoreFn = Callable[[Sequence[str], Sequence[str | None]], np.ndarray]


def without(words: Sequence[str], left_out: set[int]) -> str:
    """The text of ``words`` without the words at ``left_out``."""
    return " ".join(word for i, word in enumerate(words) if i not in left_out)


def occlusions(text: str, max_words: int = MAX_WORDS) -> tuple[list[str], list[str]]:
    """``(words, variants)``: the tweet's words and the tweet without each of its first
    ``max_words`` words, in order (score them after the tweet itself)."""
    words = text.split()
    return words, [without(words, {i}) for i in range(min(len(words), max_words))]


def attributions(
    words: Sequence[str], probability: float, variants: Sequence[float]
) -> list[float | None]:
    """Each word's attribution from the tweet's probability and its variants' (from
    :func:`occlusions`); ``None`` for the words past the variants."""
    scored = [round(float(probability - p), 6) for p in variants]
    return [*scored, *[None] * (len(words) - len(scored))]


@dataclass(frozen=True)
class Explanation:
    """A tweet's probability and its words' attributions (see the module's docstring)."""

    probability: float
    words: list[str]
    attributions: list[float | None]


def explain(
    score: ScoreFn, text: str, keyword: str | None, max_words: int = MAX_WORDS
) -> Explanation:
    """The :class:`Explanation` of one tweet, scored with its variants in one call."""
    words, variants = occlusions(text, max_words)
    probabilities = score([text, *variants], [keyword] * (1 + len(variants)))
    return Explanation(
        float(probabilities[0]), words, attributions(words, probabilities[0], probabilities[1:])
    )


def _scores(score: ScoreFn, texts: list[str], keywords: list[str | None]) -> np.ndarray:
    parts = [
        score(texts[i : i + CHUNK], keywords[i : i + CHUNK]) for i in range(0, len(texts), CHUNK)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def faithfulness(
    score: ScoreFn,
    texts: Sequence[str],
    keywords: Sequence[str | None],
    ks: Sequence[int] = (1, 2, 3, 4, 5),
    seed: int = 0,
    max_words: int = MAX_WORDS,
) -> list[dict[str, Any]]:
    """Per k: how much leaving out the k words that most support each tweet's predicted label
    lowers that label's probability, against k words at random, on the tweets with more than
    k words; the mean paired gap with a 95% bootstrap interval (scipy).

    A tweet's predicted label is its probability's side of 0.5; a word supports it by its
    attribution (for "not a disaster", the attribution's negative).
    """
    from scipy.stats import bootstrap

    texts, keywords = list(texts), list(keywords)
    rng = np.random.default_rng(seed)
    split = [occlusions(text, max_words) for text in texts]
    flat = [v for _, variants in split for v in variants]
    owners = [i for i, (_, variants) in enumerate(split) for _ in variants]
    full = _scores(score, texts, keywords)
    occluded = _scores(score, flat, [keywords[i] for i in owners])
    side = np.where(full >= 0.5, 1.0, -1.0)  # +1: predicted disaster
    support: list[np.ndarray] = [np.zeros(0)] * len(texts)
    start = 0
    for i, (_, variants) in enumerate(split):
        support[i] = side[i] * (full[i] - occluded[start : start + len(variants)])
        start += len(variants)
    rows = []
    for k in ks:
        chosen = [i for i, (words, _) in enumerate(split) if min(len(words), max_words) > k]
        top, random = [], []
        for i in chosen:
            words = split[i][0]
            top.append(without(words, set(np.argsort(-support[i], kind="stable")[:k].tolist())))
            picks = rng.choice(min(len(words), max_words), size=k, replace=False)
            random.append(without(words, set(picks.tolist())))
        kws = [keywords[i] for i in chosen]
        base = side[chosen] * full[chosen]
        drop_top = base - side[chosen] * _scores(score, top, kws)
        drop_random = base - side[chosen] * _scores(score, random, kws)
        gap = drop_top - drop_random
        interval = bootstrap(
            (gap,), np.mean, n_resamples=2000, random_state=seed, method="percentile"
        ).confidence_interval
        rows.append(
            {
                "k": k,
                "tweets": len(chosen),
                "drop_top": round(float(drop_top.mean()), 4),
                "drop_random": round(float(drop_random.mean()), 4),
                "gap": round(float(gap.mean()), 4),
                "gap_ci": [round(float(interval.low), 4), round(float(interval.high), 4)],
                "faithful": bool(interval.low > 0),
            }
        )
    return rows


def check_explanations(
    score: ScoreFn, texts: Sequence[str], keywords: Sequence[str | None], backend: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(record, report)`` of the faithfulness check of ``backend`` on these tweets: what the
    bundle records (``serving.json``'s ``explanations``: the service explains only when
    ``faithful``) and what export reports (the curves)."""
    curves = faithfulness(score, texts, keywords)
    faithful = all(row["faithful"] for row in curves)
    record = {"method": "occlusion", "max_words": MAX_WORDS, "backend": backend}
    record["faithful"] = faithful
    return record, {**record, "samples": len(texts), "curves": curves}
