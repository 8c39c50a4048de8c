"""Time windows of the request log: ISO 8601 times or durations back from now (``24h``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, now: datetime) -> datetime:
    """ISO 8601 (naive = UTC) or a duration before ``now`` (``30m``, ``24h``, ``7d``).

    Raises:
        ValueError: neither (the message says what is expected; the caller names the value).
    """
    match = _DURATION.fullmatch(value.strip())
    try:
        if match:
            return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
        moment = datetime.fromisoformat(value.strip())
    except (OverflowError, ValueError):
        raise ValueError(
            "not an ISO 8601 time (2025-03-01T12:00:00Z) or a duration (30m, 24h, 7d)"
        ) from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
