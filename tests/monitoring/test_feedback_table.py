"""The feedback table of the request log: migration of older databases, corrections and their
rules, and the ``tweetcls feedback`` export (corrections, least sure tweets)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from helpers.postgres import postgres_server  # noqa: F401  (fixture)

from tweetcls.cli import main
from tweetcls.monitoring import logtable
from tweetcls.monitoring.feedback import FEEDBACK_COLUMNS, UNCERTAIN_COLUMNS
from tweetcls.monitoring.logtable import FeedbackConflict, PredictionRecord, UnknownPrediction
from tweetcls.monitoring.requestlog import RequestLog

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def old_schema(engine: sa.Engine) -> None:
    """The request log as versions before feedback created it (no prediction_id), one row."""
    old = sa.MetaData()
    table = sa.Table(
        logtable.TABLE_NAME,
        old,
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
    old.create_all(engine)
    row = {
        "time": T0,
        "text_length": 9,
        "token_count": 4,
        "keyword": None,
        "probability": 0.9,
        "label": 1,
        "latency_ms": 1.0,
        "model_version": "old",
        "backend": "onnx",
        "text": "old tweet",
    }
    with engine.begin() as connection:
        connection.execute(sa.insert(table), row)


def record(prediction_id: str | None, probability: float, text: str | None = "a tweet", **kw):
    values = {
        "time": T0,
        "text_length": len(text or ""),
        "token_count": 5,
        "keyword": "fire",
        "probability": probability,
        "label": int(probability >= 0.5),
        "latency_ms": 2.0,
        "model_version": "v1",
        "backend": "onnx",
        "text": text,
        "prediction_id": prediction_id,
    }
    return PredictionRecord(**{**values, **kw})


def check_upgrade(url: str) -> None:
    engine = logtable.create_log_engine(url)
    old_schema(engine)
    engine.dispose()
    new_id = str(uuid.uuid4())
    with RequestLog(url, log_text=True) as log:
        log.record([record(new_id, 0.2)])
        assert log.flush(timeout=10)
        stored = log.add_feedback(new_id, 1, "sarcasm")
        assert stored.created and stored.predicted_label == 0
        old_rows = log.read(T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert len(old_rows) == 2 and "old tweet" in set(old_rows["text"])  # old rows kept
    engine = logtable.create_log_engine(url)
    inspector = sa.inspect(engine)
    assert logtable.FEEDBACK_TABLE_NAME in inspector.get_table_names()
    indexes = {i["name"]: i for i in inspector.get_indexes(logtable.TABLE_NAME)}
    assert indexes["ix_prediction_log_prediction_id"]["unique"]
    assert logtable.create_schema(engine) == []  # upgraded once: nothing left to do
    with engine.connect() as connection:
        ids = connection.execute(sa.select(logtable.prediction_log.c.prediction_id)).scalars()
        assert sorted(ids, key=str) == sorted([None, new_id], key=str)
    engine.dispose()


def test_an_old_sqlite_log_is_upgraded_in_place(tmp_path: Path) -> None:
    check_upgrade(f"sqlite:///{tmp_path / 'old.db'}")


def test_an_old_postgres_log_is_upgraded_in_place(postgres_server) -> None:  # noqa: F811
    check_upgrade(postgres_server.url)


def test_a_worker_that_loses_the_migration_race_opens_the_log(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = logtable.create_log_engine(url)
    old_schema(engine)
    real = logtable._missing_columns
    calls = []

    def stale(engine):  # the first check ran before another worker added the column
        calls.append(1)
        missing = real(engine)
        if len(calls) == 1:
            with engine.begin() as connection:
                connection.execute(
                    sa.text("ALTER TABLE prediction_log ADD COLUMN prediction_id VARCHAR(36)")
                )
        return missing

    monkeypatch.setattr(logtable, "_missing_columns", stale)
    assert logtable.create_schema(engine) == []  # the retry finds the column there
    engine.dispose()
    with RequestLog(url) as log:
        assert log.status == "ok"


def test_feedback_rules(tmp_path: Path) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with RequestLog(f"sqlite:///{tmp_path / 'log.db'}") as log:
        log.record([record(ids[0], 0.8), record(ids[1], 0.3)])
        assert log.flush(timeout=10)
        with pytest.raises(UnknownPrediction, match=ids[2]):
            log.add_feedback(ids[2], 1)
        with pytest.raises(FeedbackConflict, match="already has label 1"):
            log.add_feedback(ids[0], 1)  # the model's own label: nothing to correct
        first = log.add_feedback(ids[0], 0, "a film")
        assert first.created and first.label == 0 and first.model_version == "v1"
        again = log.add_feedback(ids[0], 0, "another note")
        assert not again.created and again.note == "a film"  # idempotent, first note kept
        with pytest.raises(FeedbackConflict, match="already corrected to label 0"):
            log.add_feedback(ids[0], 1)
        assert log.add_feedback(ids[1], 1).created


def fill(url: str, log_text: bool) -> list[str]:
    """Six predictions (probabilities 0.1 .. 0.9), two of them corrected; their ids."""
    ids = [str(uuid.uuid4()) for _ in range(6)]
    probabilities = [0.1, 0.45, 0.52, 0.7, 0.9, 0.49]
    texts = ["t0", "t1", "t2", "t3", "t4", "t2"]  # t2 twice: listed once
    with RequestLog(url, log_text=log_text) as log:
        log.record(
            record(i, p, t, time=T0 + timedelta(minutes=n))
            for n, (i, p, t) in enumerate(zip(ids, probabilities, texts, strict=True))
        )
        assert log.flush(timeout=10)
        log.add_feedback(ids[4], 0, "a song title")
        log.add_feedback(ids[1], 1)
    return ids


def test_export_joins_corrections_with_their_tweets(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    ids = fill(url, log_text=True)
    out, least = tmp_path / "review" / "feedback.csv", tmp_path / "review" / "uncertain.csv"
    args = ["--database_url", url, "--out", str(out), "--uncertain_out", str(least)]
    main(["feedback", *args, "--uncertain", "3"])
    printed = capsys.readouterr().out
    assert "wrote 2 corrections" in printed and "no text" not in printed
    frame = pd.read_csv(out, keep_default_na=False)
    assert tuple(frame.columns) == FEEDBACK_COLUMNS
    assert list(frame["prediction_id"]) == [ids[4], ids[1]]
    assert list(frame["text"]) == ["t4", "t1"]
    assert list(frame["target"]) == [0, 1]
    assert list(frame["predicted_label"]) == [1, 0]
    assert list(frame["note"]) == ["a song title", ""]
    assert frame["text_logged"].tolist() == [True, True]
    uncertain = pd.read_csv(least, keep_default_na=False)
    assert tuple(uncertain.columns) == UNCERTAIN_COLUMNS
    # closest to 0.5 first; t2 once (its least sure row); t1 is corrected already
    assert list(uncertain["text"]) == ["t2", "t3", "t0"]
    assert list(uncertain["prediction_id"]) == [ids[5], ids[3], ids[0]]
    assert (uncertain["target"] == "").all()
    # outputs are kept unless --overwrite
    with pytest.raises(SystemExit) as exc:
        main(["feedback", *args, "--uncertain", "3"])
    assert exc.value.code == 2
    assert "--overwrite true" in capsys.readouterr().err
    main(["feedback", *args, "--overwrite", "true"])


def test_export_says_when_texts_were_not_logged(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    fill(url, log_text=False)
    out, least = tmp_path / "feedback.csv", tmp_path / "uncertain.csv"
    args = ["--database_url", url, "--out", str(out), "--uncertain_out", str(least)]
    main(["feedback", *args, "--uncertain", "2"])
    printed = capsys.readouterr().out
    assert "2 of 2 corrections have no text" in printed and "--log_text true" in printed
    assert "only 0 of the 2" in printed
    frame = pd.read_csv(out, keep_default_na=False)
    assert frame["text_logged"].tolist() == [False, False] and (frame["text"] == "").all()
    assert len(pd.read_csv(least)) == 0


def test_export_of_a_log_without_feedback_and_of_a_missing_file(tmp_path: Path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = logtable.create_log_engine(url)
    old_schema(engine)  # never opened by this version: no feedback table, not upgraded
    engine.dispose()
    main(["feedback", "--database_url", url, "--out", str(tmp_path / "f.csv")])
    assert "wrote 0 corrections" in capsys.readouterr().out
    assert tuple(pd.read_csv(tmp_path / "f.csv").columns) == FEEDBACK_COLUMNS
    missing = f"sqlite:///{tmp_path / 'nothing.db'}"
    with pytest.raises(SystemExit) as stopped:
        main(["feedback", "--database_url", missing, "--out", str(tmp_path / "g.csv")])
    assert stopped.value.code == 2
    assert "no such database file" in capsys.readouterr().err
    assert not (tmp_path / "nothing.db").exists() and not (tmp_path / "g.csv").exists()
