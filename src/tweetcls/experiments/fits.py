"""Start a ``tweetcls fit``: the one way kfold folds and sweep trials train."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tweetcls.core.errors import TweetclsError


class FitFailed(TweetclsError):
    """A ``fit`` ended with a non-zero exit code."""


def run_fit(args: list[str], log: Path | None = None) -> None:
    """Run ``tweetcls fit ARGS`` to the end.

    Args:
        args: The fit's arguments (``--config``, overrides), without the word ``fit``.
        log: ``None`` runs the fit in this process (shared imports, fastest). A path runs it
            in a child process (``python -m tweetcls fit``) with stdout and stderr written
            there: a crash or leak of one fit cannot take the caller down.

    Raises:
        FitFailed: the fit exited non-zero (its message names the log, if any).
    """
    if log is None:
        from tweetcls.training.cli import main

        try:
            main(["fit", *args])
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise FitFailed(f"fit exited {exc.code}") from exc
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        command = [sys.executable, "-m", "tweetcls", "fit", *args]
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise FitFailed(f"fit exited {code}, see {log}")
