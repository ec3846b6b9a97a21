"""Storing events in PostgreSQL: one INSERT per batch, idempotent on the event id."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from ops_common.backoff import retry_forever
from ops_common.event import WireEvent
from ops_common.postgres_pool import UNAVAILABLE, PostgresPool

from .metrics import WorkerMetrics

log = logging.getLogger(__name__)

# ops_ingest holds INSERT only: no conflict target (that needs SELECT), no RETURNING, no COPY
# (refused under RLS). The command tag's row count tells inserted from duplicate.
INSERT_EVENTS = """
INSERT INTO ops_metrics (id, ts, app, env, event, ok, latency_ms, err_code, extra, received_at)
SELECT * FROM unnest(
    $1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
    $6::boolean[], $7::integer[], $8::text[], $9::jsonb[], $10::timestamptz[]
)
ON CONFLICT DO NOTHING
"""

# Errors about the data itself: retrying cannot help, the offending row must be set aside.
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """Outcome of storing one batch."""

    inserted: int  #: rows newly stored
    duplicates: int  #: rows whose id was already stored
    refused: list[tuple[WireEvent, str]]  #: rows PostgreSQL refused, with its message


class EventStore:
    """Writes batches as the INSERT-only role through a `PostgresPool`."""

    def __init__(self, pool: PostgresPool, metrics: WorkerMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def write(self, events: Sequence[WireEvent]) -> WriteResult:
        """Store `events`, retrying until PostgreSQL takes them; never drops a row silently.

        A batch PostgreSQL refuses for its data is bisected so only the bad rows are returned
        in `refused` and every other row is stored.
        """
        if not events:
            return WriteResult(0, 0, [])
        try:
            inserted = await self._insert_retrying(events)
        except _ROW_ERRORS as exc:
            if len(events) == 1:
                return WriteResult(0, 0, [(events[0], str(exc))])
            middle = len(events) // 2
            left = await self.write(events[:middle])
            right = await self.write(events[middle:])
            return WriteResult(
                left.inserted + right.inserted,
                left.duplicates + right.duplicates,
                left.refused + right.refused,
            )
        return WriteResult(inserted, len(events) - inserted, [])

    async def _insert_retrying(self, events: Sequence[WireEvent]) -> int:
        retrying = retry_forever(
            UNAVAILABLE,
            unless=_ROW_ERRORS,  # PostgresErrors too, but about the rows: bisected by write()
            what="insert",
            log=log,
            max_delay_s=self._pool.retry_max_s,
            on_retry=self._metrics.db_retries.inc,
        )
        return await retrying(self._insert, events)

    async def _insert(self, events: Sequence[WireEvent]) -> int:
        pool = await self._pool.ready()
        started = time.perf_counter()
        status = await pool.execute(INSERT_EVENTS, *insert_parameters(events))
        self._metrics.insert_duration.observe(time.perf_counter() - started)
        self._metrics.insert_size.observe(len(events))
        return int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"


def insert_parameters(events: Sequence[WireEvent]) -> tuple[list[object], ...]:
    """The column arrays `INSERT_EVENTS` takes, in its parameter order."""
    return (
        [e.id for e in events],
        [e.ts for e in events],
        [e.app for e in events],
        [e.env for e in events],
        [e.event for e in events],
        [e.ok for e in events],
        [e.latency_ms for e in events],
        [e.err_code for e in events],
        [None if e.extra is None else orjson.dumps(e.extra).decode() for e in events],
        [e.received_at for e in events],
    )
