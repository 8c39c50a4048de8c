"""Shared fixtures: offline environment, raw data, a tiny RoBERTa, processed data, one tiny fit
and its serving bundle.

The session-scoped directories (``tiny_fit``, ``tiny_bundle``) are shared by many tests and
are read-only for them: a test that writes copies first (``helpers.runs.copy_run``). Each
checks at the end of the session that no test changed it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.environment import use_test_environment

use_test_environment()  # before tweetcls imports transformers

from helpers.builds import build_bundle, build_processed, build_tiny_fit  # noqa: E402
from helpers.paths import QUIET, raw_data_dir, tiny_args  # noqa: E402
from helpers.runs import changes, snapshot  # noqa: E402

from tweetcls.models.tiny import build_tiny_model  # noqa: E402


def _shared(path: Path, name: str) -> Iterator[Path]:
    """Yield the shared directory ``path``; at the end of the session fail if a test changed it."""
    before = snapshot(path)
    yield path
    changed = changes(before, snapshot(path))
    if changed:
        pytest.fail(f"{name} is shared and read-only, but tests changed it: {', '.join(changed)}")


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
    """Processed splits written by the real preprocess command; its report is
    ``processed_dir.parent / "data.json"``."""
    return build_processed(tmp_path_factory.mktemp("processed") / "data", raw_dir, tiny_model_dir)


@pytest.fixture(scope="session")
def tiny_fit(tmp_path_factory, raw_dir, processed_dir, tiny_model_dir) -> Iterator[Path]:
    """The run directory of one short real ``fit`` of the tiny model (tests/conf/short_fit.yaml),
    built once per session: checkpoints/best.ckpt and last.ckpt, model/, logs/. Read-only."""
    root = tmp_path_factory.mktemp("tiny-fit")
    yield from _shared(build_tiny_fit(root, raw_dir, processed_dir, tiny_model_dir), "tiny_fit")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, raw_dir, processed_dir, tiny_fit) -> Iterator[Path]:
    """The serving bundle of ``tiny_fit``'s model, by the real ``export``; its report is
    ``tiny_bundle.parent / "export.json"``. Read-only."""
    out = tmp_path_factory.mktemp("tiny-bundle") / "bundle"
    yield from _shared(build_bundle(tiny_fit / "model", out, processed_dir, raw_dir), "tiny_bundle")


@pytest.fixture
def tiny_run(tmp_path, raw_dir, processed_dir, tiny_model_dir):
    """Build ``main`` arguments for one tiny run whose outputs all land under ``tmp_path``."""

    def build(command: str, *extra: str) -> list[str]:
        return [
            command,
            *tiny_args(raw_dir, processed_dir, tiny_model_dir, tmp_path / "cache"),
            "--config",
            str(QUIET),
            "--trainer.default_root_dir",
            str(tmp_path / "run"),
            "--report.dirpath",
            str(tmp_path / "reports"),
            "--submission.path",
            str(tmp_path / "predictions" / "submission.csv"),
            *extra,
        ]

    return build
