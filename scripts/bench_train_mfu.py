"""Training throughput and model FLOPs utilisation (MFU) of roberta-base, on one GPU.

Full training steps of a fresh model per ``--modes`` mode at tweet-length batches, timed after
a warm-up of every padded shape; FLOPs and dense peaks from Lightning (``measure_flops``,
``get_available_flops``) or ``--peak_tflops``. The method: docs/results.md, *GPU benchmark*.
Needs only torch, transformers, lightning and PyYAML (on a GPU machine: ``gpu_check.sh``)::

    python scripts/bench_train_mfu.py --device cpu --tiny --steps 2 --no_compile
"""

from __future__ import annotations

import argparse
import csv
import gc
import math
import re
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.fabric.utilities.throughput import get_available_flops, measure_flops
from torch import nn
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    RobertaConfig,
    RobertaForSequenceClassification,
)
from transformers.trainer_pt_utils import get_length_grouped_indices
from transformers.utils import logging as hf_logging

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _bench_common, also when imported
from _bench_common import log, positive_int, print_table, read_config, run_meta, write_json

SEED = 42
PAD_MULTIPLE = 8  # a batch is padded to its longest member rounded up to this
MEGA_BATCH_MULT = 50  # the training loader's LengthGroupedSampler: mega-batches of 50 batches
LENGTH_CSVS = (Path("data/processed/train.csv"), Path("data/raw/train.csv"))
#: (cumulative probability, tokens): token counts of the 6,216 tweets of data/processed/train.csv
#: as configs/minilm.yaml feeds them (normalised text, MiniLM tokenizer, max_length 128; mean 23.1).
BUILTIN_QUANTILES: tuple[tuple[float, int], ...] = (
    (0.0, 3), (0.05, 9), (0.1, 12), (0.15, 14), (0.2, 15), (0.25, 17), (0.3, 18),
    (0.35, 19), (0.4, 21), (0.45, 22), (0.5, 23), (0.55, 24), (0.6, 26), (0.65, 27),
    (0.7, 28), (0.75, 29), (0.8, 30), (0.85, 32), (0.9, 34), (0.95, 37), (0.975, 39),
    (0.99, 43), (1.0, 82),
)  # fmt: skip
PRECISION = {"fp32": "fp32", "tf32": "tf32", "bf16-mixed": "bf16", "bf16-mixed+compile": "bf16"}
#: The printed table (``_bench_common.print_table``).
COLUMNS = (
    "mode batch_size:d mean_real_len:.1f mean_padded_len:.1f samples_per_s:,.0f "
    "tokens_per_s:,.0f step_ms:.2f tflops:.4g mfu_pct:.3g skipped"
)


def tweet_lengths(source: str, max_length: int, data: dict[str, Any]) -> tuple[list[int], str]:
    """(token lengths, their source): a tweets CSV's, counted as the data module feeds them
    (``data``: a config's data settings), "builtin" (``BUILTIN_QUANTILES``) or "auto" (the first
    of ``LENGTH_CSVS``, else built-in, also when counting fails, e.g. without tweetcls)."""
    paths = [p for p in LENGTH_CSVS if p.is_file()][:1] if source == "auto" else [Path(source)]
    if source != "builtin" and paths:
        try:
            from tweetcls.core.inputs import clean_keyword, clean_text, encode
            from tweetcls.core.pretrained import resolve_pretrained

            name = resolve_pretrained("sentence-transformers/all-MiniLM-L6-v2")
            with paths[0].open(newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
            keyword, location = data.get("use_keyword", True), data.get("use_location", False)
            ids = encode(
                AutoTokenizer.from_pretrained(name),
                [clean_text(r["text"]) for r in rows],
                [clean_keyword(r.get("keyword") or "") for r in rows],
                [clean_text(r.get("location") or "") for r in rows],
                use_keyword=keyword,
                use_location=location,
                max_length=max_length,
            )["input_ids"]
            return [len(x) for x in ids], f"{paths[0]} ({len(ids)} tweets, MiniLM tokenizer)"
        except Exception as error:
            if source != "auto":
                raise
            log(f"[gpu] tweet lengths from {paths[0]} unavailable ({error!r}); using built-in")
    probabilities, values = zip(*BUILTIN_QUANTILES, strict=True)
    spread = np.interp((np.arange(1000) + 0.5) / 1000, probabilities, values)
    description = "built-in quantiles of data/processed/train.csv (6,216 tweets, text, MiniLM)"
    return [round(float(n)) for n in spread], description


@dataclass
class Batch:
    """One batch padded to ``seq_len``, with the real (unpadded) length of each sequence."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    lengths: list[int]
    seq_len: int


def make_batch(
    lengths: Sequence[int],
    config: PretrainedConfig,
    generator: torch.Generator,
    max_length: int,
    device: torch.device | str = "cpu",
) -> Batch:
    """Random token ids and labels, ``lengths`` real tokens per sequence, padded to the longest
    rounded up to ``PAD_MULTIPLE`` (at most ``max_length``), on ``device``."""
    seq_len = min(max_length, math.ceil(max(lengths) / PAD_MULTIPLE) * PAD_MULTIPLE)
    ids = torch.randint(3, config.vocab_size, (len(lengths), seq_len), generator=generator)
    mask = (torch.arange(seq_len) < torch.tensor(lengths).unsqueeze(1)).long()
    labels = torch.randint(0, 2, (len(lengths),), generator=generator)
    ids = ids.masked_fill(mask == 0, config.pad_token_id)
    return Batch(ids.to(device), mask.to(device), labels.to(device), list(lengths), seq_len)


def group_lengths(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """``lengths`` cut into batches as the training loader cuts them: transformers'
    ``get_length_grouped_indices`` (shuffled, sorted within mega-batches of 50 batches)."""
    generator = torch.Generator().manual_seed(seed)
    order = get_length_grouped_indices(list(lengths), batch_size, MEGA_BATCH_MULT, generator)
    starts = range(0, len(order), batch_size)
    return [[lengths[i] for i in order[start : start + batch_size]] for start in starts]


def make_batches(
    lengths: Sequence[int],
    args: argparse.Namespace,
    batch_size: int,
    config: PretrainedConfig,
    device: torch.device,
) -> tuple[list[Batch], list[Batch]]:
    """(warm-up, timed) batches on ``device``: ``args.steps`` timed ones of lengths drawn from
    ``lengths``; warm-up: the first timed batch of each padded length, ``args.warmup_steps``
    more."""
    generator = torch.Generator().manual_seed(SEED * 1000 + batch_size)
    picks = torch.randint(len(lengths), (args.steps * batch_size,), generator=generator)
    drawn = [min(lengths[i], args.max_length) for i in picks.tolist()]
    groups = group_lengths(drawn, batch_size, SEED + batch_size)
    timed = [make_batch(g, config, generator, args.max_length, device) for g in groups]
    first_of_shape = {b.seq_len: b for b in reversed(timed)}
    extra = [timed[i % len(timed)] for i in range(args.warmup_steps)]
    return [*first_of_shape.values(), *extra], timed


class StepFlops:
    """Model FLOPs of a training step of ``config``'s model (Lightning's ``measure_flops`` of
    forward, cross-entropy and backward on a meta-device copy), measured once per (B, T)."""

    def __init__(self, config: PretrainedConfig) -> None:
        with torch.device("meta"):
            self.model = AutoModelForSequenceClassification.from_config(config).train()
        self.counts: dict[tuple[int, int], int] = {}

    def __call__(self, batch: int, length: int) -> int:
        """FLOPs of forward + backward over ``batch`` sequences of ``length`` tokens."""
        if (batch, length) not in self.counts:
            ids = torch.zeros((batch, length), dtype=torch.long, device="meta")
            labels = torch.zeros(batch, dtype=torch.long, device="meta")
            self.counts[batch, length] = measure_flops(
                self.model,
                lambda: self.model(input_ids=ids).logits,
                lambda logits: nn.functional.cross_entropy(logits.float(), labels),
            )
            self.model.zero_grad(set_to_none=True)
        return self.counts[batch, length]

    def padded(self, batches: Iterable[Batch]) -> int:
        """FLOPs of ``batches`` as run: B sequences padded to T tokens."""
        return sum(self(len(b.lengths), b.seq_len) for b in batches)

    def real(self, batches: Iterable[Batch]) -> int:
        """FLOPs of ``batches`` without padding: each sequence alone at its own length."""
        return sum(self(1, n) for b in batches for n in b.lengths)


def peak_table(
    device: torch.device, precisions: Sequence[str], overrides: dict[str, float]
) -> tuple[dict[str, float], dict[str, str]]:
    """(precision -> dense peak TFLOPS, precision -> "--peak_tflops" or "lightning"):
    ``overrides`` first, else Lightning's ``get_available_flops`` (which takes fp32 as TF32
    unless the matmul precision is "highest": set per lookup, then restored); precisions
    neither knows are left out."""
    peaks, sources = {}, {}
    previous = torch.get_float32_matmul_precision()
    for precision in dict.fromkeys([*precisions, *overrides]):
        peak, source = overrides.get(precision), "--peak_tflops"
        if peak is None:
            torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            flops = get_available_flops(device, dtype)
            peak, source = (flops / 1e12 if flops else None), "lightning"
        if peak is not None:
            peaks[precision], sources[precision] = peak, source
    torch.set_float32_matmul_precision(previous)
    return peaks, sources


def peak_override(text: str) -> tuple[str, float]:
    """argparse type: ``PRECISION=TFLOPS``, precision fp32, tf32 or bf16, TFLOPS > 0."""
    if not (match := re.fullmatch(r"(fp32|tf32|bf16)=(\d+\.?\d*)", text)) or not float(match[2]):
        raise argparse.ArgumentTypeError(f"expected fp32|tf32|bf16=TFLOPS (> 0), got {text!r}")
    return match[1], float(match[2])


def model_config(tiny: bool, max_length: int) -> RobertaConfig:
    """roberta-base's architecture, or with ``tiny`` a 2-layer 64-wide one."""
    if tiny:
        size = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
        shape = {**size, "intermediate_size": 256, "max_position_embeddings": max_length + 2}
        return RobertaConfig(vocab_size=1000, type_vocab_size=1, layer_norm_eps=1e-5, **shape)
    return RobertaConfig(max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)


def build_model(args: argparse.Namespace, device: torch.device) -> tuple[PreTrainedModel, str]:
    """(fp32 model in train mode on ``device``, where its weights came from): ``--pretrained``
    from the local Hugging Face cache, else random init (throughput does not depend on them)."""
    torch.manual_seed(SEED)
    if not args.tiny:
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                args.pretrained, num_labels=2, local_files_only=True
            )
            origin = f"{args.pretrained} weights from the local Hugging Face cache"
            return model.to(device=device, dtype=torch.float32).train(), origin
        except (OSError, ValueError) as error:
            log(f"[gpu] {args.pretrained}: {str(error).splitlines()[0][:200]}; random init")
    model = RobertaForSequenceClassification(model_config(args.tiny, args.max_length))
    origin = "random init" if args.tiny else f"random init ({args.pretrained} not in the cache)"
    return model.to(device=device, dtype=torch.float32).train(), origin


def measure(
    step: Callable[[Batch], torch.Tensor],
    batches: tuple[list[Batch], list[Batch]],
    device: torch.device,
    flops: StepFlops,
    peak: float | None,
) -> dict[str, Any]:
    """Run the warm-up batches, then time the others: the row's figures (tokens, TFLOPS and MFU
    over padded tokens; ``real_*``: without padding)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    (warmup, timed), start = batches, time.perf_counter()
    for batch in warmup:
        step(batch)
    sync()
    warmup_s, start = time.perf_counter() - start, time.perf_counter()
    losses = [step(batch) for batch in timed]
    sync()
    seconds = time.perf_counter() - start
    tflops, real_tflops = (count(timed) / seconds / 1e12 for count in (flops.padded, flops.real))
    return {
        "samples_per_s": sum(len(b.lengths) for b in timed) / seconds,
        "tokens_per_s": sum(len(b.lengths) * b.seq_len for b in timed) / seconds,
        "real_tokens_per_s": sum(sum(b.lengths) for b in timed) / seconds,
        "step_ms": 1e3 * seconds / len(timed),
        "gflops_per_step": flops.padded(timed) / len(timed) / 1e9,
        "tflops": tflops,
        "real_tflops": real_tflops,
        "mfu_pct": 100 * tflops / peak if peak else None,
        "real_mfu_pct": 100 * real_tflops / peak if peak else None,
        "warmup_s": warmup_s,
        "final_loss": float(losses[-1]),
        "max_memory_gib": (
            torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        ),
    }


def bench_mode(
    mode: str,
    args: argparse.Namespace,
    batch_sets: Sequence[tuple[list[Batch], list[Batch]]],
    device: torch.device,
    flops: StepFlops,
    peak: float | None,
) -> list[dict[str, Any]]:
    """Rows of ``mode`` for every batch size, on one fresh model and optimizer; ``skipped`` says
    why a row did not run (an error, e.g. out of memory, skips the mode's later rows too)."""
    compiled = mode.endswith("+compile")
    skipped = "skipped: --no_compile" if compiled and args.no_compile else None
    if not skipped:
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

    rows = []
    for warmup, timed in batch_sets:
        row = {"mode": mode, "batch_size": len(timed[0].lengths), "steps": len(timed)}
        row["mean_real_len"] = statistics.fmean(n for b in timed for n in b.lengths)
        row["mean_padded_len"] = statistics.fmean(b.seq_len for b in timed)
        row |= {"skipped": skipped, "peak_tflops": peak}
        rows.append(row)
        if skipped:
            continue
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            row |= measure(step, (warmup, timed), device, flops, peak)
            log(f"[gpu] {mode}, batch {row['batch_size']}: {row['samples_per_s']:,.0f} samples/s")
        except Exception as error:
            log(traceback.format_exc())
            reason = (str(error).strip().splitlines() or [""])[0][:160]
            skipped = row["skipped"] = f"skipped: {type(error).__name__}: {reason}"
    torch.set_float32_matmul_precision("highest")
    return rows


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
        type=peak_override,
        default=[],
        metavar="PRECISION=TFLOPS",
        help="Dense peaks Lightning lacks or gets wrong, e.g. bf16=989.4 fp32=66.9.",
    )
    parser.add_argument("--json", type=Path, help="Also write the rows and run details here.")
    args = parser.parse_args(argv)
    if args.warmup_steps < 0:
        parser.error("--warmup_steps must be >= 0")
    args.data = read_config("roberta").get("data", {})
    args.max_length = args.data.get("max_length", 128)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Benchmark every mode at every batch size and print the rows. ``--json`` is rewritten after
    each mode, so a run cut short keeps the finished modes."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible; on CPU pass --device cpu (with --tiny)")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    peaks, sources = peak_table(device, [PRECISION[m] for m in args.modes], dict(args.peak_tflops))
    lengths, lengths_source = tweet_lengths(args.lengths, args.max_length, args.data)
    model, weights = build_model(args, device)
    meta = run_meta(
        args,
        torch_threads=torch.get_num_threads(),
        peak_tflops=peaks,
        peak_source=sources,
        cuda=torch.version.cuda,
        model="tiny RoBERTa (2 layers, 64 wide)" if args.tiny else "roberta-base architecture",
        weights=weights,
        attention=getattr(model.config, "_attn_implementation", None),
        total_params=sum(p.numel() for p in model.parameters()),
        lengths=lengths_source,
        warmup=f"one per padded shape + {args.warmup_steps}",
        steps=args.steps,
    )
    cpu = f"CPU ({meta['cpu_model']}, {torch.get_num_threads()} threads)"
    meta["device_name"] = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu
    config = model.config  # the batches' token ids must fit its vocabulary
    del model
    sizes = dict.fromkeys(args.batch_size)
    batch_sets = [make_batches(lengths, args, size, config, device) for size in sizes]
    flops = StepFlops(config)
    rows: list[dict[str, Any]] = []
    for mode in args.modes:
        rows += bench_mode(mode, args, batch_sets, device, flops, peaks.get(PRECISION[mode]))
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        if args.json:
            write_json(args.json, meta, rows)
    print_table(rows, COLUMNS)


if __name__ == "__main__":
    main()
