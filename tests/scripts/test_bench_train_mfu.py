"""``scripts/bench_train_mfu.py``: the GPU throughput and MFU benchmark, run on CPU (tiny model)."""

from __future__ import annotations

import json
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from helpers.scripts import import_script
from transformers import RobertaForSequenceClassification


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The script, imported as a module."""
    return import_script("bench_train_mfu")


@pytest.fixture(scope="module")
def batches(bench: ModuleType) -> ModuleType:
    """``scripts/_mfu_batches.py``, as the script imported it."""
    return sys.modules["_mfu_batches"]


@pytest.fixture(scope="module")
def flops(bench: ModuleType) -> ModuleType:
    """``scripts/_mfu_flops.py``, as the script imported it."""
    return sys.modules["_mfu_flops"]


def test_runs_on_cpu(tmp_path: Path, run_script: Callable[..., Any]) -> None:
    out = tmp_path / "bench.json"
    proc = run_script(
        "bench_train_mfu",
        "--device", "cpu",
        "--tiny",
        "--steps", "2",
        "--warmup_steps", "1",
        "--batch_size", "4", "8",
        "--lengths", "builtin",
        "--no_compile",
        "--peak_tflops", "bf16=1",
        "--json", str(out),
    )  # fmt: skip

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
    assert rows["bf16-mixed+compile", 4]["skipped"] == "skipped: --no_compile"

    table = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| mode | batch |")
    assert any(line.startswith("| fp32 | 4 |") and line.endswith("| n/a |") for line in table)
    assert any(line.startswith("| bf16-mixed | 8 |") for line in table)
    assert "- torch " in proc.stdout and "- date: " in proc.stdout


def test_flops_of_roberta_base(bench: ModuleType, flops: ModuleType) -> None:
    with torch.device("meta"):
        model = RobertaForSequenceClassification(bench.model_config(tiny=False, max_length=128))
    counts = flops.FlopModel.of(model)
    assert (counts.layer_params, counts.head_params) == (85_054_464, 592_130)
    assert counts.total_params == 124_647_170
    batch, seq = 32, 40
    expected = 6 * 85_054_464 * batch * seq + 12 * 12 * 768 * seq * batch * seq + 6 * 592_130 * 32
    assert counts.sequences(batch, seq) == expected


@pytest.mark.parametrize(
    ("name", "bf16", "fp32"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4, 66.9),
        ("NVIDIA H100 PCIe", 756.0, 51.2),
        ("NVIDIA H200", 989.4, 66.9),
        ("NVIDIA A100-SXM4-80GB", 312.0, 19.5),
    ],
)
def test_card_peaks(flops: ModuleType, name: str, bf16: float, fp32: float) -> None:
    _, peaks = flops.card_peaks(name)
    assert (peaks["bf16"], peaks["fp32"]) == (bf16, fp32)


def test_unknown_card_has_no_peak(flops: ModuleType) -> None:
    assert flops.card_peaks("NVIDIA H100 NVL") == (None, {})
    assert flops.peak_override("123") == ("bf16", 123.0)
    assert flops.peak_override("fp32=66.9") == ("fp32", 66.9)


def test_builtin_lengths_and_grouping(batches: ModuleType) -> None:
    rng = random.Random(0)
    lengths = batches.load_lengths("builtin", 128, True).sample(20_000, rng)
    assert 34 < statistics.fmean(lengths) < 37
    assert min(lengths) >= 4 and max(lengths) <= 86

    def padding(grouped: bool) -> float:
        grouped_lengths = batches.group_lengths(lengths[:3200], 32, grouped, random.Random(1))
        assert all(len(b) == 32 for b in grouped_lengths)
        return statistics.fmean(batches.padded_length(b, 8, 128) for b in grouped_lengths)

    assert padding(grouped=True) < padding(grouped=False)


def test_tweet_lengths_from_csv(batches: ModuleType, tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text(
        "id,keyword,location,text\n"
        '1,fire,,"Forest fire near La Ronge"\n'
        '2,,,"all good"\n'
        '3,forest%20fire,,"Smoke &amp;amp; ash   everywhere"\n'
    )
    with_keyword = batches.tweet_token_lengths(raw, 128, use_keyword=True)
    text_only = batches.tweet_token_lengths(raw, 128, use_keyword=False)
    assert len(with_keyword) == 3
    assert with_keyword[0] == text_only[0] + 2  # "fire" and its [SEP]
    assert with_keyword[1] == text_only[1] + 1  # empty first segment, as the data module has it

    clean = tmp_path / "clean.csv"  # what preprocessing makes of row 3
    clean.write_text('id,keyword,location,text\n3,forest fire,,"Smoke & ash everywhere"\n')
    assert with_keyword[2] == batches.tweet_token_lengths(clean, 128, use_keyword=True)[0]
    assert with_keyword[2] == text_only[2] + 3  # "forest", "fire", [SEP]
    assert batches.tweet_token_lengths(raw, 6, use_keyword=True) == [6, 5, 6]  # max_length
