"""``python -m tweetcls``: the command dispatcher.

``fit``/``validate``/``test``/``predict`` go to LightningCLI (:mod:`tweetcls.cli`); the other
commands go to their own module's ``main``. Lightning is imported only for the commands that
need it, so ``serve`` and ``drift`` start fast and run in the serving image, which has no
training stack.
"""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path

from transformers.utils import logging as hf_logging

from tweetcls.errors import TweetclsError

#: Commands handled outside LightningCLI, with their module's ``main``.
EXTRA_COMMANDS = {
    "preprocess": "tweetcls.preprocess_cli",
    "tiny-model": "tweetcls.tiny_model",
    "kfold": "tweetcls.kfold",
    "ensemble": "tweetcls.ensemble",
    "soft-targets": "tweetcls.soft_targets",
    "sweep": "tweetcls.sweep",
    "export": "tweetcls.export",
    "serve": "tweetcls.serving.cli",
    "drift": "tweetcls.serving.drift_cli",
}

DESCRIPTION = (
    "tweetcls: fine-tune a Hugging Face encoder to tell disaster tweets from others. "
    "Also: `tweetcls preprocess --config X` (raw CSVs -> data/processed), "
    "`tweetcls tiny-model` (the tiny RoBERTa of configs/tiny.yaml), "
    "`tweetcls kfold --config X` (k-fold training and ensemble), "
    "`tweetcls ensemble --member A --member B` (models combined on held-out data), "
    "`tweetcls soft-targets --teacher DIR` (a teacher's probabilities for distillation), "
    "`tweetcls sweep sweeps/X.yaml` (a W&B sweep spec run with Optuna), "
    "`tweetcls export --model DIR` (ONNX + int8 serving bundle), "
    "`tweetcls serve --model DIR` (the HTTP service) and "
    "`tweetcls drift --since T` (drift of logged traffic against the training data)."
)


def main(args: list[str] | None = None) -> None:
    """Entry point of ``python -m tweetcls``, the ``tweetcls`` script and the tests."""
    argv = sys.argv[1:] if args is None else list(args)
    hf_logging.disable_progress_bar()  # per-file loading bars drown the CLI's own output
    try:
        if argv and argv[0] in EXTRA_COMMANDS:
            module = import_module(EXTRA_COMMANDS[argv[0]])
            if args is None:  # let the command's parser read sys.argv, named after it
                sys.argv = [f"{Path(sys.argv[0]).name} {argv[0]}", *argv[1:]]
            module.main(None if args is None else argv[1:])
        else:
            from tweetcls.cli import TweetCLI, run_cli_class

            run_cli_class(TweetCLI, args)
    except TweetclsError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
