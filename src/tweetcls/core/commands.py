"""The registry of ``tweetcls`` commands: each command's module and one-line help.

The dispatcher (:mod:`tweetcls.cli`) reads it to list and run commands; a command that starts
itself in a new process (``serve`` under benchmarks and tests) reads its own name here.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The program name every command's usage line starts with.
PROG = "tweetcls"
#: Prefix of the environment variables that set options: ``TWEETCLS_PORT`` (``serve`` and
#: ``drift``, whose variables predate the others), ``TWEETCLS_EXPORT_OUT`` (the commands that
#: are functions) and ``TWEETCLS_FIT__TRAINER__MAX_EPOCHS`` (the LightningCLI subcommands,
#: nested keys joined by ``__``: :func:`tweetcls.training.cli.environment_args`).
ENV_PREFIX = "TWEETCLS"


def env_prefix(prog: str) -> str:
    """The variables' prefix of a function command: ``TWEETCLS_SOFT_TARGETS`` for
    ``tweetcls soft-targets``."""
    return f"{ENV_PREFIX}_{prog.split()[-1].upper().replace('-', '_')}"


@dataclass(frozen=True)
class Command:
    """One ``tweetcls`` subcommand.

    Args:
        module: Module whose ``main(args, prog)`` runs the command.
        help: One line for ``tweetcls --help``.
        lightning: A LightningCLI subcommand: ``main`` gets the command name first.
    """

    module: str
    help: str
    lightning: bool = False


_TRAINING = "tweetcls.training.cli"

#: Every command of ``tweetcls``, in the order of the pipeline.
COMMANDS: dict[str, Command] = {
    "preprocess": Command(
        "tweetcls.training.preprocess_cli", "clean and split the raw CSVs into data/processed"
    ),
    "tiny-model": Command(
        "tweetcls.models.tiny", "build the tiny random RoBERTa that tests and tiny.yaml use"
    ),
    "fit": Command(_TRAINING, "fine-tune an encoder on the training split", lightning=True),
    "validate": Command(_TRAINING, "score a checkpoint on the validation split", lightning=True),
    "test": Command(_TRAINING, "score a checkpoint on val.csv and write reports", lightning=True),
    "predict": Command(_TRAINING, "write the Kaggle submission of a checkpoint", lightning=True),
    "kfold": Command("tweetcls.experiments.kfold", "train k folds and average them"),
    "ablation": Command(
        "tweetcls.experiments.ablation", "compare recipes on out-of-fold predictions"
    ),
    "sweep": Command("tweetcls.experiments.sweep", "run a W&B sweep spec as an Optuna study"),
    "ensemble": Command(
        "tweetcls.experiments.ensemble", "combine finished models on held-out data"
    ),
    "soft-targets": Command(
        "tweetcls.experiments.soft_targets", "write a teacher's probabilities for distillation"
    ),
    "export": Command("tweetcls.export.command", "build the ONNX fp32 + int8 serving bundle"),
    "serve": Command("tweetcls.serving.command", "serve a bundle over HTTP"),
    "drift": Command("tweetcls.monitoring.command", "test logged traffic for drift"),
    "feedback": Command(
        "tweetcls.monitoring.feedback", "export corrections and least sure tweets for review"
    ),
}


def command_name(module: str) -> str:
    """The name of the command that ``module`` runs (e.g. ``serve`` for its module)."""
    return next(name for name, command in COMMANDS.items() if command.module == module)
