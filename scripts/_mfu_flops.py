"""MFU accounting for ``bench_train_mfu.py``: model FLOPs of a training step, cards' peaks.

No torch import: :class:`FlopModel` reads the parameter counts of a model it is given, and
the peak table is plain data (see the formula and its sources in ``bench_train_mfu.py --help``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class CardPeak:
    """Dense (no sparsity) peak TFLOPS of one card, from NVIDIA's datasheets."""

    card: str
    match: tuple[str, ...]  # all of these occur in the lower-cased device name
    exclude: tuple[str, ...]  # none of these does
    tflops: dict[str, float]  # precision ("fp32", "tf32", "bf16") -> peak TFLOPS


#: fp32: CUDA cores (no tensor cores); tf32 and bf16: dense tensor-core peaks (the datasheets'
#: "with sparsity" figures halved). H200 SXM has H100 SXM's compute. First match wins; other
#: cards (H100 NVL, H200 NVL, ...) give "n/a" unless --peak_tflops names a peak.
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
    """Model FLOPs of training steps (formula in ``bench_train_mfu.py``'s docstring)."""

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
