"""Run provenance: the git commit of the package's code and the DVC hash of the raw data.

What a stage records must be the same wherever and whenever the same inputs are built
(``dvc repro`` of a fresh clone reproduces the locked bytes): so the commit is the last one
that changed the package's source (not ``HEAD``: committing ``dvc.lock`` after a run moves
``HEAD`` but not the code), ``git_dirty`` says whether that source had uncommitted changes, and
the date is the reproducible-builds ``SOURCE_DATE_EPOCH`` or else that commit's time, never
the clock of the machine.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

#: The package's source directory: its git history is the code's version.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str | None:
    """``git -C PACKAGE_DIR ARGS``'s output; ``None`` outside a git checkout or without git."""
    try:
        result = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def source_date(commit_time: str | None) -> str | None:
    """The build's date (ISO 8601, UTC): ``SOURCE_DATE_EPOCH`` when set, else ``commit_time``."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        moment = datetime.fromtimestamp(int(epoch), timezone.utc)
        return moment.isoformat(timespec="seconds")
    if not commit_time:
        return None
    return datetime.fromisoformat(commit_time).astimezone(timezone.utc).isoformat()


def provenance(raw_dir: str | os.PathLike = "data/raw") -> dict[str, Any]:
    """The code and data versions of a run.

    ``git_commit``: the last commit that changed the package's source; ``git_dirty``: whether
    that source has uncommitted changes; ``source_date``: :func:`source_date`; ``data_md5``:
    the DVC hash of the raw data from ``<raw_dir>.dvc``. Git values are ``None`` outside a
    checkout (an installed package).
    """
    dvc_file = Path(str(raw_dir).rstrip("/") + ".dvc")
    data_hash = None
    if dvc_file.is_file():
        try:
            outs = yaml.safe_load(dvc_file.read_text()).get("outs", [])
            data_hash = outs[0].get("md5") if outs else None
        except (yaml.YAMLError, AttributeError):
            data_hash = None
    last = _git("log", "-1", "--format=%H %cI", "--", ".")
    commit, _, commit_time = (last or "").partition(" ")
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return {
        "git_commit": commit or None,
        "git_dirty": None if status is None or not commit else bool(status),
        "source_date": source_date(commit_time or None),
        "data_dvc_file": str(dvc_file),
        "data_md5": data_hash,
    }
