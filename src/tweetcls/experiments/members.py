"""Probabilities of finished models ("members") on the processed splits, cached per member.

A member is given as ``name=source`` (or just ``source``), where ``source`` is one of:

* ``tfidf``: the word + character TF-IDF model (:mod:`tweetcls.models.tfidf`), fitted on
  ``train.csv`` on the spot;
* a model directory of ``fit`` (``<run>/model``) or a serving bundle: scored by its own
  PyTorch model with its own input settings (tokenizer, ``max_length``, keyword segment);
* a ``kfold`` output directory (``fold-*/predictions.csv``): ``val``/``test`` are the mean of
  the folds' probabilities, ``train`` is each tweet's out-of-fold probability;
* a CSV with columns ``split,id,probability`` (e.g. another member's cache file).

Probabilities are cached per split in ``<cache_dir>/<name>-<split>.csv`` with a key (source,
weights version or file SHA-256s, the data files' SHA-256s) in ``<name>-<split>.json``; a cache
whose key differs is recomputed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bundle import file_sha256, load_bundle
from tweetcls.core.errors import ConfigError
from tweetcls.data.preprocess import read_processed

#: Split name -> processed file.
SPLITS = {"train": "train.csv", "val": "val.csv", "test": "test.csv"}
#: ``kfold`` prediction roles that hold each split.
KFOLD_ROLES = {"train": "oof", "val": "heldout", "test": "test"}
COLUMNS = ["split", "id", "probability"]


@dataclass(frozen=True)
class Member:
    """A named source of probabilities (see the module docstring)."""

    name: str
    source: str

    @classmethod
    def parse(cls, text: str) -> Member:
        name, sep, source = text.partition("=")
        if not sep:
            source = text
            name = "tfidf" if text == "tfidf" else Path(text.rstrip("/")).name
            if name in ("model", "serving"):  # <run>/model: name it after the run
                name = Path(text.rstrip("/")).parent.name or name
        if not name or not source:
            raise ConfigError(f"--member {text!r}: expected NAME=SOURCE or SOURCE")
        return cls(name, source)

    @property
    def kind(self) -> str:
        path = Path(self.source)
        if self.source == "tfidf":
            return "tfidf"
        if path.is_dir() and (path / "tweetcls.json").is_file():
            return "model"
        if path.is_dir() and any(path.glob("fold-*/predictions.csv")):
            return "kfold"
        if path.is_file() and path.suffix == ".csv":
            return "csv"
        raise ConfigError(
            f"member {self.name}: {self.source} is not 'tfidf', a model directory (with "
            "tweetcls.json), a kfold directory (fold-*/predictions.csv) or a probabilities CSV"
        )


def _source_key(member: Member) -> dict:
    kind, path = member.kind, Path(member.source)
    if kind == "tfidf":
        from tweetcls.models.tfidf import SETTINGS

        return {
            "kind": kind,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in SETTINGS.items()},
        }
    if kind == "model":
        return {"kind": kind, "source": str(path), "version": load_bundle(path).version}
    files = sorted(path.glob("fold-*/predictions.csv")) if kind == "kfold" else [path]
    return {"kind": kind, "source": str(path), "sha256": [file_sha256(f) for f in files]}


def _compute(member: Member, data_dir: Path, splits: list[str]) -> pd.DataFrame:
    kind = member.kind
    frames = {split: read_processed(data_dir, SPLITS[split]) for split in splits}
    if kind == "tfidf":
        from tweetcls.models.tfidf import fit_tfidf, predict_tfidf

        model = fit_tfidf(read_processed(data_dir, SPLITS["train"]))
        probs = {split: predict_tfidf(model, frame) for split, frame in frames.items()}
    elif kind == "model":
        from tweetcls.inference.backends import load_backend
        from tweetcls.inference.base import predict_frame

        backend = load_backend(load_bundle(member.source), "pytorch")
        probs = {split: predict_frame(backend, frame) for split, frame in frames.items()}
    else:
        table = _read_kfold(Path(member.source)) if kind == "kfold" else _read_csv(member.source)
        probs = {}
        for split, frame in frames.items():
            rows = table[table["split"] == split].set_index("id")["probability"]
            missing = ~frame["id"].isin(rows.index)
            if missing.any():
                raise ConfigError(
                    f"member {member.name}: {member.source} has no {split} probability for "
                    f"{int(missing.sum())} of {len(frame)} tweets (e.g. id "
                    f"{frame['id'][missing].iloc[0]})"
                )
            probs[split] = rows.loc[frame["id"]].to_numpy()
    return pd.concat(
        [
            pd.DataFrame({"split": split, "id": frames[split]["id"], "probability": p})
            for split, p in probs.items()
        ],
        ignore_index=True,
    )


def _read_csv(path: str | Path) -> pd.DataFrame:
    table = pd.read_csv(path)
    if list(table.columns[:3]) != COLUMNS:
        raise ConfigError(f"{path}: expected columns {','.join(COLUMNS)}")
    return table


def _read_kfold(path: Path) -> pd.DataFrame:
    frames = [pd.read_csv(f) for f in sorted(path.glob("fold-*/predictions.csv"))]
    rows = []
    for split, role in KFOLD_ROLES.items():
        table = pd.concat([f[f["role"] == role] for f in frames])
        rows.append(
            table.groupby("id", sort=False)["probability"].mean().reset_index().assign(split=split)
        )
    return pd.concat(rows, ignore_index=True)[COLUMNS]


def _cache_key(source_key: dict, data: dict[str, str], split: str) -> dict:
    # the training split is part of every key: members that fit on the spot train on it
    files = {name: data[name] for name in dict.fromkeys(("train", split))}
    return {**source_key, "split": split, "data_sha256": files}


def member_probabilities(
    member: Member, data_dir: str | Path, splits: list[str], cache_dir: str | Path
) -> pd.DataFrame:
    """``split,id,probability`` of ``member`` on ``splits``, from the cache when it is current.

    Each split is cached on its own (``<cache_dir>/<name>-<split>.csv`` beside its key
    ``.json``), so a command that needs another split computes only that one.
    """
    data_dir, cache_dir = Path(data_dir), Path(cache_dir)
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise ConfigError(f"unknown split(s) {unknown}; choose from {', '.join(SPLITS)}")
    source_key = _source_key(member)  # hashes the weights or files: once, not per split
    data = {
        name: file_sha256(data_dir / SPLITS[name]) for name in dict.fromkeys(("train", *splits))
    }
    keys = {split: _cache_key(source_key, data, split) for split in splits}
    paths = {split: cache_dir / f"{member.name}-{split}.csv" for split in splits}
    missing = [
        split
        for split in splits
        if not (
            paths[split].is_file()
            and paths[split].with_suffix(".json").is_file()
            and json.loads(paths[split].with_suffix(".json").read_text()) == keys[split]
        )
    ]
    if missing:
        table = _compute(member, data_dir, missing)
        if not np.isfinite(table["probability"]).all():
            raise ConfigError(f"member {member.name}: non-finite probabilities")
        for split in missing:
            with atomic_path(paths[split]) as tmp:
                rows = table[table["split"] == split].round({"probability": 6})
                rows.to_csv(tmp, index=False)
            write_text(paths[split].with_suffix(".json"), json.dumps(keys[split], indent=2) + "\n")
    return pd.concat([pd.read_csv(paths[split]) for split in splits], ignore_index=True)


def probability_columns(
    members: list[Member], data_dir: str | Path, splits: list[str], cache_dir: str | Path
) -> dict[str, np.ndarray]:
    """Per split, the members' probabilities as columns, rows in the split file's order."""
    data_dir = Path(data_dir)
    ids = {split: read_processed(data_dir, SPLITS[split])["id"] for split in splits}
    columns: dict[str, list[np.ndarray]] = {split: [] for split in splits}
    for member in members:
        table = member_probabilities(member, data_dir, splits, cache_dir)
        for split in splits:
            rows = table[table["split"] == split].set_index("id")["probability"]
            columns[split].append(rows.loc[ids[split]].to_numpy())
    return {split: np.column_stack(values) for split, values in columns.items()}
