"""The OpsTelemetry client against the real gateway, Kafka, worker and PostgreSQL: a burst
arrives exactly once, including while the gateway answers 503 because Kafka is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from support.helpers import KEY_ALL, wait_for_count
from support.pipeline import Pipeline, serve_gateway
from support.services import KAFKA_PORT, Broker, start_broker

from devstack.processes import ManagedProcess
from ops_client import AsyncOpsTelemetry, OpsTelemetry
from ops_client.retry import RetryPolicy

COUNT = "SELECT count(*) FROM ops_metrics WHERE app = $1"
DISTINCT = "SELECT count(DISTINCT id) FROM ops_metrics WHERE app = $1"
OUTAGE_WORKER_PORT = 29261


def telemetry_url(gateway: TestClient) -> str:
    return str(gateway.make_url("/telemetry"))


async def test_a_burst_arrives_exactly_once(
    gateway: TestClient, worker: ManagedProcess, admin_db: asyncpg.Connection, app_name: str
) -> None:
    async with AsyncOpsTelemetry(
        telemetry_url(gateway), KEY_ALL, app_name, "prod", flush_interval_s=0.05
    ) as telemetry:
        for i in range(3000):
            telemetry.track(f"burst-{i % 3}", ok=i % 10 != 0, latency_ms=i % 500)
            if i % 500 == 0:
                await asyncio.sleep(0)  # an app doing other work between events
    assert (telemetry.stats.sent, telemetry.stats.dropped) == (3000, 0)
    assert await wait_for_count(admin_db, COUNT, app_name, expected=3000) == 3000
    assert await admin_db.fetchval(DISTINCT, app_name) == 3000
    failures = await admin_db.fetchval(
        "SELECT count(*) FROM ops_metrics WHERE app = $1 AND NOT ok", app_name
    )
    assert failures == 300


async def test_the_sync_client_from_a_thread(
    gateway: TestClient, worker: ManagedProcess, admin_db: asyncpg.Connection, app_name: str
) -> None:
    def app_code() -> OpsTelemetry:
        with OpsTelemetry(telemetry_url(gateway), KEY_ALL, app_name, "prod") as telemetry:
            for i in range(500):
                with telemetry.timed("work", extra={"i": i}):
                    pass
        return telemetry

    telemetry = await asyncio.to_thread(app_code)
    assert telemetry.stats.sent == 500
    assert await wait_for_count(admin_db, COUNT, app_name, expected=500) == 500


@pytest.fixture(scope="module")
def client_outage_broker() -> Iterator[Broker]:
    broker = start_broker("kafka-client-outage", KAFKA_PORT + 30)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="module")
def outage_pipeline(
    client_outage_broker: Broker, ingest_dsn: str, rollup_dsn: str
) -> Iterator[Pipeline]:
    pipeline = Pipeline.create(client_outage_broker.bootstrap_servers, ingest_dsn, rollup_dsn)
    pipeline.start_worker(OUTAGE_WORKER_PORT)
    try:
        yield pipeline
    finally:
        pipeline.stop()


@pytest.fixture
async def outage_gateway(outage_pipeline: Pipeline) -> AsyncIterator[TestClient]:
    settings = outage_pipeline.settings(OPS_PRODUCE_TIMEOUT_S=2.0, OPS_RETRY_AFTER_S=1)
    async with serve_gateway(settings) as client:
        yield client


async def test_events_sent_through_a_kafka_outage_arrive_exactly_once(
    client_outage_broker: Broker,
    outage_gateway: TestClient,
    admin_db: asyncpg.Connection,
    app_name: str,
) -> None:
    policy = RetryPolicy(attempts=60, base_s=0.2, max_s=2.0)
    async with AsyncOpsTelemetry(
        telemetry_url(outage_gateway),
        KEY_ALL,
        app_name,
        "prod",
        max_batch=100,
        flush_interval_s=0.05,
        retry=policy,
    ) as telemetry:

        async def app_sending() -> None:
            for i in range(1000):
                telemetry.track("through-outage", ok=True, latency_ms=i)
                await asyncio.sleep(0.004)  # about 4 s of traffic

        sending = asyncio.create_task(app_sending())
        await asyncio.sleep(1.0)
        await asyncio.to_thread(client_outage_broker.stop)  # the gateway answers 503 now
        await asyncio.sleep(5.0)
        await asyncio.to_thread(client_outage_broker.start)
        await sending
    assert telemetry.stats.retries > 0, "the outage should have made the client retry"
    assert (telemetry.stats.sent, telemetry.stats.dropped, telemetry.stats.rejected) == (1000, 0, 0)
    assert await wait_for_count(admin_db, COUNT, app_name, expected=1000, timeout=90) == 1000
    assert await admin_db.fetchval(DISTINCT, app_name) == 1000
