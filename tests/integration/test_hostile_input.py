"""Hostile requests to the real gateway: each gets a specific 4xx, nothing of it reaches Kafka,
and the gateway keeps serving with its memory bounded. Also: rate limits, slow clients, CORS
closed."""

from __future__ import annotations

import asyncio
import gzip
import io
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient
from support.helpers import KEY_ALL, event
from support.pipeline import Pipeline, serve_gateway

from devstack.processes import ManagedProcess
from ops_common.settings import Settings

JSON = {"X-API-Key": KEY_ALL, "Content-Type": "application/json"}
VALID = orjson.dumps(event("hostile"))


async def accepted_so_far(gateway: TestClient) -> float:
    metrics = await (await gateway.get("/metrics")).text()
    found = re.search(r"^gateway_events_accepted_total (\S+)$", metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize(
    ("body", "status", "code", "says"),
    [
        pytest.param(b"[" * 100_000, 400, "malformed_json", "not valid JSON", id="deep-nesting"),
        pytest.param(
            b'{"app":"a","env":"e","event":"x","ok":true,"extra":'
            + b'{"a":' * 1000
            + b"1"
            + b"}" * 1001,
            400,
            "malformed_json",
            "nested too deeply",
            id="nesting-within-parser-depth",
        ),
        pytest.param(
            b'{"app":"\xff\xfe","env":"e","event":"x","ok":true}',
            400,
            "malformed_json",
            "not valid UTF-8",
            id="invalid-utf8",
        ),
        pytest.param(
            b'{"app":"a","env":"e","event":"x","ok":true,"latency_ms":NaN}',
            400,
            "malformed_json",
            "not valid JSON",
            id="nan",
        ),
        pytest.param(
            b'{"app":"a","env":"e","event":"x","ok":true,"latency_ms":Infinity}',
            400,
            "malformed_json",
            "not valid JSON",
            id="infinity",
        ),
        pytest.param(
            b'{"app":"a","env":"e","event":"x","ok":true,"latency_ms":1e400}',
            400,
            "malformed_json",
            "infinity",
            id="number-out-of-double-range",
        ),
        pytest.param(
            b'{"app":"a","env":"e","event":"x","ok":true,"latency_ms":'
            + str(2**70).encode()
            + b"}",
            422,
            "invalid_events",
            "latency_ms",
            id="huge-integer",
        ),
        pytest.param(
            b'{"app":"a","env":"e","event":"x","ok":false,"ok":true}',
            400,
            "malformed_json",
            "repeats the key 'ok'",
            id="duplicate-keys",
        ),
        pytest.param(
            b'[{"app":"a","env":"e","event":"x","ok":true,"extra":{"k":1,"k":2}}]',
            400,
            "malformed_json",
            "repeats the key 'k'",
            id="duplicate-keys-nested",
        ),
        pytest.param(
            b'{"app":"a","env":"e","event":"x","ok":"true"}',
            422,
            "invalid_events",
            "ok",
            id="string-for-boolean",
        ),
        pytest.param(b"\x00" * 64, 400, "malformed_json", "not valid JSON", id="nul-bytes"),
    ],
)
async def test_hostile_bodies_get_a_specific_4xx_and_produce_nothing(
    gateway: TestClient, body: bytes, status: int, code: str, says: str
) -> None:
    before = await accepted_so_far(gateway)
    response = await gateway.post("/telemetry", data=body, headers=JSON)
    answer = await response.json()
    assert response.status == status, answer
    assert answer["error"]["code"] == code
    assert says in answer["error"]["message"] + str(answer["error"]["details"])
    assert await accepted_so_far(gateway) == before
    ok = await gateway.post("/telemetry", data=VALID, headers=JSON)
    assert ok.status == 201  # still serving


async def test_oversized_headers_are_refused_before_the_application(gateway: TestClient) -> None:
    response = await gateway.post(
        "/telemetry", data=VALID, headers={**JSON, "X-Padding": "x" * 20_000}
    )
    assert 400 <= response.status < 500
    assert (await gateway.post("/telemetry", data=VALID, headers=JSON)).status == 201


@pytest.fixture
async def strict_gateway(pipeline: Pipeline) -> AsyncIterator[TestClient]:
    settings: Settings = pipeline.settings(
        OPS_RATE_LIMIT_EVENTS_PER_S=5, OPS_RATE_LIMIT_BURST_EVENTS=10, OPS_BODY_READ_TIMEOUT_S=1
    )
    async with serve_gateway(settings) as client:
        yield client


async def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    strict_gateway: TestClient,
) -> None:
    batch = orjson.dumps([event("limited")] * 8)
    assert (await strict_gateway.post("/telemetry", data=batch, headers=JSON)).status == 201
    before = await accepted_so_far(strict_gateway)
    refused = await strict_gateway.post("/telemetry", data=batch, headers=JSON)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["error"]["code"] == "rate_limited"
    assert await accepted_so_far(strict_gateway) == before


async def test_a_slow_client_gets_408_and_lets_go_of_the_connection(
    strict_gateway: TestClient,
) -> None:
    host, port = strict_gateway.server.host, strict_gateway.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /telemetry HTTP/1.1\r\nHost: x\r\nX-API-Key: "
        + KEY_ALL.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{"
    )
    await writer.drain()
    try:
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 408"), status_line


async def test_cors_is_closed(gateway: TestClient) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = await gateway.options(
        "/telemetry", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status == 405
    assert "Access-Control-Allow-Origin" not in preflight.headers
    response = await gateway.post("/telemetry", data=VALID, headers={**JSON, **origin})
    assert response.status == 201
    assert "Access-Control-Allow-Origin" not in response.headers


# --- memory under a barrage of hostile requests (a real gateway process) ----------------------

HOSTILE_PORT = 29281


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak so far) of `pid`, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def hostile_bodies() -> list[tuple[bytes, dict[str, str]]]:
    """One of each heavy refusal, at the default limits (1 MiB on the wire, 8 MiB inflated)."""
    gzipped = {**JSON, "Content-Encoding": "gzip"}
    tiny_elements = b"[" + b"0," * 4_000_000 + b"0]"  # under 8 MiB inflated; 4M list items
    return [
        (gzip.compress(b" " * 200_000_000, 9), gzipped),  # a bomb: 200 MB from ~200 KB
        (gzip.compress(tiny_elements, 9), gzipped),  # parsed, then too many events
        (b" " * 1_048_577, JSON),  # over the wire limit
        (b"[" * 1_000_000, JSON),  # nesting
    ]


async def barrage(url: str, requests: int, concurrency: int = 8) -> list[int]:
    """Send `requests` hostile requests, `concurrency` at a time; their statuses."""
    bodies = hostile_bodies()
    statuses: list[int] = []
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            body, headers = bodies[i % len(bodies)]
            # A stream, not bytes: aiohttp warns that large bytes block its event loop.
            data = io.BytesIO(body)
            async with gate, session.post(url, data=data, headers=headers) as response:
                statuses.append(response.status)

        await asyncio.gather(*(one(i) for i in range(requests)))
    return statuses


@pytest.fixture(scope="module")
def hostile_gateway(pipeline: Pipeline) -> Iterator[ManagedProcess]:
    """`python -m ingest_gateway` at its default limits, on the session pipeline."""
    process = pipeline.start_gateway(HOSTILE_PORT)
    try:
        yield process
    finally:
        process.stop()


async def test_memory_stays_bounded_however_much_hostile_input_arrives(
    hostile_gateway: ManagedProcess,
) -> None:
    assert hostile_gateway.process is not None
    pid, url = hostile_gateway.process.pid, f"http://127.0.0.1:{HOSTILE_PORT}/telemetry"
    assert set(await barrage(url, 40)) <= {400, 413}
    after_first = memory_mib(pid)
    statuses = await barrage(url, 200)  # five times as much of the same
    after_second = memory_mib(pid)
    assert set(statuses) <= {400, 413}, statuses
    # Bounded: the peak is set by the limits and the concurrency, not by the volume, and what
    # the first round left resident is not added to by the second.
    assert after_second["VmHWM"] - after_first["VmHWM"] < 32, (after_first, after_second)
    assert after_second["VmRSS"] - after_first["VmRSS"] < 32, (after_first, after_second)
    assert after_second["VmHWM"] < 512, after_second
    async with (  # and it still serves
        aiohttp.ClientSession() as session,
        session.post(url, data=VALID, headers=JSON) as response,
    ):
        assert response.status == 201
