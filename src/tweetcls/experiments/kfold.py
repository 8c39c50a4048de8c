"""``tweetcls kfold``: k-fold training, out-of-fold F1 and a fold ensemble.

Each fold is an ordinary ``fit`` (:func:`tweetcls.experiments.fits.run_fit`) of the fit
arguments given after ``--``, with ``--data.num_folds K --data.fold i``
under ``<out>/fold-<i>``, with nothing that the fold measures choosing the weights (no
checkpoint selection by ``val/f1``, no early stopping: both would score the fold with a choice
made on it, more so for a recipe whose epochs differ more); its final weights then predict its
own fold (out-of-fold), the held-out ``val.csv`` and Kaggle's ``test.csv``. The ensemble
averages the folds' probabilities and predicts at 0.5 unless a threshold tuned on the
out-of-fold predictions beats 0.5 beyond bootstrap noise
(:func:`tweetcls.models.threshold.choose_threshold`). Folds that already have
``predictions.csv`` are skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from torchmetrics.functional.classification import binary_f1_score

from tweetcls.core.arguments import run_function
from tweetcls.core.atomic import atomic_path, write_text
from tweetcls.core.bootstrap import f1_interval
from tweetcls.core.errors import ConfigError
from tweetcls.data.datamodule import DisasterTweetsDataModule
from tweetcls.data.preprocess import read_processed
from tweetcls.experiments.fits import run_fit
from tweetcls.models.classifier import TweetClassifier
from tweetcls.models.threshold import best_f1_threshold, choose_threshold
from tweetcls.training.cli import cpu_precision, run_cli_class
from tweetcls.training.preprocess_cli import PreprocessCLI

#: The out-of-fold predictions of a run (``id, probability, target``), under ``out``: what
#: ``tweetcls ablation`` compares recipes on.
OOF_FILE = "oof.csv"

#: Prediction roles written per fold: out-of-fold, held-out validation, Kaggle test.
ROLES = {"oof": "val", "heldout": "test", "test": "predict"}


#: ``--early_stopping.patience`` of a fold: more validations than any fold runs (off).
NO_EARLY_STOPPING = 1_000_000


def fold_args(fit_args: list[str], num_folds: int, fold: int, out: Path) -> list[str]:
    """The ``fit`` arguments of one fold (also used to rebuild its DataModule): ``fit_args``,
    then the fold, its directory, and the final weights kept (``checkpoint.monitor`` null: the
    latest epoch's, in ``best.ckpt`` and ``last.ckpt``; early stopping off)."""
    return [
        *fit_args,
        "--data.num_folds",
        str(num_folds),
        "--data.fold",
        str(fold),
        "--trainer.default_root_dir",
        str(out / f"fold-{fold}"),
        "--checkpoint.monitor",
        "null",
        "--early_stopping.patience",
        str(NO_EARLY_STOPPING),
        "--overwrite",  # kfold owns its fold directories: a fold without predictions is redone
        "true",
    ]


def fold_datamodule(args: list[str]) -> tuple[DisasterTweetsDataModule, dict]:
    """The fold's DataModule and trainer settings, parsed from its ``fit`` arguments."""
    cli = run_cli_class(PreprocessCLI, args, run=False)
    return cli.datamodule, cli.config.trainer.as_dict()


def predict_fold(args: list[str], fold_dir: Path) -> pd.DataFrame:
    """Probabilities of the fold's final weights (``last.ckpt``, see :func:`fold_args`) for
    every role in :data:`ROLES`, with the ``epochs`` they trained.

    Folds over all labelled tweets (``data.fold_pool: labelled``) hold nothing out: no
    ``heldout`` role then.
    """
    data, trainer_config = fold_datamodule(args)
    roles = {r: d for r, d in ROLES.items() if data.fold_pool == "train" or r != "heldout"}
    last = fold_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise ConfigError(f"{last}: missing; the fold's fit did not save its final weights")
    epochs = torch.load(last, map_location="cpu", weights_only=False)["epoch"] + 1
    model = TweetClassifier.load_from_checkpoint(last, map_location="cpu", pretrained_weights=False)
    trainer = L.Trainer(
        accelerator=trainer_config["accelerator"],
        devices=1,
        precision=cpu_precision(trainer_config["accelerator"], trainer_config["precision"]),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    data.setup("fit")
    data.setup("test")
    data.setup("predict")
    frames = []
    for role, data_role in roles.items():
        batches = trainer.predict(model, dataloaders=data.eval_loader(data_role))
        frames.append(
            pd.DataFrame(
                {
                    "role": role,
                    "id": torch.cat([b["id"] for b in batches]).numpy(),
                    "probability": torch.cat([b["probability"] for b in batches]).numpy(),
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame["threshold"] = float(model.threshold)
    frame["epochs"] = int(epochs)
    return frame


def _f1(probs, labels, threshold: float = 0.5) -> float:
    return round(
        float(binary_f1_score(torch.tensor(probs), torch.tensor(labels), threshold=threshold)),
        6,
    )


def out_of_fold(
    predictions: list[pd.DataFrame], splits: dict[str, pd.Series], fold_pool: str
) -> pd.DataFrame:
    """``id, probability, target`` of every tweet of the fold pool, once each.

    Args:
        predictions: The folds' prediction frames.
        splits: Labels by tweet id of the processed ``train.csv`` and ``val.csv``.
        fold_pool: ``data.fold_pool`` of the folds: ``train`` or ``labelled``.
    """
    names = ["train.csv"] + (["val.csv"] if fold_pool == "labelled" else [])
    labels = pd.concat([splits[name] for name in names])
    oof = pd.concat([p[p.role == "oof"] for p in predictions])[["id", "probability"]]
    if oof["id"].duplicated().any() or set(oof["id"]) != set(labels.index):
        raise ConfigError(f"out-of-fold predictions do not cover {' + '.join(names)} exactly once")
    return oof.assign(target=labels.loc[oof["id"]].to_numpy()).reset_index(drop=True)


def summarize(
    predictions: list[pd.DataFrame], data_dir: Path, fold_pool: str = "train"
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(report, ensemble test predictions, out-of-fold predictions) from the folds' frames."""
    splits = {
        name: read_processed(data_dir, name).set_index("id")["target"]
        for name in ("train.csv", "val.csv")
    }
    labels = pd.concat(splits.values())
    oof = out_of_fold(predictions, splits, fold_pool)
    oof_labels = oof["target"].to_numpy()
    _, oof_f1_tuned = best_f1_threshold(oof["probability"].to_numpy(), oof_labels)
    # 0.5 unless tuning on the out-of-fold predictions wins beyond bootstrap noise
    choice = choose_threshold(oof["probability"].to_numpy(), oof_labels)
    threshold = choice.threshold
    folds = []
    for fold, frame in enumerate(predictions):
        own = frame[frame.role == "oof"]
        folds.append(
            {
                "fold": fold,
                "oof_f1": _f1(own["probability"].to_numpy(), labels.loc[own["id"]].to_numpy()),
                "threshold": round(float(frame["threshold"].iloc[0]), 6),
                # the epochs of the weights that scored the fold (None: an older run's file)
                "epochs": int(frame["epochs"].iloc[0]) if "epochs" in frame else None,
            }
        )
    report = {
        "num_folds": len(predictions),
        "oof_samples": len(oof),
        "oof_f1": _f1(oof["probability"].to_numpy(), oof_labels),
        "oof_f1_ci": f1_interval(oof["probability"].to_numpy(), oof_labels).as_dict(),
        "oof_f1_tuned": round(float(oof_f1_tuned), 6),
        "oof_threshold": round(float(threshold), 6),
        "oof_threshold_choice": choice.as_dict(),
        "folds": folds,
    }
    if (predictions[0].role == "heldout").any():
        report.update(heldout_summary(predictions, labels, threshold, folds))
    test = pd.concat(
        [p[p.role == "test"].set_index("id")["probability"] for p in predictions], axis=1
    ).mean(axis=1)
    submission = pd.DataFrame(
        {"id": test.index, "target": (test.to_numpy() > threshold).astype(int)}
    )
    submission["probability"] = test.to_numpy().round(6)
    return report, submission, oof


def heldout_summary(
    predictions: list[pd.DataFrame], labels: pd.Series, threshold: float, folds: list[dict]
) -> dict:
    """The fold models and their ensemble on the held-out ``val.csv`` (``fold_pool: train``);
    adds each fold's held-out F1 to ``folds``."""
    heldout = [p[p.role == "heldout"].set_index("id")["probability"] for p in predictions]
    heldout_labels = labels.loc[heldout[0].index].to_numpy()
    mean_heldout = pd.concat(heldout, axis=1).mean(axis=1)
    for entry, frame, probs in zip(folds, predictions, heldout, strict=True):
        fold_threshold = float(frame["threshold"].iloc[0])
        entry["heldout_f1"] = _f1(probs.to_numpy(), heldout_labels)
        entry["heldout_f1_tuned"] = _f1(probs.to_numpy(), heldout_labels, fold_threshold)
    single = [f["heldout_f1"] for f in folds]
    return {
        "single_heldout_f1_mean": round(sum(single) / len(single), 6),
        "ensemble_heldout_f1": _f1(mean_heldout.to_numpy(), heldout_labels),
        "ensemble_heldout_f1_ci": f1_interval(mean_heldout.to_numpy(), heldout_labels).as_dict(),
        "ensemble_heldout_f1_oof_threshold": _f1(
            mean_heldout.to_numpy(), heldout_labels, float(threshold)
        ),
        "heldout_samples": len(heldout_labels),
    }


def kfold(
    num_folds: int = 5,
    out: str = "runs/kfold",
    report_path: str = "reports/kfold.json",
    submission: str = "predictions/submission_kfold.csv",
    fit_args: list[str] | None = None,
) -> dict:
    """Train one model per stratified fold of train.csv with `tweetcls fit`, then report
    out-of-fold F1 and the fold ensemble on the held-out val.csv, and write the ensemble's
    submission.

    Args:
        num_folds: Number of folds (>= 2).
        out: Directory of the fold runs (``<out>/fold-<i>``); finished folds are reused.
        report_path: Summary JSON.
        submission: The fold ensemble's Kaggle submission.
        fit_args: Arguments of every fold's ``fit`` (``--config`` and overrides), given on the
            command line after ``--``.
    """
    if num_folds < 2:
        raise ConfigError(f"--num_folds: must be >= 2, got {num_folds}")
    fit_args = list(fit_args or [])
    if not any(arg.split("=")[0] == "--config" for arg in fit_args):
        raise ConfigError(
            "kfold: name the fit config after `--`, e.g. `-- --config configs/minilm.yaml`"
        )
    root = Path(out)
    predictions = []
    data = None
    for fold in range(num_folds):
        args = fold_args(fit_args, num_folds, fold, root)
        fold_dir = root / f"fold-{fold}"
        path = fold_dir / "predictions.csv"
        if path.is_file():
            print(f"fold {fold}: reusing {path}")
        else:
            print(f"fold {fold}/{num_folds}: training in {fold_dir}")
            start = time.perf_counter()
            run_fit(args)
            fit_seconds = time.perf_counter() - start
            frame = predict_fold(args, fold_dir).assign(fit_seconds=round(fit_seconds, 1))
            with atomic_path(path) as tmp:
                frame.to_csv(tmp, index=False)
        predictions.append(pd.read_csv(path))
        if data is None:
            data = fold_datamodule(args)[0]
    report, ensemble, oof = summarize(predictions, data.data_dir, data.fold_pool)
    report["command"] = shlex.join(
        [
            *("tweetcls", "kfold", "--num_folds", str(num_folds), "--out", out),
            *("--report_path", report_path, "--", *fit_args),
        ]
    )
    report["oof_path"] = str(root / OOF_FILE)
    if all("fit_seconds" in p for p in predictions):
        report["fit_seconds"] = round(sum(float(p["fit_seconds"].iloc[0]) for p in predictions), 1)
    with atomic_path(root / OOF_FILE) as tmp:
        oof.to_csv(tmp, index=False)
    write_text(Path(report_path), json.dumps(report, indent=2) + "\n")
    with atomic_path(Path(submission)) as tmp:
        ensemble[["id", "target"]].to_csv(tmp, index=False)
    print(json.dumps({k: v for k, v in report.items() if k != "folds"}, indent=2))
    return report


def main(args: list[str] | None = None, prog: str = "tweetcls kfold") -> None:
    """Run ``tweetcls kfold [OPTIONS] -- FIT_ARGS``."""
    run_function(kfold, list(args or []), prog, forwards_to_fit=True)
