"""Errors a user can cause; the CLI prints them as one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class TweetclsError(Exception):
    """Base class: bad input, bad configuration or an unreachable resource."""


class DataValidationError(TweetclsError):
    """A raw or processed data file is missing or malformed."""


class CsvFormatError(DataValidationError):
    """A CSV file that cannot be read or used; the message is one line."""


class PretrainedModelError(TweetclsError):
    """The configured pretrained model cannot be found or downloaded."""


class ConfigError(TweetclsError, ValueError):
    """A configuration value is out of range."""


class OutputWriteError(TweetclsError):
    """An output could not be written for lack of space; the previous one is unchanged."""

    def __init__(self, target: Path, reason: str) -> None:
        super().__init__(
            f"{target}: not written ({reason}); the previous one, if any, is unchanged"
        )
        self.target = target
        self.reason = reason
