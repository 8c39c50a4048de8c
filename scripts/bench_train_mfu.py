"""Training throughput and model FLOPs utilisation (MFU) of roberta-base, on one GPU.

Model: ``RobertaForSequenceClassification`` (2 labels), roberta-base's architecture (124.6M
parameters), with ``--pretrained``'s weights when the local Hugging Face cache has them, else
random init (throughput does not depend on them); ``--tiny``: 2 layers, 64 wide (CPU tests).

Batches (the same for every mode): token lengths of real tweets (``--lengths``: a CSV counted
as configs/roberta.yaml feeds it; ``auto``: data/processed/train.csv or data/raw/train.csv,
else, as on a bare GPU machine, a built-in quantile table), length-grouped as the training
loader groups them (mega-batches of 50 batches), padded to the longest member rounded up to 8,
with random token ids and labels.

Modes (``--modes``), timing full training steps (forward, cross-entropy, backward, AdamW fused
on CUDA, ``zero_grad``; dropout on) of a fresh model: ``fp32`` (matmul precision "highest":
TF32 off; MFU against the fp32 CUDA-core peak), ``tf32`` (not by default: precision "high";
the dense TF32 peak), ``bf16-mixed`` (``torch.autocast`` bf16 over fp32 weights, as
Lightning's; the dense bf16 peak), ``bf16-mixed+compile`` (the same through
``torch.compile(model, dynamic=True)``; ``--no_compile`` skips it). A mode that fails gives
"skipped: <reason>" rows. Per mode and batch size: untimed warm-up (a batch of every padded
shape, so compilation and kernel selection happen there, then ``--warmup_steps`` more), then
``--steps`` steps timed between two device synchronisations (none in between).

Model FLOPs: Lightning's ``measure_flops`` per padded shape (B, T) (and per unpadded length,
for the JSON's ``real_*`` figures); for roberta-base exactly 6·W_layers·B·T +
12·n_layers·d_model·T·B·T + 6·W_head·B with W the matmul weights (layers 84.93M, head 0.59M):
PaLM's formula with matmul weights for parameters (0.14% below it; checked in the tests).
Rates: Lightning's ``Throughput`` over the timed steps, on padded tokens. MFU = model FLOPs/s /
the dense peak of the mode's precision: ``--peak_tflops``, else Lightning's
``get_available_flops`` (``peak_source`` in the JSON); "n/a" without one (CPU). Lightning 2.6
has no "NVIDIA H200" and gives its "h200 sxm1"/"h200 nvl1" with-sparsity tf32 and bf16 figures
(twice dense), so ``gpu_check.sh`` passes the H200 SXM's dense peaks.

On a GPU machine: ``bash scripts/gpu_check.sh``. On CPU, for tests::

    python scripts/bench_train_mfu.py --device cpu --tiny --steps 2 --no_compile
"""

from __future__ import annotations

import argparse
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

import torch
from lightning.fabric.utilities.throughput import Throughput
from torch import nn
from transformers import AutoModelForSequenceClassification, PreTrainedModel, RobertaConfig
from transformers import RobertaForSequenceClassification as Roberta
from transformers.utils import logging as hf_logging

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the _*.py helpers, also when imported
import _train_bench as shared
from _bench_common import log, positive_int, read_config, write_json
from _train_bench import Batch, StepFlops

PRECISION = {"fp32": "fp32", "tf32": "tf32", "bf16-mixed": "bf16", "bf16-mixed+compile": "bf16"}
HEADER = "mode|batch|seq len (real / padded)|samples/s|tokens/s (padded)|step ms|TFLOPS (padded)"
HEADER += "|MFU % (padded)"


def model_config(tiny: bool, max_length: int) -> RobertaConfig:
    """roberta-base's architecture, or with ``tiny`` a 2-layer 64-wide one."""
    if tiny:
        size = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
        shape = {**size, "intermediate_size": 256, "max_position_embeddings": max_length + 2}
        return RobertaConfig(vocab_size=1000, type_vocab_size=1, layer_norm_eps=1e-5, **shape)
    return RobertaConfig(max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)


def build_model(args: argparse.Namespace, device: torch.device) -> tuple[PreTrainedModel, str]:
    """(fp32 model in train mode on ``device``, where its weights came from)."""
    torch.manual_seed(shared.SEED)
    model: PreTrainedModel | None = None
    origin = "random init"
    if not args.tiny:
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                args.pretrained, num_labels=2, local_files_only=True
            )
            origin = f"{args.pretrained} weights from the local Hugging Face cache"
        except (OSError, ValueError) as error:
            origin = f"random init ({args.pretrained} not in the local cache)"
            log(f"[gpu] {args.pretrained}: {str(error).splitlines()[0][:200]}; random init")
    if model is None:
        model = Roberta(model_config(args.tiny, args.max_length))
    return model.to(device=device, dtype=torch.float32).train(), origin


@dataclass
class GpuRow:
    """Result of one mode at one batch size; ``skipped`` says why it did not run. Tokens,
    TFLOPS and MFU count padded tokens; ``real_*``: without padding."""

    mode: str
    batch_size: int
    steps: int
    mean_real_len: float
    mean_padded_len: float
    skipped: str | None = None
    samples_per_s: float | None = None
    tokens_per_s: float | None = None
    real_tokens_per_s: float | None = None
    step_ms: float | None = None
    gflops_per_step: float | None = None  # mean per step
    tflops: float | None = None
    real_tflops: float | None = None
    peak_tflops: float | None = None
    mfu_pct: float | None = None
    real_mfu_pct: float | None = None
    warmup_s: float | None = None
    final_loss: float | None = None
    max_memory_gib: float | None = None


def window_rates(
    seconds: float, steps: int, samples: int, tokens: int, flops: int, peak: float | None
) -> dict[str, float]:
    """Lightning's ``Throughput`` metrics of one timed window of ``steps`` steps: an update at
    its start and one at its end (``peak`` in TFLOPS)."""
    throughput = Throughput(available_flops=peak * 1e12 if peak else None, window_size=2)
    throughput.update(time=0.0, batches=0, samples=0, lengths=0, flops=0)
    throughput.update(time=seconds, batches=steps, samples=samples, lengths=tokens, flops=flops)
    return throughput.compute()


def measure(
    row: GpuRow,
    step: Callable[[Batch], torch.Tensor],
    batches: tuple[list[Batch], list[Batch]],
    device: torch.device,
    flops: StepFlops,
    peak: float | None,
) -> None:
    """Run the warm-up, then time the timed batches; fill ``row`` in."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    (warmup, timed), start, loss = batches, time.perf_counter(), torch.zeros(())
    for batch in warmup:
        step(batch)
    sync()
    row.warmup_s, start = time.perf_counter() - start, time.perf_counter()
    for batch in timed:
        loss = step(batch)
    sync()
    seconds, row.final_loss = time.perf_counter() - start, float(loss)
    steps, samples = len(timed), sum(len(b.lengths) for b in timed)
    tokens = sum(len(b.lengths) * b.seq_len for b in timed)
    padded = window_rates(seconds, steps, samples, tokens, flops.padded(timed), peak)
    real_tokens = sum(sum(b.lengths) for b in timed)
    real = window_rates(seconds, steps, samples, real_tokens, flops.real(timed), peak)
    row.samples_per_s, row.step_ms = padded["device/samples_per_sec"], 1e3 * seconds / steps
    row.tokens_per_s = padded["device/items_per_sec"]
    row.real_tokens_per_s = real["device/items_per_sec"]
    row.gflops_per_step = flops.padded(timed) / steps / 1e9
    row.tflops = padded["device/flops_per_sec"] / 1e12
    row.real_tflops = real["device/flops_per_sec"] / 1e12
    row.peak_tflops = peak
    if "device/mfu" in padded:
        row.mfu_pct, row.real_mfu_pct = 100 * padded["device/mfu"], 100 * real["device/mfu"]
    if device.type == "cuda":
        row.max_memory_gib = torch.cuda.max_memory_allocated(device) / 2**30


def bench_mode(
    mode: str,
    args: argparse.Namespace,
    batch_sets: Sequence[tuple[list[Batch], list[Batch]]],
    device: torch.device,
    flops: StepFlops,
    peak: float | None,
) -> list[GpuRow]:
    """Rows of ``mode`` for every batch size, on one fresh model and optimizer. An error (a
    failure to compile, running out of memory) skips this and the mode's later rows."""
    rows = [
        GpuRow(
            mode,
            len(timed[0].lengths),
            len(timed),
            statistics.fmean(n for b in timed for n in b.lengths),
            statistics.fmean(b.seq_len for b in timed),
        )
        for _, timed in batch_sets
    ]
    compiled = mode.endswith("+compile")
    if compiled and args.no_compile:
        for row in rows:
            row.skipped = "skipped: --no_compile"
        return rows
    model, _ = build_model(args, device)
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), 2e-5, weight_decay=0.01, fused=fused)
    forward = torch.compile(model, dynamic=True) if compiled else model
    torch.set_float32_matmul_precision("high" if mode == "tf32" else "highest")

    def step(batch: Batch) -> torch.Tensor:
        with torch.autocast(device.type, torch.bfloat16, enabled=PRECISION[mode] == "bf16"):
            logits = forward(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
        loss = nn.functional.cross_entropy(logits.float(), batch.labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    failure: str | None = None
    for row, batches in zip(rows, batch_sets, strict=True):
        if failure:
            row.skipped = failure
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            measure(row, step, batches, device, flops, peak)
            log(f"[gpu] {table_row(row)}")
        except Exception as error:
            log(traceback.format_exc())
            reason = (str(error).strip().splitlines() or [""])[0][:160]
            failure = row.skipped = f"skipped: {type(error).__name__}: {reason}"
    torch.set_float32_matmul_precision("highest")
    return rows


def table_row(row: GpuRow) -> str:
    """``row`` in the report's table ("n/a": no figure)."""
    cells = [row.mode, str(row.batch_size), f"{row.mean_real_len:.1f} / {row.mean_padded_len:.1f}"]
    if row.skipped:
        cells += [row.skipped, "", "", "", ""]
    else:
        figures = [row.samples_per_s, row.tokens_per_s, row.step_ms, row.tflops, row.mfu_pct]
        specs = [",.0f", ",.0f", ".2f", ".4g", ".3g"]
        cells += ["n/a" if x is None else format(x, f) for x, f in zip(figures, specs, strict=True)]
    return f"| {' | '.join(cells)} |"


def format_report(rows: Sequence[GpuRow], meta: dict[str, Any]) -> str:
    """The markdown report: header lines and the results table."""
    peaks = [f"{k} {v:g} ({meta['peak_source'][k]})" for k, v in meta["peak_tflops"].items()]
    notes = [
        f"date: {meta['date']}",
        f"device: {meta['device_name']}; peak TFLOPS (dense): {', '.join(peaks) or 'none'}",
        f"torch {meta['torch']}, transformers {meta['transformers']}, lightning "
        f"{meta['lightning']}, python {meta['python']}, CUDA {meta['cuda']}",
        f"model: {meta['model']}, {meta['weights']}; attention: {meta['attention']}; "
        f"{meta['total_params'] / 1e6:.1f}M parameters",
        f"token lengths: {meta['lengths']}; {meta['batching']}",
        f"steps per row: {meta['warmup']} untimed, then {meta['steps']} timed",
        "model FLOPs/step: Lightning's measure_flops (matmuls, attention products) per padded "
        "shape; MFU = model FLOPs/s / the dense peak of the mode's precision",
    ]
    title = f"# Training throughput and MFU: {meta['model']} (`bench_train_mfu.py`)"
    table = shared.markdown_table(HEADER, [], "lrrrrrrr") + [table_row(row) for row in rows]
    return "\n".join([title, "", *(f"- {note}" for note in notes), "", *table])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``max_length`` and the lengths' segments: configs/roberta.yaml."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda).")
    modes = ["fp32", "bf16-mixed", "bf16-mixed+compile"]
    parser.add_argument("--modes", nargs="+", choices=list(PRECISION), default=modes)
    parser.add_argument("--batch_size", nargs="+", type=positive_int, default=[32])
    parser.add_argument("--steps", type=positive_int, default=50, help="Timed steps per row.")
    parser.add_argument("--warmup_steps", type=int, default=5, help="After one per shape.")
    parser.add_argument("--lengths", default="auto", help="auto, builtin, or a tweets CSV.")
    parser.add_argument("--tiny", action="store_true", help="2-layer 64-wide model (tests).")
    parser.add_argument("--pretrained", default="roberta-base", help="Tried from the cache.")
    parser.add_argument("--no_compile", action="store_true", help="Skip bf16-mixed+compile.")
    parser.add_argument(
        "--peak_tflops",
        nargs="+",
        type=shared.peak_override,
        default=[],
        metavar="PRECISION=TFLOPS",
        help="Dense peaks Lightning lacks or gets wrong, e.g. bf16=989.4 fp32=66.9.",
    )
    parser.add_argument("--json", type=Path, help="Also write the rows and run details here.")
    args = parser.parse_args(argv)
    if args.warmup_steps < 0:
        parser.error("--warmup_steps must be >= 0")
    args.data = read_config("roberta", missing_ok=True).get("data", {})
    args.max_length = args.data.get("max_length", 128)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Benchmark every mode at every batch size and print the report. ``--json`` is rewritten
    after each mode, so a run cut short keeps the finished modes."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible; on CPU pass --device cpu (with --tiny)")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    precisions = [PRECISION[m] for m in args.modes]
    peaks, sources = shared.peak_table(device, precisions, dict(args.peak_tflops))
    lengths, lengths_source = shared.tweet_lengths(args.lengths, args.max_length, args.data)
    model, weights = build_model(args, device)
    cpu = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    meta = shared.run_meta(
        args,
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else cpu,
        peak_tflops=peaks,
        peak_source=sources,
        cuda=torch.version.cuda,
        model="tiny RoBERTa (2 layers, 64 wide)" if args.tiny else "roberta-base architecture",
        weights=weights,
        attention=getattr(model.config, "_attn_implementation", None),
        total_params=sum(p.numel() for p in model.parameters()),
        lengths=lengths_source,
        batching=f"length-grouped, padded to a multiple of 8 (max_length {args.max_length})",
        warmup=f"one per padded shape + {args.warmup_steps}",
        steps=args.steps,
    )
    config = model.config  # the batches' token ids must fit its vocabulary
    del model
    sizes = dict.fromkeys(args.batch_size)
    batch_sets = [shared.make_batches(lengths, args, size, config, device) for size in sizes]
    start, flops = time.perf_counter(), StepFlops(config)
    for _, timed in batch_sets:  # measured here once, for every mode
        flops.padded(timed)
        flops.real(timed)
    log(f"[gpu] model FLOPs of {len(flops.counts)} shapes in {time.perf_counter() - start:.1f} s")
    rows: list[GpuRow] = []
    for mode in args.modes:
        rows += bench_mode(mode, args, batch_sets, device, flops, peaks.get(PRECISION[mode]))
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if args.json:
            write_json(args.json, meta, [asdict(row) for row in rows], format_report(rows, meta))
    print(format_report(rows, meta))


if __name__ == "__main__":
    main()
