"""``tweetcls feedback``: the corrections of ``POST /feedback``, and the tweets to label next.

Reads the request-log database (the service's ``--database_url``) and writes, for a person to
review:

- ``--out`` (feedback.csv): one row per correction, joined with its logged prediction:
  ``prediction_id, text, keyword, predicted_label, probability, target, note,
  model_version, predicted_at, corrected_at, text_logged``.
- ``--uncertain_out`` (with ``--uncertain N``): the N logged tweets (texts de-duplicated, not
  yet corrected) whose probability lies closest to ``--threshold``, the model's least sure
  answers: ``prediction_id, text, keyword, predicted_label, probability, distance,
  model_version, predicted_at, target`` (``target`` empty, for the labeller).

Texts are in the log only when the service ran with ``--log_text true``; otherwise ``text`` is
empty, ``text_logged`` is ``false`` and a line says how many rows lack one: such rows cannot
enter training until a reviewer writes the text in. Nothing here feeds training: a reviewer
keeps the rows they accept (``target`` is the corrected label; a least-sure tweet gets the
label the reviewer writes in) in a reviewed file that ``tweetcls preprocess
--reviewed_feedback FILE`` merges (it reads ``text``, ``target`` and, when present,
``keyword``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError

from tweetcls.core.arguments import run_function
from tweetcls.core.atomic import write_text
from tweetcls.core.errors import ConfigError
from tweetcls.core.overwrite import refuse_to_replace
from tweetcls.monitoring.logtable import (
    FEEDBACK_TABLE_NAME,
    TABLE_NAME,
    create_log_engine,
    parse_database_url,
    prediction_feedback,
    prediction_log,
)
from tweetcls.monitoring.settings import DEFAULT_DATABASE_URL

#: The service's default request log, as a secret (``--print_config`` masks a URL's password).
_DEFAULT_URL = SecretStr(DEFAULT_DATABASE_URL)
#: Columns of the feedback export, in order.
FEEDBACK_COLUMNS = (
    "prediction_id",
    "text",
    "keyword",
    "predicted_label",
    "probability",
    "target",
    "note",
    "model_version",
    "predicted_at",
    "corrected_at",
    "text_logged",
)
#: Columns of the least-sure list, in order.
UNCERTAIN_COLUMNS = (
    "prediction_id",
    "text",
    "keyword",
    "predicted_label",
    "probability",
    "distance",
    "model_version",
    "predicted_at",
    "target",
)
#: What a row without its text needs (printed, and the meaning of ``text_logged`` false).
NO_TEXT = (
    "the service ran without --log_text true, so the log holds no text: write the tweet's text "
    "in before review, or these rows cannot enter training"
)


def _shown(url: str) -> str:
    return parse_database_url(url).render_as_string(hide_password=True)


def _open(url: str) -> sa.Engine:
    """An engine on an existing request log (an SQLite file that is missing is an error, not
    a new empty database)."""
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database).expanduser().is_file():
        raise ConfigError(f"feedback: {_shown(url)}: no such database file")
    return create_log_engine(url)


def _iso(values: pd.Series) -> pd.Series:
    times = pd.to_datetime(values, utc=True)
    return times.map(lambda t: t.isoformat() if pd.notna(t) else "")


def read_feedback(engine: sa.Engine) -> pd.DataFrame:
    """Every correction joined with its prediction, oldest first (:data:`FEEDBACK_COLUMNS`)."""
    log, fb = prediction_log.c, prediction_feedback.c
    query = (
        sa.select(
            fb.prediction_id,
            log.text,
            log.keyword,
            log.label.label("predicted_label"),
            log.probability,
            fb.label.label("target"),
            fb.note,
            log.model_version,
            log.time.label("predicted_at"),
            fb.time.label("corrected_at"),
        )
        .select_from(
            prediction_feedback.join(prediction_log, fb.prediction_id == log.prediction_id)
        )
        .order_by(fb.time, fb.id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(FEEDBACK_COLUMNS[:-1]))
    frame["text_logged"] = frame["text"].notna()
    for column in ("predicted_at", "corrected_at"):
        frame[column] = _iso(frame[column])
    return frame


def read_uncertain(engine: sa.Engine, count: int, threshold: float) -> pd.DataFrame:
    """The ``count`` logged tweets with text, not corrected yet, whose probability is closest
    to ``threshold`` (each text once: its least sure prediction), least sure first."""
    log, fb = prediction_log.c, prediction_feedback.c
    distance = sa.func.abs(log.probability - threshold)
    corrected = sa.select(fb.prediction_id).where(fb.prediction_id.is_not(None))
    query = (
        sa.select(
            log.prediction_id,
            log.text,
            log.keyword,
            log.label,
            log.probability,
            distance.label("distance"),
            log.model_version,
            log.time,
        )
        .where(log.text.is_not(None))
        .where(log.prediction_id.is_(None) | log.prediction_id.not_in(corrected))
        .order_by(distance, log.time.desc(), log.id.desc())
    )
    rows: list[Any] = []
    seen: set[str] = set()
    with engine.connect() as connection:
        for row in connection.execute(query.execution_options(yield_per=1000)):
            if row[1] in seen:
                continue
            seen.add(row[1])
            rows.append(tuple(row))
            if len(rows) >= count:
                break
    frame = pd.DataFrame(rows, columns=list(UNCERTAIN_COLUMNS[:-1]))
    frame["predicted_at"] = _iso(frame["predicted_at"])
    frame["target"] = ""
    return frame


def feedback(
    database_url: SecretStr = _DEFAULT_URL,
    out: str = "data/feedback/feedback.csv",
    uncertain: int = 0,
    uncertain_out: str = "data/feedback/uncertain.csv",
    threshold: float = 0.5,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Export the corrections sent to POST /feedback, joined with their logged tweets, to a CSV
    for review; optionally also the logged tweets the model was least sure of, for labelling.
    Nothing here enters training: a reviewer keeps the rows they accept (target: the corrected
    label) in a reviewed file for `tweetcls preprocess --reviewed_feedback FILE`.

    Args:
        database_url: The service's request log: sqlite:///FILE or
            postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB.
        out: Corrections CSV to write: prediction_id, text, keyword, predicted_label,
            probability, target, note, model_version, predicted_at, corrected_at,
            text_logged (false: the service ran without --log_text true and text is empty).
        uncertain: Also write the N logged tweets (with text, not yet corrected, each text
            once) whose probability is closest to --threshold; 0: do not.
        uncertain_out: Where --uncertain writes them, with an empty target column to fill in.
        threshold: The served model's decision threshold (serving.json "threshold"): the
            least sure answers are the probabilities closest to it.
        overwrite: Replace existing outputs; without it the command stops before reading
            anything when --out (or, with --uncertain, --uncertain_out) exists.
    """
    if uncertain < 0:
        raise ConfigError(f"--uncertain: must be >= 0, got {uncertain}")
    if not 0 < threshold < 1:
        raise ConfigError(f"--threshold: must lie in (0, 1), got {threshold}")
    outputs = [out, uncertain_out] if uncertain else [out]
    if not overwrite:
        refuse_to_replace("feedback", outputs, "`--out` and `--uncertain_out`")
    url = database_url.get_secret_value()  # a SecretStr: masked by --print_config
    engine = _open(url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        if TABLE_NAME not in tables:
            raise ConfigError(f"feedback: {_shown(url)} holds no request log")
        columns = {c["name"] for c in sa.inspect(engine).get_columns(TABLE_NAME)}
        if FEEDBACK_TABLE_NAME in tables and "prediction_id" in columns:
            corrections = read_feedback(engine)
        else:  # a log no service of this version has opened yet: no corrections
            corrections = pd.DataFrame(columns=list(FEEDBACK_COLUMNS))
        least_sure = read_uncertain(engine, uncertain, threshold) if uncertain else None
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise ConfigError(f"feedback: cannot read {_shown(url)}: {reason}") from None
    finally:
        engine.dispose()
    write_text(out, corrections.to_csv(index=False))
    missing = int((~corrections["text_logged"].astype(bool)).sum())
    print(f"feedback: wrote {len(corrections)} corrections to {out}")
    if missing:
        print(f"feedback: {missing} of {len(corrections)} corrections have no text: {NO_TEXT}")
    summary: dict[str, Any] = {"corrections": len(corrections), "without_text": missing}
    if least_sure is not None:
        write_text(uncertain_out, least_sure.to_csv(index=False))
        print(
            f"feedback: wrote the {len(least_sure)} least sure logged tweets (probability "
            f"closest to {threshold:g}) to {uncertain_out}; fill in target to label them"
        )
        if len(least_sure) < uncertain:
            print(
                f"feedback: only {len(least_sure)} of the {uncertain} asked for: the log holds "
                "no more uncorrected tweets with text (texts are logged only with --log_text true)"
            )
        summary["uncertain"] = len(least_sure)
    return summary


def main(args: list[str] | None = None, prog: str = "tweetcls feedback") -> None:
    """Run ``tweetcls feedback``."""
    run_function(feedback, list(args or []), prog)
