"""Pipeline fixtures on the real services: topics, a worker process, an in-process gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from support.helpers import WORKER_HTTP_PORT
from support.pipeline import Pipeline, serve_gateway
from support.services import Broker

from devstack.processes import ManagedProcess
from ops_common.settings import Settings


@pytest.fixture(scope="session")
def pipeline(broker: Broker, ingest_dsn: str, rollup_dsn: str) -> Iterator[Pipeline]:
    """The session's pipeline: unique topics and group on the session broker."""
    session_pipeline = Pipeline.create(broker.bootstrap_servers, ingest_dsn, rollup_dsn)
    try:
        yield session_pipeline
    finally:
        session_pipeline.stop()


@pytest.fixture(scope="session")
def pipeline_settings(pipeline: Pipeline) -> Settings:
    """Settings for an in-process gateway on the session's pipeline."""
    return pipeline.settings()


@pytest.fixture(scope="session")
def worker(pipeline: Pipeline) -> ManagedProcess:
    """One real worker process (`python -m stream_workers`) for the session."""
    return pipeline.start_worker(WORKER_HTTP_PORT)


@pytest.fixture
async def gateway(pipeline_settings: Settings) -> AsyncIterator[TestClient]:
    """The gateway app served in-process on a real socket, producing to the real broker."""
    async with serve_gateway(pipeline_settings) as client:
        yield client


@pytest.fixture
async def admin_db(admin_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A superuser connection to the test database, for assertions."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        yield conn
    finally:
        await conn.close()
