"""What every inference backend shares: cleaning, tokenizing, chunking and scoring tweets.

Every backend cleans and tokenizes its inputs with :mod:`tweetcls.core.inputs` (what training
did) and returns the probability of "disaster" (``softmax(logits)[:, 1]``); a backend only
supplies ``_logits`` of a padded batch. Backends are built once and called from one worker
thread at a time; the hot path holds no per-call session, model or DataFrame creation.
:func:`tweetcls.inference.backends.load_backend` builds them.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from transformers import AutoTokenizer

from tweetcls.core.bundle import Bundle
from tweetcls.core.inputs import Encoder, clean_keyword, clean_text


class Scores(NamedTuple):
    """What one model call gives per tweet, in input order.

    Args:
        probabilities: Probability of "disaster" (float32).
        token_counts: Tokens the model saw (special tokens and keyword segment included).
        encode_seconds: Time spent cleaning and tokenizing the batch.
        model_seconds: Time spent in the model (every chunk's run).
    """

    probabilities: np.ndarray
    token_counts: np.ndarray
    encode_seconds: float = 0.0
    model_seconds: float = 0.0


def token_chunks(lengths: np.ndarray, max_tokens: int) -> list[slice]:
    """Consecutive runs of ascending ``lengths`` whose padded size fits ``max_tokens``.

    A run of ``n`` rows pads to its last (longest) row, so it costs ``n * lengths[end - 1]``
    tokens; every run has at least one row, however long.
    """
    chunks: list[slice] = []
    start = 0
    for end in range(1, len(lengths) + 1):
        if end - start > 1 and (end - start) * int(lengths[end - 1]) > max_tokens:
            chunks.append(slice(start, end - 1))
            start = end - 1
    if start < len(lengths):
        chunks.append(slice(start, len(lengths)))
    return chunks


class Backend(ABC):
    """A model that maps tweets to disaster probabilities.

    Args:
        bundle: The loaded bundle (tokenizer, input settings, model files).
        name: The backend's name (one of ``BACKENDS``).
        threads: Intra-op threads of the runtime; ``None`` lets it choose.
    """

    def __init__(self, bundle: Bundle, name: str, threads: int | None = None) -> None:
        self.bundle = bundle
        self.name = name
        self.tokenizer = AutoTokenizer.from_pretrained(str(bundle.path))
        #: the text normaliser version the model was trained with, resolved once
        self.normaliser = bundle.normaliser
        #: the map of the logit margin to a probability (the bundle's calibration)
        self.calibration = bundle.calibration
        self.encoder = Encoder(
            self.tokenizer,
            use_keyword=bool(bundle.meta["use_keyword"]),
            use_location=bool(bundle.meta["use_location"]),
            max_length=int(bundle.meta["max_length"]),
        )

    def encode(self, texts: Sequence[str], keywords: Sequence[str | None]) -> dict[str, Any]:
        """Clean and tokenize raw tweets: int64 arrays padded to the longest tweet."""
        if len(texts) != len(keywords):
            raise ValueError(f"{len(texts)} texts but {len(keywords)} keywords")
        return self.encoder(
            [clean_text(text, self.normaliser) for text in texts],
            [clean_keyword(k) if k else None for k in keywords],
            [None] * len(texts),
        )

    def count_tokens(self, texts: Sequence[str], keywords: Sequence[str | None]) -> list[int]:
        """Tokens the model sees per tweet (special tokens and keyword segment included)."""
        if not texts:
            return []
        return self.encode(texts, keywords)["attention_mask"].sum(axis=1).tolist()

    def predict_proba(self, texts: Sequence[str], keywords: Sequence[str | None]) -> np.ndarray:
        """Probability of "disaster" per tweet (float32, shape ``(len(texts),)``).

        Args:
            texts: Raw tweet texts (cleaned here as in preprocessing).
            keywords: Raw keyword per tweet, ``None`` when absent.
        """
        if not texts:
            return np.zeros(0, dtype=np.float32)
        return self._probabilities(self.encode(texts, keywords))

    def score(
        self, texts: Sequence[str], keywords: Sequence[str | None], max_batch_tokens: int = 0
    ) -> Scores:
        """Probabilities and token counts of raw tweets, tokenized once.

        Args:
            texts: Raw tweet texts.
            keywords: Raw keyword per tweet, ``None`` when absent.
            max_batch_tokens: ``> 0``: sort the tweets by token count and run the model on
                consecutive chunks of at most this many padded tokens (:func:`token_chunks`),
                so that a short tweet is not padded to the batch's longest; ``0``: one run.
        """
        if not texts:
            return Scores(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64))
        start = time.perf_counter()
        encoded = self.encode(texts, keywords)
        counts = encoded["attention_mask"].sum(axis=1)
        encoded_at = time.perf_counter()
        if max_batch_tokens <= 0 or len(texts) == 1:
            probabilities = self._probabilities(encoded)
            model_seconds = time.perf_counter() - encoded_at
            return Scores(probabilities, counts, encoded_at - start, model_seconds)
        order = np.argsort(counts, kind="stable")
        right = self.tokenizer.padding_side == "right"
        probabilities = np.empty(len(texts), dtype=np.float32)
        for chunk in token_chunks(counts[order], max_batch_tokens):
            rows = order[chunk]
            width = int(counts[rows[-1]])
            columns = slice(None, width) if right else slice(-width, None)
            part = {name: array[rows, columns] for name, array in encoded.items()}
            probabilities[rows] = self._probabilities(part)
        return Scores(probabilities, counts, encoded_at - start, time.perf_counter() - encoded_at)

    def _probabilities(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        logits = self._logits(encoded).astype(np.float32)
        # the calibrated sigmoid of the two classes' margin (T = 1, b = 0: their softmax)
        return self.calibration.on_margins(logits[:, 1] - logits[:, 0])

    @abstractmethod
    def _logits(self, encoded: Any) -> np.ndarray:
        """Logits ``(batch, 2)`` of a padded numpy batch."""


def frame_inputs(frame: pd.DataFrame) -> tuple[list[str], list[str | None]]:
    """The texts and keywords of a frame's ``text`` and ``keyword`` columns, as a backend takes
    them (an empty keyword is ``None``)."""
    texts = frame["text"].astype(str).tolist()
    return texts, [k or None for k in frame["keyword"].astype(str)]


def predict_frame(backend: Backend, frame: pd.DataFrame, batch_size: int = 64) -> np.ndarray:
    """Probabilities of ``backend`` for the rows of a processed frame, in row order.

    Rows are scored in batches of similar length (less padding) and put back in order.
    """
    texts, keywords = frame_inputs(frame)
    order = np.argsort([len(t) for t in texts], kind="stable")
    probabilities = np.empty(len(texts), dtype=np.float64)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        probabilities[rows] = backend.predict_proba(
            [texts[i] for i in rows], [keywords[i] for i in rows]
        )
    return probabilities
