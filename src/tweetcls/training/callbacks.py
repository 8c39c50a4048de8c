"""Callbacks that write a run's artifacts: the exported model, reports and the submission."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torchmetrics.functional.classification import (
    binary_average_precision,
    binary_calibration_error,
    binary_precision_recall_curve,
    binary_roc,
)

from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bootstrap import f1_interval
from tweetcls.core.bundle import META_FILE
from tweetcls.core.errors import ConfigError
from tweetcls.data.preprocess import read_processed


class RecoveryCheckpoint(L.Callback):
    """Saves ``last.ckpt`` every ``every_n_train_steps`` and when the run receives SIGTERM.

    The file goes next to the checkpoints of ``trainer.checkpoint_callback``, where
    ``fit --config <run config> --ckpt_path last`` looks for it. SIGKILL loses at most
    ``every_n_train_steps`` steps.

    Args:
        every_n_train_steps: Optimizer steps between two saves of ``last.ckpt``.
    """

    def __init__(self, every_n_train_steps: int = 100) -> None:
        if every_n_train_steps < 1:
            raise ConfigError(f"every_n_train_steps: must be >= 1, got {every_n_train_steps}")
        self.every_n_train_steps = every_n_train_steps

    def _save(self, trainer: L.Trainer) -> None:
        checkpoint = trainer.checkpoint_callback
        if not isinstance(checkpoint, ModelCheckpoint) or checkpoint.dirpath is None:
            return
        name = f"{ModelCheckpoint.CHECKPOINT_NAME_LAST}{ModelCheckpoint.FILE_EXTENSION}"
        trainer.save_checkpoint(str(Path(checkpoint.dirpath) / name), weights_only=False)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step % self.every_n_train_steps == 0 and not trainer.sanity_checking:
            self._save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception) -> None:
        if isinstance(exception, SIGTERMException):
            self._save(trainer)


class ExportBestModel(L.Callback):
    """After ``fit``, writes the best checkpoint as a Hugging Face model directory.

    The directory holds ``save_pretrained`` weights and config, the tokenizer, and
    ``tweetcls.json`` (threshold, input settings, validation metrics) for serving.

    Args:
        dirpath: Output directory; replaced atomically.
    """

    def __init__(self, dirpath: str = "model") -> None:
        self.dirpath = Path(dirpath)

    def outputs(self, root: str | Path | None) -> list[Path]:
        """What a fit of the run writes here: the model directory."""
        return [self.dirpath]

    @rank_zero_only
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "")
        network = copy.deepcopy(pl_module.model).cpu()
        threshold = float(pl_module.threshold)
        if best:
            state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
            network.load_state_dict(
                {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
            )
        else:
            rank_zero_warn("no best checkpoint was saved; exporting the final weights")
        data = trainer.datamodule
        meta = {
            "threshold": threshold,
            "pretrained_model": pl_module.hparams.pretrained_model,
            "max_length": data.max_length,
            "use_keyword": data.use_keyword,
            "use_location": data.use_location,
            "normaliser": data.normaliser,
            "checkpoint": os.path.relpath(best) if best else None,
            "best_val_f1": _as_float(
                getattr(trainer.checkpoint_callback, "best_model_score", None)
            ),
        }
        with atomic_path(self.dirpath) as tmp:
            network.save_pretrained(tmp)
            save_tokenizer(data.tokenizer, tmp)
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def save_tokenizer(tokenizer: Any, directory: Path) -> None:
    """Save ``tokenizer`` without the padding and truncation its last call left behind.

    A fast tokenizer keeps the padding and truncation of its last call in ``tokenizer.json``:
    a fit that tokenized its data saved none, one that read the tokenized data from the
    cache saved what the packaged file ships (MiniLM: padding to 128), so the same training
    gave two model directories. The model's inputs do not depend on it (every caller passes
    its padding and truncation; ``max_length`` is in ``tweetcls.json``).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        backend.no_padding()
        backend.no_truncation()
    tokenizer.save_pretrained(directory)


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)


class TestReport(L.Callback):
    """After ``test``, writes the evaluation reports into ``dirpath``.

    * ``metrics.json``: the ``test/`` metrics (``f1``, ``precision``, ``recall``, ``accuracy``
      at the model's ``threshold``, ``f1_at_0.5``, ``auroc``, ``loss``, and the in-sample
      ``f1_tuned``/``threshold_tuned`` diagnostic), plus ``f1_ci`` (95% percentile bootstrap
      interval of ``f1`` over tweets, see ``tweetcls.core.bootstrap``), ``average_precision``,
      ``calibration_error`` (ECE, 10 bins) and ``samples``;
    * ``pr_curve.csv`` (``threshold,precision,recall``, 101 thresholds) and ``roc_curve.csv``
      (``threshold,fpr,tpr``, 201 thresholds), the curves for ``dvc plots``;
    * ``figures/``: ``confusion_matrix.png``, ``pr_curve.png``, ``roc_curve.png``,
      ``f1_threshold.png`` and ``calibration.png`` (see ``tweetcls.training.figures``);
    * ``errors.csv``: the most confident false positives and false negatives at the
      threshold, ``kind,id,probability,target,keyword,text``, each kind sorted from the most
      confident mistake down. Texts come from ``<data_dir>/val.csv`` of the DataModule (the
      split ``test`` scores); without it the file is skipped with a warning.

    Each file (and the ``figures`` directory as a whole) is replaced atomically.

    Args:
        dirpath: Directory of the reports; ``None``: ``<trainer.default_root_dir>/reports``,
            inside the run (the DVC pipeline writes the project's ``reports/``).
        figures: Also draw the PNG figures into ``<dirpath>/figures``.
        num_errors: How many false positives, and as many false negatives, ``errors.csv``
            lists; 0 writes only its header.
    """

    __test__ = False  # not a pytest test class

    #: The first file a test writes into ``dirpath``: its presence marks an earlier test's.
    METRICS_FILE = "metrics.json"

    def __init__(
        self, dirpath: str | None = None, figures: bool = True, num_errors: int = 25
    ) -> None:
        if num_errors < 0:
            raise ConfigError(f"report.num_errors: must be >= 0, got {num_errors}")
        self.dirpath = Path(dirpath) if dirpath else None
        self.figures = figures
        self.num_errors = num_errors

    def resolve_dirpath(self, root: str | Path | None) -> Path:
        """``dirpath``, or the run's ``reports`` when it is ``None``."""
        return self.dirpath or Path(root or ".") / "reports"

    def outputs(self, root: str | Path | None) -> list[Path]:
        """What marks an earlier test of the run in ``root``: its ``metrics.json``."""
        return [self.resolve_dirpath(root) / self.METRICS_FILE]

    @rank_zero_only
    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from tweetcls.training import (
            figures as plots,  # matplotlib: imported only when a report is written
        )

        dirpath = self.resolve_dirpath(trainer.default_root_dir)
        results = pl_module.test_results
        probs, labels = results["probs"], results["labels"]
        threshold = float(pl_module.threshold)
        metrics = {
            key.removeprefix("test/"): round(float(value), 6)
            for key, value in trainer.callback_metrics.items()
            if key.startswith("test/")
        }
        interval = f1_interval(probs.numpy(), labels.numpy(), threshold)
        metrics["f1_ci"] = [round(interval.low, 6), round(interval.high, 6)]
        metrics["average_precision"] = round(float(binary_average_precision(probs, labels)), 6)
        metrics["calibration_error"] = round(
            float(binary_calibration_error(probs, labels, n_bins=plots.CALIBRATION_BINS)), 6
        )
        metrics["evaluated_on"] = "validation split (Kaggle's test set has no labels)"
        metrics["samples"] = len(labels)
        write_text(dirpath / self.METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
        self._write_curves(probs, labels, dirpath)
        if self.figures:
            with atomic_path(dirpath / "figures") as tmp:
                plots.write_figures(probs, labels, threshold, tmp)
        errors = self._errors(trainer, results, threshold)
        if errors is not None:
            with atomic_path(dirpath / "errors.csv") as tmp:
                errors.to_csv(tmp, index=False)

    def _write_curves(self, probs: torch.Tensor, labels: torch.Tensor, dirpath: Path) -> None:
        precision, recall, thresholds = binary_precision_recall_curve(probs, labels, thresholds=101)
        # no positive prediction above a threshold: precision 1 by convention (as scikit-learn)
        precision = torch.nan_to_num(precision, nan=1.0)
        curve = pd.DataFrame(
            {
                "threshold": thresholds.numpy(),
                "precision": precision[:-1].numpy(),
                "recall": recall[:-1].numpy(),
            }
        )
        with atomic_path(dirpath / "pr_curve.csv") as tmp:
            curve.round(6).to_csv(tmp, index=False)
        fpr, tpr, thresholds = binary_roc(probs, labels, thresholds=201)
        roc = pd.DataFrame(
            {"threshold": thresholds.numpy(), "fpr": fpr.numpy(), "tpr": tpr.numpy()}
        )
        with atomic_path(dirpath / "roc_curve.csv") as tmp:
            roc.round(6).to_csv(tmp, index=False)

    def _errors(
        self, trainer: L.Trainer, results: dict[str, torch.Tensor], threshold: float
    ) -> pd.DataFrame | None:
        """The ``errors.csv`` table, or ``None`` (with a warning) when the texts are unknown."""
        data_dir = getattr(trainer.datamodule, "data_dir", None)
        path = Path(data_dir) / "val.csv" if data_dir is not None else None
        if "ids" not in results or path is None or not path.is_file():
            rank_zero_warn(
                "errors.csv skipped: needs the test ids and the DataModule's <data_dir>/val.csv"
            )
            return None
        frame = read_processed(path.parent, path.name)
        scores = pd.DataFrame(
            {
                "id": results["ids"].long().numpy(),
                "probability": results["probs"].double().numpy(),
                "target": results["labels"].long().numpy(),
            }
        ).drop_duplicates("id")
        if "target" not in frame or not scores["id"].isin(frame["id"]).all():
            rank_zero_warn(f"errors.csv skipped: the test ids are not those of {path}")
            return None
        return most_confident_errors(
            scores.merge(frame[["id", "keyword", "text"]], on="id", how="left"),
            threshold,
            self.num_errors,
        )


#: Columns of ``errors.csv``.
ERROR_COLUMNS = ["kind", "id", "probability", "target", "keyword", "text"]


def most_confident_errors(frame: pd.DataFrame, threshold: float, count: int) -> pd.DataFrame:
    """The ``count`` most confident false positives, then false negatives, of ``frame``.

    ``frame`` has ``id``, ``probability``, ``target`` and text columns; positive means
    ``probability > threshold`` (as torchmetrics). False positives come sorted by descending
    probability, false negatives by ascending probability; ties by id.
    """
    predicted = frame["probability"] > threshold
    false_positives = frame[predicted & (frame["target"] == 0)].sort_values(
        ["probability", "id"], ascending=[False, True]
    )
    false_negatives = frame[~predicted & (frame["target"] == 1)].sort_values(
        ["probability", "id"], ascending=[True, True]
    )
    table = pd.concat(
        [
            false_positives.head(count).assign(kind="false_positive"),
            false_negatives.head(count).assign(kind="false_negative"),
        ],
        ignore_index=True,
    )
    table["probability"] = table["probability"].round(6)
    return table.reindex(columns=ERROR_COLUMNS)


class SubmissionWriter(BasePredictionWriter):
    """After ``predict``, writes the Kaggle submission ``id,target`` (and probabilities).

    Args:
        path: Submission CSV; ``None``: ``<trainer.default_root_dir>/predictions/submission.csv``,
            inside the run (the DVC pipeline writes the project's ``predictions/``).
        probabilities_path: Optional CSV of ``id,probability``; ``None`` skips it.
    """

    def __init__(self, path: str | None = None, probabilities_path: str | None = None) -> None:
        super().__init__(write_interval="epoch")
        self.path = Path(path) if path else None
        self.probabilities_path = Path(probabilities_path) if probabilities_path else None

    def resolve_path(self, root: str | Path | None) -> Path:
        """``path``, or the run's ``predictions/submission.csv`` when it is ``None``."""
        return self.path or Path(root or ".") / "predictions" / "submission.csv"

    def outputs(self, root: str | Path | None) -> list[Path]:
        """The paths a prediction of the run in ``root`` writes."""
        return [self.resolve_path(root), *filter(None, [self.probabilities_path])]

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        columns = {key: torch.cat([p[key] for p in predictions]).cpu() for key in predictions[0]}
        if trainer.world_size > 1:
            gathered = [None] * trainer.world_size
            torch.distributed.all_gather_object(gathered, columns)
            columns = {k: torch.cat([g[k] for g in gathered]) for k in columns}
        if trainer.global_rank != 0:
            return
        frame = pd.DataFrame({k: v.numpy() for k, v in columns.items()}).drop_duplicates("id")
        # distributed samplers interleave and pad: restore the order of the input file
        frame = frame.set_index("id").loc[trainer.datamodule.ids["predict"]].reset_index()
        with atomic_path(self.resolve_path(trainer.default_root_dir)) as tmp:
            frame[["id", "target"]].to_csv(tmp, index=False)
        if self.probabilities_path is not None:
            with atomic_path(self.probabilities_path) as tmp:
                frame[["id", "probability"]].round(6).to_csv(tmp, index=False)
