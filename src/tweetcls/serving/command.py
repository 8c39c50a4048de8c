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
import os
import sys
from typing import Any

from tweetcls.core.commands import PROG, command_name
from tweetcls.serving.settings import ServeSettings


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
    argv = [sys.executable, "-m", PROG, command_name(__name__)]
    for name, value in flags.items():
        if value is not None:
            text = str(value).lower() if isinstance(value, bool) else str(value)
            argv += [f"--{name}", text]
    return argv


def worker_settings(settings: ServeSettings, cpus: int) -> ServeSettings:
    """``settings`` of one of ``settings.workers`` processes sharing ``cpus`` CPUs.

    With several workers and no ``--threads``, each worker's backend gets an equal share of
    the CPUs (at least one thread), so that they do not oversubscribe the cores.
    """
    if settings.workers == 1 or settings.threads is not None:
        return settings
    return settings.model_copy(update={"threads": max(1, cpus // settings.workers)})


def main(args: list[str] | None = None, prog: str = "tweetcls serve") -> None:
    """Parse the flags, load the model and serve until interrupted (SIGINT/SIGTERM drain).

    With ``--workers N`` (N > 1) the model is loaded here once as a check, then N worker
    processes (:mod:`tweetcls.serving.workers`, one ``SO_REUSEPORT`` socket each) receive the
    checked settings and load their own copy; the supervisor restarts a worker that dies and
    passes SIGTERM on to every worker.
    """
    from tweetcls.monitoring.settings import parse_command_line
    from tweetcls.serving.loading import load_model

    settings = parse_command_line(ServeSettings, args, prog)
    settings = worker_settings(settings, len(os.sched_getaffinity(0)))
    # a micro-batch is tokenized in one call: the tokenizer's own thread pool only competes
    # with the model's threads and the event loop for the cores (measured: docs/results.md,
    # *Serving levers*); workers inherit it, and a value the operator set is kept
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    model = load_model(settings)  # ConfigError (one line, exit 2) before uvicorn starts

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.main import STARTUP_FAILURE

    from tweetcls.serving.app import create_app
    from tweetcls.serving.server import GracefulServer

    log_config = copy.deepcopy(LOGGING_CONFIG)  # uvicorn's, plus this package's own messages
    log_config["loggers"]["tweetcls"] = {
        "handlers": ["default"],
        "level": settings.log_level.upper(),
        "propagate": False,
    }
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": settings.access_log,
        "log_level": settings.log_level,
        "log_config": log_config,
        "timeout_graceful_shutdown": settings.shutdown_timeout_s,
    }
    if settings.workers > 1:
        del model  # each worker loads its own
        sys.exit(_run_workers(settings, options))
    server = GracefulServer(uvicorn.Config(create_app(settings, model), **options))
    server.run()
    if not server.started:  # uvicorn logged why (e.g. the port is taken)
        sys.exit(STARTUP_FAILURE)


def _run_workers(settings: ServeSettings, options: dict[str, Any]) -> int:
    """Serve with ``settings.workers`` processes (:mod:`tweetcls.serving.workers`); the exit code.

    The port is bound here first (``--port 0``: a free one), which holds it for the workers and
    turns a taken port into one error line.

    Raises:
        ConfigError: the port cannot be bound.
    """
    import logging.config

    from tweetcls.core.errors import ConfigError
    from tweetcls.serving.workers import Supervisor, reuse_port_socket

    try:
        reservation = reuse_port_socket(settings.host, settings.port)
    except OSError as err:
        raise ConfigError(f"--port {settings.port}: {err.strerror}") from None
    logging.config.dictConfig(options["log_config"])  # the supervisor's own messages
    with reservation:
        port = reservation.getsockname()[1]
        settings = settings.model_copy(update={"port": port})
        return Supervisor(settings, {**options, "port": port}).run()
