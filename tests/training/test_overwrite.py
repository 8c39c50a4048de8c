"""The overwrite rule: fit, test, predict and export never replace an earlier output unless told.

Each refusal is one line naming the output and the two ways on, exit 2, before any work, with
the earlier output unchanged; ``--overwrite true`` replaces it. Without an output flag, test and
predict write inside the run (``<default_root_dir>/reports``, ``.../predictions``), never into
the project's ``reports/`` and ``predictions/`` that the DVC pipeline writes.
"""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from helpers.paths import SHORT_FIT
from helpers.runs import EVALUATING_A_COPY, copy_run, snapshot

from tweetcls.cli import main


def refused(args: list[str], capsys) -> str:
    """Run ``main(args)``, expect exit 2, and return its one line of stderr."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def without(args: list[str], *flags: str) -> list[str]:
    """``args`` without each ``flag`` and its value."""
    args = list(args)
    for flag in flags:
        index = args.index(flag)
        del args[index : index + 2]
    return args


@pytest.mark.filterwarnings(EVALUATING_A_COPY)
def test_fit_refuses_to_replace_a_trained_run(tiny_fit, tiny_run, tmp_path, capsys):
    run = copy_run(tiny_fit, tmp_path / "run")
    before = snapshot(run)
    line = refused(tiny_run("fit", "--config", str(SHORT_FIT)), capsys)
    best = os.path.realpath(run / "checkpoints" / "best.ckpt")
    assert line == (
        f"error: fit: {run / 'model'}, {best} already exist (an earlier run's output); add "
        "`--overwrite true` to replace them, or write elsewhere with "
        "`--trainer.default_root_dir`, or resume the run with `--ckpt_path last`"
    )
    assert snapshot(run) == before


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
@pytest.mark.filterwarnings(EVALUATING_A_COPY)
def test_fit_with_overwrite_replaces_the_run(tiny_fit, tiny_run, tmp_path):
    run = copy_run(tiny_fit, tmp_path / "run")
    (run / "model" / "tweetcls.json").write_text("{}")  # a marker the new fit must replace
    main(tiny_run("fit", "--config", str(SHORT_FIT), "--overwrite", "true"))
    assert json.loads((run / "model" / "tweetcls.json").read_text())["threshold"] == 0.5


@pytest.mark.filterwarnings(EVALUATING_A_COPY)
def test_test_and_predict_refuse_then_overwrite(tiny_fit, tiny_run, tmp_path, capsys):
    run = copy_run(tiny_fit, tmp_path / "run")
    ckpt = str(run / "checkpoints" / "best.ckpt")
    metrics = tmp_path / "reports" / "metrics.json"
    submission = tmp_path / "predictions" / "submission.csv"
    metrics.parent.mkdir()
    metrics.write_text("{}\n")
    submission.parent.mkdir()
    submission.write_text("id,target\n")
    assert refused(tiny_run("test", "--ckpt_path", ckpt), capsys) == (
        f"error: test: {metrics} already exists (an earlier run's output); add `--overwrite "
        "true` to replace it, or write elsewhere with `--report.dirpath`"
    )
    assert refused(tiny_run("predict", "--ckpt_path", ckpt), capsys) == (
        f"error: predict: {submission} already exists (an earlier run's output); add "
        "`--overwrite true` to replace it, or write elsewhere with `--submission.path`"
    )
    assert metrics.read_text() == "{}\n" and submission.read_text() == "id,target\n"
    assert not (tmp_path / "reports" / "pr_curve.csv").exists()

    main(tiny_run("test", "--ckpt_path", ckpt, "--overwrite", "true"))
    assert json.loads(metrics.read_text())["samples"] == 691
    main(tiny_run("predict", "--ckpt_path", ckpt, "--overwrite", "true"))
    assert len(pd.read_csv(submission)) == 3263


@pytest.mark.filterwarnings(EVALUATING_A_COPY)
def test_outputs_default_to_the_run_directory(tiny_fit, tiny_run, tmp_path, monkeypatch):
    """A forgotten --report.dirpath or --submission.path writes inside the run, not into the
    pipeline's reports/ and predictions/ of the working directory."""
    run = copy_run(tiny_fit, tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    ckpt = str(run / "checkpoints" / "best.ckpt")
    main(without(tiny_run("test", "--ckpt_path", ckpt), "--report.dirpath"))
    assert (run / "reports" / "metrics.json").is_file()
    main(without(tiny_run("predict", "--ckpt_path", ckpt), "--submission.path"))
    assert len(pd.read_csv(run / "predictions" / "submission.csv")) == 3263
    assert not (tmp_path / "reports").exists() and not (tmp_path / "predictions").exists()


def test_export_refuses_to_replace_a_bundle(tmp_path, capsys):
    out = tmp_path / "run" / "serving"
    out.mkdir(parents=True)
    args = ["export", "--model", str(tmp_path / "no-model"), "--out", str(out)]
    report = tmp_path / "run" / "reports" / "export.json"  # the default: beside --out
    assert refused(args, capsys) == (
        f"error: export: {out} already exists (an earlier run's output); add `--overwrite "
        "true` to replace it, or write elsewhere with `--out` and `--report_path`"
    )
    out.rmdir()
    report.parent.mkdir()
    report.write_text("{}\n")
    assert f"error: export: {report} already exists" in refused(args, capsys)
    # --overwrite passes the rule (and then fails on the missing model, before writing)
    assert "no-model" in refused([*args, "--overwrite", "true"], capsys)
    assert report.read_text() == "{}\n"
