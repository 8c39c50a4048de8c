"""How a command that is a plain function parses its arguments: jsonargparse, as LightningCLI.

The flags are the function's typed parameters (``--num_folds``), their help the docstring's
``Args:``; ``--config FILE`` reads any of them from YAML, ``TWEETCLS_<COMMAND>_<PARAMETER>``
variables from the environment (``TWEETCLS_KFOLD_NUM_FOLDS``), and ``--print_config`` prints
them.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from tweetcls.core.commands import env_prefix


def _is_list(hint: Any) -> bool:
    """Whether a type hint is a list, alone or in a union (``list[str] | None``)."""
    if typing.get_origin(hint) is list:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(hint))
    return False


def repeated_flags(args: list[str], names: set[str]) -> list[str]:
    """``args`` with each ``--name VALUE`` of a list parameter ``name`` as ``--name+ VALUE``.

    A list flag given several times then collects every value (``--member a --member b``, the
    argparse ``append`` style), where jsonargparse alone would keep the last; a JSON list
    (``--member '[a, b]'``) and jsonargparse's own ``--member+ a`` are left as they are.
    """
    out: list[str] = []
    for i, arg in enumerate(args):
        if arg == "--":
            return out + args[i:]
        flag, equals, value = arg.partition("=")
        following = value if equals else (args[i + 1] if i + 1 < len(args) else "")
        if flag.startswith("--") and flag[2:] in names and not following.startswith("["):
            arg = f"{flag}+{equals}{value}"
        out.append(arg)
    return out


def add_switch(parser: Any, name: str, default: Any, help: str | None, kind: Any = bool) -> None:
    """Add ``--name`` as a switch: alone it means true; ``--name false`` also works.

    ``kind`` is the value's type for jsonargparse (``typing.Any`` leaves the checking to a
    pydantic model, see :func:`tweetcls.monitoring.settings.parse_command_line`).
    """
    parser.add_argument(f"--{name}", type=kind, nargs="?", const=True, default=default, help=help)


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
    means true), and a list parameter's flag may be repeated (:func:`repeated_flags`). With
    ``forwards_to_fit``, the arguments after ``--`` are passed on untouched as ``fit_args``
    (they go to every ``tweetcls fit`` it runs);
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
    parser = ArgumentParser(
        prog=prog,
        description=summary,
        epilog=epilog,
        default_env=True,
        env_prefix=env_prefix(prog),
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file of these options.")
    parameters = inspect.signature(function).parameters
    hints = {
        name: hint for name, hint in typing.get_type_hints(function).items() if name in parameters
    }
    switches = [name for name, hint in hints.items() if hint is bool]
    skip = {"fit_args"} if forwards_to_fit else set()
    parser.add_function_arguments(
        function, skip=skip | set(switches), as_group=False, as_positional=as_positional
    )
    helps = {
        p.arg_name: p.description
        for p in docstring_parser.parse(inspect.getdoc(function) or "").params
    }
    for name in switches:
        add_switch(parser, name, parameters[name].default, helps.get(name))
    lists = {name for name, hint in hints.items() if _is_list(hint)}
    options = parser.parse_args(repeated_flags(args, lists)).as_dict()
    options.pop("config", None)
    if forwards_to_fit:
        options["fit_args"] = forwarded
    return function(**options)
