"""Evaluation figures of a binary classifier, each written as one PNG.

Every function takes the positive-class probabilities, the 0/1 labels and the decision
threshold (the one tuned on validation; positive means ``probs > threshold``, as in
torchmetrics) and writes one figure. Figures are drawn on the Agg canvas without pyplot, so no
display is needed and no global figure state is kept, and they are saved without the
``Software`` metadata entry: the same inputs give the same bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    binary_calibration_error,
    binary_confusion_matrix,
    binary_f1_score,
    binary_precision,
    binary_precision_recall_curve,
    binary_recall,
    binary_roc,
    binary_specificity,
)

from tweetcls.core.labels import LABEL_NAMES

#: Class names on the axes of the confusion matrix (label 0, label 1): the model's labels,
#: spelled for reading ("not disaster").
CLASS_NAMES = tuple(name.replace("_", " ") for name in LABEL_NAMES)
#: Bins of the reliability diagram and of the expected calibration error.
CALIBRATION_BINS = 10
#: Resolution of saved figures.
DPI = 100
#: PNG metadata: matplotlib would otherwise record its version in every file.
_METADATA = {"Software": None}

#: ``(probs, labels, threshold, path) -> path`` of a figure function.
Plot = Callable[..., Path]


def _inputs(probs, labels) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.as_tensor(probs, dtype=torch.float32).flatten().cpu()
    labels = torch.as_tensor(labels).flatten().long().cpu()
    if probs.shape != labels.shape or probs.numel() == 0:
        raise ValueError(
            f"probs and labels must be non-empty and of one length, got {probs.numel()} "
            f"and {labels.numel()}"
        )
    return probs, labels


def _figure(width: float = 5.0, height: float = 4.5) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI, metadata=_METADATA)
    return path


def _save_unit_plot(
    figure: Figure, ax, path: str | os.PathLike, legend: str, **labels: str
) -> Path:
    """Finish a plot on [0, 1] x [0, 1] (axes labels, legend, grid) and save it."""
    ax.set(xlim=(0, 1), ylim=(0, 1.02), **labels)
    ax.legend(loc=legend)
    ax.grid(alpha=0.3)
    return _save(figure, path)


def confusion_matrix(
    probs: torch.Tensor, labels: torch.Tensor, threshold: float, path: str | os.PathLike
) -> Path:
    """Confusion matrices at ``threshold``: counts, and rows normalised to the true class."""
    probs, labels = _inputs(probs, labels)
    counts = binary_confusion_matrix(probs, labels, threshold=threshold).numpy()
    shares = binary_confusion_matrix(probs, labels, threshold=threshold, normalize="true").numpy()
    figure = _figure(9.0, 4.0)
    axes = figure.subplots(1, 2)
    for ax, matrix, title, fmt in (
        (axes[0], counts, "Counts", "{:d}"),
        (axes[1], shares, "Normalised by true class", "{:.1%}"),
    ):
        ax.imshow(matrix / max(matrix.max(), 1e-12), cmap="Blues", vmin=0, vmax=1)
        for (row, col), value in np.ndenumerate(matrix):
            dark = matrix[row, col] > 0.6 * matrix.max()
            ax.text(
                col,
                row,
                fmt.format(value.item()),
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=CLASS_NAMES,
            yticklabels=CLASS_NAMES,
            xlabel="Predicted",
            ylabel="True",
            title=title,
        )
    figure.suptitle(f"Confusion matrix at threshold {threshold:.3f} (n = {len(labels)})")
    return _save(figure, path)


def pr_curve(
    probs: torch.Tensor, labels: torch.Tensor, threshold: float, path: str | os.PathLike
) -> Path:
    """Precision against recall, with the operating point at ``threshold`` and the AP."""
    probs, labels = _inputs(probs, labels)
    precision, recall, _ = binary_precision_recall_curve(probs, labels)
    average_precision = float(binary_average_precision(probs, labels))
    point = (
        float(binary_recall(probs, labels, threshold=threshold)),
        float(binary_precision(probs, labels, threshold=threshold)),
    )
    prevalence = float(labels.float().mean())
    figure = _figure()
    ax = figure.subplots()
    ax.step(
        recall.numpy(),
        precision.numpy(),
        where="post",
        label=f"model (AP = {average_precision:.3f})",
    )
    ax.axhline(prevalence, color="grey", linestyle="--", label=f"chance ({prevalence:.3f})")
    ax.plot(*point, "o", color="C3", label=f"threshold {threshold:.3f}")
    return _save_unit_plot(
        figure,
        ax,
        path,
        "lower left",
        xlabel="Recall",
        ylabel="Precision",
        title="Precision-recall curve",
    )


def roc_curve(
    probs: torch.Tensor, labels: torch.Tensor, threshold: float, path: str | os.PathLike
) -> Path:
    """True against false positive rate, with the operating point at ``threshold``."""
    probs, labels = _inputs(probs, labels)
    fpr, tpr, _ = binary_roc(probs, labels)
    auroc = float(binary_auroc(probs, labels))
    point = (
        1 - float(binary_specificity(probs, labels, threshold=threshold)),
        float(binary_recall(probs, labels, threshold=threshold)),
    )
    figure = _figure()
    ax = figure.subplots()
    ax.plot(fpr.numpy(), tpr.numpy(), label=f"model (AUROC = {auroc:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance")
    ax.plot(*point, "o", color="C3", label=f"threshold {threshold:.3f}")
    return _save_unit_plot(
        figure,
        ax,
        path,
        "lower right",
        xlabel="False positive rate",
        ylabel="True positive rate",
        title="ROC curve",
    )


def f1_threshold(
    probs: torch.Tensor, labels: torch.Tensor, threshold: float, path: str | os.PathLike
) -> Path:
    """F1 of the positive class against the decision threshold (201 thresholds in [0, 1])."""
    probs, labels = _inputs(probs, labels)
    grid = torch.linspace(0, 1, 201)
    f1 = torch.stack([binary_f1_score(probs, labels, threshold=float(t)) for t in grid])
    chosen = float(binary_f1_score(probs, labels, threshold=threshold))
    at_half = float(binary_f1_score(probs, labels, threshold=0.5))
    figure = _figure()
    ax = figure.subplots()
    ax.plot(grid.numpy(), f1.numpy(), label="F1")
    ax.axvline(threshold, color="C3", linestyle="-", alpha=0.6)
    ax.plot(threshold, chosen, "o", color="C3", label=f"tuned {threshold:.3f}: F1 {chosen:.3f}")
    ax.axvline(0.5, color="grey", linestyle="--", alpha=0.6)
    ax.plot(0.5, at_half, "s", color="grey", label=f"0.5: F1 {at_half:.3f}")
    return _save_unit_plot(
        figure,
        ax,
        path,
        "lower center",
        xlabel="Decision threshold",
        ylabel="F1",
        title="F1 against threshold",
    )


def calibration(
    probs: torch.Tensor, labels: torch.Tensor, threshold: float, path: str | os.PathLike
) -> Path:
    """Reliability diagram (10 equal-width bins) over a histogram of the probabilities.

    The title gives the expected calibration error (ECE, L1, same bins). ``threshold`` is
    drawn as a vertical line on the histogram.
    """
    probs, labels = _inputs(probs, labels)
    ece = float(binary_calibration_error(probs, labels, n_bins=CALIBRATION_BINS, norm="l1"))
    fraction_positive, mean_predicted = calibration_curve(
        labels.numpy(), probs.numpy(), n_bins=CALIBRATION_BINS, strategy="uniform"
    )
    figure = _figure(5.0, 6.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    top.plot(mean_predicted, fraction_positive, "o-", label="model")
    top.set(
        xlim=(0, 1),
        ylim=(0, 1.02),
        ylabel="Fraction of disaster tweets",
        title=f"Calibration (ECE = {ece:.3f}, {CALIBRATION_BINS} bins)",
    )
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    for label, name in ((0, CLASS_NAMES[0]), (1, CLASS_NAMES[1])):
        bottom.hist(probs[labels == label].numpy(), bins=edges, alpha=0.6, label=name)
    bottom.axvline(threshold, color="C3", alpha=0.6)
    bottom.set(xlabel="Predicted probability of disaster", ylabel="Tweets")
    bottom.set_ylim(top=bottom.get_ylim()[1] * 1.5)  # room for the legend
    bottom.legend(loc="upper center", ncols=2, fontsize="small")
    return _save(figure, path)


#: File name -> figure function, in the order ``write_figures`` writes them.
FIGURES: dict[str, Plot] = {
    "confusion_matrix.png": confusion_matrix,
    "pr_curve.png": pr_curve,
    "roc_curve.png": roc_curve,
    "f1_threshold.png": f1_threshold,
    "calibration.png": calibration,
}


def write_figures(
    probs: torch.Tensor, labels: torch.Tensor, threshold: float, dirpath: str | os.PathLike
) -> list[Path]:
    """Write every figure of ``FIGURES`` into ``dirpath``; return their paths."""
    return [plot(probs, labels, threshold, Path(dirpath) / name) for name, plot in FIGURES.items()]
