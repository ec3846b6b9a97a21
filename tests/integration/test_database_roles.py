"""The RLS matrix, through each role's own connection."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from ops_common.event import WireEvent
from stream_workers.event_store import INSERT_EVENTS, insert_parameters


def wire_event() -> WireEvent:
    now = datetime.now(UTC)
    return WireEvent(
        id=uuid.uuid4(), ts=now, received_at=now, app="rls", env="test", event="check", ok=True
    )


@pytest.fixture
async def ingest(ingest_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(ingest_dsn)
    yield conn
    await conn.close()


@pytest.fixture
async def reader(reader_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(reader_dsn)
    yield conn
    await conn.close()


async def test_ingest_runs_the_workers_exact_insert_and_nothing_else(
    ingest: asyncpg.Connection,
) -> None:
    event = wire_event()
    assert await ingest.execute(INSERT_EVENTS, *insert_parameters([event])) == "INSERT 0 1"
    assert (
        await ingest.execute(INSERT_EVENTS, *insert_parameters([event])) == "INSERT 0 0"
    )  # duplicate
    for statement in (
        "SELECT count(*) FROM ops_metrics",
        "UPDATE ops_metrics SET ok = false",
        "DELETE FROM ops_metrics",
        "SELECT count(*) FROM v_ops_5min",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await ingest.execute(statement)


async def test_reader_selects_and_cannot_write(
    reader: asyncpg.Connection, ingest: asyncpg.Connection
) -> None:
    event = wire_event()
    await ingest.execute(INSERT_EVENTS, *insert_parameters([event]))
    assert await reader.fetchval("SELECT count(*) FROM ops_metrics WHERE id = $1", event.id) == 1
    assert await reader.fetchval("SELECT count(*) FROM v_ops_5min WHERE app = 'rls'") >= 1
    for statement in ("UPDATE ops_metrics SET ok = false", "DELETE FROM ops_metrics"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute(statement)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await reader.execute(INSERT_EVENTS, *insert_parameters([wire_event()]))


async def test_roles_have_no_superpowers_and_rls_is_forced(admin_db: asyncpg.Connection) -> None:
    roles = await admin_db.fetch(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname LIKE 'ops_%'"
        " ORDER BY rolname"
    )
    assert [(r["rolname"], r["rolsuper"], r["rolbypassrls"]) for r in roles] == [
        ("ops_alerter", False, False),
        ("ops_ingest", False, False),
        ("ops_owner", False, False),
        ("ops_reader", False, False),
        ("ops_rollup", False, False),
    ]
    table = await admin_db.fetchrow(
        "SELECT relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) AS owner"
        " FROM pg_class WHERE relname = 'ops_metrics'"
    )
    assert dict(table) == {
        "relrowsecurity": True,
        "relforcerowsecurity": True,
        "owner": "ops_owner",
    }
    policies = await admin_db.fetch(
        "SELECT cmd, roles::text[] AS roles FROM pg_policies WHERE tablename = 'ops_metrics'"
        " ORDER BY cmd"
    )
    assert [(p["cmd"], p["roles"]) for p in policies] == [
        ("INSERT", ["ops_ingest"]),
        ("SELECT", ["ops_reader", "ops_rollup"]),
    ]
    options = await admin_db.fetchval(
        "SELECT reloptions FROM pg_class WHERE relname = 'v_ops_5min'"
    )
    assert "security_invoker=true" in options


async def test_alerter_reads_windows_keeps_alert_state_and_nothing_else(alert_dsn: str) -> None:
    conn = await asyncpg.connect(alert_dsn)
    try:
        await conn.fetchval("SELECT count(*) FROM ops_metrics_5min")
        await conn.fetchval("SELECT count(*) FROM ops_alerts")
        await conn.fetchval("SELECT count(*) FROM ops_alert_notifications")
        for statement in (
            "SELECT count(*) FROM ops_metrics",
            "UPDATE ops_metrics_5min SET total = 0",
            "DELETE FROM ops_alerts",
            "DELETE FROM ops_alert_notifications",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_reader_sees_alerts_and_cannot_change_them(reader: asyncpg.Connection) -> None:
    await reader.fetchval("SELECT count(*) FROM ops_alert_notifications")
    await reader.fetchval("SELECT count(*) FROM ops_alerts")
    for statement in (
        "UPDATE ops_alerts SET state = 'inactive'",
        "UPDATE ops_alert_notifications SET delivery = 'sent'",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await reader.execute(statement)


async def test_copy_is_refused_under_rls(ingest: asyncpg.Connection) -> None:
    # Why the worker bulk-inserts with INSERT ... SELECT FROM unnest rather than COPY.
    with pytest.raises(asyncpg.PostgresError):
        await ingest.copy_records_to_table(
            "ops_metrics",
            records=[(uuid.uuid4(), datetime.now(UTC), "a", "b", "c", True)],
            columns=["id", "ts", "app", "env", "event", "ok"],
        )


async def test_migrations_are_recorded_and_idempotent(admin_dsn: str) -> None:
    from opsctl.migrate import migrate, migration_files

    assert await migrate(admin_dsn) == []
    conn = await asyncpg.connect(admin_dsn)
    try:
        versions = [
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        ]
    finally:
        await conn.close()
    assert versions == [p.stem for p in migration_files()]
