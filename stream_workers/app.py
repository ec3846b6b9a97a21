"""The Faust application: topics, the persist agent and the services around it."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from prometheus_client import CollectorRegistry

from ops_common.settings import Settings

from .dead_letters import DeadLetterPublisher
from .event_store import EventStore
from .http_service import WorkerHttpService
from .lifecycle import ResourceService
from .metrics import WorkerMetrics
from .persist import BatchPersister


@dataclass
class Worker:
    """Everything one worker process runs, built from settings."""

    app: faust.App
    store: EventStore
    services: list[ResourceService | WorkerHttpService]
    metrics: WorkerMetrics


def create_worker(settings: Settings, registry: CollectorRegistry | None = None) -> Worker:
    """Build the Faust app with its persist agent, the event store and the HTTP service."""
    metrics = WorkerMetrics(registry or CollectorRegistry())
    app = faust.App(
        settings.worker_app_id,
        broker=";".join(f"kafka://{b}" for b in settings.kafka_bootstrap_servers.split(",")),
        store="memory://",
        datadir=settings.worker_data_dir,
        web_enabled=False,
        topic_partitions=settings.telemetry_partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        producer_acks=-1,
    )
    telemetry = app.topic(
        settings.telemetry_topic,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.telemetry_partitions,
    )
    dead_letter_topic = app.topic(
        settings.dead_letter_topic, key_serializer="raw", value_serializer="raw"
    )
    store = EventStore(
        settings.ingest_database_url.get_secret_value(),
        metrics,
        retry_max_s=settings.db_retry_max_s,
    )
    persister = BatchPersister(store, DeadLetterPublisher(dead_letter_topic, metrics), metrics)

    async def persist(stream: faust.StreamT) -> None:
        # Events are acked (their offsets become committable) only after the batch is stored.
        async for events in stream.noack_take(
            settings.worker_batch_max, within=settings.worker_batch_within_s
        ):
            await persister.handle([(e.message.key, e.message.value) for e in events])
            for event in events:
                await stream.ack(event)

    app.agent(telemetry, name="persist")(persist)

    async def readiness() -> dict[str, bool]:
        return {"postgres": await store.ping(), "kafka": bool(app.consumer.assignment())}

    http = WorkerHttpService(
        settings.worker_http_host, settings.worker_http_port, metrics, readiness
    )
    return Worker(app=app, store=store, services=[ResourceService(store), http], metrics=metrics)
