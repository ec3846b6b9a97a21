"""The workers' closed windows (ops_metrics_5min) equal v_ops_5min, under load and faults."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from support.helpers import read_topic
from support.pipeline import Pipeline, serve_gateway
from support.services import KAFKA_PORT, start_broker
from support.windows import generate_load, post_all, wait_until_rollup_equals_view

from ops_common.settings import Settings
from stream_workers.windows.buckets import bucket_start

GRACE_S = 2.0


async def test_rollup_equals_view_for_a_seeded_load(
    worker: object, gateway: TestClient, admin_db: asyncpg.Connection
) -> None:
    load = generate_load(seed=1)
    await post_all(gateway, load.events)
    assert await wait_until_rollup_equals_view(admin_db, load, GRACE_S) == []
    windows = await admin_db.fetchval(
        "SELECT count(*) FROM ops_metrics_5min WHERE app = ANY($1)", load.apps
    )
    assert windows >= 6 * 5  # >= 6 buckets x >= 5 keys, all closed and rolled up


async def test_windows_are_emitted_to_kafka(
    worker: object,
    gateway: TestClient,
    admin_db: asyncpg.Connection,
    pipeline_settings: Settings,
) -> None:
    load = generate_load(seed=2, events=300, keys=2, buckets=2)
    await post_all(gateway, load.events)
    assert await wait_until_rollup_equals_view(admin_db, load, GRACE_S) == []

    def apps_of(records: list) -> set[str]:
        return {m.key.decode().split("|")[0] for m in records}

    records = await read_topic(
        pipeline_settings.kafka_bootstrap_servers,
        pipeline_settings.windows_topic,
        lambda found: set(load.apps) <= apps_of(found),
    )
    seen = apps_of(records)
    assert set(load.apps) <= seen


async def test_replayed_messages_do_not_change_the_rollup(
    worker: object,
    gateway: TestClient,
    admin_db: asyncpg.Connection,
    pipeline_settings: Settings,
) -> None:
    load = generate_load(seed=3, events=600, keys=3, buckets=3)
    await post_all(gateway, load.events)
    assert await wait_until_rollup_equals_view(admin_db, load, GRACE_S) == []
    # Put every already-delivered message of this load on the topic again.
    bootstrap = pipeline_settings.kafka_bootstrap_servers
    consumer = AIOKafkaConsumer(
        pipeline_settings.telemetry_topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await consumer.start()
    await producer.start()
    replayed = 0
    try:
        # Only what was delivered before the replay began: up to today's end offsets.
        await asyncio.sleep(1)  # let the consumer get its partitions
        partitions = list(consumer.assignment())
        end = await consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if end[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for m in records:
                    if m.offset >= end[tp]:
                        remaining.discard(tp)
                        break
                    if m.key.decode().split("|")[0] in load.apps:
                        await producer.send(pipeline_settings.telemetry_topic, m.value, key=m.key)
                        replayed += 1
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        await producer.flush()
    finally:
        await consumer.stop()
        await producer.stop()
    assert replayed >= len(load.events)
    await asyncio.sleep(3)  # let the replay be consumed and the windows re-close
    assert await wait_until_rollup_equals_view(admin_db, load, GRACE_S) == []


@pytest.fixture
def own_pipeline(broker: object, ingest_dsn: str, rollup_dsn: str) -> Pipeline:
    pipeline = Pipeline.create(broker.bootstrap_servers, ingest_dsn, rollup_dsn)  # type: ignore[attr-defined]
    yield pipeline
    pipeline.stop()


async def test_exact_after_worker_sigkill_and_restart(
    own_pipeline: Pipeline, admin_db: asyncpg.Connection
) -> None:
    load = generate_load(seed=4, events=6000)
    first = own_pipeline.start_worker(29211)
    async with serve_gateway(own_pipeline.settings()) as gateway:
        await post_all(gateway, load.events[:2000])
        posting = asyncio.create_task(post_all(gateway, load.events[2000:4000]))
        await asyncio.sleep(0.5)
        first.signal(signal.SIGKILL)  # mid-stream: batches in flight, offsets not committed
        await posting
        own_pipeline.start_worker(29212)
        await post_all(gateway, load.events[4000:])
    assert await wait_until_rollup_equals_view(admin_db, load, GRACE_S, timeout=90) == []


async def test_exact_with_a_second_worker_joining_and_leaving(
    own_pipeline: Pipeline, admin_db: asyncpg.Connection
) -> None:
    load = generate_load(seed=5, events=6000, keys=8)
    own_pipeline.start_worker(29221)
    async with serve_gateway(own_pipeline.settings()) as gateway:
        await post_all(gateway, load.events[:2000])
        second = own_pipeline.start_worker(29222, wait=False)
        await post_all(gateway, load.events[2000:4000])
        second.stop()  # SIGTERM: leaves the group, partitions move back
        await post_all(gateway, load.events[4000:])
    assert await wait_until_rollup_equals_view(admin_db, load, GRACE_S, timeout=90) == []


async def test_exact_after_a_broker_restart(
    ingest_dsn: str, rollup_dsn: str, admin_db: asyncpg.Connection
) -> None:
    broker = await asyncio.to_thread(start_broker, "kafka-restart", KAFKA_PORT + 20)
    pipeline = await asyncio.to_thread(
        Pipeline.create, broker.bootstrap_servers, ingest_dsn, rollup_dsn
    )
    load = generate_load(seed=6, events=4000)
    try:
        pipeline.start_worker(29231)
        async with serve_gateway(pipeline.settings()) as gateway:
            await post_all(gateway, load.events[:2000])
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(broker.start)
            await post_all(gateway, load.events[2000:])
        assert await wait_until_rollup_equals_view(admin_db, load, GRACE_S, timeout=120) == []
    finally:
        pipeline.stop()
        await asyncio.to_thread(broker.close)


async def test_a_window_without_later_traffic_closes_after_grace(
    own_pipeline: Pipeline, admin_db: asyncpg.Connection, app_name: str
) -> None:
    # The previous bucket ended at `current`; a grace chosen now makes it close ~25 s from
    # now, so the test waits for wall-clock closing without waiting for a bucket to pass.
    now = time.time()
    current = bucket_start(datetime.fromtimestamp(now, UTC))
    grace = now - current + 25
    close_at = current + grace
    own_pipeline.start_worker(29241, OPS_WINDOW_GRACE_S=str(grace))
    event = {
        "app": app_name,
        "env": "test",
        "event": "quiet",
        "ok": False,
        "latency_ms": 7,
        "ts": datetime.fromtimestamp(current - 1, UTC).isoformat(),
    }
    async with serve_gateway(own_pipeline.settings()) as gateway:
        await post_all(gateway, [event])
    query = "SELECT total, failure_rate FROM ops_metrics_5min WHERE app = $1"
    await asyncio.sleep(max(close_at - 3 - time.time(), 0))
    assert await admin_db.fetchrow(query, app_name) is None, "closed before end + grace"
    row = None
    while row is None and time.time() < close_at + 5:
        await asyncio.sleep(0.2)
        row = await admin_db.fetchrow(query, app_name)
    assert row is not None, "not closed within grace + 5 s"
    assert dict(row) == {"total": 1, "failure_rate": 1.0}
    # The gauges are set just after the upsert (the Kafka emit sits between): poll briefly.
    gauge = f'ops_window_total{{app="{app_name}",env="test",event="quiet"}} 1.0'
    metrics = ""
    async with aiohttp.ClientSession() as session:
        for _ in range(50):
            async with session.get("http://127.0.0.1:29241/metrics") as response:
                metrics = await response.text()
            if gauge in metrics:
                break
            await asyncio.sleep(0.1)
    assert gauge in metrics
    assert "worker_windows_closed_total 1.0" in metrics
