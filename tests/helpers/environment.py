"""The environment every test run (and tests/data/regenerate) uses: offline, no W&B server."""

from __future__ import annotations

import os

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}


def use_test_environment() -> None:
    """Set the offline variables; call before importing tweetcls or transformers."""
    os.environ.update(OFFLINE)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
