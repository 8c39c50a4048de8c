"""The request log on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy as sa
from helpers.polling import eventually
from helpers.postgres import postgres_server, postgres_url  # noqa: F401  (fixtures)

from tweetcls.core.errors import ConfigError
from tweetcls.monitoring import logtable
from tweetcls.monitoring.logtable import PredictionRecord
from tweetcls.monitoring.requestlog import RequestLog, RequestLogUnavailable

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def records(count: int, start: datetime = T0, text: str = "forest fire near la ronge") -> list:
    return [
        PredictionRecord(
            time=start + timedelta(seconds=i),
            text_length=len(text) + i,
            token_count=7 + i % 3,
            keyword="wildfire" if i % 2 else None,
            probability=(i % 10) / 10,
            label=int(i % 10 >= 5),
            latency_ms=1.5 + i,
            model_version="abcdef012345",
            backend="onnx-int8",
            text=f"{text} {i}",
        )
        for i in range(count)
    ]


def check_round_trip(url: str) -> None:
    with RequestLog(url, log_text=True) as log:
        log.record(records(1200))  # more than one batch
        log.flush()
        frame = log.read(T0, T0 + timedelta(hours=1))
        window = log.read(T0 + timedelta(seconds=10), T0 + timedelta(seconds=20))
        assert log.dropped == 0
    assert list(frame.columns) == list(logtable.COLUMNS)
    assert len(frame) == 1200
    assert str(frame["time"].dt.tz) == "UTC"
    assert frame["time"].is_monotonic_increasing
    assert frame["time"].iloc[0] == pd.Timestamp(T0)
    first = frame.iloc[1]
    assert (first.text_length, first.token_count, first.keyword) == (26, 8, "wildfire")
    assert (first.probability, first.label, first.latency_ms) == (0.1, 0, 2.5)
    assert (first.model_version, first.backend, first.text) == (
        "abcdef012345",
        "onnx-int8",
        "forest fire near la ronge 1",
    )
    assert pd.isna(frame["keyword"].iloc[0])
    assert list(window["text_length"]) == [25 + i for i in range(10, 20)]  # until is exclusive


def test_sqlite_round_trip_creates_parent_dirs_and_uses_wal(tmp_path):
    path = tmp_path / "deep" / "dir" / "requests.db"
    check_round_trip(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = connection.execute("PRAGMA index_list('prediction_log')").fetchall()
    assert any("time" in row[1] for row in indexes)


def test_postgres_round_trip(postgres_url):  # noqa: F811
    check_round_trip(postgres_url)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        indexes = sa.inspect(connection).get_indexes(logtable.TABLE_NAME)
        connection.execute(sa.text(f"DROP TABLE {logtable.TABLE_NAME}"))
        connection.execute(sa.text(f"DROP TABLE {logtable.FEEDBACK_TABLE_NAME}"))
        connection.commit()
    engine.dispose()
    columns = sorted(index["column_names"] for index in indexes)
    assert columns == [["prediction_id"], ["time"]]  # prediction_id: POST /feedback's lookups


def check_create_table_race(url: str) -> None:
    """Another process creates the table between this log's existence check and its CREATE
    (two server workers starting at once): the log still opens, and writes."""
    other = sa.create_engine(url)
    raced = []

    def the_other_worker_creates_it_first(target, connection, **kw):
        if not raced:
            raced.append(True)
            with other.begin() as other_connection:
                target.create(other_connection)

    sa.event.listen(logtable.prediction_log, "before_create", the_other_worker_creates_it_first)
    try:
        log = RequestLog(url)
    finally:
        sa.event.remove(logtable.prediction_log, "before_create", the_other_worker_creates_it_first)
        other.dispose()
    assert raced
    with log:
        log.record(records(3))
        log.flush()
        assert len(log.read(T0, T0 + timedelta(hours=1))) == 3


def test_a_worker_that_loses_the_create_table_race_opens_the_log(tmp_path):
    check_create_table_race(f"sqlite:///{tmp_path / 'requests.db'}")


def test_a_worker_that_loses_the_create_table_race_opens_the_log_postgres(postgres_url):  # noqa: F811
    check_create_table_race(postgres_url)


def test_text_is_stored_only_when_configured(tmp_path):
    with RequestLog(f"sqlite:///{tmp_path / 'r.db'}") as log:
        log.record(records(3))
        log.flush()
        frame = log.read(T0)
    assert len(frame) == 3
    assert frame["text"].isna().all()


def test_record_never_blocks_and_counts_drops(tmp_path, monkeypatch):
    log = RequestLog(f"sqlite:///{tmp_path / 'r.db'}", queue_size=5)
    release = threading.Event()
    original = log._row

    def slow_row(item):
        release.wait(10)  # the writer is stuck on its first batch
        return original(item)

    monkeypatch.setattr(log, "_row", slow_row)
    started = time.perf_counter()
    log.record(records(1))
    time.sleep(0.2)  # the writer takes the first record off the queue and hangs
    log.record(records(20, start=T0 + timedelta(minutes=1)))
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert log.dropped == 15  # 5 queued, 15 dropped
    release.set()
    log.close()
    log.record(records(2))  # after close: dropped, no error
    assert log.dropped == 17
    with RequestLog(f"sqlite:///{tmp_path / 'r.db'}") as reader:
        assert len(reader.read(T0)) == 6


def test_failed_insert_is_counted_and_the_writer_survives(tmp_path):
    path = tmp_path / "r.db"
    with RequestLog(f"sqlite:///{path}") as log:
        bad = [PredictionRecord(T0, 3, 1, None, 0.5, 1, 1.0, "x" * 10, "onnx", None)]
        with log.engine.begin() as connection:  # make the next insert fail
            connection.execute(sa.text(f"ALTER TABLE {logtable.TABLE_NAME} RENAME TO moved"))
        log.record(bad)
        log.flush()
        assert log.dropped == 1
        with log.engine.begin() as connection:
            connection.execute(sa.text(f"ALTER TABLE moved RENAME TO {logtable.TABLE_NAME}"))
        log.record(bad)
        log.flush()
        assert log.dropped == 1
        assert len(log.read(T0)) == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "'not a url' is not a URL"),
        ("mysql://u@h/db", "unsupported database"),
        ("sqlite://", "give an SQLite file"),
        ("postgresql+asyncpg://u@h/db", "use the psycopg driver"),
        ("sqlite:////proc/no/such/dir/r.db", "cannot open database"),
    ],
)
def test_bad_urls_raise_config_error_naming_them(url, message):
    with pytest.raises(ConfigError, match=message) as info:
        RequestLog(url)
    assert "secret" not in str(info.value)


def test_read_rejects_an_empty_window(tmp_path):
    with (
        RequestLog(f"sqlite:///{tmp_path / 'r.db'}") as log,
        pytest.raises(ConfigError, match="not after since"),
    ):
        log.read(T0, T0)


def test_postgres_unreachable_at_start_is_an_outage_not_an_error(postgres_server):  # noqa: F811
    postgres_server.stop()
    log = RequestLog(postgres_server.url, retry_s=(0.05, 0.2))
    try:
        assert log.status == "degraded" and "127.0.0.1" in log.last_error
        log.record(records(50))
        assert not log.flush(timeout=0.3)  # held, not lost
        with pytest.raises(RequestLogUnavailable, match="cannot read"):
            log.read(T0)
        postgres_server.start()
        assert log.flush(timeout=30)
        assert log.status == "ok" and log.dropped == 0
        assert len(log.read(T0)) == 50  # the table was created on reconnection
    finally:
        log.close()


def test_postgres_going_away_mid_traffic_loses_nothing(postgres_server):  # noqa: F811
    with RequestLog(postgres_server.url, retry_s=(0.05, 0.2)) as log:
        log.record(records(100))
        assert log.flush(timeout=30)
        postgres_server.stop()  # disconnects the pooled connection
        log.record(records(100, start=T0 + timedelta(minutes=5)))
        eventually(lambda: log.status == "degraded", timeout=30, what="the outage noticed")
        started = time.perf_counter()
        log.record(records(100, start=T0 + timedelta(minutes=10)))  # never blocks
        assert time.perf_counter() - started < 1.0
        postgres_server.start()
        assert log.flush(timeout=30)
        assert log.status == "ok" and log.dropped == 0
        assert len(log.read(T0)) == 300
        postgres_server.stop()  # while idle: the next probe notices only once it writes
        log.record(records(1, start=T0 + timedelta(minutes=20)))
        eventually(lambda: log.status == "degraded", timeout=30, what="the outage noticed")
        time.sleep(0.5)  # idle probes meanwhile must not report it back
        assert log.status == "degraded"
        postgres_server.start()
        assert log.flush(timeout=30) and log.status == "ok"


def test_close_during_an_outage_is_bounded_and_counts_what_it_lost(postgres_server):  # noqa: F811
    log = RequestLog(postgres_server.url, retry_s=(0.05, 0.2))
    postgres_server.stop()
    log.record(records(700))  # one batch held by the writer, the rest queued
    started = time.perf_counter()
    log.close(timeout=0.5)
    assert time.perf_counter() - started < 10
    assert log.dropped == 700


@pytest.mark.parametrize(
    ("target", "message"),
    [("nobody@{host}/postgres", 'role "nobody" does not exist'), ("postgres@{host}/nodb", "nodb")],
)
def test_refused_credentials_or_database_are_errors_at_start(postgres_url, target, message):  # noqa: F811
    host = postgres_url.split("@", 1)[1].split("/", 1)[0]
    url = "postgresql+psycopg://" + target.format(host=host)
    with pytest.raises(ConfigError, match=f"cannot open database .*{message}"):
        RequestLog(url)
