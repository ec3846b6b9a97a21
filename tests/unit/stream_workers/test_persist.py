"""Unit tests for the persist step: a failure in the middle of a batch is retried, never
dropped, because Faust restarts a crashed agent past the messages it had taken."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import orjson
from prometheus_client import CollectorRegistry

from stream_workers.dead_letters import DeadLetterPublisher
from stream_workers.decode import ConsumedEvent, ConsumedMessage, DeadLetter
from stream_workers.event_store import EventStore
from stream_workers.metrics import WorkerMetrics
from stream_workers.persist import AfterStore, BatchPersister


def message(offset: int) -> ConsumedMessage:
    now = datetime.now(UTC).isoformat()
    value = orjson.dumps(
        {
            "id": str(uuid.uuid4()),
            "ts": now,
            "received_at": now,
            "app": "unit",
            "env": "test",
            "event": "login",
            "ok": True,
            "latency_ms": 12,
            "err_code": None,
            "extra": None,
        }
    )
    return ConsumedMessage(0, offset, b"unit|test|login", value)


class FlakyPool:
    """Stands in for PostgresPool: its first `failures` executes raise `error`; an insert
    holding an id of `refused_ids` raises what PostgreSQL says of a row it cannot take."""

    retry_max_s = 0.5

    def __init__(
        self, error: Exception, failures: int = 1, refused_ids: frozenset[uuid.UUID] = frozenset()
    ) -> None:
        self.error = error
        self.failures = failures
        self.refused_ids = refused_ids
        self.executed: list[int] = []

    async def ready(self) -> FlakyPool:
        return self

    async def execute(self, _query: str, *columns: list[object]) -> str:
        if self.failures:
            self.failures -= 1
            raise self.error
        if self.refused_ids.intersection(columns[0]):
            raise asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence")
        self.executed.append(len(columns[0]))
        return f"INSERT 0 {len(columns[0])}"


class CollectedDeadLetters(DeadLetterPublisher):
    def __init__(self) -> None:
        self.published: list[DeadLetter] = []

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        self.published.extend(letters)


def persister(pool: FlakyPool, metrics: WorkerMetrics, after_store: AfterStore) -> BatchPersister:
    return BatchPersister(
        EventStore(pool, metrics),  # type: ignore[arg-type]
        CollectedDeadLetters(),
        metrics,
        after_store=after_store,
        retry_max_s=0.5,
    )


def value(metrics: WorkerMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


async def test_connection_terminated_mid_insert_is_retried_not_raised() -> None:
    # What PostgreSQL stopping mid-INSERT raised once (MagicStack/asyncpg#1069); it escaped
    # the retry and Faust restarted the agent past 182 taken messages.
    error = asyncpg.InternalClientError("cannot switch to state 12; another operation (2)")
    pool, metrics = FlakyPool(error), WorkerMetrics(CollectorRegistry())
    windows: list[list[ConsumedEvent]] = []
    stored = await persister(pool, metrics, windows.append).handle([message(o) for o in range(5)])
    assert len(stored) == 5
    assert pool.executed == [5]
    assert value(metrics, "worker_db_retries_total") == 1
    assert value(metrics, "worker_events_inserted_total") == 5
    assert windows == [stored]


async def test_an_unexpected_error_is_retried_and_the_batch_still_placed() -> None:
    pool, metrics, windows = (
        FlakyPool(RuntimeError("a bug"), 2),
        WorkerMetrics(CollectorRegistry()),
        [],
    )
    stored = await persister(pool, metrics, windows.append).handle([message(o) for o in range(3)])
    assert [c.offset for c in stored] == [0, 1, 2]
    assert value(metrics, "worker_batch_retries_total") == 2
    assert value(metrics, "worker_events_consumed_total") == 3  # counted once, not per attempt
    assert windows == [stored]


async def test_a_failing_window_update_repeats_the_step_before_the_ack() -> None:
    pool, metrics = FlakyPool(RuntimeError("unused"), 0), WorkerMetrics(CollectorRegistry())
    calls: list[int] = []

    def apply_once_failing(events: list[ConsumedEvent]) -> None:
        calls.append(len(events))
        if len(calls) == 1:
            raise KeyError("window state")

    stored = await persister(pool, metrics, apply_once_failing).handle(
        [message(o) for o in range(4)]
    )
    assert len(stored) == 4
    assert calls == [4, 4]
    assert pool.executed == [4, 4]  # the insert is idempotent on the id; redoing it is safe


async def test_a_row_postgres_refuses_is_dead_lettered_at_once_not_retried() -> None:
    # A DataError is a PostgresError too; it must be bisected, not retried as "PostgreSQL away".
    messages = [message(o) for o in range(8)]
    bad = orjson.loads(messages[5].value or b"")["id"]
    pool = FlakyPool(RuntimeError("unused"), 0, refused_ids=frozenset({uuid.UUID(bad)}))
    metrics = WorkerMetrics(CollectorRegistry())
    dead_letters = CollectedDeadLetters()
    store = BatchPersister(EventStore(pool, metrics), dead_letters, metrics)  # type: ignore[arg-type]
    stored = await store.handle(messages)
    assert [c.offset for c in stored] == [0, 1, 2, 3, 4, 6, 7]
    assert [(d.reason, orjson.loads(d.raw)["id"]) for d in dead_letters.published] == [
        ("refused_by_db", bad)
    ]
    assert value(metrics, "worker_db_retries_total") == 0
    assert value(metrics, "worker_batch_retries_total") == 0
