"""Settings of the ``serve`` and ``drift`` commands: flags and ``TWEETCLS_*`` variables at once.

Each command declares its settings once, as a :class:`CommandSettings` class whose fields (with
their docstrings as help) generate the command-line flags (``--max_batch_size``) and are also
read from the environment (``TWEETCLS_MAX_BATCH_SIZE``); a flag beats its variable, which beats
the default. :func:`parse_command_line` turns a bad value, an unknown flag or a missing one into
one :class:`~tweetcls.core.errors.ConfigError` naming the flag (the dispatcher prints it as one
``error: ...`` line, exit code 2).

:class:`RequestLogSettings` holds the fields both commands share: the request log's database
and the fewest predictions a drift verdict needs.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, CliApp, CliSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from tweetcls.core.errors import ConfigError

#: Prefix of the environment variables of every setting (``TWEETCLS_PORT``).
ENV_PREFIX = "TWEETCLS_"
DEFAULT_DATABASE_URL = "sqlite:///runs/serving/requests.db"
#: Fewest logged predictions for a drift verdict (service and ``tweetcls drift``).
DRIFT_MIN_SAMPLES = 100
#: ``json_schema_extra`` of a field whose value an error message must not repeat (passwords).
UNECHOED = {"echo": False}

SettingsT = TypeVar("SettingsT", bound="CommandSettings")
#: The password of a URL (``scheme://user:password@host``), hidden in error messages.
_PASSWORD = re.compile(r"://([^:/@\s]*):[^@\s]*@")


class CommandSettings(BaseSettings):
    """Base of a command's settings: frozen, ``TWEETCLS_*`` variables, underscore flags."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        use_attribute_docstrings=True,
        frozen=True,
        extra="forbid",
        cli_kebab_case=False,
        cli_exit_on_error=False,
        cli_hide_none_type=True,
        cli_avoid_json=True,
        cli_show_env_vars=True,
    )


class RequestLogSettings(CommandSettings):
    """The request log and the drift verdict, shared by ``serve`` and ``drift``."""

    database_url: str = Field(DEFAULT_DATABASE_URL, json_schema_extra=UNECHOED)
    """Request log database: sqlite:///FILE or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB."""
    drift_min_samples: int = Field(DRIFT_MIN_SAMPLES, ge=1)
    """Fewest logged predictions for a drift verdict (fewer: "insufficient data")."""

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        from tweetcls.monitoring.logtable import parse_database_url

        parse_database_url(value)  # ConfigError (a ValueError) names the problem
        return value


def _add_argument(parser: Any, *args: Any, **kwargs: Any) -> Any:
    """argparse's ``add_argument``; a bool flag takes an optional value (``--log_text [true]``)."""
    if kwargs.get("metavar") == "bool":
        kwargs.update(nargs="?", const="true")
    return parser.add_argument(*args, **kwargs)


def parse_command_line(
    settings_cls: type[SettingsT], args: Sequence[str] | None, prog: str
) -> SettingsT:
    """``settings_cls`` from flags (``args``, default ``sys.argv[1:]``), environment, defaults.

    ``--help`` prints every flag with its help and exits 0.

    Raises:
        ConfigError: one line naming the flag of each bad, missing or unknown value.
    """
    source = CliSettingsSource(settings_cls, cli_prog_name=prog, add_argument_method=_add_argument)
    source.root_parser.description = inspect.cleandoc(settings_cls.__doc__ or "")
    argv = list(sys.argv[1:] if args is None else args)
    try:
        return CliApp.run(settings_cls, cli_args=argv, cli_settings_source=source)
    except ValidationError as err:
        raise ConfigError(describe(err, settings_cls)) from None
    except SettingsError as err:
        message = _PASSWORD.sub(r"://\1:***@", str(err).removeprefix("error parsing CLI: "))
        raise ConfigError(f"{message} (see {prog} --help)") from None


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
            messages.append(f"{flag}: required (or set {ENV_PREFIX}{name.upper()})")
            continue
        field = settings_cls.model_fields.get(name)
        echo = field is None or field.json_schema_extra != UNECHOED
        shown = f" {error['input']!r}" if echo and "input" in error else ""
        messages.append(f"{flag}{shown}: {reason}")
    return "; ".join(dict.fromkeys(messages))
