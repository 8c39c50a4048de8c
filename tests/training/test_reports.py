"""Evaluation reports of ``test``: metrics.json, curves, PNG figures and errors.csv."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from helpers.runs import EVALUATING_A_COPY
from transformers import AutoTokenizer

from tweetcls.cli import main
from tweetcls.core.pretrained import resolve_pretrained
from tweetcls.training import figures
from tweetcls.training.callbacks import (
    ERROR_COLUMNS,
    TestReport,
    most_confident_errors,
    save_tokenizer,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURE_NAMES = {
    "confusion_matrix.png",
    "pr_curve.png",
    "roc_curve.png",
    "f1_threshold.png",
    "calibration.png",
}


def synthetic(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Probabilities that separate the two classes imperfectly."""
    generator = torch.Generator().manual_seed(seed)
    labels = (torch.rand(n, generator=generator) < 0.4).long()
    probs = (0.4 * labels + 0.6 * torch.rand(n, generator=generator)).clamp(0, 1)
    return probs, labels


def check_errors_table(errors: pd.DataFrame, threshold: float) -> None:
    """Only FP/FN rows, consistent with the threshold, each kind most confident first."""
    assert list(errors.columns) == ERROR_COLUMNS
    assert set(errors["kind"]) <= {"false_positive", "false_negative"}
    kinds = errors["kind"].tolist()
    assert kinds == sorted(kinds, key=lambda kind: kind != "false_positive")  # FPs first
    false_positives = errors[errors["kind"] == "false_positive"]
    false_negatives = errors[errors["kind"] == "false_negative"]
    assert (false_positives["target"] == 0).all()
    assert (false_positives["probability"] >= threshold).all()
    assert false_positives["probability"].is_monotonic_decreasing
    assert (false_negatives["target"] == 1).all()
    assert (false_negatives["probability"] <= threshold).all()
    assert false_negatives["probability"].is_monotonic_increasing


# --- the real CLI on the tiny model ---------------------------------------------------------


@pytest.mark.filterwarnings(EVALUATING_A_COPY)
def test_test_writes_reports(tiny_fit, tiny_run, tmp_path, processed_dir):
    # the barely trained model's probabilities all sit just below 0.5: the same model with a
    # decision threshold where both kinds of mistakes occur, the one tuned on val during fit
    cut = pd.read_csv(tiny_fit / "logs" / "metrics.csv")["val/threshold_tuned"]
    cut = str(float(cut.dropna().iloc[-1]))
    best = torch.load(
        tiny_fit / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False
    )
    assert best["hyper_parameters"]["decision_threshold"] == 0.5
    best["hyper_parameters"]["decision_threshold"] = float(cut)  # a setting, not a weight
    torch.save(best, tmp_path / "best.ckpt")
    evaluate = ("--ckpt_path", str(tmp_path / "best.ckpt"))
    reports = tmp_path / "reports"
    val = pd.read_csv(processed_dir / "val.csv", keep_default_na=False)

    # every mistake, no figures
    main(
        tiny_run(
            "test",
            *evaluate,
            "--report.figures",
            "false",
            "--report.num_errors",
            "100000",
        )
    )
    assert not (reports / "figures").exists()
    metrics = json.loads((reports / "metrics.json").read_text())
    for key in ("f1", "precision", "recall", "accuracy", "auroc", "threshold"):
        assert 0 <= metrics[key] <= 1, key
    for key in ("f1_at_0.5", "average_precision", "calibration_error"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["samples"] == len(val) == 691
    threshold = metrics["threshold"]
    assert threshold == pytest.approx(float(cut), abs=1e-6)
    assert metrics["f1_ci"][0] <= metrics["f1"] <= metrics["f1_ci"][1]
    every = pd.read_csv(reports / "errors.csv", keep_default_na=False)
    check_errors_table(every, threshold)
    # the whole confusion matrix, rebuilt from precision and recall
    positives = int(val["target"].sum())
    true_positives = round(metrics["recall"] * positives)
    false_positives = round(true_positives / metrics["precision"]) - true_positives
    kinds = every["kind"].value_counts()
    assert kinds.get("false_positive", 0) == false_positives
    assert kinds.get("false_negative", 0) == positives - true_positives
    # ids, targets and texts are those of val.csv (aligned by id, not by position)
    assert every["id"].is_unique
    joined = every.merge(val, on="id", suffixes=("", "_file"), validate="one_to_one")
    assert len(joined) == len(every)
    assert (joined["target"] == joined["target_file"]).all()
    assert (joined["text"] == joined["text_file"]).all()
    assert (joined["keyword"] == joined["keyword_file"]).all()

    # defaults: figures and the 25 most confident mistakes of each kind (over the first run's)
    main(tiny_run("test", *evaluate, "--overwrite", "true"))
    assert {p.name for p in (reports / "figures").iterdir()} == FIGURE_NAMES
    for name in FIGURE_NAMES:
        assert (reports / "figures" / name).read_bytes().startswith(PNG_MAGIC), name
    errors = pd.read_csv(reports / "errors.csv", keep_default_na=False)
    check_errors_table(errors, threshold)
    for kind in ("false_positive", "false_negative"):
        expected = every[every["kind"] == kind].head(25).reset_index(drop=True)
        got = errors[errors["kind"] == kind].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected)
    roc = pd.read_csv(reports / "roc_curve.csv")
    assert list(roc.columns) == ["threshold", "fpr", "tpr"] and len(roc) <= 201
    assert roc[["fpr", "tpr"]].stack().between(0, 1).all()
    curve = pd.read_csv(reports / "pr_curve.csv")
    assert list(curve.columns) == ["threshold", "precision", "recall"] and len(curve) == 101
    # atomic writes leave no temporary directories behind
    assert not [p.name for p in reports.iterdir() if p.name.startswith(".")]


def test_bad_num_errors(tiny_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(
            tiny_run(
                "test", "--ckpt_path", str(tmp_path / "none.ckpt"), "--report.num_errors", "-1"
            )
        )
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: report.num_errors: must be >= 0, got -1"]
    assert not (tmp_path / "reports").exists()


def test_help_lists_report_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--report.figures" in out and "--report.num_errors" in out


# --- TestReport without the CLI ---------------------------------------------------------------


def test_report_without_texts_skips_errors(tmp_path):
    probs, labels = synthetic()
    module = SimpleNamespace(
        test_results={"probs": probs, "labels": labels, "ids": torch.arange(len(labels))},
        threshold=torch.tensor(0.5),
    )
    trainer = SimpleNamespace(
        callback_metrics={"test/f1": torch.tensor(0.7)}, datamodule=None, default_root_dir="."
    )
    report = TestReport(dirpath=str(tmp_path / "reports"), figures=False)
    with pytest.warns(UserWarning, match="errors.csv skipped"):
        report.on_test_end(trainer, module)
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["f1"] == pytest.approx(0.7) and metrics["samples"] == len(labels)
    names = {p.name for p in (tmp_path / "reports").iterdir()}
    assert names == {"metrics.json", "pr_curve.csv", "roc_curve.csv"}


def test_most_confident_errors():
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6, 7, 8],
            "probability": [0.9, 0.6, 0.95, 0.2, 0.05, 0.3, 0.6, 0.7],
            "target": [0, 0, 0, 1, 1, 1, 0, 1],
            "keyword": ["a", "b", "c", "d", "e", "f", "g", "h"],
            "text": ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"],
        }
    )
    table = most_confident_errors(frame, threshold=0.5, count=2)
    assert list(table.columns) == ERROR_COLUMNS
    assert table["kind"].tolist() == ["false_positive"] * 2 + ["false_negative"] * 2
    assert table["id"].tolist() == [3, 1, 5, 4]  # 0.95, 0.9 | 0.05, 0.2
    everything = most_confident_errors(frame, threshold=0.5, count=10)
    assert everything["id"].tolist() == [3, 1, 2, 7, 5, 4, 6]  # ties (0.6) by id
    empty = most_confident_errors(frame, threshold=0.5, count=0)
    assert empty.empty and list(empty.columns) == ERROR_COLUMNS


def test_report_rejects_negative_num_errors():
    with pytest.raises(ValueError, match=r"report\.num_errors: must be >= 0, got -3"):
        TestReport(num_errors=-3)


# --- figures on synthetic data ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(figures.FIGURES))
def test_figure_is_a_deterministic_png(tmp_path, name):
    probs, labels = synthetic()
    plot = figures.FIGURES[name]
    first = plot(probs, labels, 0.45, tmp_path / "a" / name)
    second = plot(probs, labels, 0.45, tmp_path / "b" / name)
    data = first.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert data == second.read_bytes()  # no timestamp or version in the file
    assert b"Matplotlib version" not in data


def test_write_figures(tmp_path):
    probs, labels = synthetic(seed=1)
    paths = figures.write_figures(probs, labels, 0.5, tmp_path / "figures")
    assert {p.name for p in paths} == FIGURE_NAMES == set(figures.FIGURES)
    assert all(p.parent == tmp_path / "figures" for p in paths)


def test_figures_accept_plain_lists_and_extreme_thresholds(tmp_path):
    probs, labels = synthetic(n=50, seed=2)
    for threshold in (0.0, 1.0):
        figures.write_figures(probs.tolist(), labels.tolist(), threshold, tmp_path / "x")


def test_figures_reject_mismatched_inputs(tmp_path):
    with pytest.raises(ValueError, match="one length"):
        figures.confusion_matrix(torch.rand(5), torch.ones(4), 0.5, tmp_path / "cm.png")


def test_saved_tokenizer_does_not_depend_on_its_last_call(tmp_path):
    """A fit that read its tokenized data from the cache and one that tokenized it saved two
    different tokenizer.json files (the padding of the last call): now one."""
    source = resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2")
    saved = []
    for name, used in (("fresh", False), ("used", True)):
        tokenizer = AutoTokenizer.from_pretrained(source)
        if used:
            tokenizer(["a tweet"], padding="max_length", truncation=True, max_length=16)
        save_tokenizer(tokenizer, tmp_path / name)
        saved.append((tmp_path / name / "tokenizer.json").read_bytes())
    assert saved[0] == saved[1]
    config = json.loads(saved[0])
    assert config["padding"] is None and config["truncation"] is None
