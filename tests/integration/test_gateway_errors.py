"""Every refusal of POST /telemetry, against the gateway on the real broker."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiohttp.test_utils import TestClient
from support.helpers import KEY_ALL, KEY_LIMITED, LIMITED_APP, event
from support.pipeline import serve_gateway

from ops_common.settings import Settings

JSON = {"Content-Type": "application/json"}


async def post_raw(gateway: TestClient, data: bytes, **headers: str) -> tuple[int, dict]:
    response = await gateway.post(
        "/telemetry", data=data, headers={"X-API-Key": KEY_ALL, **JSON, **headers}
    )
    body = await response.json()
    return response.status, body


def assert_error(status: int, body: dict, expected_status: int, code: str) -> None:
    assert status == expected_status, body
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], list)


async def test_malformed_json_is_400(gateway: TestClient) -> None:
    status, body = await post_raw(gateway, b'{"app": "a",')
    assert_error(status, body, 400, "malformed_json")


async def test_missing_api_key_is_401(gateway: TestClient) -> None:
    response = await gateway.post("/telemetry", data=orjson.dumps(event("a")), headers=JSON)
    assert_error(response.status, await response.json(), 401, "unauthorized")


async def test_wrong_api_key_is_401(gateway: TestClient) -> None:
    status, body = await post_raw(gateway, orjson.dumps(event("a")), **{"X-API-Key": "nope"})
    assert_error(status, body, 401, "unauthorized")


async def test_key_for_another_app_is_403(gateway: TestClient) -> None:
    batch = [event(LIMITED_APP), event("other-app")]
    status, body = await post_raw(gateway, orjson.dumps(batch), **{"X-API-Key": KEY_LIMITED})
    assert_error(status, body, 403, "forbidden_app")
    assert "other-app" in body["error"]["message"]
    status, _ = await post_raw(
        gateway, orjson.dumps(event(LIMITED_APP)), **{"X-API-Key": KEY_LIMITED}
    )
    assert status == 201


async def test_unsupported_content_type_is_415(gateway: TestClient) -> None:
    status, body = await post_raw(gateway, b"app=a", **{"Content-Type": "text/plain"})
    assert_error(status, body, 415, "unsupported_media_type")


@pytest.fixture
async def small_gateway(pipeline_settings: Settings) -> AsyncIterator[TestClient]:
    """A gateway with tiny size limits."""
    settings = pipeline_settings.model_copy(
        update={"max_body_bytes": 16384, "max_decompressed_bytes": 4096, "max_batch_events": 10}
    )
    async with serve_gateway(settings) as client:
        yield client


async def test_oversized_body_is_413(small_gateway: TestClient) -> None:
    big = orjson.dumps([event("a", err_code="x" * 100) for _ in range(120)])
    status, body = await post_raw(small_gateway, big)
    assert_error(status, body, 413, "payload_too_large")


async def test_gzip_bomb_is_413(small_gateway: TestClient) -> None:
    bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"]")
    assert len(bomb) < 16384
    status, body = await post_raw(small_gateway, bomb, **{"Content-Encoding": "gzip"})
    assert_error(status, body, 413, "payload_too_large")
    assert "decompressed" in body["error"]["message"]


async def test_too_many_events_is_413(small_gateway: TestClient) -> None:
    status, body = await post_raw(small_gateway, orjson.dumps([{"a": 1}] * 11))
    assert_error(status, body, 413, "payload_too_large")


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


FIELD_RULES = [
    ("app", {"app": "bad app"}),
    ("app", {"app": None}),
    ("env", {"env": "x" * 65}),
    ("event", {"event": "a|b"}),
    ("ok", {"ok": "true"}),
    ("latency_ms", {"latency_ms": -5}),
    ("latency_ms", {"latency_ms": 1.5}),
    ("err_code", {"err_code": ""}),
    ("extra", {"extra": [1, 2]}),
    ("extra", {"extra": {"blob": "x" * 5000}}),
    ("ts", {"ts": _iso(timedelta(hours=-25))}),
    ("ts", {"ts": _iso(timedelta(minutes=10))}),
    ("ts", {"ts": "2026-01-01T00:00:00"}),
    ("id", {"id": "not-a-uuid"}),
    ("surprise", {"surprise": 1}),
]


@pytest.mark.parametrize(
    ("field", "override"), FIELD_RULES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(FIELD_RULES)]
)
async def test_each_field_rule_is_422(gateway: TestClient, field: str, override: dict) -> None:
    bad = {**event("a"), **override}
    status, body = await post_raw(gateway, orjson.dumps([event("a"), bad]))
    assert_error(status, body, 422, "invalid_events")
    assert [(d["index"], d["field"]) for d in body["error"]["details"]] == [(1, field)]
    assert all(d["reason"] for d in body["error"]["details"])


async def test_missing_required_field_is_422(gateway: TestClient) -> None:
    status, body = await post_raw(gateway, orjson.dumps({"app": "a", "env": "e", "event": "x"}))
    assert_error(status, body, 422, "invalid_events")
    assert body["error"]["details"] == [{"index": 0, "field": "ok", "reason": "Field required"}]


async def test_unknown_route_is_json_404(gateway: TestClient) -> None:
    response = await gateway.get("/nope")
    assert_error(response.status, await response.json(), 404, "not_found")


async def test_health_readiness_and_metrics(gateway: TestClient) -> None:
    assert (await gateway.get("/healthz")).status == 200
    assert (await gateway.get("/readyz")).status == 200
    await post_raw(gateway, b"{")
    text = await (await gateway.get("/metrics")).text()
    assert 'gateway_http_requests_total{method="POST",route="/telemetry",status="400"}' in text
    assert 'gateway_events_rejected_total{reason="malformed_json"}' in text
    assert "gateway_kafka_produce_duration_seconds_bucket" in text
