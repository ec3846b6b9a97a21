"""Unit tests for stream_workers.windows.buckets: UTC-aligned 5-minute bucket boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from support.tables import cases

from stream_workers.windows.buckets import (
    BUCKET_SECONDS,
    bucket_datetime,
    bucket_end,
    bucket_start,
)

# 2025-06-01T00:00:00Z in epoch seconds: 2025-01-01 is 1735689600, plus 151 days (Jan..May).
JUNE_1 = 1_748_736_000
PLUS_9 = timezone(timedelta(hours=9))
MINUS_0330 = timezone(-timedelta(hours=3, minutes=30))
PLUS_0543 = timezone(timedelta(hours=5, minutes=43))  # local 5-minute marks are not UTC ones


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


BUCKET_STARTS = [
    ("unix-epoch", utc(1970, 1, 1), 0),
    ("unix-epoch-last-us-of-bucket", utc(1970, 1, 1, 0, 4, 59, 999_999), 0),
    ("pg-date-bin-origin", utc(2000, 1, 1), 946_684_800),
    ("midnight", utc(2025, 6, 1), JUNE_1),
    ("boundary-is-its-own-start", utc(2025, 6, 1, 0, 5), JUNE_1 + 300),
    ("one-us-before-boundary", utc(2025, 6, 1, 0, 4, 59, 999_999), JUNE_1),
    ("one-us-after-boundary", utc(2025, 6, 1, 0, 5, 0, 1), JUNE_1 + 300),
    ("mid-bucket", utc(2025, 6, 1, 12, 7, 30), JUNE_1 + 12 * 3600 + 300),
    ("last-us-of-day", utc(2025, 6, 1, 23, 59, 59, 999_999), JUNE_1 + 86_400 - 300),
    ("next-day-midnight", utc(2025, 6, 2), JUNE_1 + 86_400),
    # A float timestamp() rounds this up to 253402300800.0, the next bucket.
    ("float-would-round-up", utc(9999, 12, 31, 23, 59, 59, 999_999), 253_402_300_500),
    ("plus-9-boundary", datetime(2025, 6, 1, 9, 5, tzinfo=PLUS_9), JUNE_1 + 300),
    ("plus-9-one-us-before", datetime(2025, 6, 1, 9, 4, 59, 999_999, tzinfo=PLUS_9), JUNE_1),
    ("plus-9-previous-utc-day", datetime(2025, 6, 1, 8, 59, tzinfo=PLUS_9), JUNE_1 - 300),
    ("minus-0330", datetime(2025, 5, 31, 20, 37, tzinfo=MINUS_0330), JUNE_1 + 300),
    ("plus-0543-local-mark", datetime(2025, 6, 1, 5, 50, tzinfo=PLUS_0543), JUNE_1 + 300),
]


@pytest.mark.parametrize(("ts", "expected"), cases(BUCKET_STARTS))
def test_bucket_start(ts: datetime, expected: int) -> None:
    start = bucket_start(ts)
    assert type(start) is int
    assert start == expected


@pytest.mark.parametrize(
    "ts",
    [
        pytest.param(datetime(2025, 6, 1, 0, 5), id="naive"),
        pytest.param(datetime(2025, 6, 1, 0, 4, 59, 999_999), id="naive-with-microseconds"),
    ],
)
def test_bucket_start_rejects_naive_datetime(ts: datetime) -> None:
    with pytest.raises(ValueError, match="naive"):
        bucket_start(ts)


def test_bucket_is_five_minutes() -> None:
    assert BUCKET_SECONDS == 300


@pytest.mark.parametrize(
    ("start", "expected"),
    cases([("epoch", 0, 300), ("june-1", JUNE_1, JUNE_1 + 300), ("before-epoch", -300, 0)]),
)
def test_bucket_end(start: int, expected: int) -> None:
    assert bucket_end(start) == expected


BUCKET_DATETIMES = [
    ("epoch", 0, utc(1970, 1, 1)),
    ("pg-date-bin-origin", 946_684_800, utc(2000, 1, 1)),
    ("june-1-00-05", JUNE_1 + 300, utc(2025, 6, 1, 0, 5)),
    ("june-1-23-55", JUNE_1 + 86_400 - 300, utc(2025, 6, 1, 23, 55)),
]


@pytest.mark.parametrize(("start", "expected"), cases(BUCKET_DATETIMES))
def test_bucket_datetime(start: int, expected: datetime) -> None:
    result = bucket_datetime(start)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


# The year-9999 row's bucket ends at 10000-01-01, past datetime.max.
@pytest.mark.parametrize(("ts", "start"), cases([r for r in BUCKET_STARTS if r[1].year < 9999]))
def test_bucket_datetime_round_trip(ts: datetime, start: int) -> None:
    begin = bucket_datetime(bucket_start(ts))
    end = bucket_datetime(bucket_end(bucket_start(ts)))
    assert begin <= ts < end
    assert end - begin == timedelta(seconds=BUCKET_SECONDS)
    assert bucket_start(begin) == start
