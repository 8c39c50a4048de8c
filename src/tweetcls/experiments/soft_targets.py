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

import json
from pathlib import Path

import pandas as pd

from tweetcls.core.arguments import run_function
from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bootstrap import f1_interval
from tweetcls.core.errors import ConfigError
from tweetcls.data.preprocess import read_processed
from tweetcls.experiments.members import Member, probability_columns


def soft_targets(
    teacher: list[str],
    data_dir: str = "data/processed",
    out: str = "data/soft_targets/teacher.csv",
    cache_dir: str = "runs/members",
) -> dict:
    """Write a teacher's probabilities for train.csv (id,probability), the soft targets of a
    distilled student (data.soft_targets).

    Args:
        teacher: ``NAME=SOURCE`` or ``SOURCE`` (a model directory, a kfold directory or a
            ``split,id,probability`` CSV); repeat the flag for the mean of several teachers.
        data_dir: The processed splits.
        out: The output CSV (its summary goes beside it, as ``.json``).
        cache_dir: Cache of the teachers' probabilities.
    """
    teachers = [Member.parse(text) for text in teacher]
    for one in teachers:
        if one.kind not in ("model", "kfold", "csv"):
            raise ConfigError(f"--teacher {one.source}: expected a model dir, a kfold dir or a CSV")
    data_path, out_path = Path(data_dir), Path(out)
    train = read_processed(data_path, "train.csv")
    val = read_processed(data_path, "val.csv")
    columns = probability_columns(teachers, data_path, ["train", "val"], cache_dir)
    probs = {split: values.mean(axis=1) for split, values in columns.items()}
    summary = {
        "teachers": {t.name: {"source": t.source, "kind": t.kind} for t in teachers},
        "train_f1_of_targets": f1_interval(probs["train"], train["target"]).as_dict(),
        "val_f1_of_teacher": f1_interval(probs["val"], val["target"]).as_dict(),
        "tweets": len(train),
    }
    with atomic_path(out_path) as tmp:
        pd.DataFrame({"id": train["id"], "probability": probs["train"].round(6)}).to_csv(
            tmp, index=False
        )
    write_text(out_path.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


def main(args: list[str] | None = None, prog: str = "tweetcls soft-targets") -> None:
    """Run ``tweetcls soft-targets --teacher A [--teacher B ...]``."""
    run_function(soft_targets, list(args or []), prog)
