"""The dashboard's reads, as role ops_reader: the 5-minute series (closed windows from the
rollup, the newest buckets live from v_ops_5min), the filter values present, recent alerts.

Across several series a bucket's total and failures are sums, its average latency is weighted
by each series' total, and its p95 is the worst series' p95 (p95s do not combine exactly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ops_common.postgres_pool import PostgresPool

from .params import Query

BUCKET = timedelta(minutes=5)
#: Buckets this recent are read live from the view: the open window, and the one that may
#: still be in its grace period.
LIVE_BUCKETS = 2

_FILTER = (
    "($4::text IS NULL OR env = $4) AND ($5::text IS NULL OR app = $5)"
    " AND ($6::text IS NULL OR event = $6)"
)

_SERIES = f"""
WITH windows AS (
    SELECT bucket, total, avg_latency_ms, p95_latency_ms, failure_rate
    FROM ops_metrics_5min
    WHERE bucket >= $1::timestamptz AND bucket < least($2::timestamptz, $3::timestamptz)
          AND {_FILTER}
    UNION ALL
    SELECT bucket, total, avg_latency_ms, p95_latency_ms, failure_rate
    FROM v_ops_5min
    WHERE bucket >= greatest($1::timestamptz, $3::timestamptz) AND bucket < $2::timestamptz
          AND {_FILTER}
)
SELECT bucket,
       sum(total)::bigint AS total,
       round(sum(total * failure_rate))::bigint AS failures,
       sum(avg_latency_ms * total) / nullif(sum(total) FILTER (WHERE avg_latency_ms IS NOT NULL), 0)
           AS avg_latency_ms,
       max(p95_latency_ms) AS p95_latency_ms,
       count(*)::int AS series
FROM windows GROUP BY bucket ORDER BY bucket
"""

_FILTER_VALUES = """
SELECT DISTINCT env, app, event FROM (
    SELECT env, app, event FROM ops_metrics_5min WHERE bucket >= $1::timestamptz
    UNION ALL
    SELECT env, app, event FROM v_ops_5min WHERE bucket >= $2::timestamptz
) keys
"""


def bucket_floor(moment: datetime) -> datetime:
    """The start of the 5-minute bucket holding `moment` (UTC-aligned)."""
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % int(BUCKET.total_seconds()), UTC)


class DashboardReads:
    """Every read the dashboard makes, through one reader-role pool."""

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool

    async def series(self, query: Query, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """One point per bucket with data in [start, end), oldest first."""
        now = now or datetime.now(UTC)
        live_from = bucket_floor(now) - BUCKET * (LIVE_BUCKETS - 1)
        start = bucket_floor(query.start)
        rows = await (await self._pool.ready()).fetch(
            _SERIES, start, query.end, live_from, query.env, query.app, query.event
        )
        return [_point(row, live_from) for row in rows]

    async def filter_values(self, *, now: datetime | None = None) -> dict[str, list[str]]:
        """The envs, apps and events with windows in the last 7 days."""
        now = now or datetime.now(UTC)
        rows = await (await self._pool.ready()).fetch(
            _FILTER_VALUES, now - timedelta(days=7), bucket_floor(now) - BUCKET
        )
        return {
            "envs": sorted({r["env"] for r in rows}),
            "apps": sorted({r["app"] for r in rows}),
            "events": sorted({r["event"] for r in rows}),
        }

    async def alerts(self, query: Query, limit: int) -> list[dict[str, Any]]:
        """Firings and resolutions in the range, newest first."""
        rows = await (await self._pool.ready()).fetch(
            _ALERTS_SQL, query.start, query.end, limit, query.env, query.app, query.event
        )
        return [dict(row) for row in rows]


_ALERTS_SQL = f"""
SELECT id, created_at, rule, app, env, event, kind, severity, bucket, metric, value, threshold,
       message, delivery
FROM ops_alert_notifications
WHERE created_at >= $1::timestamptz AND created_at < $2::timestamptz AND {_FILTER}
ORDER BY created_at DESC, id DESC LIMIT $3::int
"""


def _point(row: Any, live_from: datetime) -> dict[str, Any]:
    total, failures = row["total"], row["failures"]
    return {
        "bucket": row["bucket"],
        "total": total,
        "failures": failures,
        "successes": total - failures,
        "failure_rate": failures / total if total else 0.0,
        "avg_latency_ms": row["avg_latency_ms"],
        "p95_latency_ms": row["p95_latency_ms"],
        "series": row["series"],
        "live": row["bucket"] >= live_from,
    }


def kpi(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The card: the newest bucket, with its change against the bucket before it."""
    if not points:
        return None
    latest = points[-1]
    previous = (
        points[-2]
        if len(points) > 1 and points[-2]["bucket"] == latest["bucket"] - BUCKET
        else None
    )
    card = {k: latest[k] for k in ("bucket", "total", "failure_rate", "p95_latency_ms", "live")}
    card["previous"] = (
        {k: previous[k] for k in ("bucket", "total", "failure_rate", "p95_latency_ms")}
        if previous
        else None
    )
    card["change"] = {
        k: _change(latest[k], previous[k] if previous else None)
        for k in ("total", "failure_rate", "p95_latency_ms")
    }
    return card


def _change(now: float | None, before: float | None) -> float | None:
    if now is None or before is None:
        return None
    return now - before
