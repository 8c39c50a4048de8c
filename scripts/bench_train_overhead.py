"""Training overhead on CPU: Lightning's ``Trainer.fit`` against a plain PyTorch loop.

Samples/s of ``TweetClassifier`` per ``--models`` model (configs/<model>.yaml), the same
length-grouped batches fed alternately, for ``--repeats`` rounds on fresh seeded weights, to
``lightning`` (``Trainer.fit``: ``training_step`` and its logging, no checkpoints or validation),
``plain`` (a loop with the optimizer and scheduler of ``configure_optimizers``) and ``plain,
max_length`` (on the batches padded to ``max_length``), timed by Lightning's ``Throughput``::

    python scripts/bench_train_overhead.py --models tiny minilm --threads 1
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.throughput import Throughput
from torch import nn
from torch.utils.data import DataLoader
from transformers.utils import logging as hf_logging

from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.models.classifier import TweetClassifier
from tweetcls.models.tiny import build_tiny_model

sys.path.insert(0, str(Path(__file__).resolve().parent))  # _bench_common, also when imported
from _bench_common import log, positive_int, print_table, read_config, run_meta, write_json

Batch = dict[str, torch.Tensor]
SEED = 42
MODELS = {"tiny": 100, "minilm": 30}  # model (configs/<model>.yaml) -> default timed steps
#: The printed table (``_bench_common.print_table``).
COLUMNS = (
    "model mode mean_seq_len:.1f samples_per_s_median:.1f ratio:.3f paired_ratio:.3f "
    "samples_per_s:.1f"
)


class StepClock(L.Callback):
    """Lightning's ``Throughput`` over the last ``steps`` steps, ticked by ``Trainer.fit``'s
    hooks or by hand."""

    def __init__(self, steps: int) -> None:
        self.throughput = Throughput(window_size=steps + 1)
        self.batches = self.samples = 0

    def tick(self, samples: int = 0) -> None:
        """Record the end of a step of ``samples`` samples (0: the start of training)."""
        self.batches, self.samples = self.batches + (samples > 0), self.samples + samples
        self.throughput.update(time=time.perf_counter(), batches=self.batches, samples=self.samples)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.tick()

    def on_train_batch_end(self, *args: Any) -> None:
        self.tick(len(args[3]["labels"]))  # (trainer, module, outputs, batch, batch_idx)


def run_lightning(module: TweetClassifier, batches: Sequence[Batch], clock: StepClock) -> None:
    """``Trainer.fit`` over ``batches``, timed by ``clock``."""
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
        callbacks=[clock],
    )
    trainer.fit(module, train_dataloaders=DataLoader(list(batches), batch_size=None))


def run_plain(module: TweetClassifier, batches: Sequence[Batch], clock: StepClock) -> None:
    """A plain PyTorch training loop over ``batches``, timed by ``clock``."""
    optimizer, scheduler = module.optimizer_and_scheduler(total_steps=len(batches))
    module.train()
    clock.tick()
    for batch in batches:
        nn.functional.cross_entropy(module(batch).float(), batch["labels"]).backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        clock.tick(len(batch["labels"]))


def take_batches(loader: Iterable[Any], count: int) -> list[Batch]:
    """``count`` batches evenly spaced over an epoch of ``loader`` (repeated if shorter): the
    length mix of the length-grouped sampler, whose longest batches come first."""
    epoch = [dict(batch) for batch in loader]
    if count >= len(epoch):
        return [epoch[i % len(epoch)] for i in range(count)]
    return [epoch[i * len(epoch) // count] for i in range(count)]


def bench_model(name: str, args: argparse.Namespace, work_dir: Path) -> list[dict[str, Any]]:
    """The JSON rows (one per mode) of all rounds for one model; progress goes to stderr."""
    config = read_config(name)
    pretrained = config["model"]["pretrained_model"]
    if name == "tiny":
        if args.tiny_dir is None:
            log(f"[tiny] building the tiny model from {args.raw_dir / 'train.csv'}")
        tiny = args.tiny_dir or build_tiny_model(work_dir / "tiny", args.raw_dir / "train.csv")
        pretrained = str(tiny)
    max_length = args.max_length or config["data"]["max_length"]
    steps = args.steps or MODELS[name]
    data = DisasterTweetsDataModule(
        pretrained,
        data_dir=str(args.data_dir),
        raw_dir=str(args.raw_dir),
        batch_size=args.batch_size,
        max_length=max_length,
        cache_dir=str(work_dir / f"cache-{name}"),
    )
    data.prepare_data()
    data.setup("fit")
    L.seed_everything(SEED, verbose=False)
    dynamic = take_batches(data.train_dataloader(), args.warmup_steps + steps)
    pad = data.tokenizer.pad
    fixed = [dict(pad(dict(b), "max_length", max_length, return_tensors="pt")) for b in dynamic]
    runs: dict[str, tuple[Callable[..., None], list[Batch]]] = {
        "lightning": (run_lightning, dynamic),
        "plain": (run_plain, dynamic),
        "plain, max_length": (run_plain, fixed),
    }
    rates: dict[str, list[float]] = {mode: [] for mode in runs}
    for round_ in range(1, args.repeats + 1):
        for mode, (runner, batches) in runs.items():
            L.seed_everything(SEED + round_, verbose=False)
            module = TweetClassifier(**{**config["model"], "pretrained_model": pretrained})
            clock = StepClock(steps)
            runner(module, batches, clock)
            rates[mode].append(clock.throughput.compute()["device/samples_per_sec"])
            log(f"[{name}] round {round_}/{args.repeats} {mode}: {rates[mode][-1]:.1f} samples/s")
            del module
            gc.collect()
    median = {mode: statistics.median(values) for mode, values in rates.items()}
    return [
        {
            "model": name,
            "mode": mode,
            "steps": steps,
            "mean_seq_len": statistics.fmean(b["input_ids"].shape[1] for b in batches),
            "samples_per_s": rates[mode],
            "samples_per_s_median": median[mode],
            "ratio": median[mode] / median["plain"],
            "paired_ratio": statistics.median(
                a / b for a, b in zip(rates[mode], rates["plain"], strict=True)
            ),
        }
        for mode, (_, batches) in runs.items()
    ]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--data_dir", type=Path, default=Path("data/processed"))
    parser.add_argument("--raw_dir", type=Path, default=Path("data/raw"), help="Raw CSVs.")
    parser.add_argument("--tiny_dir", type=Path, help="Tiny model directory (default: build).")
    parser.add_argument("--batch_size", type=positive_int, default=32)
    parser.add_argument("--max_length", type=positive_int, help="Default: the config's.")
    parser.add_argument("--steps", type=positive_int, help="Timed steps (tiny 100, minilm 30).")
    parser.add_argument("--warmup_steps", type=int, default=3, help="Untimed steps per round.")
    parser.add_argument("--repeats", type=positive_int, default=3, help="Rounds per mode.")
    parser.add_argument("--threads", type=positive_int, help="torch.set_num_threads.")
    parser.add_argument("--json", type=Path, help="Also write the rows and run details here.")
    args = parser.parse_args(argv)
    if args.warmup_steps < 0:
        parser.error("--warmup_steps must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Benchmark the chosen models and print the rows (``--json``: also save them)."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = {key: getattr(args, key) for key in ("batch_size", "warmup_steps", "repeats")}
    meta = run_meta(args, torch_threads=torch.get_num_threads(), **settings)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    for message in ("does not have many workers", "smaller than the logging", "no `val_data"):
        warnings.filterwarnings("ignore", message=f".*{message}.*")
    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="bench_train_overhead-") as tmp:
        rows = [
            row for name in dict.fromkeys(args.models) for row in bench_model(name, args, Path(tmp))
        ]
    if args.json:
        write_json(args.json, meta, rows)
    print_table(rows, COLUMNS)


if __name__ == "__main__":
    main()
