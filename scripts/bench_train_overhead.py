"""Training overhead on CPU: Lightning's ``Trainer.fit`` against a plain PyTorch loop.

Measures training throughput (samples/s) of ``TweetClassifier``. For each model (``tiny``: a
freshly built 2-layer RoBERTa; ``minilm``: ``sentence-transformers/all-MiniLM-L6-v2``) one
fixed list of pre-collated training batches is taken from
``DisasterTweetsDataModule.train_dataloader()`` (length-grouped, padded to each batch's longest
member, evenly spaced over one epoch). The same batches then feed, alternately for
``--repeats`` rounds:

* ``lightning``: ``lightning.Trainer.fit`` (CPU, 32-true, no logger, checkpointing, progress bar
  or model summary, no validation). A callback times from the start of the first timed batch to
  the end of the last, so trainer start-up is excluded; ``training_step`` (with its metric
  updates and logging) is part of what is timed.
* ``plain``: a plain PyTorch loop over the same model class: ``module(batch)``, cross-entropy,
  backward, AdamW step, linear warm-up/decay scheduler step, ``zero_grad``; the optimizer and
  scheduler are built exactly as ``TweetClassifier.configure_optimizers`` builds them.
* ``plain, max_length``: the plain loop on the same batches re-padded to ``max_length``,
  i.e. without dynamic padding.

Each round runs ``--warmup_steps`` untimed steps, then ``--steps`` timed optimizer steps, on
fresh, seeded weights. The table reports the median samples/s over the rounds and ratios
against the plain loop with dynamic padding; ``--json`` also saves every round's rate.

Run from the repository root (offline)::

    export HF_HUB_OFFLINE=1
    python scripts/bench_train_overhead.py --models tiny minilm

The machine should be otherwise idle: other CPU load distorts the numbers, and with
oversubscribed cores torch's thread pool slows down many-fold (``--threads 1`` limits that).
GPU throughput and MFU of roberta-base: ``scripts/bench_train_mfu.py``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase
from transformers.utils import logging as hf_logging

from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.models.classifier import TweetClassifier
from tweetcls.models.tiny import build_tiny_model

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _bench_common, also when imported
from _bench_common import log, positive_int, read_config, timestamp, write_json

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class ModelSpec:
    """What to benchmark for one model: model and data settings read from its config."""

    config: str  # configs/<config>.yaml supplies pretrained model, learning rate, max_length
    build_tiny: bool  # build the tiny model (or use ``--tiny_dir``) instead of loading one
    default_steps: int

    def settings(self) -> dict[str, Any]:
        """The ``model`` and ``data`` sections of the config."""
        return read_config(self.config)


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


class ThroughputTimer(L.Callback):
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


def run_meta(args: argparse.Namespace, load_average: str) -> dict[str, Any]:
    """Run description for the report header and the JSON file."""
    return {
        "date": timestamp(),
        "host": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": load_average,
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup_steps,
        "repeats": args.repeats,
        "args": {k: str(v) for k, v in vars(args).items()},
    }


def format_report(results: Sequence[Result], meta: dict[str, Any]) -> str:
    """The markdown report: header lines, the throughput table and a summary table."""
    lines = [
        "# Training throughput (CPU)",
        "",
        f"- date: {meta['date']}",
        f"- host: {meta['host']}, python {meta['python']}",
        f"- torch {meta['torch']}, lightning {meta['lightning']}; "
        f"torch threads: {meta['torch_threads']}",
        f"- load average at start (1/5/15 min): {meta['load_average']}; "
        "other CPU load distorts the numbers",
        f"- batch size: {meta['batch_size']}; warm-up steps (untimed): {meta['warmup_steps']}; "
        f"repeats: {meta['repeats']}",
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


def json_rows(results: Sequence[Result]) -> list[dict[str, Any]]:
    """One object per row of the throughput table, with every round's samples/s."""
    rows = []
    for r in results:
        for mode in MODES:
            rows.append(
                {
                    "model": r.model,
                    "mode": mode,
                    "steps": r.steps,
                    "mean_seq_len": r.mean_length[mode],
                    "samples_per_s": r.samples_per_s[mode],
                    "samples_per_s_median": r.median(mode),
                    "ratio": r.median(mode) / r.median("plain"),
                    "paired_ratio": r.paired_ratio(mode),
                }
            )
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--data_dir", type=Path, default=Path("data/processed"))
    parser.add_argument(
        "--raw_dir",
        type=Path,
        default=Path("data/raw"),
        help="Raw Kaggle CSVs: tiny tokenizer corpus, and input if --data_dir is missing.",
    )
    parser.add_argument(
        "--tiny_dir", type=Path, help="Existing tiny model directory (default: build one)."
    )
    parser.add_argument("--batch_size", type=positive_int, default=32)
    parser.add_argument(
        "--max_length",
        type=positive_int,
        help="Tokenizer max_length and fixed padding length (default: the config's max_length).",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        help="Timed optimizer steps per round (default: tiny 100, minilm 30).",
    )
    parser.add_argument("--warmup_steps", type=int, default=3, help="Untimed steps per round.")
    parser.add_argument("--repeats", type=positive_int, default=3, help="Rounds per mode.")
    parser.add_argument("--threads", type=positive_int, help="torch.set_num_threads.")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="Also write the rows and run details here.")
    args = parser.parse_args(argv)
    if args.warmup_steps < 0:
        parser.error("--warmup_steps must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Benchmark the chosen models and print the markdown report (``--json``: also save it)."""
    args = parse_args(argv)
    load_average = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=r".*but have no `val_dataloader`.*")
    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="bench_train_overhead-") as tmp:
        results = [bench_model(name, args, Path(tmp)) for name in dict.fromkeys(args.models)]
    meta = run_meta(args, load_average)
    report = format_report(results, meta)
    if args.json:
        write_json(args.json, meta, json_rows(results), report)
    print(report)


if __name__ == "__main__":
    main()
