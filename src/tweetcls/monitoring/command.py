"""``python -m tweetcls drift``: test a window of the request log against the training data.

Writes ``<out>/drift.json`` and ``<out>/drift.html`` (each atomically) and prints a one-line
summary. Exit code 0, or 1 with ``--fail-on-drift`` when drift is detected; bad input raises
:class:`~tweetcls.core.errors.ConfigError` (the dispatcher prints ``error: ...``, exit code 2).
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tweetcls.core.atomic import write_text
from tweetcls.core.bundle import DRIFT_REFERENCE_FILE, read_json
from tweetcls.core.errors import ConfigError
from tweetcls.monitoring.drift import DEFAULT_ALPHA, DEFAULT_DRIFT_SHARE, compare
from tweetcls.monitoring.requestlog import RequestLog, parse_database_url
from tweetcls.serving.settings import DEFAULT_DATABASE_URL, DRIFT_MIN_SAMPLES

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, option: str, now: datetime) -> datetime:
    """ISO 8601 (naive = UTC) or a duration before ``now`` (``30m``, ``24h``, ``7d``)."""
    match = _DURATION.fullmatch(value.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ConfigError(
            f"{option} {value!r}: not an ISO 8601 time (2025-03-01T12:00:00Z) "
            "or a duration (30m, 24h, 7d)"
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def load_reference(path: Path) -> dict[str, Any]:
    """The drift reference of a bundle directory, or a ``drift_reference.json`` file."""
    file = path / DRIFT_REFERENCE_FILE if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"--reference: {file}: file not found (export a bundle first)")
    try:
        return read_json(file)
    except ConfigError as err:
        raise ConfigError(f"--reference: {err}") from None


def build_parser(prog: str = "tweetcls drift") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Test logged predictions against the training data's drift reference.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--since", required=True, help="ISO 8601 time or duration (24h, 7d)")
    parser.add_argument("--until", help="ISO 8601 time or duration before now; None: now")
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="the request log's database",
    )
    parser.add_argument(
        "--reference", required=True, type=Path, help=f"bundle dir or {DRIFT_REFERENCE_FILE}"
    )
    parser.add_argument("--out", type=Path, default=Path("reports/drift"), help="output dir")
    parser.add_argument(
        "--min-samples",
        type=int,
        default=DRIFT_MIN_SAMPLES,
        help="fewest predictions for a verdict",
    )
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="p-value threshold")
    parser.add_argument(
        "--drift-share",
        type=float,
        default=DEFAULT_DRIFT_SHARE,
        help="share of drifted features for drift",
    )
    parser.add_argument(
        "--fail-on-drift", action="store_true", help="exit with code 1 when drift is detected"
    )
    return parser


def main(argv: list[str] | None = None, prog: str = "tweetcls drift") -> None:
    """Entry point of ``tweetcls drift``."""
    args = build_parser(prog).parse_args(argv)
    now = datetime.now(timezone.utc)
    since = parse_time(args.since, "--since", now)
    until = parse_time(args.until, "--until", now) if args.until else now
    if until <= since:
        raise ConfigError(f"--until {until.isoformat()} is not after --since {since.isoformat()}")
    reference = load_reference(args.reference)
    url = parse_database_url(args.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database).is_file():
        raise ConfigError(f"--database-url: {url.database}: no request log database there")
    log = RequestLog(args.database_url)
    try:
        traffic = log.read(since, until)
    finally:
        log.close()
    report = compare(
        reference,
        traffic,
        min_samples=args.min_samples,
        alpha=args.alpha,
        drift_share=args.drift_share,
        since=since,
        until=until,
    )
    write_text(args.out / "drift.json", json.dumps(report.to_dict(), indent=2) + "\n")
    write_text(args.out / "drift.html", report.to_html())
    print(report.summary())
    print(f"report: {args.out / 'drift.json'}, {args.out / 'drift.html'}")
    if args.fail_on_drift and report.drift_detected:
        raise SystemExit(1)
