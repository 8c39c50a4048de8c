"""``scripts/bench_train_mfu.py``: the GPU throughput and MFU benchmark, run on CPU (tiny model)."""

from __future__ import annotations

import argparse
import json
import statistics
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


def test_runs_on_cpu(bench: ModuleType, tmp_path: Path, run_script: Callable[..., Any]) -> None:
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

    result = json.loads(out.read_text())
    meta = result["meta"]
    assert meta["peak_tflops"] == {"bf16": 1.0}  # Lightning has no CPU peaks
    assert meta["peak_source"] == {"bf16": "--peak_tflops"}
    rows = {(r["mode"], r["batch_size"]): r for r in result["rows"]}
    for mode in ("fp32", "bf16-mixed"):
        for size in (4, 8):
            row = rows[mode, size]
            assert row["skipped"] is None
            assert row["samples_per_s"] > 0
            assert row["tokens_per_s"] >= row["real_tokens_per_s"] > 0
            assert row["mean_padded_len"] >= row["mean_real_len"]
            assert row["tflops"] >= row["real_tflops"] > 0
            # FLOPs/s * seconds per step = FLOPs per step, whatever the timing was
            step_flops = row["tflops"] * 1e12 * row["step_ms"] / 1e3
            assert step_flops == pytest.approx(row["gflops_per_step"] * 1e9, rel=1e-9)
            if mode == "fp32":  # only bf16 has a peak
                assert row["mfu_pct"] is row["real_mfu_pct"] is None
            else:
                assert row["mfu_pct"] == pytest.approx(100 * row["tflops"] / 1.0)
                assert row["real_mfu_pct"] == pytest.approx(100 * row["real_tflops"] / 1.0)
    assert rows["bf16-mixed+compile", 4]["skipped"] == "skipped: --no_compile"

    assert set(result) == {"meta", "rows"}
    assert meta["torch"] == torch.__version__ and meta["torch_threads"] >= 1

    header, *lines = proc.stdout.splitlines()  # the plain table, nothing else
    assert header.split() == [column.partition(":")[0] for column in bench.COLUMNS.split()]
    table = {tuple(line.split()[:2]): line.split() for line in lines}
    assert len(table) == len(rows) == 6
    assert table["fp32", "4"][-2:] == ["-", "-"]  # no MFU (no fp32 peak), not skipped
    assert table["bf16-mixed", "8"][-2] == f"{rows['bf16-mixed', 8]['mfu_pct']:.3g}"
    assert table["bf16-mixed+compile", "4"][-2:] == ["skipped:", "--no_compile"]


def matmul_weights(module: torch.nn.Module) -> int:
    """Weights of the ``nn.Linear`` layers of ``module`` (no biases)."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))


def test_flops_of_roberta_base(bench: ModuleType) -> None:
    """measure_flops on a meta-device roberta-base against the analytic formulas."""
    counter = bench.StepFlops(bench.model_config(tiny=False, max_length=128))
    model = counter.model
    assert next(model.parameters()).device.type == "meta"
    layers = model.roberta.encoder
    layer_params = sum(p.numel() for p in layers.parameters())
    head_params = sum(p.numel() for p in model.classifier.parameters())
    assert (layer_params, head_params) == (85_054_464, 592_130)
    layer_weights, head_weights = matmul_weights(layers), matmul_weights(model.classifier)
    assert (layer_weights, head_weights) == (84_934_656, 591_360)
    n_layers, d_model = 12, 768

    def formula(n_layer: int, n_head: int, batch: int, seq: int) -> int:
        attention = 12 * n_layers * d_model * seq * batch * seq
        return 6 * n_layer * batch * seq + attention + 6 * n_head * batch

    for batch, seq in ((32, 40), (1, 37), (512, 128)):
        measured = counter(batch, seq)
        # the parameter formula (PaLM's MFU) counts all 85.05M layer parameters at 6 FLOPs per
        # token; measure_flops counts matmuls, so biases and LayerNorm (119,808 parameters) and
        # the head's biases (770) are missing: 0.14% fewer FLOPs, within the stated 0.2%
        assert measured == pytest.approx(formula(layer_params, head_params, batch, seq), rel=2e-3)
        assert measured < formula(layer_params, head_params, batch, seq)
        # with matmul weights in place of parameters the formula is exact
        assert measured == formula(layer_weights, head_weights, batch, seq)
    assert counter(32, 40) == 32 * counter(1, 40)  # per-sequence work: linear in B
    assert len(counter.counts) == 4  # cached per shape


def test_meta_count_matches_real_tensors(bench: ModuleType) -> None:
    """The meta copy, run without a mask, counts what the real model does with padding."""
    from lightning.fabric.utilities.throughput import measure_flops

    config = bench.model_config(tiny=True, max_length=128)
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(config).train()
    batch = bench.make_batch([24, 9, 17], config, torch.Generator().manual_seed(0), 128)
    assert batch.seq_len == 24 and batch.attention_mask.sum() == 50  # padded
    real = measure_flops(
        model,
        lambda: model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits,
        lambda logits: torch.nn.functional.cross_entropy(logits, batch.labels),
    )
    counter = bench.StepFlops(config)
    assert counter(3, 24) == real > 0
    assert counter.padded([batch]) == real
    assert counter.real([batch]) == counter(1, 24) + counter(1, 9) + counter(1, 17) < real


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], torch.device]:
    """A CUDA device that ``get_available_flops`` sees under a given name (Hopper)."""

    def named(name: str) -> torch.device:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
        return torch.device("cuda")

    return named


@pytest.mark.parametrize(
    ("name", "bf16", "tf32", "fp32"),
    [
        ("NVIDIA H100 80GB HBM3", 989.4, 494.7, 66.9),
        ("NVIDIA H100 PCIe", 756.0, 378.0, 51.2),
        ("NVIDIA A100-SXM4-80GB", 312.0, 156.0, 19.5),
    ],
)
def test_peaks_from_lightning(
    bench: ModuleType,
    fake_gpu: Callable[[str], torch.device],
    name: str,
    bf16: float,
    tf32: float,
    fp32: float,
) -> None:
    peaks, sources = bench.peak_table(fake_gpu(name), ["fp32", "tf32", "bf16"], {})
    assert peaks == pytest.approx({"bf16": bf16, "tf32": tf32, "fp32": fp32})
    assert sources == dict.fromkeys(("fp32", "tf32", "bf16"), "lightning")
    assert torch.get_float32_matmul_precision() == "highest"  # restored after the tf32 lookup


def test_h200_peaks(bench: ModuleType, fake_gpu: Callable[[str], torch.device]) -> None:
    """What lightning 2.6 knows of the H200, and why gpu_check.sh passes --peak_tflops."""
    with pytest.warns(UserWarning, match="FLOPs not found for 'NVIDIA H200'"):
        assert bench.peak_table(fake_gpu("NVIDIA H200"), ["bf16"], {}) == ({}, {})
    # the table's "h200 sxm1" figures are the datasheet's with-sparsity ones: twice dense
    peaks, _ = bench.peak_table(fake_gpu("NVIDIA H200 SXM1"), ["bf16", "tf32", "fp32"], {})
    # dense: bf16 989.4, tf32 494.7; fp32 (CUDA cores) has no sparsity
    assert peaks == {"bf16": 2000.0, "tf32": 990.0, "fp32": 67.0}

    overrides = {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}  # gpu_check.sh's
    peaks, sources = bench.peak_table(fake_gpu("NVIDIA H200"), ["bf16", "fp32"], overrides)
    assert peaks == overrides
    assert sources == dict.fromkeys(overrides, "--peak_tflops")


def test_peaks_on_cpu_and_overrides(bench: ModuleType) -> None:
    cpu = torch.device("cpu")
    assert bench.peak_table(cpu, ["fp32", "bf16"], {}) == ({}, {})
    assert bench.peak_table(cpu, ["fp32"], {"bf16": 2.0}) == (
        {"bf16": 2.0},
        {"bf16": "--peak_tflops"},
    )
    assert bench.peak_override("fp32=66.9") == ("fp32", 66.9)
    for bad in ("fp16=1", "123", "bf16=0", "bf16=x", "bf16=nan"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.peak_override(bad)


def test_builtin_lengths_and_grouping(bench: ModuleType) -> None:
    lengths, description = bench.tweet_lengths("builtin", 128, {})
    assert "built-in" in description and len(lengths) == 1000
    assert 22 < statistics.fmean(lengths) < 24  # the table's mean: 23.1
    assert min(lengths) >= 3 and max(lengths) <= 82

    drawn = [lengths[(i * 7919) % 1000] for i in range(3200)]  # a shuffled sample
    grouped = bench.group_lengths(drawn, 32, seed=1)
    assert sorted(n for b in grouped for n in b) == sorted(drawn)
    assert all(len(b) == 32 for b in grouped)
    # mega-batches of 50 batches sorted by length: 2 here, each sorted longest first
    assert [max(b) for b in grouped[1:50]] == sorted((max(b) for b in grouped[1:50]), reverse=True)
    plain = [drawn[i : i + 32] for i in range(0, 3200, 32)]
    assert statistics.fmean(map(max, grouped)) < statistics.fmean(map(max, plain)) - 10


def test_tweet_lengths_from_csv(bench: ModuleType, tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    raw.write_text(
        "id,keyword,location,text\n"
        '1,fire,,"Forest fire near La Ronge"\n'
        '2,,,"all good"\n'
        '3,forest%20fire,,"Smoke &amp;amp; ash   everywhere"\n'
    )

    def counts(path: Path, max_length: int = 128, use_keyword: bool = True) -> list[int]:
        lengths, description = bench.tweet_lengths(
            str(path), max_length, {"use_keyword": use_keyword}
        )
        assert description.startswith(f"{path} ({len(lengths)} tweets,")
        return lengths

    with_keyword, text_only = counts(raw), counts(raw, use_keyword=False)
    assert len(with_keyword) == 3
    assert with_keyword[0] == text_only[0] + 2  # "fire" and its [SEP]
    assert with_keyword[1] == text_only[1] + 1  # empty first segment, as the data module has it

    clean = tmp_path / "clean.csv"  # what preprocessing makes of row 3
    clean.write_text('id,keyword,location,text\n3,forest fire,,"Smoke & ash everywhere"\n')
    assert with_keyword[2] == counts(clean)[0]
    assert with_keyword[2] == text_only[2] + 3  # "forest", "fire", [SEP]
    assert counts(raw, max_length=6) == [6, 5, 6]
    with pytest.raises(FileNotFoundError):  # a named CSV must be there; "auto" falls back
        bench.tweet_lengths(str(tmp_path / "missing.csv"), 128, {})
