"""Shared fixtures: offline environment, raw data, a tiny RoBERTa, processed data."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tweetcls.cli import main
from tweetcls.tiny_model import build_tiny_model

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = ROOT / "configs" / "tiny.yaml"


def import_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as the module ``name`` (registered in ``sys.modules``)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def raw_data_dir() -> Path:
    """The pulled ``data/raw`` if present, else the plain copy in ``../shared/data``."""
    for candidate in (ROOT / "data" / "raw", ROOT.parent / "shared" / "data"):
        if (candidate / "train.csv").is_file():
            return candidate
    pytest.fail("no raw data: run `dvc pull` (or place ../shared/data beside the repo)")


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


def tiny_args(raw_dir: Path, data_dir: Path, tiny_model_dir: Path, cache_dir: Path | None = None):
    """Arguments that point configs/tiny.yaml at test-local files."""
    args = [
        "--config",
        str(TINY_CONFIG),
        "--model.pretrained_model",
        str(tiny_model_dir),
        "--data.raw_dir",
        str(raw_dir),
        "--data.data_dir",
        str(data_dir),
    ]
    if cache_dir is not None:
        args += ["--data.cache_dir", str(cache_dir)]
    return args


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
