"""Request and response bodies of the HTTP API (pydantic), with the limits of the settings.

``POST /predict`` takes one tweet, ``{"text": "...", "keyword": "..."}`` (keyword optional), or
a batch, ``{"items": [{"text": ..., "keyword": ...}, ...]}``. The limits (characters per text,
items per batch) come from :class:`~tweetcls.serving.settings.ServeSettings`, so the models are
built per app by :func:`build_request_model`; the OpenAPI schema shows them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from tweetcls.core.csvfiles import CsvFormatError, FieldTooLargeError, read_csv_bytes
from tweetcls.core.labels import LABEL_NAMES
from tweetcls.inference.explain import MAX_WORDS
from tweetcls.monitoring.logtable import MAX_NOTE_CHARS

#: Longest accepted keyword.
MAX_KEYWORD_CHARS = 100
#: Union tags of the request body; the validation-error handler drops them from locations.
BODY_TAGS = ("tweet", "batch")


#: What a text must contain: a character that is not whitespace. The class is the same set in
#: Python's ``re``, JSON Schema's ECMA-262 regexes and Rust's (their ``\s`` differ: ``re`` counts
#: U+001C-U+001F, Rust U+0085, ECMA U+FEFF); the schema states it as the text's ``pattern``, so
#: that a client sees the rule :func:`check_text` applies.
TEXT_PATTERN = r"[^\s\x1c-\x1f\x85\ufeff]"
_TEXT = re.compile(TEXT_PATTERN)


def check_text(value: str) -> str:
    """Reject whitespace-only texts and strings that are not valid Unicode (lone surrogates)."""
    if not _TEXT.search(value):
        raise ValueError("must not be empty or whitespace only")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (lone surrogate)") from None
    return value


def check_keyword(value: str | None) -> str | None:
    """``None`` for an empty or whitespace-only keyword; reject invalid Unicode."""
    if value is None or not value.strip():
        return None
    return check_text(value)


def _body_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "batch" if "items" in value else "tweet"
    return None


def build_request_model(max_chars: int, max_items: int) -> tuple[type, type, Any]:
    """``(Tweet, Batch, body type)`` of ``POST /predict``: one tweet or a batch, with limits.

    Args:
        max_chars: Most characters of a text.
        max_items: Most tweets in a batch.
    """

    class Tweet(BaseModel):
        """One tweet: its text and, optionally, its keyword (as in the training data)."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={
                "examples": [{"text": "Forest fire near La Ronge", "keyword": "fire"}]
            },
        )

        text: str = Field(
            min_length=1,
            max_length=max_chars,
            description=f"Tweet text (1 to {max_chars} characters, not only whitespace).",
            json_schema_extra={"pattern": TEXT_PATTERN},  # checked by check_text
        )
        keyword: str | None = Field(
            default=None,
            max_length=MAX_KEYWORD_CHARS,
            description="Keyword of the tweet, if any (e.g. 'earthquake').",
        )

        _text = field_validator("text")(check_text)
        _keyword = field_validator("keyword")(check_keyword)

    class Batch(BaseModel):
        """Several tweets, answered in order."""

        model_config = ConfigDict(extra="forbid")

        items: list[Tweet] = Field(
            min_length=1, max_length=max_items, description=f"1 to {max_items} tweets."
        )

    body = Annotated[
        Annotated[Tweet, Tag("tweet")] | Annotated[Batch, Tag("batch")],
        Discriminator(
            _body_tag,
            custom_error_type="invalid_body",
            custom_error_message="expected a JSON object with 'text' (one tweet) or 'items' "
            "(a batch)",
        ),
    ]
    return Tweet, Batch, body


class Prediction(BaseModel):
    """The model's answer for one tweet."""

    label: Literal[0, 1] = Field(description="1: about a real disaster, 0: not.")
    label_name: Literal[LABEL_NAMES]
    probability: float = Field(ge=0, le=1, description="Probability of 'disaster'.")
    model_version: str = Field(description="Version of the model that answered.")
    prediction_id: str = Field(
        description="Id of this prediction in the request log: send it to POST /feedback when "
        "the label is wrong. The log writes it within moments of the answer; a record the log "
        "dropped (overload, outage) cannot be referred to (404).",
        json_schema_extra={"format": "uuid"},
    )


class WordAttribution(BaseModel):
    """One word of the tweet (split on whitespace, as written) and its share of the answer."""

    word: str
    attribution: float | None = Field(
        description="How much the probability of 'disaster' falls without this word (negative: "
        f"it rises); null for words past the first {MAX_WORDS}, which are not explained."
    )


class Explanation(Prediction):
    """The prediction for one tweet and why: each word's attribution, by occlusion (the tweet
    scored again without each word, by the backend that answered)."""

    method: Literal["occlusion"]
    words: list[WordAttribution]


class BatchPrediction(BaseModel):
    """The answers for a batch, in the order of its items."""

    predictions: list[Prediction]


class Health(BaseModel):
    """``GET /health`` and ``GET /ready``."""

    status: str
    request_log: Literal["ok", "degraded"] | None = None
    """``/ready`` only: ``degraded`` while the request-log database cannot be reached (the
    service still answers; records wait in memory, and those that find it full are counted in
    ``tweetcls_request_log_dropped_total``)."""
    self_check: str | None = None
    """``/ready`` only: what the start-up self-check found: ``passed``, ``skipped: ...``, or
    ``fallback: ...`` when int8 scored the bundle's check tweets wrongly on this CPU and the
    fp32 backend serves instead."""


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: one message naming the field or the cause."""

    detail: str


# ------------------------------------------------------------------------ POST /feedback
class FeedbackRequest(BaseModel):
    """A logged prediction was wrong: its id (from the prediction's answer) and the right
    label."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prediction_id": "3f2b8c1e-9d4a-4c55-8a7e-0b6f1d2c3a4b",
                    "label": 0,
                    "note": "a film review, not a fire",
                }
            ]
        },
    )

    prediction_id: UUID = Field(description="The `prediction_id` of a /predict or /explain answer.")
    label: Literal[0, 1] = Field(description="The right label: 1 = about a real disaster, 0 = not.")
    note: str | None = Field(
        default=None,
        max_length=MAX_NOTE_CHARS,
        description=f"Why, for the reviewer (at most {MAX_NOTE_CHARS} characters).",
    )

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        """Blank: none; text that is not valid Unicode (a lone surrogate): refused."""
        if value is None or not value.strip():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("is not valid Unicode (lone surrogate)") from None
        return value


class FeedbackRecord(BaseModel):
    """A stored correction and the prediction it corrects."""

    prediction_id: str = Field(json_schema_extra={"format": "uuid"})
    label: Literal[0, 1] = Field(description="The right label.")
    label_name: Literal[LABEL_NAMES]
    note: str | None = Field(description="The note stored with the first such correction.")
    time: datetime = Field(description="When the correction was stored (UTC).")
    predicted_label: Literal[0, 1] = Field(description="The label the model gave.")
    probability: float = Field(ge=0, le=1, description="The model's probability of 'disaster'.")
    model_version: str = Field(description="Version of the model that answered.")


# ---------------------------------------------------------------- CSV upload (POST /predict/csv)
#: Columns of an upload the service reads; others are ignored.
CSV_COLUMNS = ("id", "text", "keyword")


class CsvError(ValueError):
    """An upload the service cannot use; ``status`` is its HTTP status (413 or 422).

    Args:
        message: What is wrong and where (lines of the file; the header is line 1).
        status: HTTP status of the answer.
    """

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def _lines(mask: Any, lines: list[int]) -> str:
    """The file lines of the rows where ``mask`` is true: the first five, then a count."""
    rows = [i for i, bad in enumerate(mask) if bad]
    shown = ", ".join(str(lines[i]) for i in rows[:5])
    return shown + (f" (and {len(rows) - 5} more)" if len(rows) > 5 else "")


def read_upload(raw: bytes, max_rows: int, max_chars: int) -> Any:
    """Parse and check an uploaded CSV: a DataFrame with ``text`` and ``keyword``/``id`` if sent.

    The file may be anything :mod:`tweetcls.core.csvfiles` reads (UTF-8 with or without a BOM,
    UTF-16 with one; commas, semicolons, tabs; any line ending); other columns are ignored.

    Args:
        raw: The file's bytes.
        max_rows: Most data rows (more: 413).
        max_chars: Most characters of a text.

    Raises:
        CsvError: not a readable CSV (the message says why), no ``text`` column, no rows, too
            many rows, or empty or too long texts or keywords (the message names the lines).
    """
    import pandas as pd

    try:
        table = read_csv_bytes(raw, required=("text",), optional=("id", "keyword"))
    except FieldTooLargeError as err:
        raise CsvError(f"{err}; texts may have at most {max_chars} characters") from None
    except CsvFormatError as err:
        raise CsvError(str(err)) from None
    if len(table) > max_rows:
        raise CsvError(f"{len(table)} rows, more than the limit of {max_rows}", status=413)
    columns = [c for c in CSV_COLUMNS if c in table.header]
    frame = pd.DataFrame({c: table.column(c) for c in columns}, dtype=str)
    texts = frame["text"]
    empty = texts.str.strip() == ""
    if empty.any():
        raise CsvError(f"empty text on line(s) {_lines(empty, table.lines)}")
    too_long = texts.str.len() > max_chars
    if too_long.any():
        raise CsvError(
            f"text longer than {max_chars} characters on line(s) {_lines(too_long, table.lines)}"
        )
    if "keyword" in frame.columns:
        keywords = frame["keyword"]
        long_keyword = keywords.str.len() > MAX_KEYWORD_CHARS
        if long_keyword.any():
            raise CsvError(
                f"keyword longer than {MAX_KEYWORD_CHARS} characters on line(s) "
                f"{_lines(long_keyword, table.lines)}"
            )
        frame["keyword"] = pd.Series(
            [k if k.strip() else None for k in keywords], index=frame.index, dtype=object
        )
    return frame


def write_predictions(
    frame: Any, probabilities: list[float], threshold: float, model_version: str
) -> bytes:
    """The predictions CSV of an upload: its columns, then the model's answer per row.

    Args:
        frame: What :func:`read_upload` returned.
        probabilities: Probability of "disaster" per row.
        threshold: Probability at or above which a row is labelled a disaster.
        model_version: Version of the model that answered.
    """
    out = frame.copy()
    labels = [int(p >= threshold) for p in probabilities]
    out["label"] = labels
    out["label_name"] = [LABEL_NAMES[label] for label in labels]
    out["probability"] = [round(p, 6) for p in probabilities]
    out["model_version"] = model_version
    return out.to_csv(index=False).encode("utf-8")
