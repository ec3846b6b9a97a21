"""5-minute event-time buckets, aligned exactly as the `v_ops_5min` view aligns them.

The view uses `date_bin('5 minutes', ts, TIMESTAMPTZ '2000-01-01 00:00:00+00')`. That origin
is itself a multiple of 300 s after the Unix epoch, so flooring epoch seconds to a multiple of
300 gives the same bucket starts for every ts from that origin on. (Before the origin,
PostgreSQL's date_bin puts a ts lying exactly on a boundary one bucket early; event times are
never that old.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

BUCKET_SECONDS: int = 300

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BUCKET = timedelta(seconds=BUCKET_SECONDS)


def bucket_start(ts: datetime) -> int:
    """Epoch seconds of the start of the UTC-aligned 5-minute bucket holding `ts`.

    Raises ValueError for a naive datetime: its instant is unknown.
    """
    if ts.utcoffset() is None:
        raise ValueError(f"bucket_start needs an aware datetime, got naive {ts.isoformat()}")
    # timedelta // timedelta is exact integer arithmetic on microseconds; float timestamp()
    # could round 23:59:59.999999 up into the next bucket.
    return (ts - _EPOCH) // _BUCKET * BUCKET_SECONDS


def bucket_end(start: int) -> int:
    """Epoch seconds of the (exclusive) end of the bucket starting at `start`."""
    return start + BUCKET_SECONDS


def bucket_datetime(start: int) -> datetime:
    """The bucket start `start` (epoch seconds) as an aware UTC datetime."""
    return _EPOCH + timedelta(seconds=start)
