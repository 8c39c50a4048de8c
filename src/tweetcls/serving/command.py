"""``python -m tweetcls serve``: run the prediction service with uvicorn.

Checks the model directory, backend file and database URL first (a mistake is one
``error: ...`` line, exit code 2), then runs :func:`tweetcls.serving.app.create_app` under
uvicorn with uvloop and httptools, access log off unless ``--access-log``.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from tweetcls.core.errors import ConfigError
from tweetcls.serving.settings import BACKEND_CHOICES, DEFAULT_DATABASE_URL, Settings


def build_parser(prog: str = "tweetcls serve") -> argparse.ArgumentParser:
    """The ``serve`` command's argument parser."""
    defaults = Settings(model=Path("."))
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a model over HTTP: POST /predict (one tweet or a batch), "
        "POST /predict/csv, GET /health, /ready, /version, /metrics (Prometheus), /drift, "
        "the web page at / and the API docs at /docs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--model", type=Path, required=True, help="serving bundle (`tweetcls export`) or model dir")
    add("--backend", choices=BACKEND_CHOICES, default=defaults.backend, help="inference backend")
    add("--host", default=defaults.host, help="interface to bind (0.0.0.0: all)")
    add("--port", type=int, default=defaults.port, help="TCP port")
    add("--max-batch-size", type=int, default=defaults.max_batch_size, help="tweets per model call")
    add(
        "--max-wait-ms",
        type=float,
        default=defaults.max_wait_ms,
        help="longest a tweet waits for others to join its micro-batch",
    )
    add("--max-items", type=int, default=defaults.max_items, help="tweets per POST /predict")
    add("--max-chars", type=int, default=defaults.max_chars, help="characters per tweet text")
    add(
        "--max-queue",
        type=int,
        default=defaults.max_queue,
        help="tweets waiting for the model before requests get 503",
    )
    add(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="request log: sqlite:///FILE or postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB",
    )
    add("--log-text", action="store_true", help="store tweet texts in the request log")
    add("--threads", type=int, default=None, help="backend intra-op threads; None: runtime picks")
    add("--max-csv-rows", type=int, default=defaults.max_csv_rows, help="rows per CSV upload")
    add("--max-csv-bytes", type=int, default=defaults.max_csv_bytes, help="bytes per CSV upload")
    add(
        "--drift-interval",
        type=float,
        default=defaults.drift_interval_s,
        help="seconds between background drift checks (0: off)",
    )
    add(
        "--drift-window",
        type=float,
        default=defaults.drift_window_h,
        help="hours of traffic a drift check looks at (GET /drift default too)",
    )
    add(
        "--drift-min-samples",
        type=int,
        default=defaults.drift_min_samples,
        help="fewest logged predictions for a drift verdict",
    )
    add("--access-log", action="store_true", help="log every request (costs throughput)")
    add(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default=defaults.log_level,
        help="uvicorn log level",
    )
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """:class:`Settings` from parsed arguments (raises ConfigError on bad values)."""
    return Settings(
        model=args.model,
        backend=args.backend,
        host=args.host,
        port=args.port,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_items=args.max_items,
        max_chars=args.max_chars,
        max_queue=args.max_queue,
        database_url=args.database_url,
        log_text=args.log_text,
        threads=args.threads,
        max_csv_rows=args.max_csv_rows,
        max_csv_bytes=args.max_csv_bytes,
        drift_interval_s=args.drift_interval,
        drift_window_h=args.drift_window,
        drift_min_samples=args.drift_min_samples,
        access_log=args.access_log,
        log_level=args.log_level,
    )


def preflight(settings: Settings) -> None:
    """Fail fast, with one clear message, on a bad model directory, backend or database URL."""
    from tweetcls.core.bundle import load_bundle
    from tweetcls.monitoring.requestlog import parse_database_url

    bundle = load_bundle(settings.model)
    model_file = bundle.backend_file(settings.backend)
    if not model_file.is_file():
        available = ", ".join(bundle.available_backends()) or "none"
        raise ConfigError(
            f"--backend {settings.backend}: {model_file} not found (available: {available}; "
            "build a bundle with `tweetcls export`)"
        )
    parse_database_url(settings.database_url)


def main(argv: list[str] | None = None, prog: str = "tweetcls serve") -> None:
    """Parse the flags, check them and serve until interrupted (SIGINT/SIGTERM drain)."""
    args = build_parser(prog).parse_args(argv)
    settings = settings_from_args(args)
    preflight(settings)

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
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=settings.access_log,
        log_level=settings.log_level,
        log_config=log_config,
        timeout_graceful_shutdown=30,
    )
