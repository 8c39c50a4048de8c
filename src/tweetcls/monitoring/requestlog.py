"""The request log: one database row per prediction, written off the caller's thread.

:meth:`RequestLog.record` only puts records on a bounded queue, so it never blocks the HTTP
event loop; a background thread takes them off in batches and bulk-inserts each batch in one
transaction. When the queue is full the records are dropped and counted in
:attr:`RequestLog.dropped` (the service exports it as ``tweetcls_request_log_dropped_total``).
An unreachable database is an outage, not an error: the writer holds its batch and retries with
backoff while :attr:`RequestLog.status` says ``degraded``.

Each record carries the prediction id the service answered with (chosen before the record is
queued), so :meth:`RequestLog.add_feedback` can find its row once it is written. Feedback is
written at once, in the caller's thread (the service runs it in its thread pool), not queued:
its answer says what the database holds.

The database, its tables, their migrations and the URL checks are
:mod:`tweetcls.monitoring.logtable`'s.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import (
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from tweetcls.core.errors import ConfigError, TweetclsError
from tweetcls.monitoring.logtable import (
    COLUMNS,
    Feedback,
    PredictionRecord,
    create_log_engine,
    create_schema,
    prediction_log,
    store_feedback,
    utc,
)

logger = logging.getLogger(__name__)

#: Most rows per bulk insert.
BATCH_SIZE = 500


#: What PostgreSQL answers a connection it refuses for its configuration (bad credentials,
#: unknown role or database, no pg_hba.conf entry): a mistake to report at start, not an
#: outage. psycopg gives these no SQLSTATE, so the server's message is matched.
_REFUSALS = (
    "password authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "permission denied",
)


def _reason(err: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's wrapping."""
    return str(getattr(err, "orig", None) or err).strip().splitlines()[0]


def is_outage(err: SQLAlchemyError) -> bool:
    """Whether ``err`` means the database cannot be reached now (retry later), as opposed to
    a bad statement or row (retrying would fail again).

    SQLite reports both kinds as ``OperationalError``: only a locked or busy file counts.
    """
    if getattr(err, "connection_invalidated", False):
        return True
    if isinstance(getattr(err, "orig", None), sqlite3.Error):
        return any(word in _reason(err) for word in ("locked", "busy"))
    return isinstance(err, OperationalError | InterfaceError)


class RequestLogUnavailable(TweetclsError):
    """The request-log database cannot be reached right now."""


class RequestLog:
    """Asynchronous, bounded writer and reader of the prediction log that rides out outages.

    :meth:`record` never blocks: it queues records for a writer thread. When the database
    goes away the writer keeps the batch it holds, retries with exponential backoff
    (``retry_s``) and reports :attr:`status` ``"degraded"``; new records wait in the queue
    meanwhile, and those that find it full are dropped and counted (:attr:`dropped`). A
    PostgreSQL server that is unreachable at start is an outage too (the table is created on
    reconnection); a URL that cannot work (scheme, driver, credentials, unknown database) and
    an SQLite file that cannot be opened are a :class:`ConfigError` at once.

    Args:
        url: SQLAlchemy database URL (``sqlite:///runs/serving/requests.db``,
            ``postgresql+psycopg://user:password@host:5432/db``).
        log_text: store the submitted texts too (else the ``text`` column stays empty).
        queue_size: records that may wait for the writer; more are dropped and counted.
        retry_s: first and longest wait between reconnection attempts, in seconds.

    Raises:
        ConfigError: the URL is malformed, unsupported or refused, or the SQLite file cannot
            be opened.
    """

    def __init__(
        self,
        url: str,
        log_text: bool = False,
        queue_size: int = 10000,
        retry_s: tuple[float, float] = (0.25, 10.0),
    ) -> None:
        if queue_size < 1:
            raise ConfigError(f"request log: queue_size must be >= 1, got {queue_size}")
        if not 0 < retry_s[0] <= retry_s[1]:
            raise ConfigError(f"request log: retry_s must be 0 < first <= longest, got {retry_s}")
        self.log_text = log_text
        self.retry_s = retry_s
        self.engine = create_log_engine(url)
        self.url = self.engine.url.render_as_string(hide_password=True)
        self._queue: queue.Queue[PredictionRecord] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._dropped = 0
        self._closed = False
        self._stop = threading.Event()
        self._deadline = float("inf")  # monotonic time by which close gives up on an outage
        self._schema_ready = False
        self.last_error: str | None = None
        try:
            self._create_schema()
        except (SQLAlchemyError, NoSuchModuleError, OSError) as err:
            sqlite = self.engine.url.get_backend_name() == "sqlite"
            refused = any(words in _reason(err) for words in _REFUSALS)
            if sqlite or refused or not isinstance(err, SQLAlchemyError) or not is_outage(err):
                self.engine.dispose()
                raise ConfigError(
                    f"request log: cannot open database {self.url}: {_reason(err)}"
                ) from None
            self.last_error = _reason(err)
            logger.warning(
                "request log: %s unreachable (%s); records wait in memory until it is back",
                self.url,
                self.last_error,
            )
        self._writer = threading.Thread(target=self._write_loop, name="request-log", daemon=True)
        self._writer.start()

    @property
    def dropped(self) -> int:
        """Records lost so far: queue full, log closed, a rejected insert, or an outage that
        outlasted :meth:`close`'s timeout."""
        return self._dropped

    @property
    def status(self) -> str:
        """``"ok"``, or ``"degraded"`` while the database cannot be reached."""
        return "degraded" if self.last_error is not None else "ok"

    def _drop(self, count: int) -> None:
        with self._lock:
            self._dropped += count

    def record(self, records: Iterable[PredictionRecord]) -> None:
        """Queue ``records`` for writing; never blocks (full queue or closed: drop and count)."""
        for item in records:
            if self._closed:
                self._drop(1)
                continue
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self._drop(1)

    def _row(self, item: PredictionRecord) -> dict[str, Any]:
        row = dict(vars(item))  # not asdict(): it deep-copies every field (the hot path)
        row["time"] = utc(item.time)
        row["label"] = int(item.label)
        row["probability"] = float(item.probability)
        if not self.log_text:
            row["text"] = None
        return row

    def _create_schema(self) -> None:
        """Create the tables (and their indexes) that are missing; upgrade older ones in place
        (:func:`~tweetcls.monitoring.logtable.create_schema`, safe when workers race)."""
        added = create_schema(self.engine)
        if added:
            logger.info("request log: upgraded %s: added %s", self.url, ", ".join(added))
        self._schema_ready = True

    def _insert(self, rows: list[dict[str, Any]]) -> bool:
        """Write ``rows`` in one transaction; ``False``: the database is unreachable (retry).

        A rejected insert (not an outage) drops the rows and counts them. No rows: a probe
        (``SELECT 1``) that tells whether the database is back.
        """
        try:
            if not self._schema_ready:
                self._create_schema()
            with self.engine.begin() as connection:
                if rows:
                    connection.execute(sa.insert(prediction_log), rows)
                else:
                    connection.execute(sa.select(1))
        except SQLAlchemyError as err:
            if is_outage(err):
                if self.last_error is None:
                    logger.warning("request log: %s unreachable: %s", self.url, _reason(err))
                self.last_error = _reason(err)
                return False
            logger.exception("request log: dropped %d records: insert failed", len(rows))
            self._drop(len(rows))
        if self.last_error is not None:
            logger.warning("request log: %s reachable again", self.url)
            self.last_error = None
        return True

    def _take(self) -> list[PredictionRecord]:
        """Up to :data:`BATCH_SIZE` queued records, waiting a little for the first."""
        try:
            batch = [self._queue.get(timeout=self.retry_s[0])]
        except queue.Empty:
            return []
        while len(batch) < BATCH_SIZE:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        delay = self.retry_s[0]
        while True:
            batch = self._take()
            if not batch:
                if self._stop.is_set():
                    return
                if self.last_error is not None and self._insert([]):  # idle: probe
                    delay = self.retry_s[0]
                continue
            rows = [self._row(item) for item in batch]
            while True:
                if self.last_error is not None and time.monotonic() >= self._deadline:
                    self._drop(len(rows))  # closing, and the outage outlasted close's timeout
                    break
                if self._insert(rows):
                    delay = self.retry_s[0]
                    break
                wait = min(delay, max(0.0, self._deadline - time.monotonic()))
                if self._stop.is_set():
                    time.sleep(wait)
                else:
                    self._stop.wait(wait)  # close() wakes it for a last attempt
                delay = min(2 * delay, self.retry_s[1])
            for _ in batch:
                self._queue.task_done()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued record is written or dropped; ``False`` on timeout (e.g.
        during an outage)."""
        done = self._queue.all_tasks_done
        with done:
            return done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the writer and release the database; idempotent.

        During an outage the writer keeps retrying for up to ``timeout`` seconds, then drops
        and counts what it could not write.
        """
        if self._closed:
            return
        self._closed = True
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._writer.join()
        for _ in range(self._queue.qsize()):  # left behind by an outage
            self._queue.get_nowait()
            self._drop(1)
            self._queue.task_done()
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
        start = utc(since)
        end = utc(until) if until is not None else datetime.now(timezone.utc)
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
            if is_outage(err):
                raise RequestLogUnavailable(
                    f"request log: cannot read {self.url}: {_reason(err)}"
                ) from None
            raise ConfigError(f"request log: cannot read {self.url}: {_reason(err)}") from None
        frame = pd.DataFrame(rows, columns=list(COLUMNS))
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame

    def add_feedback(self, prediction_id: str, label: int, note: str | None = None) -> Feedback:
        """Store that the prediction ``prediction_id`` was wrong and ``label`` is right, at
        once (:func:`~tweetcls.monitoring.logtable.store_feedback`: its rules, idempotent).

        Raises:
            UnknownPrediction: no written record has this id (see :meth:`flush`).
            FeedbackConflict: ``label`` is the model's own, or the prediction was already
                corrected to the other label.
            RequestLogUnavailable: the database cannot be reached, or the log is closed.
        """
        if self._closed:
            raise RequestLogUnavailable("request log: closed (the service is shutting down)")
        try:
            if not self._schema_ready:
                self._create_schema()
            return store_feedback(self.engine, prediction_id, label, note)
        except SQLAlchemyError as err:
            what = f"request log: cannot write feedback to {self.url}: {_reason(err)}"
            if is_outage(err):
                raise RequestLogUnavailable(what) from None
            raise ConfigError(what) from None
