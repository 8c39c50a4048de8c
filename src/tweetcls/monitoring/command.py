"""``python -m tweetcls drift``: test a window of the request log against the training data.

Writes ``<out>/drift.json`` and ``<out>/drift.html`` (each atomically) and prints a one-line
summary. Exit code 0, or 1 with ``--fail_on_drift`` when drift is detected; bad input raises
:class:`~tweetcls.core.errors.ConfigError` (the dispatcher prints ``error: ...``, exit code 2).
Every flag can also be set by its ``TWEETCLS_*`` variable (``TWEETCLS_DATABASE_URL``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from tweetcls.core.atomic import write_text
from tweetcls.core.bundle import DRIFT_REFERENCE_FILE, read_json
from tweetcls.core.errors import ConfigError
from tweetcls.monitoring.drift import DEFAULT_ALPHA, DEFAULT_DRIFT_SHARE, compare
from tweetcls.monitoring.logtable import parse_database_url
from tweetcls.monitoring.requestlog import RequestLog
from tweetcls.monitoring.settings import RequestLogSettings, parse_command_line
from tweetcls.monitoring.window import parse_time


class DriftSettings(RequestLogSettings):
    """Test logged predictions against the training data's drift reference (drift.json, .html)."""

    since: datetime
    """Start of the window: ISO 8601 time (naive = UTC) or a duration back from now (24h, 7d)."""
    until: datetime | None = None
    """End of the window, as --since; None: now."""
    reference: Path
    """Bundle directory or its drift_reference.json."""
    out: Path = Path("reports/drift")
    """Directory of drift.json and drift.html."""
    alpha: float = Field(DEFAULT_ALPHA, gt=0, lt=1)
    """p-value threshold of every feature test."""
    drift_share: float = Field(DEFAULT_DRIFT_SHARE, gt=0, le=1)
    """Share of drifted features at which drift is detected."""
    fail_on_drift: bool = False
    """Exit with code 1 when drift is detected (for cron and CI)."""

    @field_validator("since", "until", mode="before")
    @classmethod
    def _moment(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_time(value, datetime.now(timezone.utc))
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DriftSettings:
        until = self.until or datetime.now(timezone.utc)
        if until <= self.since:
            raise ValueError(
                f"--until {until.isoformat()} is not after --since {self.since.isoformat()}"
            )
        return self


def load_reference(path: Path) -> dict[str, Any]:
    """The drift reference of a bundle directory, or a ``drift_reference.json`` file."""
    file = path / DRIFT_REFERENCE_FILE if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"--reference: {file}: file not found (export a bundle first)")
    try:
        return read_json(file)
    except ConfigError as err:
        raise ConfigError(f"--reference: {err}") from None


def main(args: list[str] | None = None, prog: str = "tweetcls drift") -> None:
    """Entry point of ``tweetcls drift``."""
    settings = parse_command_line(DriftSettings, args, prog)
    since = settings.since
    until = settings.until or datetime.now(timezone.utc)
    reference = load_reference(settings.reference)
    url = parse_database_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database).is_file():
        raise ConfigError(f"--database_url: {url.database}: no request log database there")
    log = RequestLog(settings.database_url)
    try:
        traffic = log.read(since, until)
    finally:
        log.close()
    report = compare(
        reference,
        traffic,
        min_samples=settings.drift_min_samples,
        alpha=settings.alpha,
        drift_share=settings.drift_share,
        since=since,
        until=until,
    )
    out = settings.out
    write_text(out / "drift.json", json.dumps(report.to_dict(), indent=2) + "\n")
    write_text(out / "drift.html", report.to_html())
    print(report.summary())
    print(f"report: {out / 'drift.json'}, {out / 'drift.html'}")
    if settings.fail_on_drift and report.drift_detected:
        raise SystemExit(1)
