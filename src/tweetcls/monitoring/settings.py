"""Settings of the ``serve`` and ``drift`` commands: flags, ``--config``, ``TWEETCLS_*`` variables.

Each command declares its settings once, as a :class:`CommandSettings` class (a pydantic model)
whose fields, with their docstrings as help, are the command's flags (``--max_batch_size``).
:func:`parse_command_line` reads them the way every tweetcls command reads its arguments, with
jsonargparse: a flag beats ``--config FILE`` (YAML), which beats its ``TWEETCLS_*`` variable
(``TWEETCLS_MAX_BATCH_SIZE``), which beats the default; ``--print_config`` prints the result
(secrets masked). The model then checks every value, and a bad value, an unknown flag or a
missing one is one :class:`~tweetcls.core.errors.ConfigError` naming the flag (the dispatcher
prints it as one ``error: ...`` line, exit code 2).

:class:`RequestLogSettings` holds the fields both commands share: the request log's database
and the fewest predictions a drift verdict needs.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
import typing
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from tweetcls.core.arguments import add_switch
from tweetcls.core.commands import ENV_PREFIX
from tweetcls.core.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///runs/serving/requests.db"
#: Fewest logged predictions for a drift verdict (service and ``tweetcls drift``).
DRIFT_MIN_SAMPLES = 100
#: ``json_schema_extra`` of a field whose value an error message must not repeat (passwords).
UNECHOED = {"echo": False}
#: ``json_schema_extra`` of a secret field: also masked by ``--print_config``.
SECRET = {"echo": False, "secret": True}

SettingsT = TypeVar("SettingsT", bound="CommandSettings")
#: The password of a URL (``scheme://user:password@host``), hidden in error messages.
_PASSWORD = re.compile(r"://([^:/@\s]*):[^@\s]*@")
#: Field types whose flags are read as text (the rest as YAML: ``8``, ``[a, b]``, ``null``).
_TEXT = (str, Path, datetime)


class CommandSettings(BaseModel):
    """Base of a command's settings: frozen, no unknown fields, attribute docstrings as help."""

    model_config = ConfigDict(use_attribute_docstrings=True, frozen=True, extra="forbid")


class RequestLogSettings(CommandSettings):
    """The request log and the drift verdict, shared by ``serve`` and ``drift``."""

    database_url: str = Field(DEFAULT_DATABASE_URL, json_schema_extra=SECRET)
    """Request log database: sqlite:///FILE or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB."""
    drift_min_samples: int = Field(DRIFT_MIN_SAMPLES, ge=1)
    """Fewest logged predictions for a drift verdict (fewer: "insufficient data")."""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        from tweetcls.monitoring.logtable import parse_database_url

        parse_database_url(value)  # ConfigError (a ValueError) names the problem
        return value


def _parser_type(annotation: Any) -> Any:
    """What jsonargparse reads a field's flag as: text for text-like fields (``str``, ``Path``,
    ``datetime``, optional or not), YAML for the rest (``8``, ``[a, b]``, ``null``); the
    model checks and converts the value afterwards."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    kinds = typing.get_args(annotation) if union else (annotation,)
    optional = type(None) in kinds
    if all(kind in _TEXT for kind in kinds if kind is not type(None)):
        return str | None if optional else str
    return Any


def _type_text(annotation: Any) -> str:
    """A field's type as ``--help`` shows it: ``int``, ``{onnx-int8,onnx,pytorch}``, ..."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Literal:
        return "{" + ",".join(map(str, args)) + "}"
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_text(a) for a in args)
    if origin is list:
        return "comma-separated list"
    return getattr(annotation, "__name__", str(annotation))


def settings_parser(settings_cls: type[CommandSettings], prog: str) -> Any:
    """The jsonargparse parser of ``settings_cls``: a flag and a variable per field."""
    from jsonargparse import ActionConfigFile, ArgumentParser, DefaultHelpFormatter
    from pydantic_core import PydanticUndefined

    fields = settings_cls.model_fields
    shown = {name: _type_text(field.annotation) for name, field in fields.items()}

    class HelpFormatter(DefaultHelpFormatter):
        """jsonargparse's help, with each field's own type (the parser reads some as text)."""

        def _get_type_str(self, action: Any) -> str | None:
            return shown.get(action.dest) or super()._get_type_str(action)

    parser = ArgumentParser(
        prog=prog,
        description=inspect.cleandoc(settings_cls.__doc__ or ""),
        default_env=True,
        env_prefix=ENV_PREFIX,
        exit_on_error=False,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML file of these options.")
    for name, field in fields.items():
        default = None if field.default is PydanticUndefined else field.default
        if field.annotation is bool:
            add_switch(parser, name, default, field.description, kind=Any)
            continue
        kind = _parser_type(field.annotation)
        if field.json_schema_extra == SECRET:  # text, masked by --print_config
            kind = SecretStr
            default = SecretStr(",".join(default) if isinstance(default, list) else default)
        parser.add_argument(
            f"--{name}",
            type=kind,
            default=default,
            required=field.is_required(),
            help=field.description,
        )
    return parser


def parse_command_line(
    settings_cls: type[SettingsT], args: Sequence[str] | None, prog: str
) -> SettingsT:
    """``settings_cls`` from flags (``args``, default ``sys.argv[1:]``), ``--config``,
    ``TWEETCLS_*`` variables and defaults.

    ``--help`` prints every flag with its help and variable and exits 0; ``--print_config``
    prints the values (secrets masked) and exits 0.

    Raises:
        ConfigError: one line naming the flag of each bad, missing or unknown value.
    """
    parser = settings_parser(settings_cls, prog)
    lists = {
        name
        for name, field in settings_cls.model_fields.items()
        if typing.get_origin(field.annotation) is list
    }
    argv = _join_repeated(list(sys.argv[1:] if args is None else args), lists)
    try:
        values = parser.parse_args(argv).as_dict()
    except argparse.ArgumentError as err:
        raise ConfigError(_parse_error(str(err), prog)) from None
    values.pop("config", None)
    values = {
        name: value.get_secret_value() if isinstance(value, SecretStr) else value
        for name, value in values.items()
    }
    try:
        return settings_cls(**values)
    except ValidationError as err:
        raise ConfigError(describe(err, settings_cls)) from None


def _join_repeated(args: list[str], names: set[str]) -> list[str]:
    """``args`` with the values of a list flag given several times joined by commas, once:
    ``--api_keys A --api_keys B`` is ``--api_keys A,B`` (the argparse ``append`` style)."""
    out: list[str] = []
    where: dict[str, int] = {}  # a list flag's value's index in ``out``
    rest = iter(args)
    for arg in rest:
        flag, equals, value = arg.partition("=")
        name = flag.removeprefix("--")
        if not flag.startswith("--") or name not in names:
            out.append(arg)
            continue
        if not equals:
            value = next(rest, None)
            if value is None:  # the parser reports the missing value
                out.append(arg)
                break
        if name in where:
            out[where[name]] += f",{value}"
        else:
            out += [flag, value]
            where[name] = len(out) - 1
    return out


def _parse_error(message: str, prog: str) -> str:
    """One line for jsonargparse's error ``message``."""
    required = re.match(r"the following arguments are required: (.+)", message)
    if required:
        names = [name.strip() for name in required.group(1).split(",")]
        return "; ".join(f"--{n}: required (or set {ENV_PREFIX}_{n.upper()})" for n in names)
    first = _PASSWORD.sub(r"://\1:***@", message.strip().splitlines()[0])
    return f"{first} (see {prog} --help)"


def describe(err: ValidationError, settings_cls: type[CommandSettings]) -> str:
    """One line for the validation errors of ``settings_cls``: ``--flag value: reason; ...``."""
    messages = []
    for error in err.errors(include_url=False):
        reason = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a check across fields names its flags itself
            messages.append(reason)
            continue
        name = str(error["loc"][0])
        flag = f"--{name}"
        if error["type"] == "missing":
            messages.append(f"{flag}: required (or set {ENV_PREFIX}_{name.upper()})")
            continue
        field = settings_cls.model_fields.get(name)
        echo = field is None or (field.json_schema_extra or {}).get("echo", True)
        shown = f" {error['input']!r}" if echo and "input" in error else ""
        messages.append(f"{flag}{shown}: {reason}")
    return "; ".join(dict.fromkeys(messages))
