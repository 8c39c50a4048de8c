"""``scripts/bench_train.py gpu``: the GPU benchmark mode, run on CPU with the tiny model."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from helpers.paths import ROOT
from helpers.scripts import import_script
from transformers import RobertaForSequenceClassification

SCRIPT = ROOT / "scripts" / "bench_train.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The script, imported as a module."""
    return import_script("bench_train")


def test_gpu_mode_runs_on_cpu(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    command = [
        sys.executable,
        str(SCRIPT),
        "gpu",
        "--device", "cpu",
        "--tiny",
        "--steps", "2",
        "--warmup-steps", "1",
        "--batch-size", "4", "8",
        "--lengths", "builtin",
        "--no-compile",
        "--peak-tflops", "bf16=1",
        "--json", str(out),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]

    rows = {(r["mode"], r["batch_size"]): r for r in json.loads(out.read_text())["rows"]}
    for mode in ("fp32", "bf16-mixed"):
        for size in (4, 8):
            row = rows[mode, size]
            assert row["skipped"] is None
            assert row["samples_per_s"] > 0
            assert row["tokens_per_s"] >= row["real_tokens_per_s"] > 0
            assert row["mean_padded_len"] >= row["mean_real_len"]
            assert row["tflops"] > 0
            assert (row["mfu_pct"] is None) == (mode == "fp32")  # only bf16 has a peak
    assert rows["bf16-mixed+compile", 4]["skipped"] == "skipped: --no-compile"

    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| mode | batch |")
    assert any(line.startswith("| fp32 | 4 |") and line.endswith("| n/a |") for line in table)
    assert any(line.startswith("| bf16-mixed | 8 |") for line in table)
    assert "- torch " in proc.stdout and "- date: " in proc.stdout


def test_flops_of_roberta_base(bench: ModuleType) -> None:
    with torch.device("meta"):
        model = RobertaForSequenceClassification(bench.model_config(tiny=False, max_length=128))
    flops = bench.FlopModel.of(model)
    assert (flops.layer_params, flops.head_params) == (85_054_464, 592_130)
    assert flops.total_params == 124_647_170
    batch, seq = 32, 40
    expected = 6 * 85_054_464 * batch * seq + 12 * 12 * 768 * seq * batch * seq + 6 * 592_130 * 32
    assert flops.sequences(batch, seq) == expected


@pytest.mark.parametrize(
    ("name", "bf16", "fp32"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4, 66.9),
        ("NVIDIA H100 PCIe", 756.0, 51.2),
        ("NVIDIA H200", 989.4, 66.9),
        ("NVIDIA A100-SXM4-80GB", 312.0, 19.5),
    ],
)
def test_card_peaks(bench: ModuleType, name: str, bf16: float, fp32: float) -> None:
    _, peaks = bench.card_peaks(name)
    assert (peaks["bf16"], peaks["fp32"]) == (bf16, fp32)


def test_unknown_card_has_no_peak(bench: ModuleType) -> None:
    assert bench.card_peaks("NVIDIA H100 NVL") == (None, {})
    assert bench.peak_override("123") == ("bf16", 123.0)
    assert bench.peak_override("fp32=66.9") == ("fp32", 66.9)


def test_builtin_lengths_and_grouping(bench: ModuleType) -> None:
    rng = random.Random(0)
    lengths = bench.load_lengths("builtin", 128, True).sample(20_000, rng)
    assert 34 < statistics.fmean(lengths) < 37
    assert min(lengths) >= 4 and max(lengths) <= 86

    def padding(grouped: bool) -> float:
        batches = bench.group_lengths(lengths[:3200], 32, grouped, random.Random(1))
        assert all(len(b) == 32 for b in batches)
        return statistics.fmean(bench.padded_length(b, 8, 128) for b in batches)

    assert padding(grouped=True) < padding(grouped=False)


def test_tweet_lengths_from_csv(bench: ModuleType, tmp_path: Path) -> None:
    csv_path = tmp_path / "train.csv"
    csv_path.write_text('id,keyword,text\n1,fire,"Forest fire near La Ronge"\n2,,"all good"\n')
    with_keyword = bench.tweet_token_lengths(csv_path, 128, use_keyword=True)
    text_only = bench.tweet_token_lengths(csv_path, 128, use_keyword=False)
    assert len(with_keyword) == 2
    assert sum(with_keyword) == sum(text_only) + 2  # "fire" and its [SEP]
