"""The two Kafka ceilings: the broker's own producer tool, and a bare aiokafka loop."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from ops_common.settings import Settings

RECORD_BYTES = 200


def broker_ceiling(lib: Path, bootstrap: str, topic: str, records: int) -> float:
    """records/s from Kafka's ProducerPerformance with acks=all and 200-byte records."""
    result = subprocess.run(
        [
            "java",
            "-Xmx512m",
            "-cp",
            f"{lib}/*",
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(RECORD_BYTES),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={bootstrap}",
            "acks=all",
            "linger.ms=5",
            "batch.size=262144",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    totals = re.findall(r"([\d.]+) records/sec", result.stdout)
    if not totals:
        raise RuntimeError(f"no result from ProducerPerformance: {result.stdout[-500:]}")
    return float(totals[-1])


async def client_ceiling(settings: Settings, topic: str, records: int) -> float:
    """records/s of a bare aiokafka producer with the gateway's producer settings."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=settings.producer_linger_ms,
        max_batch_size=settings.producer_max_batch_bytes,
    )
    await producer.start()
    value = b"x" * RECORD_BYTES
    try:
        started = time.perf_counter()
        pending = [await producer.send(topic, value, key=b"k%d" % (i % 64)) for i in range(records)]
        await asyncio.gather(*pending)
        return records / (time.perf_counter() - started)
    finally:
        await producer.stop()
