"""Session-wide real services: one PostgreSQL and one Kafka broker, started once, lazily
(unit tests never start them); the pipeline on them (topics, a worker process, an in-process
gateway) for the integration and e2e tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from support.helpers import WORKER_HTTP_PORT
from support.pipeline import Pipeline, serve_gateway
from support.services import Broker, Database, start_broker, start_database

from devstack.processes import ManagedProcess
from ops_common.settings import Settings
from opsctl.migrate import migrate

TEST_DATABASE = "ops_test"
INGEST_PASSWORD = "ingest_test_pw"
READER_PASSWORD = "reader_test_pw"
ROLLUP_PASSWORD = "rollup_test_pw"
ALERT_PASSWORD = "alerter_test_pw"


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    """A PostgreSQL server with the migrated test database."""
    db = start_database()
    try:
        admin = db.dsn("postgres")
        asyncio.run(_create_database(admin, TEST_DATABASE))
        asyncio.run(
            migrate(
                db.dsn(TEST_DATABASE),
                role_passwords={
                    "ops_ingest": INGEST_PASSWORD,
                    "ops_reader": READER_PASSWORD,
                    "ops_rollup": ROLLUP_PASSWORD,
                    "ops_alerter": ALERT_PASSWORD,
                },
            )
        )
        yield db
    finally:
        db.close()


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """The session's Kafka broker (never stopped by tests; outage tests get their own)."""
    kafka = start_broker()
    try:
        yield kafka
    finally:
        kafka.close()


@pytest.fixture(scope="session")
def admin_dsn(database: Database) -> str:
    """Superuser DSN of the test database."""
    return database.dsn(TEST_DATABASE)


@pytest.fixture(scope="session")
def ingest_dsn(database: Database) -> str:
    """DSN of the INSERT-only role on the test database."""
    return database.dsn(TEST_DATABASE, "ops_ingest", INGEST_PASSWORD)


@pytest.fixture(scope="session")
def reader_dsn(database: Database) -> str:
    """DSN of the SELECT-only role on the test database."""
    return database.dsn(TEST_DATABASE, "ops_reader", READER_PASSWORD)


@pytest.fixture(scope="session")
def rollup_dsn(database: Database) -> str:
    """DSN of the window writer role on the test database."""
    return database.dsn(TEST_DATABASE, "ops_rollup", ROLLUP_PASSWORD)


@pytest.fixture(scope="session")
def alert_dsn(database: Database) -> str:
    """DSN of the alert agent's role on the test database."""
    return database.dsn(TEST_DATABASE, "ops_alerter", ALERT_PASSWORD)


@pytest.fixture
def app_name() -> str:
    """A unique app name, so a test counts only its own rows."""
    return f"t-{uuid.uuid4().hex[:12]}"


async def _create_database(admin_dsn: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


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
