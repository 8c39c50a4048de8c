"""``tweetcls`` (and ``python -m tweetcls``): the one registry of commands.

Each command is a module path and a one-line help. ``tweetcls --help`` lists them all; a
command's own flags (``tweetcls fit --help``) come from its module, which is imported only when
that command runs: ``serve`` and ``drift`` start without the training stack, which the serving
image does not install.

A command module exposes ``main(args: list[str], prog: str) -> None``. The four LightningCLI
subcommands share one module, :mod:`tweetcls.training.cli`, which receives the subcommand name
as its first argument. User errors (:class:`~tweetcls.core.errors.TweetclsError`) end as one
``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from tweetcls.core.errors import TweetclsError

PROG = "tweetcls"


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
}


def run_function(
    function: Callable[..., Any],
    args: list[str],
    prog: str,
    *,
    forwards_to_fit: bool = False,
    as_positional: bool = False,
) -> Any:
    """Parse ``args`` into ``function``'s typed, documented parameters and call it.

    The flags are the parameter names (``--num_folds``, the LightningCLI style), their help the
    docstring's ``Args:``; ``--config FILE`` reads any of them from YAML and ``--print_config``
    prints the resolved values (jsonargparse); a ``bool`` parameter is a switch (``--name`` alone
    means true). With ``forwards_to_fit``, the arguments after
    ``--`` are passed on untouched as ``fit_args`` (they go to every ``tweetcls fit`` it runs);
    with ``as_positional``, parameters without a default are positional arguments.
    """
    import docstring_parser
    from jsonargparse import ActionConfigFile, ArgumentParser

    forwarded: list[str] = []
    if forwards_to_fit and "--" in args:
        split = args.index("--")
        args, forwarded = args[:split], args[split + 1 :]
    summary = (inspect.getdoc(function) or "").split("\n\n")[0]
    epilog = "Arguments after `--` go to every `tweetcls fit`." if forwards_to_fit else None
    parser = ArgumentParser(prog=prog, description=summary, epilog=epilog)
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file of these options.")
    parameters = inspect.signature(function).parameters
    switches = [name for name, p in parameters.items() if p.annotation in (bool, "bool")]
    skip = {"fit_args"} if forwards_to_fit else set()
    parser.add_function_arguments(
        function, skip=skip | set(switches), as_group=False, as_positional=as_positional
    )
    helps = {
        p.arg_name: p.description
        for p in docstring_parser.parse(inspect.getdoc(function) or "").params
    }
    for name in switches:  # `--subprocess` alone means true; `--subprocess false` also works
        parser.add_argument(
            f"--{name}",
            type=bool,
            nargs="?",
            const=True,
            default=parameters[name].default,
            help=helps.get(name),
        )
    options = parser.parse_args(args).as_dict()
    options.pop("config", None)
    if forwards_to_fit:
        options["fit_args"] = forwarded
    return function(**options)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the command name only; the command parses the rest."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Tell tweets about real disasters from the rest: data, training, "
        "experiments, export and serving. `tweetcls COMMAND --help` shows a command's flags.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.help, add_help=False)
    return parser


def main(args: list[str] | None = None) -> None:
    """Run ``tweetcls COMMAND [ARGS...]``; ``args`` defaults to ``sys.argv[1:]``."""
    argv = sys.argv[1:] if args is None else list(args)
    name = build_parser().parse_args(argv[:1]).command
    command = COMMANDS[name]
    try:
        run = import_module(command.module).main
        if command.lightning:
            run([name, *argv[1:]], prog=PROG)
        else:
            run(argv[1:], prog=f"{PROG} {name}")
    except TweetclsError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
