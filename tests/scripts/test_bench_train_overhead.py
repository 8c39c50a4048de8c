"""``scripts/bench_train_overhead.py``: Lightning against a plain loop, on the tiny model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def test_runs_on_tiny_model(
    tmp_path: Path,
    raw_dir: Path,
    processed_dir: Path,
    tiny_model_dir: Path,
    run_script: Callable[..., Any],
) -> None:
    out = tmp_path / "overhead.json"
    proc = run_script(
        "bench_train_overhead",
        "--models", "tiny",
        "--tiny_dir", str(tiny_model_dir),
        "--data_dir", str(processed_dir),
        "--raw_dir", str(raw_dir),
        "--batch_size", "8",
        "--max_length", "64",
        "--steps", "2",
        "--warmup_steps", "1",
        "--repeats", "2",
        "--json", str(out),
    )  # fmt: skip

    payload = json.loads(out.read_text())
    rows = {r["mode"]: r for r in payload["rows"]}
    assert set(rows) == {"lightning", "plain", "plain, max_length"}
    for row in rows.values():
        assert row["model"] == "tiny" and row["steps"] == 2
        assert len(row["samples_per_s"]) == 2 and min(row["samples_per_s"]) > 0
    assert rows["plain"]["ratio"] == 1.0
    assert rows["plain, max_length"]["mean_seq_len"] == 64.0
    assert rows["plain"]["mean_seq_len"] <= 64.0
    assert set(payload) == {"meta", "rows"} and payload["meta"]["repeats"] == 2

    header, *lines = proc.stdout.splitlines()  # the plain table, nothing else
    assert header.split() == [
        "model",
        "mode",
        "mean_seq_len",
        "samples_per_s_median",
        "ratio",
        "paired_ratio",
        "samples_per_s",
    ]
    assert len(lines) == 3
    assert lines[1].split()[:2] == ["tiny", "plain"] and lines[1].split()[4] == "1.000"
    fixed = lines[2].split()  # "plain, max_length": every round's rate at the end
    assert fixed[:4] == ["tiny", "plain,", "max_length", "64.0"] and len(fixed) == 9
