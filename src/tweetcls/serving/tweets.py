"""Tweets to send to the service, from a CSV: what the benchmark and the load test replay.

``scripts/bench_serve.py`` and ``loadtest/locustfile.py`` read their tweets with
:func:`read_tweets` and send each as :func:`tweet_body`.
"""

from __future__ import annotations

from pathlib import Path

from tweetcls.core.csvfiles import CsvFormatError, read_csv_bytes
from tweetcls.core.errors import ConfigError

#: One tweet: its ``text`` and its ``keyword`` (``None`` without one).
Tweet = dict[str, str | None]


def read_tweets(path: Path, limit: int | None = None, *, name: str | None = None) -> list[Tweet]:
    """Up to ``limit`` distinct non-empty tweets of a CSV (columns ``text``, optional ``keyword``).

    The processed splits (``data/processed/val.csv``) and the raw Kaggle CSVs both qualify, as
    does anything else :mod:`tweetcls.core.csvfiles` reads.

    Args:
        path: The CSV file.
        limit: Most tweets returned (the first ones); ``None``: all.
        name: How error messages name the file (e.g. ``--data PATH``); default the path.

    Raises:
        ConfigError: the file is missing, cannot be read as a CSV, has no ``text`` column or no
            non-empty text.
    """
    what = name or str(path)
    if not path.is_file():
        raise ConfigError(f"{what}: not found (run `dvc repro preprocess`)")
    try:
        table = read_csv_bytes(path.read_bytes(), required=("text",), optional=("keyword",))
    except OSError as err:
        raise ConfigError(f"{what}: cannot read it ({err.strerror or err})") from None
    except CsvFormatError as err:
        raise ConfigError(f"{what}: {err}") from None
    tweets: dict[str, Tweet] = {}
    for _, row in table.records(("text", "keyword")):
        text = row["text"]
        if text.strip() and text not in tweets:
            tweets[text] = {"text": text, "keyword": row.get("keyword", "").strip() or None}
            if limit is not None and len(tweets) >= limit:
                break
    if not tweets:
        raise ConfigError(f"{what}: no non-empty texts")
    return list(tweets.values())


def tweet_body(tweet: Tweet) -> dict[str, str]:
    """The ``POST /predict`` JSON body of one tweet (no ``keyword`` field without one)."""
    body = {"text": str(tweet["text"])}
    if tweet["keyword"]:
        body["keyword"] = str(tweet["keyword"])
    return body
