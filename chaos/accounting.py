"""Comparing what the gateway acknowledged with what PostgreSQL holds, and the closed windows
of `ops_metrics_5min` with the view `v_ops_5min` (the contract of docs/windows.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import asyncpg

from stream_workers.windows.aggregate import WindowResult
from stream_workers.windows.closer import same_result

_STORED_OF = "SELECT count(*) FROM ops_metrics m JOIN unnest($1::uuid[]) AS a(id) USING (id)"
_MISSING_OF = """
SELECT a.id::text FROM unnest($1::uuid[]) AS a(id)
LEFT JOIN ops_metrics m USING (id) WHERE m.id IS NULL LIMIT $2
"""
_STORED_FOR_APP = "SELECT count(*) FROM ops_metrics WHERE app = $1"
_DUPLICATED_FOR_APP = """
SELECT count(*) FROM (SELECT id FROM ops_metrics WHERE app = $1 GROUP BY id HAVING count(*) > 1) d
"""
_CLOSED = "bucket + make_interval(secs => 300 + $2) < now()"
_COLUMNS = "bucket, env, event, total, avg_latency_ms, p95_latency_ms, failure_rate"


@dataclass
class Counts:
    """The comparison of one run (see docs/reliability.md for each figure's meaning)."""

    acknowledged: int  #: distinct event ids answered 201
    stored: int  #: of those, rows in ops_metrics
    missing: int  #: acknowledged and not stored (must be 0)
    duplicated: int  #: ids with more than one row (must be 0)
    stored_unacknowledged: int  #: rows of the app whose id was never answered 201 (allowed)
    bucket_mismatches: int  #: closed buckets where the rollup differs from the view (must be 0)
    buckets_compared: int  #: closed buckets of the app in the view or the rollup
    missing_sample: list[str] = field(default_factory=list)
    mismatch_sample: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        """Nothing lost, nothing doubled, every closed window equal to the view."""
        return self.missing == 0 and self.duplicated == 0 and self.bucket_mismatches == 0

    def as_dict(self) -> dict[str, object]:
        """The counts for the JSON report."""
        return asdict(self)


async def stored_of(conn: asyncpg.Connection, ids: Sequence[str]) -> int:
    """How many of `ids` have a row in ops_metrics."""
    return int(await conn.fetchval(_STORED_OF, list(ids)))


async def wait_stored(
    conn: asyncpg.Connection, ids: Sequence[str], timeout: float, poll: float = 1.0
) -> tuple[int, float]:
    """Poll until every id in `ids` is stored or `timeout` passes; (stored, seconds waited)."""
    started = time.monotonic()
    target = len(set(ids))
    stored = -1
    while True:
        stored = await stored_of(conn, ids)
        if stored >= target or time.monotonic() - started > timeout:
            return stored, time.monotonic() - started
        await asyncio.sleep(poll)


async def window_mismatches(
    conn: asyncpg.Connection, app: str, grace_s: float
) -> tuple[list[str], int]:
    """Closed buckets of `app` where ops_metrics_5min and v_ops_5min differ (full outer join:
    missing, extra and differing rows all count), and how many buckets were compared."""
    view = await conn.fetch(
        f"SELECT {_COLUMNS} FROM v_ops_5min WHERE app = $1 AND {_CLOSED}", app, grace_s
    )
    rollup = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ops_metrics_5min WHERE app = $1 AND {_CLOSED}", app, grace_s
    )
    by_key = {_key(r): _result(r) for r in view}
    rolled = {_key(r): _result(r) for r in rollup}
    problems = [f"missing in rollup: {k}" for k in sorted(by_key.keys() - rolled.keys())]
    problems += [f"extra in rollup: {k}" for k in sorted(rolled.keys() - by_key.keys())]
    problems += [
        f"differs {k}: view {by_key[k]} rollup {rolled[k]}"
        for k in sorted(by_key.keys() & rolled.keys())
        if not same_result(by_key[k], rolled[k])
    ]
    return problems, len(by_key.keys() | rolled.keys())


async def wait_windows_equal(
    conn: asyncpg.Connection, app: str, grace_s: float, timeout: float, poll: float = 1.0
) -> tuple[list[str], int, float]:
    """Poll until the rollup equals the view for every closed bucket of `app` (or `timeout`);
    (what still differs, buckets compared, seconds waited)."""
    started = time.monotonic()
    while True:
        problems, compared = await window_mismatches(conn, app, grace_s)
        if (not problems and compared) or time.monotonic() - started > timeout:
            return problems, compared, time.monotonic() - started
        await asyncio.sleep(poll)


async def account(
    conn: asyncpg.Connection, app: str, acked_ids: Sequence[str], grace_s: float
) -> Counts:
    """The final comparison for one run of `app`."""
    ids = sorted(set(acked_ids))
    stored = await stored_of(conn, ids)
    stored_for_app = int(await conn.fetchval(_STORED_FOR_APP, app))
    missing = [r[0] for r in await conn.fetch(_MISSING_OF, ids, 10)] if stored < len(ids) else []
    problems, compared = await window_mismatches(conn, app, grace_s)
    return Counts(
        acknowledged=len(ids),
        stored=stored,
        missing=len(ids) - stored,
        duplicated=int(await conn.fetchval(_DUPLICATED_FOR_APP, app)),
        stored_unacknowledged=stored_for_app - stored,
        bucket_mismatches=len(problems),
        buckets_compared=compared,
        missing_sample=missing,
        mismatch_sample=problems[:10],
    )


def _key(row: asyncpg.Record) -> tuple[str, str, str]:
    return (row["bucket"].isoformat(), row["env"], row["event"])


def _result(row: asyncpg.Record) -> WindowResult:
    return WindowResult(
        row["total"], row["avg_latency_ms"], row["p95_latency_ms"], row["failure_rate"]
    )
