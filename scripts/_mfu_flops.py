"""MFU accounting for ``bench_train_mfu.py``, from Lightning's throughput utilities
(``lightning.fabric.utilities.throughput``): a training step's model FLOPs and the card's peaks.

FLOPs: :func:`measure_flops` (torch's ``FlopCounterMode``) of forward + cross-entropy + backward
of a copy of the model built on the ``meta`` device (shapes only: no memory, no arithmetic), once
per batch shape. It counts matrix products: every ``nn.Linear`` (2 FLOPs per weight and token
forward, 4 backward), attention's QK^T and AV products, the classifier head on each sequence's
first token. Not counted: embedding lookups (an index, no FLOPs), biases, LayerNorm, softmax,
GELU, dropout, the loss and the optimizer step. The meta copy runs without an attention mask
(transformers asks a padding mask ``.all()``, which a meta tensor cannot answer); a mask
changes no matmul's shape, so the count is the same.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import torch
from lightning.fabric.utilities.throughput import get_available_flops, measure_flops
from torch import nn
from transformers import AutoModelForSequenceClassification

if TYPE_CHECKING:
    from _mfu_batches import GpuBatch
    from transformers import PretrainedConfig

PRECISIONS = ("fp32", "tf32", "bf16")


class StepFlops:
    """Model FLOPs of a training step of ``config``'s model, measured once per (B, T)."""

    def __init__(self, config: PretrainedConfig) -> None:
        with torch.device("meta"):
            self.model = AutoModelForSequenceClassification.from_config(config).train()
        self.counts: dict[tuple[int, int], int] = {}

    def __call__(self, batch: int, length: int) -> int:
        """FLOPs of forward + backward over ``batch`` sequences of ``length`` tokens."""
        shape = (batch, length)
        if shape not in self.counts:
            ids = torch.zeros(shape, dtype=torch.long, device="meta")
            labels = torch.zeros(batch, dtype=torch.long, device="meta")
            self.counts[shape] = measure_flops(
                self.model,
                lambda: self.model(input_ids=ids).logits,
                lambda logits: nn.functional.cross_entropy(logits.float(), labels),
            )
            self.model.zero_grad(set_to_none=True)
        return self.counts[shape]

    def padded(self, batches: Iterable[GpuBatch]) -> int:
        """FLOPs of ``batches`` as run: B sequences padded to T tokens."""
        return sum(self(len(b.lengths), b.seq_len) for b in batches)

    def real(self, batches: Iterable[GpuBatch]) -> int:
        """FLOPs of ``batches`` without padding: each sequence alone at its own length."""
        return sum(self(1, n) for b in batches for n in b.lengths)


def lightning_peak(device: torch.device, precision: str) -> float | None:
    """Lightning's peak TFLOPS of ``device`` for ``precision``, None where it knows none.

    ``get_available_flops`` takes fp32 as TF32 when ``torch.get_float32_matmul_precision()``
    is not "highest" (on Ampere or later), so the matmul precision is set for the lookup.
    """
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        flops = get_available_flops(device, dtype)
    finally:
        torch.set_float32_matmul_precision(previous)
    return flops / 1e12 if flops else None


def peak_table(
    device: torch.device, precisions: Sequence[str], overrides: dict[str, float]
) -> tuple[dict[str, float], dict[str, str]]:
    """(precision -> peak TFLOPS, precision -> "--peak_tflops" or "lightning"): ``overrides``
    first, else Lightning's table; precisions neither knows are left out."""
    peaks, sources = {}, {}
    for precision in dict.fromkeys([*precisions, *overrides]):
        peak = overrides.get(precision)
        source = "--peak_tflops"
        if peak is None:
            peak, source = lightning_peak(device, precision), "lightning"
        if peak is not None:
            peaks[precision], sources[precision] = peak, source
    return peaks, sources


def peak_override(text: str) -> tuple[str, float]:
    """argparse type: ``PRECISION=TFLOPS`` (precision fp32, tf32 or bf16) or bare ``TFLOPS``
    (bf16)."""
    precision, _, value = text.rpartition("=")
    precision = precision or "bf16"
    if precision not in PRECISIONS:
        raise argparse.ArgumentTypeError(f"precision must be fp32, tf32 or bf16, got {precision}")
    try:
        tflops = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of TFLOPS: {value!r}") from None
    if tflops <= 0:
        raise argparse.ArgumentTypeError(f"TFLOPS must be > 0, got {tflops}")
    return precision, tflops
