"""``tweetcls preprocess`` on raw CSVs as spreadsheets and other tools save them, and on broken
ones: read as written, or one ``error:`` line naming the file and the cause, exit 2, nothing
written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from helpers.csvfiles import READABLE, TRICKY_TEXTS, UNREADABLE, encode_csv, zip_bytes
from helpers.paths import tiny_args

import tweetcls.training.preprocess_cli  # noqa: F401  (see below)
from tweetcls.cli import main

# Lightning is imported here, not in the first test: its log handler keeps the stderr of the
# moment, which would otherwise be that test's capsys, closed in the tests after it.

HEADER = ["id", "keyword", "location", "text", "target"]
TEXTS = [*TRICKY_TEXTS, *(f"tweet number {i} about the weather" for i in range(15))]
#: 20 labelled tweets: enough for the 0.1 validation split of configs/tiny.yaml.
TRAIN = [HEADER] + [
    [str(i), "fire" if i % 3 else "", "Paris" if i % 4 else "", text, str(i % 2)]
    for i, text in enumerate(TEXTS, start=1)
]
TEST = [HEADER[:4], ["1", "", "", "Smoke over the hills"], ["2", "flood", "", "Sunny, no rain"]]


def rows_with(targets: list[str], texts: list[str] | None = None) -> list[list[str]]:
    """A training table with these targets (and texts; distinct ones by default)."""
    texts = texts or [f"tweet {i}" for i in range(len(targets))]
    return [HEADER] + [
        [str(i), "", "", text, target]
        for i, (text, target) in enumerate(zip(texts, targets, strict=True))
    ]


#: Training files that are readable CSVs but not usable training data, and the cause.
BAD_LABELS: dict[str, tuple[bytes, str]] = {
    "a target 'yes'": (
        encode_csv([*TRAIN[:3], ["99", "", "", "a tweet", "yes"]]),
        "row 3 (line 4), column 'target': expected 0 or 1, got 'yes'",
    ),
    "an empty target": (
        encode_csv([*TRAIN[:2], ["99", "", "", "a tweet", ""], *TRAIN[2:]]),
        "row 2 (line 3), column 'target': expected 0 or 1, got ''",
    ),
    "one class only": (
        encode_csv(rows_with(["1"] * 20)),
        "every row has target 1 after de-duplication: training needs both classes, 0 and 1",
    ),
    "one class left after dropping conflicting duplicates": (
        encode_csv(rows_with(["0"] * 12 + ["1"], [f"t{i}" for i in range(12)] + ["t0"])),
        "every row has target 0 after de-duplication",
    ),
    "three rows": (
        encode_csv(rows_with(["0", "1", "0"])),
        "only 1 row with target 1 after de-duplication: a stratified train/val split needs "
        "at least 2 of each class",
    ),
    "a class of one row": (
        encode_csv(rows_with(["0"] * 19 + ["1"])),
        "only 1 row with target 1",
    ),
    "too few rows for the split": (
        encode_csv(rows_with(["0", "1", "0", "1"])),
        "4 rows after de-duplication are too few for data.val_fraction 0.1: train and val each "
        "need a row of both classes, so at least 11",
    ),
    "a repeated column": (
        encode_csv([[*HEADER, "Text"], *([*row, "x"] for row in TRAIN[1:])]),
        "header: column 'text' appears 2 times ('text' and 'Text', columns 4, 6)",
    ),
    "a column without a name but with values": (
        encode_csv([["", *HEADER], *([str(i), *row] for i, row in enumerate(TRAIN[1:]))]),
        "header: unexpected column without a name (column 1)",
    ),
}


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    """A raw directory with a valid test.csv; each test writes its own train.csv."""
    directory = tmp_path / "raw"
    directory.mkdir()
    (directory / "test.csv").write_bytes(encode_csv(TEST))
    return directory


def preprocess(raw: Path, tiny_model_dir: Path) -> Path:
    """Run ``tweetcls preprocess`` on ``raw``; return its output directory."""
    out = raw.parent / "processed"
    report = raw.parent / "report.json"
    main(["preprocess", *tiny_args(raw, out, tiny_model_dir), "--report_path", str(report)])
    return out


def assert_refused(raw: Path, name: str, message: str, tiny_model_dir: Path, capsys) -> None:
    """Preprocess fails with one ``error: <raw>/<name>: ...message...`` line; nothing written."""
    with pytest.raises(SystemExit) as exit_info:
        preprocess(raw, tiny_model_dir)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1, captured.err
    assert err[0].startswith(f"error: {raw / name}: ") and message in err[0], err[0]
    assert "Traceback" not in captured.out + captured.err
    assert not (raw.parent / "processed").exists() and not (raw.parent / "report.json").exists()


@pytest.mark.parametrize("case", sorted(READABLE))
def test_exported_training_data_is_read_as_written(case, raw, tiny_model_dir, capsys) -> None:
    (raw / "train.csv").write_bytes(READABLE[case](TRAIN))
    out = preprocess(raw, tiny_model_dir)
    assert "preprocess: wrote" in capsys.readouterr().out
    splits = [pd.read_csv(out / f"{s}.csv", keep_default_na=False) for s in ("train", "val")]
    rows = pd.concat(splits).sort_values("id")
    assert [len(s) for s in splits] == [18, 2]
    assert rows["text_raw"].tolist() == TEXTS
    assert rows["target"].tolist() == [int(row[4]) for row in TRAIN[1:]]
    assert rows["location"].tolist() == [row[2] for row in TRAIN[1:]]


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_training_data_is_one_line(case, raw, tiny_model_dir, capsys) -> None:
    content, message = UNREADABLE[case]
    (raw / "train.csv").write_bytes(content)
    assert_refused(raw, "train.csv", message, tiny_model_dir, capsys)


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_unusable_training_data_is_one_line(case, raw, tiny_model_dir, capsys) -> None:
    content, message = BAD_LABELS[case]
    (raw / "train.csv").write_bytes(content)
    assert_refused(raw, "train.csv", message, tiny_model_dir, capsys)


def test_an_unreadable_test_csv_is_named(raw, tiny_model_dir, capsys) -> None:
    (raw / "train.csv").write_bytes(encode_csv(TRAIN))
    (raw / "test.csv").write_bytes(zip_bytes("[Content_Types].xml", "xl/workbook.xml"))
    assert_refused(raw, "test.csv", "this is an Excel workbook (xlsx)", tiny_model_dir, capsys)
