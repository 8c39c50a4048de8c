"""Which library messages reach the terminal.

Commands call :func:`quiet_libraries` once. It drops transformers' per-file progress bars and
its state-dict "LOAD REPORT" (a classifier head that is new by design is listed as MISSING on
every fine-tuning start, and weights that a checkpoint overwrites next are irrelevant), and
Lightning's promotional tips, and the one deprecation warning that Lightning 2.6 triggers in
torch on every ``test``/``predict`` (Lightning-AI/pytorch-lightning#21326: its ``_pytree`` still
uses torch's deprecated ``LeafSpec`` check). Other warnings and errors of these libraries
still show.
"""

from __future__ import annotations

import logging
import os
import warnings

#: (logger name, text that marks a record as noise)
_NOISE = (
    ("transformers.modeling_utils", "LOAD REPORT"),
    ("lightning.pytorch.utilities.rank_zero", "Tip:"),
    ("lightning.pytorch.utilities.rank_zero", "litmodels"),
)


class _DropNoise(logging.Filter):
    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def filter(self, record: logging.LogRecord) -> bool:
        return self.marker not in record.getMessage()


def quiet_libraries() -> None:
    """Install the filters (idempotent) and turn off transformers' download/loading bars."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
    )
    for name, marker in _NOISE:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) and f.marker == marker for f in logger.filters):
            logger.addFilter(_DropNoise(marker))
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # the serving image has transformers; a bare core install may not
        return
    hf_logging.disable_progress_bar()


class quiet_loggers:
    """Raise the given loggers to ERROR for the duration of a ``with`` block."""

    def __init__(self, *names: str) -> None:
        self.loggers = [logging.getLogger(name) for name in names]
        self.levels: list[int] = []

    def __enter__(self) -> None:
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        for logger, level in zip(self.loggers, self.levels, strict=True):
            logger.setLevel(level)
