"""Small helpers the integration and e2e tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

from devstack import processes
from devstack.processes import ManagedProcess

#: API keys of the in-process test gateway: one for every app, one for LIMITED_APP only.
KEY_ALL = "test-key-all-apps"
KEY_LIMITED = "test-key-limited"
LIMITED_APP = "allowed-app"
WORKER_HTTP_PORT = 29201


def wait_http_ok(url: str, process: ManagedProcess, timeout: float = 60) -> None:
    """devstack's readiness poll, failing the test (not erroring it) with the process log."""
    try:
        processes.wait_http_ok(url, process, timeout)
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(str(exc))


async def wait_for_count(
    conn: asyncpg.Connection, query: str, *args: object, expected: int, timeout: float = 20
) -> int:
    """Poll a count query until it reaches `expected` (or time runs out); return the last count."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = await conn.fetchval(query, *args)
        if count >= expected:
            return count
        await asyncio.sleep(0.1)
    return count


def event(app: str, **fields: object) -> dict[str, object]:
    """A valid event for `app`; keyword arguments override or add fields."""
    return {"app": app, "env": "test", "event": "login", "ok": True, **fields}


async def read_topic(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord]], bool],
    timeout: float = 30,
) -> list[ConsumerRecord]:
    """Read `topic` from the start until `done(records so far)` or the timeout."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(timeout):
            while not done(found):
                batch = await consumer.getmany(timeout_ms=500)
                found += [m for records in batch.values() for m in records]
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return found
