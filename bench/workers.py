"""Worker throughput from a pre-filled topic: our worker (persist-only, persist + windows)
and the Python ceiling (a bare getmany + COPY loop as a superuser, as RLS refuses COPY)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from devstack.processes import ManagedProcess
from ops_common.event import decode_wire_event, partition_key
from ops_common.settings import Settings
from opsctl.topics import ensure_topics, pipeline_topics


def bench_env(suffix: str, port: int, **extra: str) -> dict[str, str]:
    """Fresh topics and group for one measurement."""
    return {
        "OPS_TELEMETRY_TOPIC": f"bench.telemetry.{suffix}",
        "OPS_DEAD_LETTER_TOPIC": f"bench.dlq.{suffix}",
        "OPS_WINDOWS_TOPIC": f"bench.windows.{suffix}",
        "OPS_WORKER_APP_ID": f"bench-{suffix}",
        "OPS_WORKER_HTTP_PORT": str(port),
        "OPS_WORKER_DATA_DIR": f".stack/bench/{suffix}",
        "OPS_LOG_LEVEL": "WARNING",
        **extra,
    }


async def fill_topic(settings: Settings, app: str, events: int) -> None:
    """Produce `events` wire events (~200 bytes) over 10 series and the last hour."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        linger_ms=20,
        max_batch_size=512 * 1024,
        acks="all",
    )
    await producer.start()
    now = datetime.now(UTC)
    try:
        pending = []
        for i in range(events):
            name = f"e{i % 10}"
            value = orjson.dumps(
                {
                    "id": str(uuid.uuid4()),
                    "ts": (now - timedelta(seconds=(i * 7) % 3600)).isoformat(),
                    "received_at": now.isoformat(),
                    "app": app,
                    "env": "bench",
                    "event": name,
                    "ok": i % 13 != 0,
                    "latency_ms": (i * 31) % 2000,
                    "err_code": None,
                    "extra": {"i": i},
                }
            )
            pending.append(
                await producer.send(
                    settings.telemetry_topic, value, key=partition_key(app, "bench", name)
                )
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def prepared_topic(port: int, events: int, **extra: str) -> tuple[Settings, str, dict]:
    """A new topic holding `events` events; returns settings, the app name and the env."""
    suffix = uuid.uuid4().hex[:8]
    overrides = bench_env(suffix, port, **extra)
    env = {**os.environ, **overrides}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    app = f"bench-{suffix}"
    await ensure_topics(settings.kafka_bootstrap_servers, pipeline_topics(settings))
    await fill_topic(settings, app, events)
    return settings, app, env


async def rows_per_second(admin_dsn: str, app: str, events: int, alive: object = None) -> float:
    """Rate from the first stored row of `app` to the last (start-up excluded)."""
    launched_at = time.perf_counter()
    conn = await asyncpg.connect(admin_dsn)
    query = "SELECT count(*) FROM ops_metrics WHERE app = $1"
    try:
        first_count, first_at = 0, 0.0
        while alive is None or alive():  # type: ignore[operator]
            count = await conn.fetchval(query, app)
            if count and not first_at:
                first_count, first_at = count, time.perf_counter()
            if count >= events and count > first_count:
                return (events - first_count) / (time.perf_counter() - first_at)
            if count >= events:  # all stored before the first look: rate since launch
                return events / (time.perf_counter() - launched_at)
            await asyncio.sleep(0.05)
        raise RuntimeError("the process under test exited")
    finally:
        await conn.close()


async def worker_rate(admin_dsn: str, windows: bool, events: int, port: int) -> float:
    """events/s of one `python -m stream_workers` draining a pre-filled topic."""
    _, app, env = await prepared_topic(port, events, OPS_WINDOWS_ENABLED=str(windows).lower())
    worker = ManagedProcess(
        "worker",
        [sys.executable, "-m", "stream_workers"],
        log_path=Path(f".stack/logs/bench-worker-{app}.log"),
        env=env,
    ).start()
    try:
        return await rows_per_second(admin_dsn, app, events, lambda: worker.running)
    finally:
        worker.stop()


async def copy_loop_rate(admin_dsn: str, events: int) -> float:
    """The Python ceiling: getmany() + copy_records_to_table into ops_metrics as superuser."""
    settings, app, _ = await prepared_topic(0, events)
    consumer = AIOKafkaConsumer(
        settings.telemetry_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"copy-{app}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
    )
    await consumer.start()
    conn = await asyncpg.connect(admin_dsn)
    stored, started = 0, 0.0
    try:
        while stored < events:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            records = []
            for messages in batch.values():
                for m in messages:
                    e = decode_wire_event(m.value)
                    records.append(
                        (
                            e.id,
                            e.ts,
                            e.app,
                            e.env,
                            e.event,
                            e.ok,
                            e.latency_ms,
                            e.err_code,
                            None if e.extra is None else orjson.dumps(e.extra).decode(),
                            e.received_at,
                        )
                    )
            if records:
                started = started or time.perf_counter()
                await conn.copy_records_to_table("ops_metrics", records=records)
                await consumer.commit()
                stored += len(records)
        return stored / (time.perf_counter() - started)
    finally:
        await conn.close()
        await consumer.stop()


QUIX_VERSION = "3.28.1"


def quix_venv(root: Path) -> Path:
    """A virtualenv with quixstreams, made once; the project itself does not depend on it."""
    venv = root / ".stack" / "quix-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}"], check=True
        )
    return python


async def quix_rate(root: Path, events: int) -> float:
    """events/s of the same 5-minute aggregation written with Quix Streams."""
    settings, _, _ = await prepared_topic(0, events)
    python = quix_venv(root)
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(python),
            str(root / "bench" / "quix_windows.py"),
            settings.kafka_bootstrap_servers,
            settings.telemetry_topic,
            str(events),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(result.stdout.strip().splitlines()[-1])
