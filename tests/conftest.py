"""Shared fixtures: offline environment, raw data, a tiny RoBERTa, processed data."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from helpers.paths import raw_data_dir, tiny_args

from tweetcls.cli import main
from tweetcls.models.tiny import build_tiny_model


@pytest.fixture(autouse=True, scope="session")
def _plain_argv():
    # LightningCLI warns when it gets args while sys.argv holds pytest's own arguments.
    saved, sys.argv = sys.argv, ["tweetcls"]
    yield
    sys.argv = saved


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory) -> Path:
    """A private copy of the three raw CSVs."""
    target = tmp_path_factory.mktemp("raw")
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        shutil.copy(raw_data_dir() / name, target / name)
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, raw_dir) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-roberta", raw_dir / "train.csv")


@pytest.fixture(scope="session")
def processed_dir(tmp_path_factory, raw_dir, tiny_model_dir) -> Path:
    """Processed splits written by the real preprocess command."""
    out = tmp_path_factory.mktemp("processed") / "data"
    main(
        [
            "preprocess",
            *tiny_args(raw_dir, out, tiny_model_dir)[:8],
            "--report_path",
            str(out.parent / "data.json"),
        ]
    )
    return out


@pytest.fixture
def tiny_run(tmp_path, raw_dir, processed_dir, tiny_model_dir):
    """Build ``main`` arguments for one tiny run whose outputs all land under ``tmp_path``."""

    def build(command: str, *extra: str) -> list[str]:
        return [
            command,
            *tiny_args(raw_dir, processed_dir, tiny_model_dir, tmp_path / "cache"),
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--report.dirpath",
            str(tmp_path / "reports"),
            "--submission.path",
            str(tmp_path / "predictions" / "submission.csv"),
            *extra,
        ]

    return build


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, raw_dir, processed_dir, tiny_model_dir) -> Path:
    """A serving bundle of the tiny model: a short real ``fit``, then the real ``export``.

    The briefly trained tiny model's probabilities all lie within about 1e-3 of its threshold,
    so int8 rounding flips labels that a real model keeps; the F1 guard is therefore off here
    (``--max-f1-drop 1``) and is tested on its own in tests/test_export.py.
    """
    root = tmp_path_factory.mktemp("tiny-bundle")
    main(
        [
            "fit",
            *tiny_args(raw_dir, processed_dir, tiny_model_dir, root / "cache"),
            "--trainer.default_root_dir",
            str(root / "run"),
            "--trainer.max_epochs",
            "1",
            "--trainer.limit_train_batches",
            "20",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
        ]
    )
    bundle = root / "bundle"
    main(
        [
            "export",
            "--model",
            str(root / "run" / "model"),
            "--out",
            str(bundle),
            "--data-dir",
            str(processed_dir),
            "--raw-dir",
            str(raw_dir),
            "--report",
            str(root / "export.json"),
            "--max-f1-drop",
            "1",
        ]
    )
    return bundle
