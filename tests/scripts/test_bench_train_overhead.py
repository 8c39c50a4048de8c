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
    assert payload["meta"]["repeats"] == 2 and payload["report"] in proc.stdout

    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| model | mode | padding |")
    assert any(line.startswith("| tiny | lightning | dynamic |") for line in table)
    assert any(line.startswith("| tiny | plain | max_length | 64.0 |") for line in table)
    assert "- torch " in proc.stdout and "- date: " in proc.stdout
