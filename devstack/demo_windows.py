"""Closed windows written in bulk (COPY, as the superuser) for the dashboard's tests, its
screenshots and its redraw measurement: every series gets a known shape (a daily traffic wave,
per-app latency, and one incident: app2's failures jump for ten windows two hours ago)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from ops_dashboard.queries import BUCKET, LIVE_BUCKETS, bucket_floor

BUCKETS_PER_DAY = 288
INCIDENT_APP = 2


@dataclass(frozen=True)
class Seeded:
    """What `seed_windows` wrote: every closed bucket, per-key values, the series keys."""

    env: str
    apps: list[str]
    events: list[str]
    buckets: list[datetime]

    def total(self, i: int) -> int:
        """The total of every key in the i-th bucket: a daily wave of 60-100 events."""
        return 80 + round(20 * math.sin(2 * math.pi * i / BUCKETS_PER_DAY))

    def incident(self, i: int) -> bool:
        """Whether the i-th bucket is in the incident (24 to 14 buckets before the newest)."""
        return len(self.buckets) - 24 <= i < len(self.buckets) - 14

    def failure_rate(self, i: int, app_index: int) -> float:
        """Failure rate of app number `app_index` in the i-th bucket."""
        if app_index == INCIDENT_APP and self.incident(i):
            return 0.18
        return 0.002 * (app_index + 1)

    def p95(self, i: int, app_index: int) -> float:
        """p95 of app number `app_index` in the i-th bucket."""
        spike = 900.0 if app_index == INCIDENT_APP and self.incident(i) else 0.0
        return 100.0 + 10 * app_index + i % 5 + spike


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
            seeded.failure_rate(i, a),
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
