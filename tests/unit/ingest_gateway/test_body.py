"""Unit tests for ingest_gateway.body.read_events, through an in-process loopback server.

The server uses `auto_decompress=False`, as `create_app` does: read_events inflates gzip itself.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from support.tables import cases

from ingest_gateway.body import read_events
from ops_common.http.errors import ApiError

Client = TestClient[web.Request, web.Application]


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1000
    max_decompressed_bytes: int = 1000
    max_events: int = 5


LIMITS = web.AppKey("limits", Limits)
JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}
GZIP_JSON = {**JSON, "Content-Encoding": "gzip"}
GZIP_NDJSON = {**NDJSON, "Content-Encoding": "gzip"}


async def _handler(request: web.Request) -> web.Response:
    limits = request.app[LIMITS]
    try:
        items = await read_events(
            request,
            max_body_bytes=limits.max_body_bytes,
            max_decompressed_bytes=limits.max_decompressed_bytes,
            max_events=limits.max_events,
        )
    except ApiError as exc:
        return web.json_response(
            {
                "status": exc.status,
                "code": exc.code,
                "message": exc.message,
                "content_length": request.content_length,
            }
        )
    return web.json_response({"items": items})


ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[Client] = []

    async def factory(limits: Limits | None = None) -> Client:
        app = web.Application(handler_args={"auto_decompress": False})
        app[LIMITS] = limits or Limits()
        app.router.add_post("/telemetry", _handler)
        client: Client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: ClientFactory) -> Client:
    return await make_client()


async def post(client: Client, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/telemetry", data=body, headers=headers)
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    return result


async def events_of(client: Client, body: Any, headers: dict[str, str]) -> list[Any]:
    result = await post(client, body, headers)
    assert "items" in result, result
    items: list[Any] = result["items"]
    return items


async def error_of(client: Client, body: Any, headers: dict[str, str]) -> dict[str, Any]:
    result = await post(client, body, headers)
    assert "status" in result, f"expected an error, got {result}"
    return result


ONE, TWO = [{"a": 1}], [{"a": 1}, {"a": 2}]
ACCEPTED: list[tuple[Any, ...]] = [
    ("single-object", b'{"a": 1}', JSON, ONE),
    ("array", b'[{"a": 1}, {"a": 2}]', JSON, TWO),
    ("json-with-charset", b'[{"a": 1}]', {"Content-Type": "application/json; charset=utf-8"}, ONE),
    ("ndjson-blank-lines", b'{"a": 1}\n\n{"a": 2}\n  \n', NDJSON, TWO),
    ("jsonl-crlf", b'{"a": 1}\r\n{"a": 2}', {"Content-Type": "application/jsonl"}, TWO),
    ("ndjson-one-line", b'{"a": 1}', {"Content-Type": "application/ndjson"}, ONE),
    ("gzip-json", gzip.compress(b'[{"a": 1}, {"a": 2}]'), GZIP_JSON, TWO),
    ("gzip-ndjson", gzip.compress(b'{"a": 1}\n{"a": 2}\n'), GZIP_NDJSON, TWO),
    ("x-gzip", gzip.compress(b'{"a": 1}'), {**JSON, "Content-Encoding": "x-gzip"}, ONE),
    ("identity", b'{"a": 1}', {**JSON, "Content-Encoding": "identity"}, ONE),
]


@pytest.mark.parametrize(("body", "headers", "expected"), cases(ACCEPTED))
async def test_accepted_bodies(
    client: Client, body: bytes, headers: dict[str, str], expected: list[Any]
) -> None:
    assert await events_of(client, body, headers) == expected


CODES = {400: "malformed_json", 413: "payload_too_large", 415: "unsupported_media_type"}
REFUSED: list[tuple[Any, ...]] = [
    ("text-plain", b"{}", {"Content-Type": "text/plain"}, 415, "got 'text/plain'"),
    ("no-content-type", b"{}", {}, 415, "got 'application/octet-stream'"),
    ("brotli", b"{}", {**JSON, "Content-Encoding": "br"}, 415, "got 'br'"),
    ("invalid-gzip", b"this is not gzip", GZIP_JSON, 400, "body is not valid gzip"),
    ("truncated-gzip", gzip.compress(b"[{}]")[:-4], GZIP_JSON, 400, "gzip body is truncated"),
    ("malformed-json", b'{"a": ', JSON, 400, "body is not valid JSON"),
    ("empty-body", b"", JSON, 400, "body is not valid JSON"),
    ("malformed-ndjson-line", b'{"a": 1}\n\n{"a": ]\n', NDJSON, 400, "line 3 is not valid JSON"),
    ("empty-array", b"[]", JSON, 400, "the body holds no events"),
    ("blank-ndjson", b"\n \n", NDJSON, 400, "the body holds no events"),
    ("nan-literal", b'[{"v": NaN}]', JSON, 400, "body is not valid JSON"),
    ("infinity-ndjson", b'{"v": Infinity}\n', NDJSON, 400, "line 1 is not valid JSON"),
    ("too-many-events", b"[{}, {}, {}, {}, {}, {}]", JSON, 413, "at most 5 events, got 6"),
    ("too-many-ndjson-events", b"{}\n" * 6, NDJSON, 413, "at most 5 events, got 6"),
]


@pytest.mark.parametrize(("body", "headers", "status", "message"), cases(REFUSED))
async def test_refused_bodies(
    client: Client, body: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    error = await error_of(client, body, headers)
    assert (error["status"], error["code"]) == (status, CODES[status])
    assert message in error["message"]


async def test_exactly_max_events_is_accepted(client: Client) -> None:
    assert await events_of(client, b"[1, 2, 3, 4, 5]", JSON) == [1, 2, 3, 4, 5]


async def test_content_length_over_limit_is_413_before_reading(make_client: ClientFactory) -> None:
    client = await make_client(Limits(max_body_bytes=100))
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"POST /telemetry HTTP/1.1\r\nHost: test\r\nContent-Type: application/json"
        b"\r\nContent-Length: 5000\r\n\r\n"
    )  # headers only; the body never comes
    received = b""
    try:
        async with asyncio.timeout(5):
            while b"payload_too_large" not in received and not reader.at_eof():
                received += await reader.read(4096)
    finally:
        writer.close()
        await writer.wait_closed()
    assert b'"status": 413, "code": "payload_too_large"' in received
    assert b'"message": "body is larger than 100 bytes", "content_length": 5000' in received


async def test_body_of_exactly_the_limit_is_accepted(make_client: ClientFactory) -> None:
    body = b'[{"pad": "' + b"x" * 87 + b'"}]'
    assert len(body) == 100
    client = await make_client(Limits(max_body_bytes=100))
    assert await events_of(client, body, JSON) == [{"pad": "x" * 87}]


async def test_chunked_body_over_limit_is_413(make_client: ClientFactory) -> None:
    client = await make_client(Limits(max_body_bytes=100))

    async def chunks() -> AsyncIterator[bytes]:
        yield b'[{"pad": "'
        for _ in range(10):
            yield b"x" * 20
        yield b'"}]'

    error = await error_of(client, chunks(), JSON)
    assert error["content_length"] is None  # really sent chunked
    assert (error["status"], error["code"]) == (413, "payload_too_large")
    assert error["message"] == "body is larger than 100 bytes"


async def test_gzip_bomb_is_stopped_at_the_decompressed_limit(make_client: ClientFactory) -> None:
    bomb = gzip.compress(b"0" * 50_000_000, compresslevel=9)
    client = await make_client(Limits(max_body_bytes=1_048_576, max_decompressed_bytes=1_048_576))
    assert len(bomb) < 1_048_576
    error = await error_of(client, bomb, GZIP_JSON)
    assert (error["status"], error["code"]) == (413, "payload_too_large")
    assert error["message"] == "body is larger than 1048576 bytes once decompressed"


@pytest.mark.parametrize(("size", "accepted"), [(100, True), (101, False)], ids=["100", "101"])
async def test_decompressed_limit_boundary(
    make_client: ClientFactory, size: int, accepted: bool
) -> None:
    plain = b"[" + b" " * (size - 3) + b"1]"
    assert len(plain) == size
    client = await make_client(Limits(max_decompressed_bytes=100))
    result = await post(client, gzip.compress(plain), GZIP_JSON)
    if accepted:
        assert result == {"items": [1]}
    else:
        assert (result["status"], result["code"]) == (413, "payload_too_large")


# --- findings: these tests fail against the current module (see report) ---------------------


async def test_concatenated_gzip_members_are_not_silently_dropped(client: Client) -> None:
    # RFC 1952 allows several members; `cat a.gz b.gz` is a valid gzip stream.
    body = gzip.compress(b'{"a": 1}\n') + gzip.compress(b'{"a": 2}\n')
    result = await post(client, body, GZIP_NDJSON)
    assert result == {"items": [{"a": 1}, {"a": 2}]}, result


async def test_trailing_garbage_after_gzip_is_refused(client: Client) -> None:
    error = await error_of(client, gzip.compress(b"[1]") + b"garbage", GZIP_JSON)
    assert (error["status"], error["code"]) == (400, "malformed_json")
