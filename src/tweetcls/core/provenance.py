"""Run provenance: the git commit of the code and the DVC hash of the raw data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml


def provenance(raw_dir: str | os.PathLike = "data/raw") -> dict[str, Any]:
    """The code and data versions of a run: git commit (and whether the tree was dirty) and
    the DVC hash of the raw data from ``<raw_dir>.dvc``."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", *args], capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip()

    dvc_file = Path(str(raw_dir).rstrip("/") + ".dvc")
    data_hash = None
    if dvc_file.is_file():
        try:
            outs = yaml.safe_load(dvc_file.read_text()).get("outs", [])
            data_hash = outs[0].get("md5") if outs else None
        except (yaml.YAMLError, AttributeError):
            data_hash = None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "data_dvc_file": str(dvc_file),
        "data_md5": data_hash,
    }
