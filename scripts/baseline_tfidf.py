"""Validation F1 of a TF-IDF + logistic-regression baseline on the processed split.

A yardstick for how hard the (de-duplicated) validation split is::

    python scripts/baseline_tfidf.py --data-dir data/processed
"""

from __future__ import annotations

import argparse

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from tweetcls.preprocess import read_processed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default="data/processed")
    args = parser.parse_args()
    train = read_processed(args.data_dir, "train.csv")
    val = read_processed(args.data_dir, "val.csv")
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = LogisticRegression(C=4.0, max_iter=2000)
    model.fit(vectorizer.fit_transform(train["text"]), train["target"])
    predicted = model.predict(vectorizer.transform(val["text"]))
    print("| baseline | val F1 | val accuracy |\n| --- | --- | --- |")
    f1, accuracy = f1_score(val["target"], predicted), accuracy_score(val["target"], predicted)
    print(f"| TF-IDF (1-2 grams) + logistic regression | {f1:.3f} | {accuracy:.3f} |")


if __name__ == "__main__":
    main()
