"""Worker throughput from a pre-filled topic: persist-only versus persist + windows, side by
side in one run on the local stack (`make up` running; `source .stack/env`).

    .venv/bin/python bench/worker_throughput.py --events 200000

For each mode: fill a fresh topic with N events (produced directly, batched), start one
worker process on it, and time from its first stored row to its last (start-up excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer

from devstack.processes import ManagedProcess
from ops_common.event import partition_key
from ops_common.settings import Settings
from opsctl.topics import ensure_topics, pipeline_topics


async def fill_topic(settings: Settings, app: str, events: int) -> None:
    """Produce `events` wire events over 10 series and the last hour."""
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
            ts = (now - timedelta(seconds=(i * 7) % 3600)).isoformat()
            value = orjson.dumps(
                {
                    "id": str(uuid.uuid4()),
                    "ts": ts,
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


async def time_worker(windows: bool, events: int, port: int) -> float:
    """events/s of one worker draining a pre-filled topic."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        "OPS_TELEMETRY_TOPIC": f"bench.telemetry.{suffix}",
        "OPS_DEAD_LETTER_TOPIC": f"bench.dlq.{suffix}",
        "OPS_WINDOWS_TOPIC": f"bench.windows.{suffix}",
        "OPS_WORKER_APP_ID": f"bench-{suffix}",
        "OPS_WORKER_HTTP_PORT": str(port),
        "OPS_WORKER_DATA_DIR": f".stack/bench/{suffix}",
        "OPS_WINDOWS_ENABLED": str(windows).lower(),
        "OPS_LOG_LEVEL": "WARNING",
    }
    os.environ.update(env)
    settings = Settings()
    app = f"bench-{suffix}"
    await ensure_topics(settings.kafka_bootstrap_servers, pipeline_topics(settings))
    await fill_topic(settings, app, events)
    worker = ManagedProcess(
        "worker",
        [sys.executable, "-m", "stream_workers"],
        log_path=Path(f".stack/logs/bench-worker-{suffix}.log"),
        env=dict(os.environ),
    ).start()
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    query = "SELECT count(*) FROM ops_metrics WHERE app = $1"
    try:
        first_count, first_at = 0, 0.0
        while worker.running:
            count = await conn.fetchval(query, app)
            if count and not first_at:
                first_count, first_at = count, time.perf_counter()
            if count >= events:
                return (events - first_count) / (time.perf_counter() - first_at)
            await asyncio.sleep(0.05)
        raise RuntimeError(f"the worker exited; {worker.tail()}")
    finally:
        await conn.close()
        worker.stop()


async def run(events: int) -> None:
    persist_only = await time_worker(False, events, 19181)
    with_windows = await time_worker(True, events, 19182)
    print(f"{events} events, one worker, same run:")
    print(f"  persist only:      {persist_only:,.0f} events/s")
    print(
        f"  persist + windows: {with_windows:,.0f} events/s "
        f"({with_windows / persist_only:.2f} x persist only)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    asyncio.run(run(parser.parse_args().events))


if __name__ == "__main__":
    main()
