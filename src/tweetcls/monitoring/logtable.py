"""The request log's database: its tables, one record per prediction, and the URL checks.

The database is an SQLite file by default (created with its parent directories, WAL journal so
that a reader, e.g. ``tweetcls drift``, never blocks the writer) or PostgreSQL by URL
(``postgresql+psycopg://user:password@host:port/dbname``). Several service replicas may share
one PostgreSQL database: each row is one prediction, whichever replica made it.

Tables: ``prediction_log`` (one row per prediction; its ``prediction_id`` is the id the service
answers with, chosen before the row is written, since rows are written in batches off the
request's thread) and ``prediction_feedback`` (at most one correction per prediction, from
``POST /feedback``). :func:`create_schema` creates what is missing and upgrades a database of
an older version in place (:data:`MIGRATIONS`), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError

from tweetcls.core.errors import ConfigError, TweetclsError

#: Table holding one row per prediction.
TABLE_NAME = "prediction_log"
#: Table holding the corrections of logged predictions (``POST /feedback``).
FEEDBACK_TABLE_NAME = "prediction_feedback"
#: Characters of a prediction id: a UUID in its canonical form.
PREDICTION_ID_LENGTH = 36
#: Longest feedback note.
MAX_NOTE_CHARS = 1000
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
    # added by a migration (MIGRATIONS): null in the rows of older versions
    sa.Column("prediction_id", sa.String(PREDICTION_ID_LENGTH), nullable=True),
    sa.Index("ix_prediction_log_prediction_id", "prediction_id", unique=True),
)
prediction_feedback = sa.Table(
    FEEDBACK_TABLE_NAME,
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    # no foreign key: the log may be pruned by age, and its corrections kept
    sa.Column("prediction_id", sa.String(PREDICTION_ID_LENGTH), nullable=False, unique=True),
    sa.Column("label", sa.SmallInteger, nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("time", sa.DateTime(timezone=True), nullable=False, index=True),
)


@dataclass(frozen=True)
class Migration:
    """One column added to a table of an older database, with its index.

    Args:
        table: The table.
        column: The new column (nullable: old rows get null).
        index: ``CREATE [UNIQUE] INDEX IF NOT EXISTS`` statement for it, or ``None``.
    """

    table: str
    column: str
    index: str | None = None


#: The upgrades of older databases, oldest first: each adds a column its table lacks.
MIGRATIONS = (
    Migration(
        TABLE_NAME,
        "prediction_id",
        f"CREATE UNIQUE INDEX IF NOT EXISTS ix_prediction_log_prediction_id "
        f"ON {TABLE_NAME} (prediction_id)",
    ),
)


def _missing_columns(engine: Engine) -> list[Migration]:
    inspector = sa.inspect(engine)
    missing = []
    for migration in MIGRATIONS:
        present = {column["name"] for column in inspector.get_columns(migration.table)}
        if migration.column not in present:
            missing.append(migration)
    return missing


def _migrate(engine: Engine) -> list[str]:
    """Create missing tables, add missing columns; the ``table.column`` names added."""
    metadata.create_all(engine)
    done = []
    for migration in _missing_columns(engine):
        column = metadata.tables[migration.table].c[migration.column]
        kind = column.type.compile(dialect=engine.dialect)
        with engine.begin() as connection:
            connection.execute(
                sa.text(f"ALTER TABLE {migration.table} ADD COLUMN {migration.column} {kind}")
            )
            if migration.index:
                connection.execute(sa.text(migration.index))
        done.append(f"{migration.table}.{migration.column}")
    return done


def create_schema(engine: Engine) -> list[str]:
    """Create the tables (and indexes) that are missing and upgrade older ones in place.

    An existing database keeps its rows: an older ``prediction_log`` gains the
    ``prediction_id`` column (null in its old rows) and its unique index; the feedback table
    is created beside it. Server workers open one database at the same moment: another may
    create a table or add a column between this one's check and its statement, which then fails
    ("already exists", "duplicate column"); the second attempt finds the work done and does
    nothing, and a failure that was not that race fails again and is raised.

    Returns:
        The ``table.column`` names this call added (empty: nothing to upgrade).
    """
    try:
        return _migrate(engine)
    except (OperationalError, ProgrammingError, IntegrityError):
        return _migrate(engine)


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
        prediction_id: the id the service answered with (a UUID), for ``POST /feedback``;
            ``None`` for predictions nobody can refer to (CSV uploads).
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
    prediction_id: str | None = None


class UnknownPrediction(TweetclsError):
    """No logged prediction has this id (never made, not written yet, or dropped)."""


class FeedbackConflict(TweetclsError):
    """The feedback contradicts the prediction's own label or an earlier correction."""


@dataclass(frozen=True)
class Feedback:
    """One stored correction and the prediction it corrects.

    Args:
        prediction_id: The prediction's id.
        label: The right label (1 = disaster).
        note: The reviewer's note, if any.
        time: When the correction was stored (UTC).
        predicted_label: The label the model gave.
        probability: The model's probability of "disaster".
        model_version: The model that answered.
        created: ``True``: stored by this call; ``False``: the same correction was there.
    """

    prediction_id: str
    label: int
    note: str | None
    time: datetime
    predicted_label: int
    probability: float
    model_version: str
    created: bool


def _stored_feedback(connection: sa.Connection, prediction_id: str) -> Feedback | None:
    log, fb = prediction_log.c, prediction_feedback.c
    query = (
        sa.select(fb.label, fb.note, fb.time, log.label, log.probability, log.model_version)
        .select_from(
            prediction_feedback.join(prediction_log, fb.prediction_id == log.prediction_id)
        )
        .where(fb.prediction_id == prediction_id)
    )
    row = connection.execute(query).first()
    if row is None:
        return None
    return Feedback(prediction_id, row[0], row[1], utc(row[2]), row[3], row[4], row[5], False)


def store_feedback(engine: Engine, prediction_id: str, label: int, note: str | None) -> Feedback:
    """Store that the logged prediction ``prediction_id`` was wrong and ``label`` is right.

    Idempotent: the same correction again changes nothing and returns the stored one
    (``created`` false, its first note kept). Two requests storing at once: the unique
    ``prediction_id`` lets one in; the other reads what it stored and answers as if it came
    second.

    Raises:
        UnknownPrediction: no row of the log has this id.
        FeedbackConflict: ``label`` is the label the model gave (nothing to correct), or the
            prediction was already corrected to the other label.
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    log = prediction_log.c
    try:
        with engine.begin() as connection:
            stored = _stored_feedback(connection, prediction_id)
            if stored is None:
                query = sa.select(log.label, log.probability, log.model_version)
                row = connection.execute(query.where(log.prediction_id == prediction_id)).first()
                if row is None:
                    raise UnknownPrediction(f"prediction_id: no logged prediction {prediction_id}")
                if int(row[0]) == label:
                    raise FeedbackConflict(
                        f"label: prediction {prediction_id} already has label {label}; "
                        "feedback corrects a wrong prediction"
                    )
                now = datetime.now(timezone.utc)
                values = {"prediction_id": prediction_id, "label": label, "note": note}
                connection.execute(sa.insert(prediction_feedback), {**values, "time": now})
                return Feedback(prediction_id, label, note, now, *row, created=True)
    except IntegrityError:  # another request stored a correction of it meanwhile
        with engine.connect() as connection:
            stored = _stored_feedback(connection, prediction_id)
        if stored is None:
            raise
    if stored.label != label:
        raise FeedbackConflict(
            f"label: prediction {prediction_id} was already corrected to label "
            f"{stored.label} at {stored.time.isoformat()}"
        )
    return stored


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
