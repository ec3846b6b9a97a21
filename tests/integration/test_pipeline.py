"""POST /telemetry -> Kafka -> worker -> ops_metrics, on the real broker and database."""

from __future__ import annotations

import gzip
import uuid

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient
from support.helpers import KEY_ALL, WORKER_HTTP_PORT, event, wait_for_count

from devstack.processes import ManagedProcess

pytestmark = pytest.mark.usefixtures("worker")

HEADERS = {"X-API-Key": KEY_ALL, "Content-Type": "application/json"}
COUNT_APP = "SELECT count(*) FROM ops_metrics WHERE app = $1"


async def post(gateway: TestClient, body: object, **headers: str) -> tuple[int, dict]:
    response = await gateway.post(
        "/telemetry", data=orjson.dumps(body), headers={**HEADERS, **headers}
    )
    return response.status, await response.json()


async def store_marker(gateway: TestClient, admin_db: asyncpg.Connection, app: str) -> None:
    """POST one more event of `app` and wait until it is stored. It shares the key, hence the
    partition, of the test's earlier events, so once it is stored so is everything before it:
    counts taken afterwards are final."""
    marker = uuid.uuid4()
    assert (await post(gateway, event(app, id=str(marker))))[0] == 201
    query = "SELECT count(*) FROM ops_metrics WHERE id = $1"
    assert await wait_for_count(admin_db, query, marker, expected=1) == 1


async def test_valid_post_stores_exactly_one_row(
    gateway: TestClient, admin_db: asyncpg.Connection, app_name: str
) -> None:
    status, body = await post(
        gateway, event(app_name, latency_ms=42, err_code="E1", extra={"region": "jp"})
    )
    assert status == 201
    assert body["accepted"] == 1
    assert await wait_for_count(admin_db, COUNT_APP, app_name, expected=1) == 1
    row = await admin_db.fetchrow("SELECT * FROM ops_metrics WHERE app = $1", app_name)
    assert str(row["id"]) == body["ids"][0]
    assert (row["env"], row["event"], row["ok"], row["latency_ms"], row["err_code"]) == (
        "test",
        "login",
        True,
        42,
        "E1",
    )
    assert orjson.loads(row["extra"]) == {"region": "jp"}
    assert row["received_at"] is not None


async def test_absent_optional_fields_are_stored_as_null(
    gateway: TestClient, admin_db: asyncpg.Connection, app_name: str
) -> None:
    status, _ = await post(gateway, event(app_name, ok=False))
    assert status == 201
    await wait_for_count(admin_db, COUNT_APP, app_name, expected=1)
    row = await admin_db.fetchrow(
        "SELECT latency_ms, err_code, extra, ok FROM ops_metrics WHERE app = $1", app_name
    )
    assert dict(row) == {"latency_ms": None, "err_code": None, "extra": None, "ok": False}


async def test_same_id_posted_twice_is_stored_once(
    gateway: TestClient, admin_db: asyncpg.Connection, app_name: str
) -> None:
    event_id = str(uuid.uuid4())
    for _ in range(2):
        status, body = await post(gateway, event(app_name, id=event_id))
        assert (status, body["ids"]) == (201, [event_id])
    await store_marker(gateway, admin_db, app_name)
    assert await admin_db.fetchval(COUNT_APP, app_name) == 2


async def test_batch_of_500_stores_500_rows(
    gateway: TestClient, admin_db: asyncpg.Connection, app_name: str
) -> None:
    batch = [event(app_name, event=f"e{i % 7}", latency_ms=i) for i in range(500)]
    status, body = await post(gateway, batch)
    assert status == 201
    assert body["accepted"] == 500
    assert len(set(body["ids"])) == 500
    assert await wait_for_count(admin_db, COUNT_APP, app_name, expected=500) == 500


async def test_one_invalid_event_refuses_the_whole_batch(
    gateway: TestClient, admin_db: asyncpg.Connection, app_name: str
) -> None:
    batch = [event(app_name) for _ in range(5)]
    batch[3]["latency_ms"] = -1
    status, body = await post(gateway, batch)
    assert status == 422
    assert body["error"]["code"] == "invalid_events"
    assert [(d["index"], d["field"]) for d in body["error"]["details"]] == [(3, "latency_ms")]
    await store_marker(gateway, admin_db, app_name)
    assert await admin_db.fetchval(COUNT_APP, app_name) == 1


async def test_ndjson_and_gzip_bodies_are_stored(
    gateway: TestClient, admin_db: asyncpg.Connection, app_name: str
) -> None:
    lines = b"\n".join(orjson.dumps(event(app_name, latency_ms=i)) for i in range(3)) + b"\n"
    response = await gateway.post(
        "/telemetry",
        data=gzip.compress(lines),
        headers={
            "X-API-Key": KEY_ALL,
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        },
    )
    assert response.status == 201
    assert await wait_for_count(admin_db, COUNT_APP, app_name, expected=3) == 3


async def test_worker_exports_its_counters(
    worker: ManagedProcess, gateway: TestClient, admin_db: asyncpg.Connection, app_name: str
) -> None:
    await post(gateway, event(app_name))
    await wait_for_count(admin_db, COUNT_APP, app_name, expected=1)
    async with gateway.session.get(f"http://127.0.0.1:{WORKER_HTTP_PORT}/metrics") as response:
        text = await response.text()
    for name in (
        "worker_events_consumed_total",
        "worker_events_inserted_total",
        "worker_events_duplicate_total",
        "worker_insert_batch_duration_seconds_count",
    ):
        assert name in text
    inserted = next(
        line for line in text.splitlines() if line.startswith("worker_events_inserted_total")
    )
    assert float(inserted.split()[-1]) >= 1
