"""Closed windows written in bulk (COPY, as the superuser) for the dashboard's tests, its
screenshots and its redraw measurement: every series gets a known, simple shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from ops_dashboard.queries import BUCKET, LIVE_BUCKETS, bucket_floor


@dataclass(frozen=True)
class Seeded:
    """What `seed_windows` wrote: every closed bucket, per-key values, the series keys."""

    env: str
    apps: list[str]
    events: list[str]
    buckets: list[datetime]

    def total(self, i: int) -> int:
        """The total of every key in the i-th bucket."""
        return 10 + i % 7

    def failure_rate(self, app_index: int) -> float:
        """Failure rate of app number `app_index` (constant over time)."""
        return 0.01 * (app_index + 1)

    def p95(self, i: int, app_index: int) -> float:
        """p95 of app number `app_index` in the i-th bucket."""
        return 100.0 + 10 * app_index + i % 5


async def seed_windows(
    admin_dsn: str, env: str, *, apps: int, events: int, days: float, now: datetime | None = None
) -> Seeded:
    """Write closed windows for apps x events series over `days` (up to the live buckets) into
    ops_metrics_5min with COPY, as the superuser."""
    now = now or datetime.now(UTC)
    live_from = bucket_floor(now) - BUCKET * (LIVE_BUCKETS - 1)
    count = int(timedelta(days=days) / BUCKET)
    buckets = [live_from - BUCKET * (count - i) for i in range(count)]
    seeded = Seeded(
        env, [f"app{a}" for a in range(apps)], [f"ev{e}" for e in range(events)], buckets
    )
    records = [
        (
            bucket,
            app,
            env,
            event,
            seeded.total(i),
            50.0 + a,
            seeded.p95(i, a),
            seeded.failure_rate(a),
            now,
        )
        for i, bucket in enumerate(buckets)
        for a, app in enumerate(seeded.apps)
        for event in seeded.events
    ]
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.copy_records_to_table(
            "ops_metrics_5min",
            records=records,
            columns=[
                "bucket",
                "app",
                "env",
                "event",
                "total",
                "avg_latency_ms",
                "p95_latency_ms",
                "failure_rate",
                "updated_at",
            ],
        )
    finally:
        await conn.close()
    return seeded
