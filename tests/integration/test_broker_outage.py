"""Kafka stopped -> 503 with Retry-After in bounded time; Kafka back -> 201 again.

Uses a broker of its own, so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest
from aiohttp.test_utils import TestClient
from support.helpers import KEY_ALL, event
from support.pipeline import serve_gateway
from support.services import KAFKA_PORT, Broker, start_broker

from ops_common.settings import Settings
from opsctl.topics import ensure_topics, pipeline_topics

HEADERS = {"X-API-Key": KEY_ALL, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def outage_broker() -> Iterator[Broker]:
    broker = start_broker("kafka-outage", KAFKA_PORT + 10)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
async def outage_gateway(
    outage_broker: Broker, pipeline_settings: Settings
) -> AsyncIterator[TestClient]:
    settings = pipeline_settings.model_copy(
        update={
            "kafka_bootstrap_servers": outage_broker.bootstrap_servers,
            "produce_timeout_s": 2.0,
        }
    )
    await ensure_topics(settings.kafka_bootstrap_servers, pipeline_topics(settings))
    async with serve_gateway(settings) as client:
        yield client


async def post(client: TestClient) -> tuple[int, dict, dict]:
    response = await client.post(
        "/telemetry", data=orjson.dumps([event("outage")] * 10), headers=HEADERS
    )
    return response.status, await response.json(), dict(response.headers)


async def test_broker_stopped_gives_503_then_201_when_back(
    outage_broker: Broker, outage_gateway: TestClient
) -> None:
    assert (await post(outage_gateway))[0] == 201
    await asyncio.to_thread(outage_broker.stop)
    try:
        for _ in range(3):
            started = time.monotonic()
            status, body, headers = await post(outage_gateway)
            assert status == 503, body
            assert body["error"]["code"] == "kafka_unavailable"
            assert int(headers["Retry-After"]) > 0
            assert time.monotonic() - started < 5  # produce timeout is 2 s
        assert (await outage_gateway.get("/readyz")).status == 503
    finally:
        await asyncio.to_thread(outage_broker.start)

    deadline = time.monotonic() + 60
    status = 0
    while time.monotonic() < deadline and status != 201:
        status, _, _ = await post(outage_gateway)
        if status != 201:
            await asyncio.sleep(1)
    assert status == 201
    assert (await outage_gateway.get("/readyz")).status == 200
