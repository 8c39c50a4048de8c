"""Validation F1 of the word + character TF-IDF logistic regression on the processed split.

A yardstick for how hard the (de-duplicated) validation split is; the same model
(``tweetcls.models.tfidf``) is the ``tfidf`` member of ``tweetcls ensemble``::

    python scripts/baseline_tfidf.py --data_dir data/processed
"""

from __future__ import annotations

import argparse

from sklearn.metrics import roc_auc_score

from tweetcls.core.bootstrap import f1_interval
from tweetcls.data.preprocess import read_processed
from tweetcls.models.tfidf import fit_tfidf, predict_tfidf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", default="data/processed")
    args = parser.parse_args()
    train = read_processed(args.data_dir, "train.csv")
    val = read_processed(args.data_dir, "val.csv")
    probs = predict_tfidf(fit_tfidf(train), val)
    f1 = f1_interval(probs, val["target"].to_numpy())
    print("| baseline | val F1 [95% CI] | val AUROC |\n| --- | --- | --- |")
    print(
        f"| TF-IDF (word 1-2 + char 2-5 grams) + logistic regression | {f1} "
        f"| {roc_auc_score(val['target'], probs):.4f} |"
    )


if __name__ == "__main__":
    main()
