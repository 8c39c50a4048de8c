"""Shared run directories: copy them before writing, and check that nobody wrote into them."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The files added, removed or changed between two snapshots, for an error message."""
    added = [f"added {name}" for name in after.keys() - before.keys()]
    removed = [f"removed {name}" for name in before.keys() - after.keys()]
    changed = [
        f"changed {name}" for name in before.keys() & after.keys() if before[name] != after[name]
    ]
    return sorted(added + removed + changed)


#: ``filterwarnings`` for ``test``/``predict`` on a checkpoint of ``tiny_fit`` from another
#: run directory: Lightning restores the checkpoint callback's state and warns that its
#: directory changed. Evaluation saves no checkpoints, so nothing depends on that state.
EVALUATING_A_COPY = "ignore:The dirpath has changed from .*tiny-fit"


def copy_run(run: Path, dest: Path) -> Path:
    """A private, writable copy of the shared run directory ``run`` at ``dest``."""
    shutil.copytree(run, dest)
    return dest
