"""Where the repository, its configs and the raw data are; arguments for tiny runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The running environment's scripts (mkdocs, pre-commit, check-jsonschema, dvc, hadolint).
VENV_BIN = Path(sys.executable).parent
TINY_CONFIG = ROOT / "configs" / "tiny.yaml"
#: Test-only overlays (``--config`` after the base config); each holds only what differs.
CONF = ROOT / "tests" / "conf"
QUIET = CONF / "quiet.yaml"  # no progress bar, no model summary
SHORT_FIT = CONF / "short_fit.yaml"  # one epoch of 20 steps
CPU = CONF / "cpu.yaml"  # a GPU recipe on the CPU: accelerator cpu, fp32
DDP_CPU = CONF / "ddp_cpu.yaml"  # configs/trainer/ddp.yaml on 2 CPU processes


def raw_data_dir() -> Path:
    """The pulled ``data/raw`` if present, else the plain copy in ``../shared/data``."""
    for candidate in (ROOT / "data" / "raw", ROOT.parent / "shared" / "data"):
        if (candidate / "train.csv").is_file():
            return candidate
    pytest.fail("no raw data: run `dvc pull` (or place ../shared/data beside the repo)")


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
