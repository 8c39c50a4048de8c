"""The preprocess stage: validation errors, cleaning, conflicts, split and report."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from helpers.golden import assert_golden, data_report_text
from helpers.paths import TINY_CONFIG

from tweetcls.cli import main
from tweetcls.data.preprocess import clean_keyword, clean_text


def run_preprocess(raw, out, tiny_model_dir, *extra):
    main(
        [
            "preprocess",
            "--config",
            str(TINY_CONFIG),
            "--model.pretrained_model",
            str(tiny_model_dir),
            "--data.raw_dir",
            str(raw),
            "--data.data_dir",
            str(out),
            "--report_path",
            str(out.parent / "report.json"),
            *extra,
        ]
    )


def test_report_and_split(processed_dir, raw_dir):
    report = json.loads((processed_dir.parent / "data.json").read_text())
    train = pd.read_csv(processed_dir / "train.csv", keep_default_na=False)
    val = pd.read_csv(processed_dir / "val.csv", keep_default_na=False)
    test = pd.read_csv(processed_dir / "test.csv", keep_default_na=False)
    assert report["raw"]["train"]["rows"] == 7613
    # texts that differ only by their links or @handles are one text (normaliser 2)
    assert report["normaliser"] == 2
    assert report["deduplication"]["conflicting_texts"] == 74
    assert report["deduplication"]["conflicting_rows"] == 256
    assert report["train"]["rows"] == len(train) and report["val"]["rows"] == len(val)
    assert len(val) / (len(train) + len(val)) >= 0.1
    # stratified: class balance of train and val within one point
    assert abs(train["target"].mean() - val["target"].mean()) < 0.01
    # de-duplicated: no text in both splits, every text has one label
    assert not set(train["text"]) & set(val["text"])
    # shuffled: raw ids are sorted by keyword, the split is not
    assert not train["id"].is_monotonic_increasing
    assert len(test) == 3263
    assert list(test["id"]) == list(pd.read_csv(raw_dir / "test.csv")["id"])
    assert "text_raw" in train and not train["text"].str.contains("&amp;").any()
    assert not train["keyword"].str.contains("%20").any()
    percentiles = report["token_length"]["train"]
    assert 5 < percentiles["p50"] <= percentiles["p99"] <= percentiles["p100"]


def test_report_matches_golden_file(processed_dir, tiny_model_dir):
    """The whole report of the pulled raw data, split seed and tiny tokenizer is fixed."""
    report = processed_dir.parent / "data.json"
    assert_golden("data_report.json", data_report_text(report, tiny_model_dir))


def test_split_is_seeded(tmp_path, raw_dir, tiny_model_dir, processed_dir):
    run_preprocess(raw_dir, tmp_path / "again", tiny_model_dir)
    for name in ("train.csv", "val.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (processed_dir / name).read_bytes()
    run_preprocess(raw_dir, tmp_path / "other", tiny_model_dir, "--data.split_seed", "7")
    assert (tmp_path / "other" / "val.csv").read_bytes() != (processed_dir / "val.csv").read_bytes()


def test_clean_text():
    assert clean_text("Fire &amp;amp; smoke\n\n near  &lt;b&gt;") == "Fire & smoke near <b>"
    assert clean_keyword("airplane%20accident") == "airplane accident"


def _train_rows(raw_dir):
    return (raw_dir / "train.csv").read_bytes().decode().splitlines(keepends=True)


BAD_TRAIN = {
    "missing file": (lambda rows: None, "train.csv: file not found"),
    "missing column": (
        lambda rows: ["id,keyword,location,text\n", "1,,,hello\n"],
        "no 'target' column (columns: 'id', 'keyword', 'location', 'text')",
    ),
    "extra column": (
        lambda rows: ["id,keyword,location,text,target,extra\n", "1,,,hello,1,x\n"],
        "header: unexpected column 'extra'",
    ),
    "bad target": (
        lambda rows: [*rows[:3], "99999,,,a tweet,2\n"],
        "row 3 (line 4), column 'target': expected 0 or 1, got '2'",
    ),
    "empty text": (
        lambda rows: [*rows[:2], "99999,,,   ,1\n"],
        "row 2 (line 3), column 'text': empty text",
    ),
    "duplicate id": (
        lambda rows: [*rows[:3], rows[1]],
        "row 3 (line 4), column 'id': duplicate id 1 (first at row 1)",
    ),
    "bad id": (
        lambda rows: [*rows[:2], "x7,,,a tweet,1\n"],
        "row 2 (line 3), column 'id': expected an integer, got 'x7'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_raw_train(case, tmp_path, raw_dir, tiny_model_dir, capsys):
    make_rows, message = BAD_TRAIN[case]
    bad = tmp_path / "raw"
    bad.mkdir()
    shutil.copy(raw_dir / "test.csv", bad / "test.csv")
    rows = make_rows(_train_rows(raw_dir))
    if rows is not None:
        (bad / "train.csv").write_text("".join(rows))
    out = tmp_path / "processed"
    with pytest.raises(SystemExit) as exit_info:
        run_preprocess(bad, out, tiny_model_dir)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    assert str(bad / "train.csv") in err[0] and message in err[0]
    assert not out.exists() and not (tmp_path / "report.json").exists()


def test_undecodable_bytes(tmp_path, raw_dir, tiny_model_dir, capsys):
    bad = tmp_path / "raw"
    bad.mkdir()
    shutil.copy(raw_dir / "train.csv", bad / "train.csv")
    content = (raw_dir / "test.csv").read_bytes().splitlines(keepends=True)
    content[5] = content[5].replace(b",", b",\xff\xfe", 1)
    (bad / "test.csv").write_bytes(b"".join(content))
    with pytest.raises(SystemExit) as exit_info:
        run_preprocess(bad, tmp_path / "processed", tiny_model_dir)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{bad / 'test.csv'}: line 6: not UTF-8 (byte 0xff at offset" in err
    assert not (tmp_path / "processed").exists()


def test_bad_val_fraction(tmp_path, raw_dir, tiny_model_dir, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_preprocess(raw_dir, tmp_path / "p", tiny_model_dir, "--data.val_fraction", "0.05")
    assert exit_info.value.code == 2
    assert "data.val_fraction: must lie in [0.1, 0.5], got 0.05" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
