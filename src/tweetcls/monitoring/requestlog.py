"""The request log: one database row per prediction, written off the caller's thread.

:meth:`RequestLog.record` only puts records on a bounded queue, so it never blocks the HTTP
event loop; a background thread takes them off in batches and bulk-inserts each batch in one
transaction. When the queue is full the records are dropped and counted in
:attr:`RequestLog.dropped` (the service exports it as ``tweetcls_request_log_dropped_total``).

The database is an SQLite file by default (created with its parent directories, WAL journal so
that a reader, e.g. ``tweetcls drift``, never blocks the writer) or PostgreSQL by URL
(``postgresql+psycopg://user:password@host:port/dbname``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from tweetcls.core.errors import ConfigError

logger = logging.getLogger(__name__)

#: Table holding one row per prediction.
TABLE_NAME = "prediction_log"
#: Most rows per bulk insert.
BATCH_SIZE = 500
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


def _utc(moment: datetime) -> datetime:
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
        return sa.create_engine(parsed, pool_pre_ping=True)
    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


class RequestLog:
    """Asynchronous, bounded writer and reader of the prediction log.

    Args:
        url: SQLAlchemy database URL (``sqlite:///runs/serving/requests.db``,
            ``postgresql+psycopg://user:password@host:5432/db``).
        log_text: store the submitted texts too (else the ``text`` column stays empty).
        queue_size: records that may wait for the writer; more are dropped and counted.

    Raises:
        ConfigError: the URL is malformed or unsupported, or the database is unreachable.
    """

    def __init__(self, url: str, log_text: bool = False, queue_size: int = 10000) -> None:
        if queue_size < 1:
            raise ConfigError(f"request log: queue_size must be >= 1, got {queue_size}")
        self.log_text = log_text
        self.engine = create_log_engine(url)
        self.url = self.engine.url.render_as_string(hide_password=True)
        try:
            metadata.create_all(self.engine)
        except (SQLAlchemyError, NoSuchModuleError, OSError) as err:
            self.engine.dispose()
            reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
            raise ConfigError(f"request log: cannot open database {self.url}: {reason}") from None
        self._queue: queue.Queue[PredictionRecord | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._dropped = 0
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name="request-log", daemon=True)
        self._writer.start()

    @property
    def dropped(self) -> int:
        """Records lost so far: queue full, log closed, or a failed insert."""
        return self._dropped

    def _drop(self, count: int) -> None:
        with self._lock:
            self._dropped += count

    def record(self, records: Iterable[PredictionRecord]) -> None:
        """Queue ``records`` for writing; never blocks (full queue: drop and count)."""
        for item in records:
            if self._closed:
                self._drop(1)
                continue
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self._drop(1)

    def _row(self, item: PredictionRecord) -> dict[str, Any]:
        row = asdict(item)
        row["time"] = _utc(item.time)
        row["label"] = int(item.label)
        row["probability"] = float(item.probability)
        if not self.log_text:
            row["text"] = None
        return row

    def _write_loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            batch = [first]
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is None for item in batch)
            rows = [self._row(item) for item in batch if item is not None]
            try:
                if rows:
                    with self.engine.begin() as connection:
                        connection.execute(sa.insert(prediction_log), rows)
            except SQLAlchemyError:
                logger.exception("request log: dropped %d records: insert failed", len(rows))
                self._drop(len(rows))
            finally:
                for _ in batch:
                    self._queue.task_done()

    def flush(self) -> None:
        """Wait until every queued record is written (or counted as dropped)."""
        if self._writer.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Write what is queued, stop the writer and release the database; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)  # blocks only until the writer makes room
        self._writer.join()
        self.engine.dispose()

    def __enter__(self) -> RequestLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def read(self, since: datetime, until: datetime | None = None) -> pd.DataFrame:
        """Logged predictions with ``since <= time < until`` (default: up to now), oldest first.

        Returns a frame with :data:`COLUMNS`; ``time`` is timezone-aware UTC. Naive datetimes
        are taken as UTC.
        """
        start = _utc(since)
        end = _utc(until) if until is not None else datetime.now(timezone.utc)
        if end <= start:
            raise ConfigError(f"request log: until ({end.isoformat()}) is not after since")
        columns = [prediction_log.c[name] for name in COLUMNS]
        query = (
            sa.select(*columns)
            .where(prediction_log.c.time >= start, prediction_log.c.time < end)
            .order_by(prediction_log.c.time, prediction_log.c.id)
        )
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(query).all()
        except SQLAlchemyError as err:
            reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
            raise ConfigError(f"request log: cannot read {self.url}: {reason}") from None
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame
