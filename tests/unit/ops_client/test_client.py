"""Unit tests for ops_client against an in-memory HTTP transport (httpx.MockTransport): batching,
gzip, ids kept across retries, Retry-After, refusals, the bounded buffer, timing. The real
gateway is exercised in tests/integration/test_ops_client.py."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from ops_client import AsyncOpsTelemetry, OpsTelemetry
from ops_client.retry import RetryPolicy, parse_retry_after

URL = "http://gateway.test/telemetry"
FAST = RetryPolicy(attempts=4, base_s=0.01, max_s=0.05)


class Gateway:
    """Answers from a script of statuses (then 201) and records every request's events."""

    def __init__(self, script: list[tuple[int, dict[str, str]]] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[tuple[float, list[dict[str, Any]], httpx.Headers]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        events = orjson.loads(gzip.decompress(request.content))
        self.requests.append((time.monotonic(), events, request.headers))
        if self.script:
            status, headers = self.script.pop(0)
            return httpx.Response(status, headers=headers, json={"error": {"code": "x"}})
        return httpx.Response(201, json={"accepted": len(events)})

    @property
    def batches(self) -> list[list[dict[str, Any]]]:
        return [events for _, events, _ in self.requests]


def client(gateway: Callable[[httpx.Request], httpx.Response], **options: Any) -> AsyncOpsTelemetry:
    options.setdefault("retry", FAST)
    return AsyncOpsTelemetry(
        URL, "key-1", "shop", "prod", transport=httpx.MockTransport(gateway), **options
    )


async def test_batches_by_size_gzip_and_the_api_key() -> None:
    gateway = Gateway()
    async with client(gateway, max_batch=3, flush_interval_s=60) as telemetry:
        for i in range(7):
            telemetry.track("checkout", ok=i % 2 == 0, latency_ms=i)
        await telemetry.flush()
    assert [len(b) for b in gateway.batches] == [3, 3, 1]
    _, first, headers = gateway.requests[0]
    assert headers["content-encoding"] == "gzip"
    assert headers["x-api-key"] == "key-1"
    assert first[0] | {"id": "", "ts": ""} == {
        "id": "",
        "ts": "",
        "app": "shop",
        "env": "prod",
        "event": "checkout",
        "ok": True,
        "latency_ms": 0,
    }
    assert telemetry.stats.sent == 7


async def test_a_full_batch_is_sent_without_waiting_for_the_interval() -> None:
    gateway = Gateway()
    async with client(gateway, max_batch=5, flush_interval_s=60) as telemetry:
        for _ in range(5):
            telemetry.track("e", ok=True)
        for _ in range(100):
            if gateway.requests:
                break
            await asyncio.sleep(0.01)
        assert [len(b) for b in gateway.batches] == [5]


async def test_batches_by_time() -> None:
    gateway = Gateway()
    async with client(gateway, flush_interval_s=0.05) as telemetry:
        telemetry.track("e", ok=True, err_code=None, extra={"k": 1})
        await asyncio.sleep(0.3)
        assert [len(b) for b in gateway.batches] == [1]
        assert gateway.batches[0][0]["extra"] == {"k": 1}


async def test_503_is_retried_after_retry_after_with_the_same_ids() -> None:
    gateway = Gateway([(503, {"Retry-After": "0.3"})])
    async with client(gateway, retry=RetryPolicy(attempts=3, base_s=0.01, max_s=5)) as telemetry:
        telemetry.track("e", ok=True)
        telemetry.track("e", ok=False, err_code="E1")
        await telemetry.flush()
    (t1, first, _), (t2, second, _) = gateway.requests
    assert t2 - t1 >= 0.3
    assert [e["id"] for e in first] == [e["id"] for e in second]
    assert (telemetry.stats.sent, telemetry.stats.retries) == (2, 1)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_transient_answers_are_retried(status: int) -> None:
    gateway = Gateway([(status, {}), (status, {})])
    async with client(gateway) as telemetry:
        telemetry.track("e", ok=True)
        await telemetry.flush()
    assert len(gateway.requests) == 3
    assert telemetry.stats.sent == 1


@pytest.mark.parametrize("status", [400, 401, 403, 413, 415, 422])
async def test_refusals_are_not_retried_and_are_counted(status: int) -> None:
    gateway = Gateway([(status, {})])
    async with client(gateway) as telemetry:
        telemetry.track("e", ok=True)
        await telemetry.flush()
    assert len(gateway.requests) == 1
    assert (telemetry.stats.sent, telemetry.stats.rejected) == (0, 1)


async def test_network_errors_are_retried() -> None:
    calls = {"n": 0}
    gateway = Gateway()

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        return gateway(request)

    async with client(flaky) as telemetry:
        telemetry.track("e", ok=True)
        await telemetry.flush()
    assert telemetry.stats.sent == 1


async def test_after_every_attempt_failed_the_events_wait_for_the_next_flush() -> None:
    gateway = Gateway([(503, {})] * FAST.attempts)
    async with client(gateway, flush_interval_s=60) as telemetry:
        telemetry.track("e", ok=True)
        await telemetry.flush()
        assert (telemetry.buffered, telemetry.stats.sent) == (1, 0)
        await telemetry.flush()
    ids = {e["id"] for batch in gateway.batches for e in batch}
    assert len(ids) == 1  # every attempt carried the same event
    assert telemetry.stats.sent == 1


async def test_the_buffer_is_bounded_and_counts_what_it_drops() -> None:
    gateway = Gateway()
    async with client(gateway, max_buffer=5, flush_interval_s=60) as telemetry:
        for _ in range(8):
            telemetry.track("e", ok=True)
        assert (telemetry.buffered, telemetry.stats.dropped) == (5, 3)
    assert telemetry.stats.sent == 5
    telemetry.track("after close", ok=True)
    assert telemetry.stats.dropped == 4


async def test_timed_records_ok_latency_and_failures() -> None:
    gateway = Gateway()
    async with client(gateway) as telemetry:
        with telemetry.timed("block"):
            await asyncio.sleep(0.02)
        with pytest.raises(KeyError), telemetry.timed("failing"):
            raise KeyError("x")

        @telemetry.timed("decorated")
        async def work() -> int:
            return 7

        assert await work() == 7
        await telemetry.flush()
    events = {e["event"]: e for e in gateway.batches[0]}
    assert events["block"]["ok"] is True
    assert events["block"]["latency_ms"] >= 20
    assert (events["failing"]["ok"], events["failing"]["err_code"]) == (False, "KeyError")
    assert events["decorated"]["ok"] is True


def test_the_sync_client_batches_flushes_and_closes() -> None:
    gateway = Gateway()
    telemetry = OpsTelemetry(
        URL,
        "key-1",
        "shop",
        "prod",
        transport=httpx.MockTransport(gateway),
        retry=FAST,
        flush_interval_s=60,
    )
    with telemetry:
        for i in range(3):
            telemetry.track("sync", ok=True, latency_ms=i)

        @telemetry.timed("decorated")
        def work() -> str:
            return "done"

        assert work() == "done"
        telemetry.flush()
        assert sum(len(b) for b in gateway.batches) == 4
        telemetry.track("on close", ok=True)
    assert sum(len(b) for b in gateway.batches) == 5  # close flushed
    assert telemetry.stats.sent == 5
    telemetry.close()  # twice is fine


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2", 2.0), ("0.5", 0.5), (None, None), ("Wed, 21 Oct 2026 07:28:00 GMT", None)],
)
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_back_off_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_s=0.1, max_s=1.0)
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0)):
        delays = [policy.delay(attempt) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # jitter spreads over the range
    assert 1.0 <= policy.delay(1, "3") <= 1.1  # Retry-After wins, capped by max_s, + jitter
    assert 0.5 <= policy.delay(5, "0.5") <= 0.6


def test_max_batch_cannot_exceed_what_the_gateway_takes() -> None:
    with pytest.raises(ValueError, match=r"max_batch must be 1\.\.1000"):
        AsyncOpsTelemetry(URL, "k", "a", "e", max_batch=5000)


async def test_closing_as_a_full_batch_wakes_the_flusher_does_not_hang() -> None:
    # A cancelled flusher could swallow the cancellation when its wake-up arrived at the same
    # moment (Python 3.11 wait_for) and run forever; closing must end it either way.
    gateway = Gateway()
    telemetry = client(gateway, max_batch=5, flush_interval_s=0.5)
    for _ in range(5):
        telemetry.track("e", ok=True)
    closing = asyncio.create_task(telemetry.aclose())
    done, _ = await asyncio.wait({closing}, timeout=3)
    assert done == {closing}, "aclose() hung"
    assert telemetry.stats.sent == 5
