"""The request log's database: its table, one record per prediction, and the URL checks.

The database is an SQLite file by default (created with its parent directories, WAL journal so
that a reader, e.g. ``tweetcls drift``, never blocks the writer) or PostgreSQL by URL
(``postgresql+psycopg://user:password@host:port/dbname``). Several service replicas may share
one PostgreSQL database: each row is one prediction, whichever replica made it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from tweetcls.core.errors import ConfigError

#: Table holding one row per prediction.
TABLE_NAME = "prediction_log"
#: Columns of :meth:`RequestLog.read`'s frame, in order.
COLUMNS = (
    "time",
    "text_length",
    "token_count",
    "keyword",
    "probability",
    "label",
    "latency_ms",
    "model_version",
    "backend",
    "text",
)

metadata = sa.MetaData()
prediction_log = sa.Table(
    TABLE_NAME,
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("text_length", sa.Integer, nullable=False),
    sa.Column("token_count", sa.Integer, nullable=True),
    sa.Column("keyword", sa.Text, nullable=True),
    sa.Column("probability", sa.Float, nullable=False),
    sa.Column("label", sa.SmallInteger, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("backend", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=True),
)


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as the request log stores it.

    Args:
        time: when the prediction was made (timezone-aware; stored in UTC).
        text_length: characters of the submitted text.
        token_count: tokens of the model input.
        keyword: the keyword sent with the text, if any.
        probability: probability of "disaster".
        label: 1 for disaster, else 0.
        latency_ms: time from the request's arrival to its answer, in milliseconds.
        model_version: the bundle's version.
        backend: the backend that ran the model (``onnx-int8``, ``onnx``, ``pytorch``).
        text: the submitted text; stored only when the log was opened with ``log_text``.
    """

    time: datetime
    text_length: int
    token_count: int
    keyword: str | None
    probability: float
    label: int
    latency_ms: float
    model_version: str
    backend: str
    text: str | None = None


def utc(moment: datetime) -> datetime:
    """Aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_database_url(url: str) -> URL:
    """Parse and check a request-log database URL (``sqlite:///path`` or ``postgresql://``).

    ``postgresql://`` without a driver means psycopg 3, the driver installed with the service.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"request log: database URL {url!r} is not a URL (expected sqlite:///path/to/file.db "
            "or postgresql+psycopg://user:password@host:port/dbname)"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    shown = parsed.render_as_string(hide_password=True)
    if backend == "postgresql":
        if driver not in ("psycopg", "postgresql"):  # "postgresql" = no driver given
            raise ConfigError(f"request log: {shown}: use the psycopg driver (postgresql+psycopg)")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ConfigError(f"request log: {shown}: give an SQLite file (sqlite:///path/to.db)")
        return parsed
    raise ConfigError(f"request log: {shown}: unsupported database (use sqlite or postgresql)")


def create_log_engine(url: str) -> Engine:
    """Engine for ``url``: SQLite files get parent directories and the WAL journal."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() != "sqlite":
        # an unreachable host fails within seconds instead of the TCP timeout (minutes)
        connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 5}
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    folder = Path(parsed.database).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        shown = parsed.render_as_string(hide_password=True)
        reason = f"{err.strerror}: {folder}"
        raise ConfigError(f"request log: cannot open database {shown}: {reason}") from None
    engine = sa.create_engine(parsed, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine
