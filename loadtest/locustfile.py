"""Locust load test of the prediction service: single tweets, with occasional batches.

Each simulated user posts one real tweet per request to ``POST /predict``
(``{"text": ..., "keyword": ...}``) and, about once in ``BATCH_EVERY`` requests, a batch
(``{"items": [...]}``) of ``TWEETCLS_BATCH_SIZE`` tweets (default 16; at most the server's
``--max_items``, 64). Tweets are sampled from the distinct tweets of the CSV named by
``TWEETCLS_TWEETS`` (columns ``text`` and optionally ``keyword``; default
``data/processed/val.csv``; read by ``tweetcls.serving.tweets.read_tweets``, as
``scripts/bench_serve.py`` reads its ``--data``), or from a small built-in sample when that file
does not exist.
Users wait ``TWEETCLS_WAIT_S`` seconds between requests (default 0: closed loop, maximum load).

Headless run against a local server (``python -m tweetcls serve --model runs/pipeline/serving``)::

    locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --users 32 --spawn-rate 8 --run-time 1m --csv runs/loadtest/locust --only-summary

Every answer is checked: HTTP 200 and one prediction per tweet, each with a probability in
[0, 1]; anything else counts as a failure. ``scripts/bench_serve.py`` is the lighter, scripted
benchmark (one process per side, percentiles per backend and client count).
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

from tweetcls.serving.tweets import Tweet, read_tweets, tweet_body

#: Mean requests per batch request (the rest are single tweets).
BATCH_EVERY = 20
#: Used when the CSV is missing: tweets in the style of the training data.
BUILTIN_TWEETS: list[Tweet] = [
    {"text": "Forest fire near La Ronge Sask. Canada", "keyword": "fire"},
    {"text": "13,000 people receive #wildfires evacuation orders in California", "keyword": None},
    {"text": "Smoke from #wildfires pours into a school in Ruby #Alaska", "keyword": "wildfires"},
    {"text": "Earthquake of magnitude 5.2 shakes the coast, no damage reported", "keyword": None},
    {"text": "Flood warning for the river valley after two days of heavy rain", "keyword": "flood"},
    {"text": "I love fruits", "keyword": None},
    {"text": "What a wonderful sunny day at the beach!", "keyword": None},
    {"text": "This new album is fire, on repeat all week", "keyword": "fire"},
    {"text": "My phone battery exploded... with notifications lol", "keyword": "exploded"},
    {"text": "Summer is lovely", "keyword": None},
]


def load_tweets(path: Path) -> list[Tweet]:
    """The tweets of ``path`` (``text``, optional ``keyword``), or the built-in sample."""
    if not path.is_file():
        return BUILTIN_TWEETS
    return read_tweets(path, name=f"TWEETCLS_TWEETS={path}")


def env_number(name: str, default: float) -> float:
    """A non-negative number from the environment."""
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}={raw!r}: not a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r}: must be >= 0")
    return value


TWEETS = load_tweets(Path(os.environ.get("TWEETCLS_TWEETS", "data/processed/val.csv")))
BATCH_SIZE = max(1, int(env_number("TWEETCLS_BATCH_SIZE", 16)))
WAIT_S = env_number("TWEETCLS_WAIT_S", 0.0)


@events.init.add_listener
def _report_source(environment: Any, **_kwargs: Any) -> None:
    source = "built-in sample" if TWEETS is BUILTIN_TWEETS else f"{len(TWEETS)} tweets"
    logging.getLogger(__name__).info(
        "tweetcls locustfile: %s, batches of %d, wait %s s", source, BATCH_SIZE, WAIT_S
    )


def check(response: Any, expected: int) -> None:
    """Mark the answer failed unless it is 200 with ``expected`` valid predictions."""
    if response.status_code != 200:
        response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
        return
    try:
        answer = response.json()
        predictions = answer.get("predictions", [answer])
        valid = len(predictions) == expected and all(
            0.0 <= p["probability"] <= 1.0 and p["label"] in (0, 1) for p in predictions
        )
    except (ValueError, KeyError, TypeError):
        valid = False
    if valid:
        response.success()
    else:
        response.failure(f"unexpected answer: {response.text[:200]}")


class TweetUser(HttpUser):
    """A client of the prediction service."""

    wait_time = between(WAIT_S, WAIT_S)

    @task(BATCH_EVERY - 1)
    def predict_one(self) -> None:
        """``POST /predict`` with one random tweet."""
        tweet = random.choice(TWEETS)
        with self.client.post(
            "/predict", json=tweet_body(tweet), name="/predict [1]", catch_response=True
        ) as response:
            check(response, 1)

    @task(1)
    def predict_batch(self) -> None:
        """``POST /predict`` with a batch of random tweets."""
        items = [tweet_body(tweet) for tweet in random.choices(TWEETS, k=BATCH_SIZE)]
        with self.client.post(
            "/predict", json={"items": items}, name=f"/predict [{BATCH_SIZE}]", catch_response=True
        ) as response:
            check(response, BATCH_SIZE)
