"""The worker's connections to PostgreSQL killed mid-load (pg_terminate_backend, what a
failover or an idle-session reaper does): inserts are retried, nothing acknowledged is lost,
nothing is stored twice. The fault suite (tests/reliability) stops PostgreSQL as a whole."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from support.helpers import KEY_ALL, WORKER_HTTP_PORT, event, wait_for_count

pytestmark = pytest.mark.usefixtures("worker")

HEADERS = {"X-API-Key": KEY_ALL, "Content-Type": "application/json"}
TERMINATE_INGEST = """
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
WHERE usename = 'ops_ingest' AND pid <> pg_backend_pid()
"""


async def db_retries() -> float:
    """The worker's worker_db_retries_total."""
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{WORKER_HTTP_PORT}/metrics"
        async with session.get(url) as response:
            text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "worker_db_retries_total"
    )


async def terminate_ingest_connections(admin_dsn: str, every_s: float) -> int:
    """Kill the ingest role's sessions every `every_s` until cancelled; how many were killed."""
    killed = 0
    conn = await asyncpg.connect(admin_dsn)
    try:
        while True:
            killed += await conn.fetchval(TERMINATE_INGEST)
            await asyncio.sleep(every_s)
    except asyncio.CancelledError:
        return killed
    finally:
        await conn.close()


async def test_killed_database_sessions_lose_nothing(
    gateway: TestClient, admin_db: asyncpg.Connection, admin_dsn: str, app_name: str
) -> None:
    retries_before = await db_retries()
    killer = asyncio.create_task(terminate_ingest_connections(admin_dsn, every_s=0.05))
    ids: list[str] = []
    try:
        for _ in range(40):
            body = [event(app_name, latency_ms=n) for n in range(100)]
            response = await gateway.post("/telemetry", data=orjson.dumps(body), headers=HEADERS)
            assert response.status == 201, await response.text()
            ids += (await response.json())["ids"]
            await asyncio.sleep(0.05)  # spread the load over the kills
    finally:
        killer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            killed = await killer
    assert killed > 0
    query = "SELECT count(DISTINCT id) FROM ops_metrics WHERE id = ANY($1::uuid[])"
    assert await wait_for_count(admin_db, query, ids, expected=4000, timeout=60) == 4000
    rows = await admin_db.fetchval("SELECT count(*) FROM ops_metrics WHERE app = $1", app_name)
    assert rows == 4000  # stored once each
    assert await db_retries() > retries_before  # the kills did reach inserts
