"""Pipeline fixtures on the real services: topics, a worker process, an in-process gateway."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from support.helpers import KEY_ALL, KEY_LIMITED, LIMITED_APP, WORKER_HTTP_PORT, wait_http_ok
from support.services import TEST_STACK, Broker

from devstack.processes import ManagedProcess
from ingest_gateway.app import create_app
from ingest_gateway.routes import PRODUCER
from ops_common.settings import Settings
from opsctl.topics import ensure_topics, pipeline_topics


@pytest.fixture(scope="session")
def pipeline_env(broker: Broker, ingest_dsn: str) -> dict[str, str]:
    """Environment shared by this session's gateway and worker: unique topics and group."""
    suffix = uuid.uuid4().hex[:8]
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "OPS_INGEST_DATABASE_URL": ingest_dsn,
        "OPS_TELEMETRY_TOPIC": f"ops.telemetry.{suffix}",
        "OPS_DEAD_LETTER_TOPIC": f"ops.telemetry.dlq.{suffix}",
        "OPS_WORKER_APP_ID": f"ops-workers-{suffix}",
        "OPS_WORKER_HTTP_PORT": str(WORKER_HTTP_PORT),
        "OPS_WORKER_DATA_DIR": str(TEST_STACK / f"worker-{suffix}"),
        "OPS_WORKER_BATCH_WITHIN_S": "0.1",
    }


@pytest.fixture(scope="session")
def pipeline_settings(pipeline_env: dict[str, str]) -> Settings:
    """Settings for an in-process gateway on the session's topics, with two test keys."""
    settings = Settings(
        **pipeline_env,  # type: ignore[arg-type]
        OPS_API_KEYS={KEY_ALL: ["*"], KEY_LIMITED: [LIMITED_APP]},
        OPS_PRODUCE_TIMEOUT_S=3.0,
        OPS_MAX_BATCH_EVENTS=1000,
    )
    asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, pipeline_topics(settings)))
    return settings


@pytest.fixture(scope="session")
def worker(pipeline_settings: Settings, pipeline_env: dict[str, str]) -> Iterator[ManagedProcess]:
    """One real worker process (`python -m stream_workers`) for the session."""
    process = ManagedProcess(
        "worker",
        [sys.executable, "-m", "stream_workers"],
        log_path=TEST_STACK / "logs" / "worker.log",
        env={**os.environ, **pipeline_env},
    ).start()
    try:
        wait_http_ok(f"http://127.0.0.1:{WORKER_HTTP_PORT}/readyz", process)
        yield process
    finally:
        process.stop()


@pytest.fixture
async def gateway(pipeline_settings: Settings) -> AsyncIterator[TestClient]:
    """The gateway app served in-process on a real socket, producing to the real broker."""
    app = create_app(pipeline_settings)
    async with TestClient(TestServer(app)) as client:
        if not await app[PRODUCER].wait_connected(30):
            pytest.fail("gateway producer did not connect to the test broker in 30s")
        yield client


@pytest.fixture
async def admin_db(admin_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the test database, for assertions."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        yield conn
    finally:
        await conn.close()
