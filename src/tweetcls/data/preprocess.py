"""Raw Kaggle CSVs -> validated, cleaned, de-duplicated, stratified train/val split.

Reads ``<raw_dir>/{train,test}.csv`` (through :mod:`tweetcls.core.csvfiles`: UTF-8, or
UTF-16 with a byte-order mark, any common delimiter and line ending); writes
``<out_dir>/{train,val,test}.csv`` and a data report (JSON). Every check failure raises
:class:`DataValidationError` naming the file, row and column (or, for labels a stratified split
cannot divide, the cause), and nothing is written unless every check passes.

Conflicting labels: a cleaned text that appears with both targets takes the majority target of
its rows; a tie is ambiguous and the text is dropped. Exact duplicates (same cleaned text) are
then collapsed to their first row, so no text can land in both train and val.

Reviewed feedback (off by default; ``reviewed_feedback``, ``tweetcls preprocess
--reviewed_feedback FILE``): a CSV a person has checked, with ``text`` and ``target`` (0/1) and
optionally ``id``, ``keyword``, ``location`` (other columns, e.g. a note, are ignored), usually
built from ``tweetcls feedback``'s export. Its rows are cleaned like the raw ones and go through
the same rules among themselves (majority label per cleaned text, ties dropped, one row per
text); then a reviewed label overrides the raw label of the same cleaned text: a correction is
the point. The train/val split stays the one of the raw data alone, so reviewed rows never
reshuffle it: a corrected text keeps its split (and first row's id) with the reviewed label, and
a text new to the data goes to train with a new id (after the largest raw id, in file order).
The report's ``reviewed_feedback`` section counts them.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.csvfiles import read_csv_file
from tweetcls.core.errors import ConfigError, DataValidationError
from tweetcls.core.inputs import (
    LEGACY_NORMALISER,
    NORMALISER_VERSION,
    check_normaliser,
    clean_keyword,
    clean_text,
)

TRAIN_COLUMNS = ("id", "keyword", "location", "text", "target")
TEST_COLUMNS = ("id", "keyword", "location", "text")
PROCESSED_FILES = ("train.csv", "val.csv", "test.csv")
#: Written beside the processed CSVs: the settings that made them (``normaliser``, split).
SETTINGS_FILE = "preprocess.json"


def read_raw_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read and validate one raw CSV, in any form :mod:`tweetcls.core.csvfiles` reads.

    Args:
        path: The CSV file.
        columns: Its columns, exactly (``target``, if among them, must be 0 or 1).

    Raises:
        DataValidationError: the file is missing, unreadable or malformed, or a row is invalid;
            rows are numbered from 1 after the header, lines as in the file.
    """
    if not path.is_file():
        raise DataValidationError(f"{path}: file not found (run `dvc pull` to fetch the raw data)")
    table = read_csv_file(path, columns, strict=True)
    records, seen_ids = [], {}
    for row_number, (line, record) in enumerate(table.records(columns), start=1):
        where = f"{path}: row {row_number} (line {line})"
        try:
            record["id"] = int(record["id"])
        except ValueError:
            raise DataValidationError(
                f"{where}, column 'id': expected an integer, got {record['id']!r}"
            ) from None
        if record["id"] in seen_ids:
            raise DataValidationError(
                f"{where}, column 'id': duplicate id {record['id']} "
                f"(first at row {seen_ids[record['id']]})"
            )
        seen_ids[record["id"]] = row_number
        if not record["text"].strip():
            raise DataValidationError(f"{where}, column 'text': empty text")
        if "target" in record:
            if record["target"].strip() not in ("0", "1"):
                raise DataValidationError(
                    f"{where}, column 'target': expected 0 or 1, got {record['target']!r}"
                )
            record["target"] = int(record["target"])
        records.append(record)
    return pd.DataFrame.from_records(records, columns=list(columns))


def clean_frame(frame: pd.DataFrame, normaliser: int = NORMALISER_VERSION) -> pd.DataFrame:
    """Add cleaned ``text`` and ``keyword``/``location``; keep the original as ``text_raw``.

    Args:
        frame: Raw rows.
        normaliser: Text normaliser version (:data:`tweetcls.core.inputs.NORMALISERS`).
    """
    frame = frame.copy()
    frame["text_raw"] = frame["text"]
    frame["text"] = frame["text"].map(lambda text: clean_text(text, normaliser))
    frame["keyword"] = frame["keyword"].map(clean_keyword)
    frame["location"] = frame["location"].map(lambda text: clean_text(text, normaliser))
    return frame


@dataclass
class Deduplication:
    """What :func:`resolve_duplicates` changed."""

    duplicate_rows_removed: int
    conflicting_texts: int
    conflicting_rows: int
    conflicts_resolved_by_majority: int
    conflicts_dropped_as_ties: int


def resolve_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, Deduplication]:
    """Give each cleaned text one target (majority; ties dropped) and keep its first row."""
    stats = frame.groupby("text")["target"].agg(["mean", "nunique", "size"])
    conflicting = stats[stats["nunique"] > 1]
    ties = conflicting[conflicting["mean"] == 0.5].index
    majority = (stats["mean"] > 0.5).astype(int)
    resolved = frame[~frame["text"].isin(ties)].copy()
    resolved["target"] = resolved["text"].map(majority)
    deduplicated = resolved.drop_duplicates("text", keep="first")
    return deduplicated, Deduplication(
        duplicate_rows_removed=len(resolved) - len(deduplicated),
        conflicting_texts=len(conflicting),
        conflicting_rows=int(conflicting["size"].sum()),
        conflicts_resolved_by_majority=len(conflicting) - len(ties),
        conflicts_dropped_as_ties=len(ties),
    )


def read_reviewed(path: Path) -> pd.DataFrame:
    """Read and validate a reviewed-feedback CSV (see the module's docstring).

    Returns rows with :data:`TRAIN_COLUMNS`: ``keyword`` and ``location`` empty when absent,
    ``id`` the file's own (any text; replaced when the row joins the data).

    Raises:
        DataValidationError: the file is missing or unreadable, a column is missing, a text is
            empty (the request log holds texts only when the service ran with ``--log_text
            true``: write them in) or a target is not 0 or 1 (label or remove each row).
    """
    if not path.is_file():
        raise DataValidationError(f"{path}: reviewed feedback file not found")
    table = read_csv_file(path, ("text", "target"), ("id", "keyword", "location"))
    records = []
    for row_number, (line, record) in enumerate(
        table.records([c for c in TRAIN_COLUMNS if c in table.header]), start=1
    ):
        where = f"{path}: row {row_number} (line {line})"
        if not record["text"].strip():
            raise DataValidationError(
                f"{where}, column 'text': empty text (the request log holds texts only when the "
                "service runs with --log_text true: write the tweet in, or remove the row)"
            )
        if record["target"].strip() not in ("0", "1"):
            raise DataValidationError(
                f"{where}, column 'target': expected 0 or 1 (the reviewed label), got "
                f"{record['target']!r}: label the row or remove it"
            )
        record["target"] = int(record["target"])
        records.append({"id": "", "keyword": "", "location": "", **record})
    return pd.DataFrame.from_records(records, columns=list(TRAIN_COLUMNS))


def merge_reviewed(
    train: pd.DataFrame, val: pd.DataFrame, reviewed: pd.DataFrame, first_id: int
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Apply cleaned reviewed rows to the split: see the module's docstring.

    Args:
        train: The de-duplicated training split of the raw data.
        val: Its validation split.
        reviewed: Cleaned reviewed rows (:func:`read_reviewed`, then :func:`clean_frame`).
        first_id: The id of the first text new to the data.

    Returns:
        ``(train, val, counts)``: the splits with the reviewed labels and the new texts (at
        the end of train), and the counts of the report's ``reviewed_feedback`` section.
    """
    resolved, dedup = resolve_duplicates(reviewed)
    labels = resolved.set_index("text")["target"]
    counts = {
        "rows": len(reviewed),
        "texts": len(resolved),
        "duplicate_rows_removed": dedup.duplicate_rows_removed,
        "conflicts_dropped_as_ties": dedup.conflicts_dropped_as_ties,
    }
    splits = []
    for name, split in (("train", train), ("val", val)):
        known = split["text"].isin(labels.index).to_numpy()
        targets = split["target"].to_numpy(dtype=int, copy=True)
        if known.any():
            targets[known] = split["text"][known].map(labels).to_numpy(dtype=int)
        counts[f"corrected_in_{name}"] = int(known.sum())
        counts[f"labels_changed_in_{name}"] = int((targets != split["target"].to_numpy()).sum())
        splits.append(split.assign(target=targets))
    train, val = splits
    new = resolved[~resolved["text"].isin(train["text"]) & ~resolved["text"].isin(val["text"])]
    new = new.assign(id=range(first_id, first_id + len(new)))
    counts["new_texts_in_train"] = len(new)
    return pd.concat([train, new[train.columns]], ignore_index=False), val, counts


def _balance(frame: pd.DataFrame) -> dict[str, float | int]:
    positives = int(frame["target"].sum())
    return {"rows": len(frame), "positive": positives, "positive_rate": positives / len(frame)}


def token_length_percentiles(texts: list[str], tokenizer) -> dict[str, int]:
    """Token counts (with special tokens) at the 50/90/95/99/100th percentiles."""
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    return {f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99, 100)}


def check_val_fraction(val_fraction: float) -> None:
    """The validation share must lie in [0.1, 0.5]."""
    if not 0.1 <= val_fraction <= 0.5:
        raise ConfigError(f"data.val_fraction: must lie in [0.1, 0.5], got {val_fraction}")


def check_split(targets: pd.Series, val_fraction: float, path: Path) -> None:
    """Refuse labels that a stratified train/val split cannot divide.

    Args:
        targets: The labels of the de-duplicated training rows.
        val_fraction: Share of them held out for validation.
        path: The training CSV, for the message.

    Raises:
        DataValidationError: one class only, a class of one row, or too few rows for both
            splits to hold each class.
    """
    counts = targets.value_counts()
    if len(counts) < 2:
        found = f"every row has target {counts.index[0]}" if len(counts) else "no rows are left"
        raise DataValidationError(
            f"{path}: {found} after de-duplication: training needs both classes, 0 and 1"
        )
    if counts.min() < 2:
        raise DataValidationError(
            f"{path}: only 1 row with target {counts.idxmin()} after de-duplication: a "
            "stratified train/val split needs at least 2 of each class"
        )
    rows = len(targets)
    if not 2 <= math.ceil(val_fraction * rows) <= rows - 2:
        need = next(n for n in itertools.count(4) if 2 <= math.ceil(val_fraction * n) <= n - 2)
        raise DataValidationError(
            f"{path}: {rows} rows after de-duplication are too few for data.val_fraction "
            f"{val_fraction}: train and val each need a row of both classes, so at least {need}"
        )


def preprocess(
    raw_dir: str | Path,
    out_dir: str | Path,
    val_fraction: float,
    split_seed: int,
    report_path: str | Path | None = None,
    tokenizer=None,
    normaliser: int = NORMALISER_VERSION,
    tokenizer_name: str | None = None,
    reviewed_feedback: str | Path | None = None,
) -> dict:
    """Run the whole stage; return the report. ``tokenizer`` adds token-length percentiles,
    reported under ``tokenizer_name`` (the configured name: the directory a name resolved to
    names the machine that ran it); ``normaliser`` is the text normaliser's version, recorded
    in ``preprocess.json``; ``reviewed_feedback``: a reviewed CSV whose labels override the raw
    ones (see the module's docstring), recorded in ``preprocess.json`` and the report."""
    check_val_fraction(val_fraction)
    check_normaliser(normaliser, "data.normaliser")
    raw_dir = Path(raw_dir)
    train_raw = read_raw_csv(raw_dir / "train.csv", TRAIN_COLUMNS)
    test_raw = read_raw_csv(raw_dir / "test.csv", TEST_COLUMNS)
    reviewed = None
    if reviewed_feedback is not None:
        reviewed = clean_frame(read_reviewed(Path(reviewed_feedback)), normaliser)
    train_all, dedup = resolve_duplicates(clean_frame(train_raw, normaliser))
    test = clean_frame(test_raw, normaliser)
    check_split(train_all["target"], val_fraction, raw_dir / "train.csv")
    train, val = train_test_split(
        train_all,
        test_size=val_fraction,
        stratify=train_all["target"],
        shuffle=True,
        random_state=split_seed,
    )
    settings = {"normaliser": normaliser, "val_fraction": val_fraction, "split_seed": split_seed}
    merged = None
    if reviewed is not None:
        first_id = int(train_raw["id"].max()) + 1 if len(train_raw) else 1
        train, val, merged = merge_reviewed(train, val, reviewed, first_id)
        merged = {"path": str(reviewed_feedback), **merged}
        settings["reviewed_feedback"] = {"path": str(reviewed_feedback), "rows": merged["rows"]}
    report = {
        "raw": {"train": _balance(train_raw), "test_rows": len(test_raw)},
        "normaliser": normaliser,
        "deduplication": dedup.__dict__,
        "split": {"val_fraction": val_fraction, "seed": split_seed},
        "train": _balance(train),
        "val": _balance(val),
        "test": {"rows": len(test)},
    }
    if merged is not None:
        report["reviewed_feedback"] = merged
    if tokenizer is not None:
        report["token_length"] = {
            "tokenizer": tokenizer_name or tokenizer.name_or_path,
            "train": token_length_percentiles(train["text"].tolist(), tokenizer),
        }
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, frame in zip(PROCESSED_FILES, (train, val, test), strict=True):
            frame.to_csv(tmp / name, index=False)
        (tmp / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    if report_path is not None:
        write_text(report_path, json.dumps(report, indent=2) + "\n")
    return report


def processed_normaliser(data_dir: str | Path) -> int:
    """The normaliser version ``data_dir`` was built with (1 before versions were recorded)."""
    path = Path(data_dir) / SETTINGS_FILE
    if not path.is_file():
        return LEGACY_NORMALISER
    return int(json.loads(path.read_text(encoding="utf-8"))["normaliser"])


def read_processed(data_dir: str | Path, name: str) -> pd.DataFrame:
    """Read one processed split, with a clear error if the preprocess stage has not run."""
    path = Path(data_dir) / name
    if not path.is_file():
        raise DataValidationError(
            f"{path}: file not found (run `python -m tweetcls preprocess --config <config>`)"
        )
    return pd.read_csv(path, keep_default_na=False, dtype={"keyword": str, "location": str})
