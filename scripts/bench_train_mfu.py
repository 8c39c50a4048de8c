"""Training throughput and model FLOPs utilisation (MFU) of roberta-base, on one GPU.

Model: ``RobertaForSequenceClassification`` (2 labels) with roberta-base's architecture:
``RobertaConfig`` defaults (12 layers, 768 wide, 12 heads, FFN 3072, vocabulary 50265) plus
roberta-base's ``max_position_embeddings=514``, ``type_vocab_size=1``, ``layer_norm_eps=1e-5``;
124.6M parameters. The weights of ``--pretrained`` (default roberta-base) are used when the
local Hugging Face cache has them (``local_files_only``: the network is never asked), else
random init; throughput does not depend on the weights. ``--tiny``: 2 layers, 64 wide, for
tests on CPU.

Batches: token lengths of real tweets (``--lengths auto``: keyword + text of
data/processed/train.csv, else data/raw/train.csv, as configs/roberta.yaml feeds them,
truncated to its max_length, counted by ``tweetcls.core.inputs.encode`` as the data module
counts them, with the project's packaged all-MiniLM-L6-v2 WordPiece tokenizer); without the
project, the CSV or that tokenizer (a bare GPU machine), or with ``--lengths builtin``, a
built-in quantile table of that same distribution (mean 35.5, 99th percentile 63, max 86
tokens). Batches are length-grouped as the project's training loader groups them
(transformers' ``LengthGroupedSampler``: mega-batches of 50 batches sorted by length;
``--batching random`` for plain shuffling), padded to their longest member rounded up to
``--pad_multiple`` (8), with random token ids and labels. Every mode gets the same batches.

Modes (``--modes``), each timing full training steps: forward, cross-entropy, backward, AdamW
step (fused on CUDA), ``zero_grad``; train mode (dropout on):

* ``fp32``: fp32 weights and matmuls with TF32 off (``torch.set_float32_matmul_precision(
  "highest")``): MFU against the fp32 (CUDA-core, non-tensor) peak.
* ``tf32`` (not run by default): fp32 with TF32 matmuls allowed (precision ``"high"``): MFU
  against the dense TF32 tensor-core peak.
* ``bf16-mixed``: ``torch.autocast(device, dtype=torch.bfloat16)`` over fp32 weights and
  optimizer, as Lightning's ``bf16-mixed``: MFU against the dense bf16 peak.
* ``bf16-mixed+compile``: the same through ``torch.compile(model, dynamic=True)``: one graph
  for every batch shape, so lengths cause no recompiles. A failure to compile is reported as
  "skipped: <reason>"; ``--no_compile`` skips it.

Timing: for each mode and batch size, untimed warm-up steps (one batch of every padded shape
in the timed set, so compilation and kernel selection happen there, then ``--warmup_steps``
more), then ``--steps`` timed steps between two CUDA events (``time.perf_counter`` on CPU),
without host synchronisation in between.

Model FLOPs of a training step: Lightning's ``measure_flops`` of forward + cross-entropy +
backward on a copy of the model on the ``meta`` device, once per padded batch shape (B, T) of
the timed batches, and once per unpadded length (B = 1) for the "real" figures; counted before
the modes run (``_mfu_flops.py`` says what it counts: matmuls, attention's QK^T and AV products
included; embedding lookups are not FLOPs). For roberta-base the count is exactly::

    6 * W_layers * B*T  +  12 * n_layers * d_model * T * B*T  +  6 * W_head * B

W_layers: the matmul weights of the transformer layers (84.93M), W_head: the classifier head's
(0.59M), applied to one token per sequence; 6 = 2 FLOPs per weight and token forward, 4
backward; the second term is attention's QK^T and AV products (forward 4 * T * d_model per token
and layer, times 3 with backward). This is PaLM's MFU formula (Chowdhery et al. 2022, appendix
B) with matmul weights in place of parameters: with all 85.05M layer parameters (biases,
LayerNorm) and the head's 0.59M it is about 0.14% higher (checked in the tests). Tokens are
padded tokens, the work the GPU is given: tokens/s, TFLOPS and MFU in the table count padded
tokens; the JSON also has ``real_tokens_per_s``, ``real_tflops`` and ``real_mfu_pct`` from the
unpadded lengths. Rates: Lightning's ``Throughput`` over the timed window, updated at its start
and at its end (per-step updates, as ``ThroughputMonitor`` makes, need a host synchronisation
every step).

MFU = model FLOPs/s / the card's dense peak FLOPs/s for the mode's precision: Lightning's
``get_available_flops`` (its table keyed on ``torch.cuda.get_device_name()``), or
``--peak_tflops``, which wins; the JSON's ``peak_source`` says which, per precision; "n/a" where
neither has a peak (CPU). Lightning 2.6's table has no entry for the name "NVIDIA H200" (it
knows "h200 sxm1" and "h200 nvl1", and gives both the datasheet's with-sparsity tf32 and bf16
figures, twice the dense peaks), so ``gpu_check.sh`` passes the H200 SXM datasheet's dense
peaks: bf16 989.4, tf32 494.7, fp32 66.9. Its H100 SXM, H100 PCIe and A100 entries are dense.

On a GPU machine: ``bash scripts/gpu_check.sh`` (writes to ``$OUT``). On CPU, for tests::

    python scripts/bench_train_mfu.py --device cpu --tiny --steps 2 --no_compile
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning
import torch
import transformers
from lightning.fabric.utilities.throughput import Throughput
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    RobertaConfig,
    RobertaForSequenceClassification,
)
from transformers.utils import logging as hf_logging

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the _*.py helpers, also when imported
from _bench_common import log, positive_int, read_config, timestamp, write_json
from _mfu_batches import GpuBatch, LengthDistribution, load_lengths, make_batches
from _mfu_flops import StepFlops, peak_override, peak_table

MODES = ("fp32", "tf32", "bf16-mixed", "bf16-mixed+compile")
DEFAULT_MODES = ("fp32", "bf16-mixed", "bf16-mixed+compile")
PRECISION_OF_MODE = {
    "fp32": "fp32",
    "tf32": "tf32",
    "bf16-mixed": "bf16",
    "bf16-mixed+compile": "bf16",
}
ROBERTA_BASE = {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1}


def roberta_data_settings() -> dict[str, Any]:
    """``max_length``, ``use_keyword`` and ``use_location`` from configs/roberta.yaml (128, True
    and False without it)."""
    settings = {"max_length": 128, "use_keyword": True, "use_location": False}
    data = read_config("roberta", missing_ok=True).get("data", {})
    settings.update({k: data[k] for k in settings if k in data})
    return settings


def model_config(tiny: bool, max_length: int) -> RobertaConfig:
    """roberta-base's architecture, or with ``tiny`` a 2-layer 64-wide one."""
    if tiny:
        return RobertaConfig(
            vocab_size=1000,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=256,
            max_position_embeddings=max_length + 2,
            type_vocab_size=1,
            layer_norm_eps=1e-5,
        )
    return RobertaConfig(**ROBERTA_BASE, layer_norm_eps=1e-5)


def build_roberta(args: argparse.Namespace, device: torch.device) -> tuple[PreTrainedModel, str]:
    """(fp32 model in train mode on ``device``, where its weights came from)."""
    torch.manual_seed(args.seed)
    model: PreTrainedModel | None = None
    origin = "random init"
    if not args.tiny and not args.random_init:
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                args.pretrained, num_labels=2, local_files_only=True
            )
            origin = f"{args.pretrained} weights from the local Hugging Face cache"
        except (OSError, ValueError) as error:
            origin = f"random init ({args.pretrained} not in the local cache)"
            log(f"[gpu] {args.pretrained}: {str(error).splitlines()[0][:200]}; random init")
    if model is None:
        model = RobertaForSequenceClassification(model_config(args.tiny, args.max_length))
    return model.to(device=device, dtype=torch.float32).train(), origin


def autocast_for(mode: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast for the bf16 modes, else nothing."""
    if PRECISION_OF_MODE[mode] == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_train_step(
    forward: Callable[..., Any],
    optimizer: torch.optim.Optimizer,
    mode: str,
    device: torch.device,
) -> Callable[[GpuBatch], torch.Tensor]:
    """One training step: forward, cross-entropy, backward, optimizer step, zero_grad."""

    def step(batch: GpuBatch) -> torch.Tensor:
        with autocast_for(mode, device):
            logits = forward(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = nn.functional.cross_entropy(logits.float(), batch.labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    return step


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    step: Callable[[GpuBatch], torch.Tensor],
    warmup: Sequence[GpuBatch],
    timed: Sequence[GpuBatch],
    device: torch.device,
) -> tuple[float, float, float]:
    """(warm-up seconds, timed seconds, last loss) of running ``step`` over the batches."""
    start = time.perf_counter()
    for batch in warmup:
        step(batch)
    synchronize(device)
    warmup_s = time.perf_counter() - start
    loss = torch.zeros(())
    if device.type == "cuda":
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for batch in timed:
            loss = step(batch)
        end.record()
        end.synchronize()
        elapsed = begin.elapsed_time(end) / 1e3
    else:
        start = time.perf_counter()
        for batch in timed:
            loss = step(batch)
        elapsed = time.perf_counter() - start
    return warmup_s, elapsed, float(loss)


@dataclass
class GpuRow:
    """Result of one mode at one batch size; ``skipped`` says why it did not run."""

    mode: str
    batch_size: int
    steps: int
    mean_real_len: float
    mean_padded_len: float
    skipped: str | None = None
    samples_per_s: float | None = None
    tokens_per_s: float | None = None  # padded tokens
    real_tokens_per_s: float | None = None
    step_ms: float | None = None
    gflops_per_step: float | None = None  # model FLOPs on padded tokens, mean per step
    tflops: float | None = None  # model FLOPs/s on padded tokens
    real_tflops: float | None = None
    peak_tflops: float | None = None
    mfu_pct: float | None = None  # padded-token MFU
    real_mfu_pct: float | None = None
    warmup_s: float | None = None
    final_loss: float | None = None
    max_memory_gib: float | None = None


def empty_row(mode: str, timed: Sequence[GpuBatch], skipped: str | None = None) -> GpuRow:
    """A row with the batches' shape statistics filled in."""
    return GpuRow(
        mode=mode,
        batch_size=len(timed[0].lengths),
        steps=len(timed),
        mean_real_len=statistics.fmean(n for b in timed for n in b.lengths),
        mean_padded_len=statistics.fmean(b.seq_len for b in timed),
        skipped=skipped,
    )


def window_rates(
    seconds: float, steps: int, samples: int, tokens: int, flops: int, peak: float | None
) -> dict[str, float]:
    """Lightning's ``Throughput`` metrics of one timed window of ``steps`` steps: an update at
    its start and one at its end (``peak`` in TFLOPS)."""
    throughput = Throughput(available_flops=peak * 1e12 if peak else None, window_size=2)
    throughput.update(time=0.0, batches=0, samples=0, lengths=0, flops=0)
    throughput.update(time=seconds, batches=steps, samples=samples, lengths=tokens, flops=flops)
    return throughput.compute()


def fill_rates(
    row: GpuRow,
    timed: Sequence[GpuBatch],
    seconds: float,
    flops: StepFlops,
    peak: float | None,
) -> None:
    """Throughput, achieved TFLOPS and MFU of ``timed`` batches run in ``seconds``."""
    samples = sum(len(b.lengths) for b in timed)
    padded_tokens = sum(len(b.lengths) * b.seq_len for b in timed)
    real_tokens = sum(sum(b.lengths) for b in timed)
    padded_flops = flops.padded(timed)
    padded = window_rates(seconds, len(timed), samples, padded_tokens, padded_flops, peak)
    real = window_rates(seconds, len(timed), samples, real_tokens, flops.real(timed), peak)
    row.samples_per_s = padded["device/samples_per_sec"]
    row.tokens_per_s = padded["device/items_per_sec"]
    row.real_tokens_per_s = real["device/items_per_sec"]
    row.step_ms = 1e3 * seconds / len(timed)
    row.gflops_per_step = padded_flops / len(timed) / 1e9
    row.tflops = padded["device/flops_per_sec"] / 1e12
    row.real_tflops = real["device/flops_per_sec"] / 1e12
    row.peak_tflops = peak
    if "device/mfu" in padded:
        row.mfu_pct = 100 * padded["device/mfu"]
        row.real_mfu_pct = 100 * real["device/mfu"]


def bench_mode(
    mode: str,
    args: argparse.Namespace,
    batch_sets: dict[int, tuple[list[GpuBatch], list[GpuBatch]]],
    device: torch.device,
    flops: StepFlops,
    peak: float | None,
) -> list[GpuRow]:
    """Rows of ``mode`` for every batch size, on one fresh model and optimizer.

    An error (a failure to compile, running out of memory) turns this and the mode's later
    rows into "skipped: <reason>" rows, so that one run still reports the other modes.
    """
    compiled = mode.endswith("+compile")
    if compiled and args.no_compile:
        return [empty_row(mode, timed, "skipped: --no_compile") for _, timed in batch_sets.values()]
    model, _ = build_roberta(args, device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=2e-5, weight_decay=0.01, fused=device.type == "cuda"
    )
    forward: Callable[..., Any] = model
    if compiled:
        forward = torch.compile(model, dynamic=True, mode=args.compile_mode)
    torch.set_float32_matmul_precision("high" if mode == "tf32" else "highest")
    step = make_train_step(forward, optimizer, mode, device)
    rows: list[GpuRow] = []
    failure: str | None = None
    for warmup, timed in batch_sets.values():
        row = empty_row(mode, timed, failure)
        rows.append(row)
        if failure:
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            row.warmup_s, seconds, row.final_loss = time_steps(step, warmup, timed, device)
        except Exception as error:
            log(traceback.format_exc())
            failure = row.skipped = f"skipped: {type(error).__name__}: {first_line(error)}"
            continue
        fill_rates(row, timed, seconds, flops, peak)
        if device.type == "cuda":
            row.max_memory_gib = torch.cuda.max_memory_allocated(device) / 2**30
        log(f"[gpu] {format_row(row)}")
    torch.set_float32_matmul_precision("highest")
    del model, optimizer, forward, step
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def first_line(error: BaseException) -> str:
    """The first line of ``error``'s message, at most 160 characters."""
    text = str(error).strip().splitlines()
    return text[0][:160] if text else ""


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted, or "n/a"."""
    return "n/a" if value is None else format(value, spec)


def format_row(row: GpuRow) -> str:
    """One markdown table row."""
    lens = f"{row.mean_real_len:.1f} / {row.mean_padded_len:.1f}"
    head = f"| {row.mode} | {row.batch_size} | {lens} |"
    if row.skipped:
        return f"{head} {row.skipped} | | | | |"
    return (
        f"{head} {fmt(row.samples_per_s, ',.0f')} | {fmt(row.tokens_per_s, ',.0f')} "
        f"| {fmt(row.step_ms, '.2f')} | {fmt(row.tflops, '.4g')} | {fmt(row.mfu_pct, '.3g')} |"
    )


def format_report(rows: Sequence[GpuRow], meta: dict[str, Any]) -> str:
    """The markdown report: header lines and the results table."""
    sources = meta["peak_source"]
    peaks = [f"{k} {v:g} ({sources[k]})" for k, v in meta["peak_tflops"].items()]
    lines = [
        f"# Training throughput and MFU: {meta['model']} (`bench_train_mfu.py`)",
        "",
        f"- date: {meta['date']}",
        f"- device: {meta['device_name']}; peak TFLOPS (dense): {', '.join(peaks) or 'none'}",
        f"- torch {meta['torch']}, transformers {meta['transformers']}, lightning "
        f"{meta['lightning']}, python {meta['python']}, CUDA {meta['cuda']}",
        f"- model: {meta['model']}, {meta['weights']}; attention: {meta['attention']}; "
        f"{meta['flops']['total_params'] / 1e6:.1f}M parameters",
        f"- token lengths: {meta['lengths']}; {meta['batching']}",
        f"- steps per row: {meta['warmup']} untimed, then {meta['steps']} timed; each a full "
        "training step: forward, cross-entropy, backward, AdamW (fused on CUDA), zero_grad",
        "- fp32: TF32 off (matmul precision 'highest'); tf32: precision 'high'; "
        "bf16-mixed: torch.autocast bf16 over fp32 weights; "
        f"+compile: torch.compile(dynamic=True, mode={meta['compile_mode']!r})",
        f"- model FLOPs/step: {meta['flops']['counter']}, per padded shape (B sequences "
        "padded to T); MFU = model FLOPs/s (Lightning Throughput over the timed steps) / dense "
        "peak of the mode's precision (fp32: CUDA cores; tf32, bf16: tensor cores)",
        "",
        "| mode | batch | seq len (real / padded) | samples/s | tokens/s (padded) | step ms "
        "| TFLOPS (padded) | MFU % (padded) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [format_row(row) for row in rows]
    return "\n".join(lines)


def run_meta(
    args: argparse.Namespace,
    device: torch.device,
    peaks: dict[str, float],
    peak_sources: dict[str, str],
    distribution: LengthDistribution,
) -> dict[str, Any]:
    """Run description for the report header and the JSON file."""
    model, weights = build_roberta(args, device)
    grouping = "length-grouped (mega-batches of 50)" if args.batching == "grouped" else "random"
    return {
        "date": timestamp(),
        "device_name": device_name(device),
        "peak_tflops": peaks,
        "peak_source": peak_sources,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "model": "tiny RoBERTa (2 layers, 64 wide)" if args.tiny else "roberta-base architecture",
        "weights": weights,
        "attention": getattr(model.config, "_attn_implementation", None),
        "flops": {
            "counter": "Lightning measure_flops of forward + backward on a meta-device copy "
            "(matmuls, attention products included; embedding lookups, norms, the optimizer not)",
            "total_params": sum(p.numel() for p in model.parameters()),
        },
        "lengths": distribution.description,
        "batching": f"{grouping} batches padded to a multiple of {args.pad_multiple} "
        f"(max_length {args.max_length})",
        "warmup": f"one per padded shape + {args.warmup_steps}",
        "steps": args.steps,
        "compile_mode": args.compile_mode,
        "args": {k: str(v) for k, v in vars(args).items()},
    }


def device_name(device: torch.device) -> str:
    """The CUDA device name, or the CPU's description."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    data = roberta_data_settings()
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda).")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(DEFAULT_MODES))
    parser.add_argument(
        "--batch_size", nargs="+", type=positive_int, default=[32], help="One or more (sweep)."
    )
    parser.add_argument("--steps", type=positive_int, default=50, help="Timed steps per row.")
    parser.add_argument(
        "--warmup_steps", type=int, default=5, help="Untimed steps after one per padded shape."
    )
    parser.add_argument(
        "--max_length", type=positive_int, default=data["max_length"], help="(configs/roberta)"
    )
    parser.add_argument(
        "--lengths", default="auto", help="auto (default), builtin, or a tweets CSV."
    )
    parser.add_argument("--batching", choices=("grouped", "random"), default="grouped")
    parser.add_argument("--pad_multiple", type=positive_int, default=8)
    parser.add_argument("--tiny", action="store_true", help="2-layer 64-wide model (tests).")
    parser.add_argument("--pretrained", default="roberta-base", help="Tried from the cache.")
    parser.add_argument("--random_init", action="store_true", help="Do not try --pretrained.")
    parser.add_argument("--no_compile", action="store_true", help="Skip bf16-mixed+compile.")
    parser.add_argument(
        "--compile_mode",
        default="default",
        choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    )
    parser.add_argument(
        "--peak_tflops",
        nargs="+",
        type=peak_override,
        default=[],
        metavar="[PRECISION=]TFLOPS",
        help="Peaks Lightning lacks or gets wrong, e.g. bf16=989.4 fp32=66.9 (bare: bf16).",
    )
    parser.add_argument("--json", type=Path, help="Also write the rows and run details here.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.warmup_steps < 0:
        parser.error("--warmup_steps must be >= 0")
    args.use_keyword = data["use_keyword"]
    args.use_location = data["use_location"]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Benchmark every mode at every batch size and print the report.

    ``--json`` is rewritten after each mode, so a run cut short keeps the finished modes.
    """
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible; on CPU pass --device cpu (with --tiny)")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    precisions = [PRECISION_OF_MODE[mode] for mode in args.modes]
    peaks, sources = peak_table(device, precisions, dict(args.peak_tflops))
    distribution = load_lengths(args.lengths, args.max_length, args.use_keyword, args.use_location)
    meta = run_meta(args, device, peaks, sources, distribution)
    config = model_config(args.tiny, args.max_length)
    if not args.tiny and not args.random_init:  # batches must fit the vocabulary of --pretrained
        with contextlib.suppress(OSError, ValueError):
            config = AutoConfig.from_pretrained(
                args.pretrained, num_labels=2, local_files_only=True
            )
    batch_sets = {
        size: make_batches(args, size, distribution, config, device)
        for size in dict.fromkeys(args.batch_size)
    }
    start = time.perf_counter()
    flops = StepFlops(config)
    for _, timed in batch_sets.values():  # measured here once, for every mode
        flops.padded(timed)
        flops.real(timed)
    log(f"[gpu] model FLOPs of {len(flops.counts)} shapes in {time.perf_counter() - start:.1f} s")
    rows: list[GpuRow] = []
    for mode in args.modes:
        peak = peaks.get(PRECISION_OF_MODE[mode])
        rows += bench_mode(mode, args, batch_sets, device, flops, peak)
        if args.json:
            write_json(args.json, meta, [asdict(row) for row in rows], format_report(rows, meta))
    print(format_report(rows, meta))


if __name__ == "__main__":
    main()
