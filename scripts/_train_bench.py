"""What the training benchmarks share beyond ``_bench_common.py``: run details and Markdown
tables (both); tweet-shaped batches, model FLOPs and peak FLOPs (``bench_train_mfu.py``).
Only torch, transformers and lightning at import time, for a bare GPU machine.

FLOPs: Lightning's ``measure_flops`` (torch's ``FlopCounterMode``) of forward + cross-entropy +
backward of a ``meta``-device copy of the model (shapes only), once per batch shape: matrix
products (every ``nn.Linear``: 2 FLOPs per weight and token forward, 4 backward; attention's
QK^T and AV; the head on each sequence's first token), not embedding lookups, biases, norms,
activations, the loss or the optimizer. The copy runs without an attention mask (a meta tensor
cannot answer transformers' ``mask.all()``); a mask changes no matmul's shape.
"""

from __future__ import annotations

import argparse
import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning
import numpy as np
import torch
import transformers
from _bench_common import host_info, log, timestamp
from lightning.fabric.utilities.throughput import get_available_flops, measure_flops
from torch import nn
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PretrainedConfig
from transformers.trainer_pt_utils import get_length_grouped_indices

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


def run_meta(args: argparse.Namespace, **details: Any) -> dict[str, Any]:
    """The JSON's ``meta``: date, ``host_info()`` (load average now), versions, torch threads,
    ``details`` and every argument."""
    versions = {"transformers": transformers.__version__, "lightning": lightning.__version__}
    return {
        "date": timestamp(),
        **host_info(),
        "torch": torch.__version__,
        **versions,
        "torch_threads": torch.get_num_threads(),
        **details,
        "args": {key: str(value) for key, value in vars(args).items()},
    }


def markdown_table(header: str, rows: Iterable[Sequence[Any]], align: str) -> list[str]:
    """The lines of a Markdown table; ``header``: "|"-separated; ``align``: "l" or "r" each."""
    rule = "|".join("---:" if a == "r" else "---" for a in align)
    body = [f"| {' | '.join(str(cell) for cell in row)} |" for row in rows]
    return [f"| {header.replace('|', ' | ')} |", f"|{rule}|", *body]


def tweet_lengths(source: str, max_length: int, data: dict[str, Any]) -> tuple[list[int], str]:
    """(token lengths to draw batches from, their description). ``source``: a tweets CSV,
    "builtin" (1000 lengths spread evenly over ``BUILTIN_QUANTILES``) or "auto" (the first of
    ``LENGTH_CSVS`` there is; built-in without one, or when counting fails). A CSV's tweets are
    counted as the data module feeds them (``data``: a config's data settings), by
    :mod:`tweetcls.core.inputs` with the packaged MiniLM tokenizer."""
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
            parts = [*(["keyword"] if keyword else []), *(["location"] if location else [])]
            what = f"{len(ids)} tweets, {' + '.join([*parts, 'text'])}, MiniLM tokenizer"
            return [len(x) for x in ids], f"{paths[0]} ({what})"
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
    """One padded batch, with the real (unpadded) length of each sequence."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    lengths: list[int]

    @property
    def seq_len(self) -> int:
        """Padded length."""
        return self.input_ids.shape[1]


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
    return Batch(ids.to(device), mask.to(device), labels.to(device), list(lengths))


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
    """Model FLOPs of a training step of ``config``'s model, measured once per (B, T)."""

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
    precision, _, value = text.partition("=")
    try:
        tflops = float(value)
    except ValueError:
        tflops = 0.0
    if precision not in ("fp32", "tf32", "bf16") or not tflops > 0:
        raise argparse.ArgumentTypeError(f"expected fp32|tf32|bf16=TFLOPS (> 0), got {text!r}")
    return precision, tflops
