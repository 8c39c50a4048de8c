"""``preprocess`` with a reviewed-feedback file: its rules (override, ties, new texts, a kept
split) and its validation errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tweetcls.core.errors import DataValidationError
from tweetcls.data.preprocess import preprocess


def raw(tmp_path: Path) -> Path:
    """Forty labelled tweets (half disasters) and a test tweet."""
    folder = tmp_path / "raw"
    folder.mkdir()
    rows = [
        {"id": i, "keyword": "", "location": "", "text": f"tweet number {i}", "target": i % 2}
        for i in range(1, 41)
    ]
    pd.DataFrame(rows).to_csv(folder / "train.csv", index=False)
    test = [{"id": 100, "keyword": "", "location": "", "text": "a test tweet"}]
    pd.DataFrame(test).to_csv(folder / "test.csv", index=False)
    return folder


def run(tmp_path: Path, reviewed: Path | None, name: str = "out") -> tuple[dict, pd.DataFrame]:
    out = tmp_path / name
    report = preprocess(
        tmp_path / "raw" if (tmp_path / "raw").exists() else raw(tmp_path),
        out,
        val_fraction=0.25,
        split_seed=1,
        report_path=tmp_path / f"{name}.json",
        reviewed_feedback=reviewed,
    )
    frames = []
    for split in ("train", "val"):
        frame = pd.read_csv(out / f"{split}.csv", keep_default_na=False)
        frames.append(frame.assign(split=split))
    return report, pd.concat(frames)


def write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "reviewed.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_reviewed_labels_override_and_new_texts_join_train(tmp_path: Path) -> None:
    plain, before = run(tmp_path, None, "plain")
    assert "reviewed_feedback" not in plain
    reviewed = write(
        tmp_path,
        [
            {"id": "a", "text": "tweet number 3", "keyword": "", "target": 0, "note": "x"},
            {"id": "b", "text": "tweet   number 4 ", "keyword": "", "target": 1, "note": ""},
            {"id": "c", "text": "a brand new tweet", "keyword": "fire", "target": 1, "note": ""},
            {"id": "d", "text": "a tied tweet", "keyword": "", "target": 1, "note": ""},
            {"id": "e", "text": "a tied tweet", "keyword": "", "target": 0, "note": ""},
            {"id": "f", "text": "tweet number 5", "keyword": "", "target": 1, "note": ""},
        ],
    )
    report, after = run(tmp_path, reviewed)
    merged = report["reviewed_feedback"]
    by_text = after.set_index("text")
    assert by_text.loc["tweet number 3", "target"] == 0  # was 1: the reviewed label wins
    assert by_text.loc["tweet number 5", "target"] == 1  # the same label: counted, unchanged
    new = by_text.loc["a brand new tweet"]
    assert new["split"] == "train" and new["target"] == 1 and new["id"] == 41
    assert "a tied tweet" not in by_text.index  # a tie among reviewed rows is dropped
    # the split of the raw data is kept: every raw text stays where it was
    where = before.set_index("text")["split"]
    assert (after[after["text"].isin(where.index)].set_index("text")["split"] == where).all()
    corrected = merged["corrected_in_train"] + merged["corrected_in_val"]
    changed = merged["labels_changed_in_train"] + merged["labels_changed_in_val"]
    assert by_text.loc["tweet number 4", "target"] == 1  # matched after cleaning (spaces)
    assert corrected == 3 and changed == 2
    assert merged["rows"] == 6 and merged["new_texts_in_train"] == 1
    assert merged["conflicts_dropped_as_ties"] == 1
    assert report["train"]["rows"] == plain["train"]["rows"] + 1
    settings = json.loads((tmp_path / "out" / "preprocess.json").read_text())
    assert settings["reviewed_feedback"] == {"path": str(reviewed), "rows": 6}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"text": "", "target": 1}], "empty text .*--log_text true"),
        ([{"text": "t", "target": ""}], "expected 0 or 1"),
        ([{"text": "t", "corrected_label": 1}], "no 'target' column"),
    ],
)
def test_a_bad_reviewed_file_is_refused_naming_the_row(tmp_path, rows, message) -> None:
    with pytest.raises(DataValidationError, match=message):
        run(tmp_path, write(tmp_path, rows))
    assert not (tmp_path / "out").exists()


def test_a_missing_reviewed_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="reviewed feedback file not found"):
        run(tmp_path, tmp_path / "nope.csv")
