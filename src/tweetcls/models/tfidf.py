"""A word + character TF-IDF logistic regression: the yardstick, and an ensemble member.

It makes different mistakes from a fine-tuned encoder (it sees spelling, hashtags and URLs as
they are, not as sub-word pieces), which is what an ensemble member should do, and it trains
in seconds on the processed ``train.csv``.
"""

from __future__ import annotations

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline, make_union

#: Settings of the model; part of a member's cache key.
SETTINGS = {"word_ngrams": (1, 2), "char_ngrams": (2, 5), "min_df": 2, "C": 4.0}


def model_inputs(frame: pd.DataFrame) -> list[str]:
    """The keyword (if any) then the cleaned text of each row of a processed frame."""
    keywords = frame["keyword"].astype(str)
    return [
        f"{k} | {t}" if k else t for k, t in zip(keywords, frame["text"].astype(str), strict=True)
    ]


def fit_tfidf(train: pd.DataFrame) -> Pipeline:
    """Fit the TF-IDF model on a processed frame with ``text``, ``keyword`` and ``target``."""
    features = make_union(
        TfidfVectorizer(
            ngram_range=SETTINGS["word_ngrams"], min_df=SETTINGS["min_df"], sublinear_tf=True
        ),
        TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=SETTINGS["char_ngrams"],
            min_df=SETTINGS["min_df"],
            sublinear_tf=True,
        ),
    )
    model = make_pipeline(features, LogisticRegression(C=SETTINGS["C"], max_iter=2000))
    return model.fit(model_inputs(train), train["target"].to_numpy())


def predict_tfidf(model: Pipeline, frame: pd.DataFrame):
    """Probability of the disaster class for each row of ``frame``."""
    return model.predict_proba(model_inputs(frame))[:, 1]
