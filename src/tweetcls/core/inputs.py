"""The model input: how a tweet (text, keyword, location) becomes token ids.

Training (:class:`tweetcls.data.datamodule.DisasterTweetsDataModule`), export and serving all
build their inputs here, so a model sees at inference exactly what it saw in training.
This module needs only the tokenizer and ftfy: no torch, Lightning or datasets (the serving
image has no training stack).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote

import ftfy
import numpy as np

from tweetcls.core.errors import ConfigError

_WHITESPACE = re.compile(r"\s+")
#: A link, also one cut short by Twitter's truncation (``http://t.co/ab``, ``https:/``).
_LINK = re.compile(r"\bhttps?:/*\S*|\bwww\.\S+")
#: A mention: ``@`` and a handle, not an e-mail address (``a@b.com``).
_MENTION = re.compile(r"(?<!\w)@\w+")
#: Two or more Latin-1 characters in a row: where this data set's mojibake lives.
_HIGH_RUN = re.compile(r"[\x80-\xff]{2,}_?")
#: What a link and a mention become (one word piece each in BERT and RoBERTa vocabularies).
LINK_TOKEN = "http"
MENTION_TOKEN = "@user"
#: Mojibake whose last byte was lost before the data was published, so that no decoder can
#: restore it; each stands where the original had this character (the contexts show it:
#: ``...`` before truncated links, closing quotes after quoted words).
_LOSSY = {"\u00e2\u20ac_": "\u2026", "\u00e2\u20ac\u00f9": '"'}

#: Joins the fields of the first segment: ``"keyword | location"``.
SEGMENT_SEPARATOR = " | "


def _unescape(text: str) -> str:
    for _ in range(3):  # also double-escaped entities like ``&amp;amp;``
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


def _repair_run(match: re.Match[str]) -> str:
    """One run of Latin-1 characters: UTF-8 that went through Windows-1252 and Mac Roman.

    The Kaggle tweets were decoded as Windows-1252, saved as Mac Roman and read back as
    Latin-1 (a right quote U+2019 -> U+00E2 U+20AC U+2122 -> bytes 89 DB AA). Reading the run back
    as Mac Roman gives the Windows-1252 mojibake, which ftfy repairs; a run that ftfy does not
    recognise as mojibake (real Latin-1 text such as ``café``) is kept as it was.
    """
    run = match.group(0)
    try:
        windows = run.encode("latin-1").decode("mac_roman")
    except UnicodeError:
        return run
    if windows in _LOSSY:
        return _LOSSY[windows]
    repaired = ftfy.fix_encoding(windows)
    return repaired if repaired != windows else run


def _normalise_v1(text: str) -> str:
    return _WHITESPACE.sub(" ", _unescape(text)).strip()


def _normalise_v2(text: str) -> str:
    text = _HIGH_RUN.sub(_repair_run, _unescape(text))
    text = ftfy.fix_text(text, unescape_html=False)
    text = _LINK.sub(LINK_TOKEN, text)
    text = _MENTION.sub(MENTION_TOKEN, text)
    return _WHITESPACE.sub(" ", text).strip()


#: Text normalisers by version. A model records the version it was trained with
#: (``tweetcls.json``: ``normaliser``); inference applies the same one and refuses a version
#: that is not here. Never change what a version does: add a version (version 2 uses ftfy, whose
#: major version pyproject.toml bounds and the lock pins).
#:
#: 1. HTML entities decoded, whitespace collapsed.
#: 2. As 1, then mojibake repaired (:func:`_repair_run`, then ``ftfy.fix_text``: also curly
#:    quotes made straight), every link replaced by :data:`LINK_TOKEN` and every ``@handle`` by
#:    :data:`MENTION_TOKEN`.
NORMALISERS: dict[int, Callable[[str], str]] = {1: _normalise_v1, 2: _normalise_v2}
#: The version new models are trained with (``data.normaliser``).
NORMALISER_VERSION = 2
#: The version of models whose ``tweetcls.json`` names none (trained before versions existed).
LEGACY_NORMALISER = 1


def check_normaliser(version: Any, where: str) -> int:
    """``version`` if this release implements it, else :class:`ConfigError` naming ``where``."""
    if isinstance(version, bool) or version not in NORMALISERS:
        known = ", ".join(map(str, NORMALISERS))
        raise ConfigError(
            f"{where}: text normaliser version {version!r} is not implemented by this tweetcls "
            f"(it implements {known}); upgrade tweetcls or re-export the model"
        )
    return version


def clean_text(text: str, normaliser: int = NORMALISER_VERSION) -> str:
    """The tweet text as the model sees it: normalised by version ``normaliser``.

    Args:
        text: Raw tweet text.
        normaliser: A version of :data:`NORMALISERS`.
    """
    return NORMALISERS[normaliser](text)


def clean_keyword(keyword: str) -> str:
    """``airplane%20accident`` -> ``airplane accident``."""
    return _WHITESPACE.sub(" ", unquote(keyword)).strip()


def build_segments(
    texts: Sequence[str],
    keywords: Sequence[str | None],
    locations: Sequence[str | None],
    *,
    use_keyword: bool,
    use_location: bool,
) -> tuple[list[str] | None, list[str]]:
    """(first segments or ``None``, texts) as fed to the tokenizer.

    With ``use_keyword``/``use_location`` each tweet gets a first segment
    ``"keyword | location"`` (empty or missing fields dropped, so it may be empty); without
    either there is no first segment. Inputs are used as given: clean them first
    (:func:`clean_text`, :func:`clean_keyword`) unless they come from the processed CSVs.

    Args:
        texts: Tweet texts.
        keywords: Keyword per tweet (``None`` or ``""`` when absent).
        locations: Location per tweet (``None`` or ``""`` when absent).
        use_keyword: Put the keyword into the first segment.
        use_location: Put the location into the first segment.
    """
    if not (use_keyword or use_location):
        return None, list(texts)
    parts = []
    for keyword, location in zip(keywords, locations, strict=True):
        fields = [keyword] if use_keyword else []
        fields += [location] if use_location else []
        parts.append(SEGMENT_SEPARATOR.join(field for field in fields if field))
    return parts, list(texts)


def encode(
    tokenizer: Any,
    texts: Sequence[str],
    keywords: Sequence[str | None],
    locations: Sequence[str | None],
    *,
    use_keyword: bool,
    use_location: bool,
    max_length: int,
    return_tensors: str | None = None,
) -> Any:
    """Tokenize tweets as the model was trained on them (a ``BatchEncoding``).

    The first segment (see :func:`build_segments`) is never truncated; the text is cut to fit
    ``max_length``. With ``return_tensors`` (``"np"``, ``"pt"``) the batch is padded to its
    longest member; without it the ids stay unpadded lists.

    Args:
        tokenizer: A Hugging Face (fast) tokenizer.
        texts: Tweet texts, already cleaned.
        keywords: Keyword per tweet, already cleaned (``None``/``""`` when absent).
        locations: Location per tweet, already cleaned (``None``/``""`` when absent).
        use_keyword: The model's ``use_keyword`` setting (``tweetcls.json``).
        use_location: The model's ``use_location`` setting (``tweetcls.json``).
        max_length: The model's ``max_length`` (``tweetcls.json``).
        return_tensors: Tensor type of the padded batch, or ``None`` for lists.
    """
    first, texts = build_segments(
        texts, keywords, locations, use_keyword=use_keyword, use_location=use_location
    )
    if first is not None:
        first = fit_first_segments(tokenizer.backend_tokenizer, first, max_length)
    args = (texts,) if first is None else (first, texts)
    return tokenizer(
        *args,
        truncation="only_second" if first is not None else True,
        max_length=max_length,
        padding=return_tensors is not None,
        return_tensors=return_tensors,
    )


def fit_first_segments(backend: Any, first: list[str], max_length: int) -> list[str]:
    """Cut first segments too long for ``max_length`` at a token boundary.

    Truncation ``only_second`` never shortens the first segment, so a first segment that leaves
    no room for one token of text makes the tokenizer fail. Such segments are cut to the
    longest that leaves that room; every other input (all real keywords and locations) passes
    unchanged, so the token ids of anything that tokenized before are the same.

    Args:
        backend: The ``tokenizers.Tokenizer`` (a fast tokenizer's ``backend_tokenizer``); not
            changed.
        first: First segments.
        max_length: The model's ``max_length``.
    """
    from tokenizers import Tokenizer

    limit = max(1, max_length - backend.num_special_tokens_to_add(True) - 1)
    long = [i for i, segment in enumerate(first) if len(segment.encode("utf-8")) > limit]
    if not long:  # a token covers at least one byte (an emoji can be four tokens)
        return first
    plain = Tokenizer.from_str(backend.to_str())  # rare: only for long segments
    plain.no_truncation()
    plain.no_padding()
    first = list(first)
    encodings = plain.encode_batch([first[i] for i in long], add_special_tokens=False)
    for i, encoding in zip(long, encodings, strict=True):
        segment, count, keep = first[i], len(encoding.ids), limit
        while count > limit and keep > 0:
            # a cut inside a character of several tokens (an emoji, a combining mark) can
            # tokenize to more than ``keep`` tokens: cut one token earlier until it fits
            first[i] = segment[: encoding.offsets[keep - 1][1]]
            count = len(plain.encode(first[i], add_special_tokens=False).ids)
            keep -= 1
        if count > limit:
            first[i] = ""
    return first


class Encoder:
    """:func:`encode` for inference, padded numpy batches with little per-call overhead.

    Runs the fast tokenizer's ``tokenizers.Tokenizer`` directly (a private copy set up once
    with the same truncation and padding as :func:`encode`), skipping the per-call setup of
    the Hugging Face wrapper (about 8x faster at batch 1).

    Args:
        tokenizer: A Hugging Face fast tokenizer.
        use_keyword: The model's ``use_keyword`` setting.
        use_location: The model's ``use_location`` setting.
        max_length: The model's ``max_length``.
    """

    def __init__(
        self, tokenizer: Any, *, use_keyword: bool, use_location: bool, max_length: int
    ) -> None:
        from tokenizers import Tokenizer

        self.use_keyword = use_keyword
        self.use_location = use_location
        self.max_length = max_length
        self.input_names = list(tokenizer.model_input_names)
        paired = use_keyword or use_location
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
        backend.enable_truncation(
            max_length,
            strategy="only_second" if paired else "longest_first",
            direction=tokenizer.truncation_side,
        )
        backend.enable_padding(
            direction=tokenizer.padding_side,
            pad_id=tokenizer.pad_token_id,
            pad_type_id=tokenizer.pad_token_type_id,
            pad_token=tokenizer.pad_token,
        )
        self.backend = backend

    def __call__(
        self,
        texts: Sequence[str],
        keywords: Sequence[str | None],
        locations: Sequence[str | None],
    ) -> dict[str, np.ndarray]:
        """Model inputs (``input_names``) as int64 arrays padded to the longest tweet.

        Args:
            texts: Tweet texts, already cleaned.
            keywords: Keyword per tweet, already cleaned (``None``/``""`` when absent).
            locations: Location per tweet, already cleaned (``None``/``""`` when absent).
        """
        first, texts = build_segments(
            texts,
            keywords,
            locations,
            use_keyword=self.use_keyword,
            use_location=self.use_location,
        )
        if first is None:
            encodings = self.backend.encode_batch(texts)
        else:
            first = fit_first_segments(self.backend, first, self.max_length)
            encodings = self.backend.encode_batch(list(zip(first, texts, strict=True)))
        fields = {
            "input_ids": "ids",
            "attention_mask": "attention_mask",
            "token_type_ids": "type_ids",
        }
        return {
            name: np.array([getattr(e, fields[name]) for e in encodings], dtype=np.int64)
            for name in self.input_names
        }
