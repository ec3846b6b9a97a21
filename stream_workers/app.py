"""The Faust application: topics, the persist agent, the window table and its closer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import faust
from faust.tables.manager import TableManager
from faust.types import TP
from mode import Service
from prometheus_client import CollectorRegistry

from ops_common.postgres_pool import PostgresPool
from ops_common.settings import Settings

from .dead_letters import DeadLetterPublisher
from .decode import ConsumedMessage
from .event_store import EventStore
from .http_service import WorkerHttpService
from .lifecycle import ResourceService
from .metrics import WorkerMetrics
from .offset_holes import OffsetHoles
from .persist import BatchPersister
from .windows.closer import WindowCloser
from .windows.kpi_gauges import KpiGauges
from .windows.rollup_store import RollupStore
from .windows.window_table import WindowTable

WINDOW_TABLE = "windows-5m"

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """Everything one worker process runs, built from settings."""

    app: faust.App
    windows: WindowTable
    services: list[Service]
    metrics: WorkerMetrics


def create_worker(settings: Settings, registry: CollectorRegistry | None = None) -> Worker:
    """Build the Faust app with its persist agent, window table, closer and HTTP service."""
    registry = registry or CollectorRegistry()
    metrics = WorkerMetrics(registry)
    app = _faust_app(settings)
    telemetry = app.topic(
        settings.telemetry_topic,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.telemetry_partitions,
    )
    dead_letter_topic = app.topic(
        settings.dead_letter_topic, key_serializer="raw", value_serializer="raw"
    )
    windows_topic = app.topic(settings.windows_topic, key_serializer="raw", value_serializer="raw")
    table = app.Table(WINDOW_TABLE, partitions=settings.telemetry_partitions)
    ingest_pool = PostgresPool(
        settings.ingest_database_url.get_secret_value(), retry_max_s=settings.db_retry_max_s
    )
    rollup_pool = PostgresPool(
        settings.rollup_database_url.get_secret_value(),
        max_size=2,
        retry_max_s=settings.db_retry_max_s,
    )
    windows = WindowTable(
        table, metrics, grace_s=settings.window_grace_s, retention_s=settings.window_retention_s
    )
    persister = BatchPersister(
        EventStore(ingest_pool, metrics),
        DeadLetterPublisher(dead_letter_topic, metrics),
        metrics,
        after_store=windows.apply if settings.windows_enabled else None,
        retry_max_s=settings.db_retry_max_s,
    )
    closer = WindowCloser(
        windows,
        RollupStore(rollup_pool),
        windows_topic,
        metrics,
        KpiGauges(registry, settings.kpi_gauge_max_keys),
    )

    holes = OffsetHoles()

    async def persist(stream: faust.StreamT) -> None:
        # Events are acked (their offsets become committable) only after the batch is stored
        # and its windows updated: one table write per window per batch.
        # noack_take lives on the concrete Stream, not on the StreamT interface.
        async for events in stream.noack_take(  # type: ignore[attr-defined]
            settings.worker_batch_max, within=settings.worker_batch_within_s
        ):
            messages = [
                ConsumedMessage(
                    e.message.partition, e.message.offset, e.message.key, e.message.value
                )
                for e in events
            ]
            skipped = holes.find(
                app.consumer_generation_id, ((m.partition, m.offset) for m in messages)
            )
            await persister.handle(messages)
            for event in events:
                await stream.ack(event)
            await redeliver(skipped)

    async def redeliver(skipped: dict[int, int]) -> None:
        for partition, offset in skipped.items():
            metrics.offset_holes.inc()
            log.warning(
                "offset %d of partition %d never reached the persist agent; seeking back to it",
                offset,
                partition,
            )
            await app.consumer.seek_wait({TP(settings.telemetry_topic, partition): offset})

    app.agent(telemetry, name="persist")(persist)

    def owned_partitions() -> set[int]:
        return {
            tp.partition for tp in app.consumer.assignment() if tp.topic == settings.telemetry_topic
        }

    async def close_windows() -> None:
        if not app.rebalancing:
            await closer.close_due(owned_partitions())

    if settings.windows_enabled:
        app.timer(settings.window_close_interval_s, name="close-windows")(close_windows)

    async def readiness() -> dict[str, bool]:
        return {
            "postgres": await ingest_pool.ping(),
            "kafka": bool(owned_partitions()),
            "tables_recovered": _recovered(app) and not app.rebalancing,
        }

    http = WorkerHttpService(
        settings.worker_http_host, settings.worker_http_port, metrics, readiness
    )
    services: list[Service] = [ResourceService(ingest_pool), ResourceService(rollup_pool), http]
    return Worker(app=app, windows=windows, services=services, metrics=metrics)


def _recovered(app: faust.App) -> bool:
    return cast(TableManager, app.tables).recovery.completed.is_set()


def _faust_app(settings: Settings) -> faust.App:
    # Faust creates only the last level of its data directory.
    Path(settings.worker_data_dir).mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.worker_app_id,
        broker=";".join(f"kafka://{b}" for b in settings.kafka_bootstrap_servers.split(",")),
        store="memory://",
        datadir=settings.worker_data_dir,
        web_enabled=False,
        topic_partitions=settings.telemetry_partitions,
        # The window table's changelog: with one replica, losing its broker stops the workers.
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A SIGKILLed worker holds its partitions until its session expires: keep that short.
        broker_session_timeout=settings.worker_session_timeout_s,
        broker_heartbeat_interval=max(settings.worker_session_timeout_s / 4, 0.5),
        producer_acks=-1,
        # Deeper buffers let the fetcher keep reading while a batch is being stored.
        broker_max_poll_records=5000,
        stream_buffer_maxsize=20_000,
    )
