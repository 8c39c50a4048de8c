"""``python -m tweetcls soft-targets``: a teacher's probabilities for distillation.

Writes ``id,probability`` for every ``train.csv`` tweet, the soft targets that
``data.soft_targets`` feeds to a student fit with ``model.distill_weight > 0``. The teacher is
one member or the mean of several (:mod:`tweetcls.experiments.members`):

* a model directory (``<run>/model``): *in-sample* targets, the teacher's probabilities on the
  tweets it was fine-tuned on (confident, close to the labels);
* a ``kfold`` directory: *out-of-fold* targets, each tweet scored by the fold model that did
  not train on it (what the teacher would say of new tweets).

The output is written atomically beside ``<out>.json``, which records the teachers and their
held-out validation F1; a rerun with unchanged teachers and data reuses the member caches.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bootstrap import f1_interval
from tweetcls.core.errors import ConfigError
from tweetcls.data.preprocess import read_processed
from tweetcls.experiments.members import Member, probability_columns


def build_parser(prog: str = "tweetcls soft-targets") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a teacher's probabilities for train.csv (id,probability), the "
        "soft targets of a distilled student (data.soft_targets).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--teacher",
        action="append",
        required=True,
        help="NAME=SOURCE or SOURCE (a model dir or a kfold dir), repeated for a mean",
    )
    parser.add_argument("--data_dir", default="data/processed", help="processed splits")
    parser.add_argument("--out", default="data/soft_targets/teacher.csv", help="output CSV")
    parser.add_argument("--cache_dir", default="runs/members", help="member probability cache")
    return parser


def run(argv: list[str] | None = None, prog: str = "tweetcls soft-targets") -> dict:
    options = build_parser(prog).parse_args(argv)
    teachers = [Member.parse(text) for text in options.teacher]
    for teacher in teachers:
        if teacher.kind not in ("model", "kfold", "csv"):
            raise ConfigError(
                f"--teacher {teacher.source}: expected a model dir, a kfold dir or a CSV"
            )
    data_dir, out = Path(options.data_dir), Path(options.out)
    train = read_processed(data_dir, "train.csv")
    val = read_processed(data_dir, "val.csv")
    columns = probability_columns(teachers, data_dir, ["train", "val"], options.cache_dir)
    probs = {split: values.mean(axis=1) for split, values in columns.items()}
    summary = {
        "teachers": {t.name: {"source": t.source, "kind": t.kind} for t in teachers},
        "train_f1_of_targets": f1_interval(probs["train"], train["target"]).as_dict(),
        "val_f1_of_teacher": f1_interval(probs["val"], val["target"]).as_dict(),
        "tweets": len(train),
    }
    with atomic_path(out) as tmp:
        pd.DataFrame({"id": train["id"], "probability": probs["train"].round(6)}).to_csv(
            tmp, index=False
        )
    write_text(out.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None, prog: str = "tweetcls soft-targets") -> None:
    run(argv, prog)
