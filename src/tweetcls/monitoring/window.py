"""Time windows of the request log: ISO 8601 times or durations back from now (``24h``).

``tweetcls drift`` takes any ISO 8601 time (naive = UTC, :func:`parse_time`); the HTTP API
takes what its OpenAPI schema states and nothing else (:func:`parse_since`): a duration of
:data:`DURATION_PATTERN` or an RFC 3339 ``date-time``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

#: A duration back from now: up to 5 digits (and 3 decimals) and a unit (seconds to weeks).
#: (The same text is the OpenAPI schema's ``pattern``: a valid ECMA-262 regex too.)
DURATION_PATTERN = r"^([0-9]{1,5}(?:\.[0-9]{1,3})?)([smhdw])$"
_DURATION = re.compile(DURATION_PATTERN)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
#: RFC 3339's ``date-time`` (section 5.6; ``T`` and ``Z`` in either case, a leap second 60).
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)
#: The message of a ``since`` that is neither.
SINCE_EXPECTED = "not an RFC 3339 time (2025-03-01T12:00:00Z) or a duration (30m, 24h, 7d)"


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


def _rfc3339(match: re.Match[str]) -> datetime:
    """The moment of an :data:`_RFC3339` match, in UTC (``ValueError`` for a date or time that
    does not exist); a leap second is the minute's last microsecond, and moments beyond what
    :class:`datetime` holds in UTC are its ends."""
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    micro = int((match.group(7) or ".0")[1:8].ljust(6, "0")[:6])
    if second == 60:
        second, micro = 59, 999_999
    offset = timezone.utc
    if match.group(8):
        hours, minutes = int(match.group(9)), int(match.group(10))
        if hours > 23 or minutes > 59:
            raise ValueError("offset out of range")
        sign = -1 if match.group(8) == "-" else 1
        offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    local = datetime(year, month, day, hour, minute, second, micro, tzinfo=offset)
    try:
        return local.astimezone(timezone.utc)
    except OverflowError:
        end = datetime.max if local.year == datetime.max.year else datetime.min
        return end.replace(tzinfo=timezone.utc)


def parse_since(value: str, now: datetime) -> datetime:
    """The start of ``GET /drift``'s window: a duration before ``now`` (:data:`DURATION_PATTERN`)
    or an RFC 3339 time, as the OpenAPI schema states (nothing else: no spaces, no naive time).

    Raises:
        ValueError: neither (:data:`SINCE_EXPECTED`; the caller names the value).
    """
    duration = _DURATION.fullmatch(value)
    moment = _RFC3339.fullmatch(value)
    try:
        if duration:
            return now - timedelta(**{_UNITS[duration.group(2)]: float(duration.group(1))})
        if moment:
            return _rfc3339(moment)
    except (OverflowError, ValueError):
        pass
    raise ValueError(SINCE_EXPECTED)
