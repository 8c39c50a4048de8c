"""``since`` of ``GET /drift``: exactly what its OpenAPI schema states, and ``tweetcls drift``'s
ISO 8601 times."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from tweetcls.monitoring.window import DURATION_PATTERN, parse_since, parse_time

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("99999w", NOW - timedelta(weeks=99999)),
        ("1.5h", NOW - timedelta(hours=1.5)),
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, tzinfo=timezone.utc)),
        ("2026-12-01t10:00:00.5z", datetime(2026, 12, 1, 10, 0, 0, 500_000, timezone.utc)),
        (
            "2026-12-01T10:00:00.123456789+02:00",
            datetime(2026, 12, 1, 8, 0, 0, 123_456, timezone.utc),
        ),
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999_999, timezone.utc)),
        ("0001-01-01T00:00:00+23:59", datetime.min.replace(tzinfo=timezone.utc)),
        ("9999-12-31T23:59:59-23:59", datetime.max.replace(tzinfo=timezone.utc)),
    ],
)
def test_since_takes_what_the_schema_states(value: str, expected: datetime) -> None:
    assert parse_since(value, NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        " 30m",
        "30m ",
        "123456s",
        "1.2345h",
        "30",
        "2026-12-01T10:00:00",  # no offset
        "2026-12-01",
        "2026-12-01 10:00:00Z",
        "2026-02-30T10:00:00Z",
        "2026-12-01T24:00:00Z",
        "2026-12-01T10:00:00+24:00",
        "yesterday",
    ],
)
def test_since_refuses_the_rest(value: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_since(value, NOW)
    assert not re.search(DURATION_PATTERN, value)


def test_the_command_line_takes_any_iso_time() -> None:
    assert parse_time("2026-12-01", NOW) == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert parse_time(" 24h ", NOW) == NOW - timedelta(hours=24)
