"""``python -m tweetcls serve``: run the prediction service with uvicorn.

The flags come from :class:`~tweetcls.serving.settings.ServeSettings` (``tweetcls serve --help``
lists them); each can also be set by its ``TWEETCLS_*`` variable, as the API image does
(``TWEETCLS_MODEL``, ``TWEETCLS_HOST``). Before uvicorn starts, the settings are checked and the
model is loaded and verified (bundle files, the backend file's SHA-256, tokenizer): a mistake is
one ``error: ...`` line, exit code 2. Then :func:`tweetcls.serving.app.create_app` runs under
uvicorn with uvloop and httptools, access log off unless ``--access_log``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

from tweetcls.serving.settings import ServeSettings


def command_name() -> str:
    """This command's name in the :data:`tweetcls.cli.COMMANDS` registry (``serve``)."""
    from tweetcls.cli import COMMANDS

    return next(name for name, command in COMMANDS.items() if command.module == __name__)


def serve_argv(**flags: Any) -> list[str]:
    """The command line that starts the service with this interpreter, with ``flags``.

    ``serve_argv(model=path, port=8001)`` is ``[python, -m, tweetcls, serve, --model, path,
    --port, 8001]``; ``None`` values are left out (their defaults apply), booleans are
    ``true``/``false``. Benchmarks and tests start the service with it.

    Raises:
        ValueError: a name that is not a field of :class:`ServeSettings`.
    """
    unknown = sorted(set(flags) - set(ServeSettings.model_fields))
    if unknown:
        raise ValueError(f"not flags of `tweetcls serve`: {', '.join(unknown)}")
    argv = [sys.executable, "-m", "tweetcls", command_name()]
    for name, value in flags.items():
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            argv += [f"--{name}", text]
    return argv


def main(args: list[str] | None = None, prog: str = "tweetcls serve") -> None:
    """Parse the flags, load the model and serve until interrupted (SIGINT/SIGTERM drain)."""
    from tweetcls.monitoring.settings import parse_command_line
    from tweetcls.serving.loading import load_model

    settings = parse_command_line(ServeSettings, args, prog)
    model = load_model(settings)  # ConfigError (one line, exit 2) before uvicorn starts

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from tweetcls.serving.app import create_app

    log_config = copy.deepcopy(LOGGING_CONFIG)  # uvicorn's, plus this package's own messages
    log_config["loggers"]["tweetcls"] = {
        "handlers": ["default"],
        "level": settings.log_level.upper(),
        "propagate": False,
    }
    uvicorn.run(
        create_app(settings, model),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=settings.access_log,
        log_level=settings.log_level,
        log_config=log_config,
        timeout_graceful_shutdown=30,
    )
