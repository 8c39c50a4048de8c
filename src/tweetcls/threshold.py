"""Decision threshold that maximises F1 of the positive class."""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import binary_precision_recall_curve


def best_f1_threshold(probs: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Return ``(threshold, f1)`` where predicting positive above ``threshold`` gives the best F1.

    The threshold lies midway between two observed probabilities, so ``probs > threshold``
    (torchmetrics) and ``probs >= threshold`` predict the same. Ties between equally good cuts
    go to the one closest to 0.5, the least surprising choice.
    """
    precision, recall, thresholds = binary_precision_recall_curve(probs, labels.long())
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    f1 = torch.where(
        precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros(())
    )
    best = f1.max()
    candidates = torch.nonzero(f1 >= best - 1e-12).flatten()
    choice = candidates[torch.argmin((thresholds[candidates] - 0.5).abs())]
    below = thresholds[choice - 1] if choice > 0 else torch.zeros(())
    return float((thresholds[choice] + below) / 2), float(best)
