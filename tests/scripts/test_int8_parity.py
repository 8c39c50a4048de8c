"""``scripts/int8_parity.py`` on the tiny bundle: every variant scored against fp32, the shipped
one being the bundle's own int8 file, and the CPU features the process sees."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def test_int8_variants_are_scored_against_fp32(
    run_script: Callable[..., Any], tiny_bundle: Path, processed_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "parity.json"
    proc = run_script(
        "int8_parity",
        "--bundle", str(tiny_bundle), "--data", str(processed_dir / "val.csv"), "--limit", "24",
        "--reps", "2", "--variants", "shipped", "full_range", "exact", "--json", str(out),
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["tweets"] == 24
    assert list(report["variants"]) == ["fp32", "shipped", "full_range", "exact"]
    fp32 = report["variants"]["fp32"]
    assert fp32["agreement"] == 1.0 and fp32["max_abs_prob_diff"] == 0.0
    for row in report["variants"].values():
        assert 0 <= row["f1"] <= 1 and 0 <= row["agreement"] <= 1 and row["batch1_median_ms"] > 0
    # the shipped variant is the bundle's int8 file: it differs from fp32, as int8 does
    assert report["variants"]["shipped"]["max_abs_prob_diff"] > 0
    assert "AVX2" in report["simd_features"]  # every host this project supports has it
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("CPU features seen:")
    assert [line.split()[0] for line in lines[2:]] == ["fp32", "shipped", "full_range", "exact"]
