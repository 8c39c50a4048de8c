"""``tweetcls`` (and ``python -m tweetcls``): the dispatcher, the top of the import layers.

Commands come from the registry :data:`tweetcls.core.commands.COMMANDS` (a module path and a
one-line help each); nothing imports this module. ``tweetcls --help`` lists them all; a
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
import sys
from importlib import import_module

from tweetcls.core.commands import COMMANDS, PROG
from tweetcls.core.errors import TweetclsError


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
