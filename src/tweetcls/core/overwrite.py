"""The overwrite rule: a command never replaces an earlier output unless it is told to.

``fit``, ``test``, ``predict`` and ``export`` check, before any work, whether what they are about
to write is already there: a trained run in ``trainer.default_root_dir`` (its ``model/`` or
``checkpoints/best.ckpt``), the test reports, the submission, a serving bundle or its report. If
one is, the command stops with one line that names it and the two ways on: ``--overwrite true``
(replace it) or another output path. Resuming a fit (``--ckpt_path``) continues its own run and
is allowed.

The DVC pipeline is not affected: ``dvc repro`` deletes a stage's outputs before it runs the
stage's command, so they never exist when the command starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tweetcls.core.errors import ConfigError


class OutputExistsError(ConfigError):
    """An output of the command exists and ``--overwrite`` was not given."""


def refuse_to_replace(command: str, outputs: Iterable[str | os.PathLike], elsewhere: str) -> None:
    """Raise :class:`OutputExistsError` if one of ``outputs`` exists.

    Args:
        command: The command's name, first word of the message.
        outputs: The paths the command would write (files or directories).
        elsewhere: How to write somewhere else instead, e.g. ``--submission.path``.
    """
    existing = [str(path) for path in outputs if Path(path).exists()]
    if existing:
        raise OutputExistsError(
            f"{command}: {', '.join(existing)} already "
            f"{'exists' if len(existing) == 1 else 'exist'} (an earlier run's output); add "
            f"`--overwrite true` to replace {'it' if len(existing) == 1 else 'them'}, or "
            f"write elsewhere with {elsewhere}"
        )
