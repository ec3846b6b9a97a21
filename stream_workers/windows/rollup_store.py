"""The rollup table `ops_metrics_5min`: upserting closed windows, and reading the view for the
reconciliation that checks each closed window against the stored rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ops_common.postgres_pool import PostgresPool

from .aggregate import WindowResult
from .buckets import bucket_datetime


@dataclass(frozen=True, slots=True)
class WindowKey:
    """One window: a series and the start of its bucket."""

    app: str
    env: str
    event: str
    bucket: int  #: epoch seconds of the bucket start (UTC-aligned)


# One LATERAL read of the view per window: v_ops_5min is the definition we must equal, and the
# (app, env, event, date_bin(ts)) index keeps each read to that window's rows.
_READ_VIEW = """
SELECT k.i, v.total, v.avg_latency_ms, v.p95_latency_ms, v.failure_rate
FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[])
     WITH ORDINALITY AS k(bucket, app, env, event, i)
JOIN LATERAL (
    SELECT * FROM v_ops_5min v
    WHERE v.app = k.app AND v.env = k.env AND v.event = k.event AND v.bucket = k.bucket
) v ON true
"""

_UPSERT = """
INSERT INTO ops_metrics_5min AS r
    (bucket, app, env, event, total, avg_latency_ms, p95_latency_ms, failure_rate, updated_at)
SELECT *, now() FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[],
                            $5::bigint[], $6::float8[], $7::float8[], $8::float8[])
ON CONFLICT (bucket, app, env, event) DO UPDATE SET
    total = EXCLUDED.total, avg_latency_ms = EXCLUDED.avg_latency_ms,
    p95_latency_ms = EXCLUDED.p95_latency_ms, failure_rate = EXCLUDED.failure_rate,
    updated_at = now()
"""


class RollupStore:
    """Reads the view and upserts the rollup as the ops_rollup role through a `PostgresPool`."""

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool

    async def read_view(self, keys: Sequence[WindowKey]) -> dict[WindowKey, WindowResult]:
        """v_ops_5min for each window (absent when it has no rows)."""
        rows = await (await self._pool.ready()).fetch(_READ_VIEW, *_key_columns(keys))
        return {
            keys[row["i"] - 1]: WindowResult(
                total=row["total"],
                avg_latency_ms=row["avg_latency_ms"],
                p95_latency_ms=row["p95_latency_ms"],
                failure_rate=row["failure_rate"],
            )
            for row in rows
        }

    async def upsert(self, windows: Sequence[tuple[WindowKey, WindowResult]]) -> None:
        """Insert or replace the rollup rows of `windows`."""
        if not windows:
            return
        keys = [key for key, _ in windows]
        results = [result for _, result in windows]
        await (await self._pool.ready()).execute(
            _UPSERT,
            *_key_columns(keys),
            [r.total for r in results],
            [r.avg_latency_ms for r in results],
            [r.p95_latency_ms for r in results],
            [r.failure_rate for r in results],
        )


def _key_columns(keys: Sequence[WindowKey]) -> tuple[list[object], ...]:
    return (
        [bucket_datetime(k.bucket) for k in keys],
        [k.app for k in keys],
        [k.env for k in keys],
        [k.event for k in keys],
    )
