"""Messages the worker cannot store go to the dead-letter topic; the worker keeps consuming."""

from __future__ import annotations

import uuid

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from support.helpers import event, read_topic, wait_for_count

from ops_common.settings import Settings

pytestmark = pytest.mark.usefixtures("worker")


async def test_poison_messages_are_dead_lettered_and_consumption_goes_on(
    pipeline_settings: Settings, admin_db: asyncpg.Connection, app_name: str
) -> None:
    marker = uuid.uuid4().hex.encode()
    not_json = b"\xff\xfe not json " + marker
    invalid = orjson.dumps({"id": str(uuid.uuid4()), "app": "x", "marker": marker.decode()})
    valid_id = uuid.uuid4()
    valid = orjson.dumps(
        {
            **event(app_name),
            "id": str(valid_id),
            "ts": "2026-01-01T00:00:00+00:00",
            "received_at": "2026-01-01T00:00:01+00:00",
        }
    )
    producer = AIOKafkaProducer(bootstrap_servers=pipeline_settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for value in (not_json, invalid, valid):
            await producer.send_and_wait(pipeline_settings.telemetry_topic, value, key=b"k|e|y")
    finally:
        await producer.stop()

    assert (
        await wait_for_count(
            admin_db, "SELECT count(*) FROM ops_metrics WHERE id = $1", valid_id, expected=1
        )
        == 1
    )
    records = await read_topic(
        pipeline_settings.kafka_bootstrap_servers,
        pipeline_settings.dead_letter_topic,
        lambda found: sum(marker in m.value for m in found) >= 2,
    )
    letters = [m for m in records if marker in m.value]
    reasons = sorted(dict(m.headers)["reason"].decode() for m in letters)
    assert reasons == ["invalid", "undecodable"]
    assert {m.value for m in letters} == {not_json, invalid}
    invalid_letter = next(m for m in letters if m.value == invalid)
    assert b"env" in dict(invalid_letter.headers)["detail"]
