"""Reading a POST /telemetry body: content type, gzip, size limits, JSON / array / NDJSON."""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

import orjson
from aiohttp import web

from ops_common.http.errors import (
    BodyTimeout,
    MalformedBody,
    PayloadTooLarge,
    UnsupportedMediaType,
)

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


async def read_events(
    request: web.Request,
    *,
    max_body_bytes: int,
    max_decompressed_bytes: int,
    max_events: int,
    read_timeout_s: float = 10.0,
) -> list[Any]:
    """Return the request's events as decoded JSON values (not yet validated).

    Raises the gateway error for an unsupported type or encoding, an oversized body
    (before and after decompression), a body that does not arrive within `read_timeout_s`
    (a slow client holds a connection and memory), malformed JSON, or too many events.
    """
    ndjson = _is_ndjson(request.content_type)
    if request.content_length is not None and request.content_length > max_body_bytes:
        raise PayloadTooLarge(f"body is larger than {max_body_bytes} bytes")
    try:
        async with asyncio.timeout(read_timeout_s):
            raw = await _read_limited(request, max_body_bytes)
    except TimeoutError:
        raise BodyTimeout(f"the body did not arrive within {read_timeout_s:g} s") from None
    body = _decode_content(raw, request.headers.get("Content-Encoding", ""), max_decompressed_bytes)
    items = _parse_ndjson(body) if ndjson else _parse_json(body)
    if not items:
        raise MalformedBody("the body holds no events")
    if len(items) > max_events:
        raise PayloadTooLarge(f"a request may carry at most {max_events} events, got {len(items)}")
    # After the count: a body refused for its size is not parsed a second time.
    for data, where in _documents(body, ndjson):
        _refuse_duplicate_keys(data, where)
    return items


def _is_ndjson(content_type: str) -> bool:
    if content_type in JSON_TYPES:
        return False
    if content_type in NDJSON_TYPES:
        return True
    allowed = ", ".join(sorted(JSON_TYPES | NDJSON_TYPES))
    raise UnsupportedMediaType(f"Content-Type must be one of {allowed}, got {content_type!r}")


async def _read_limited(request: web.Request, limit: int) -> bytes:
    # Chunked bodies have no Content-Length, so the limit is enforced while reading too.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_content(raw: bytes, encoding: str, limit: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMediaType(f"Content-Encoding must be gzip or identity, got {encoding!r}")
    body = bytearray()
    rest = raw
    while rest:  # a gzip stream may hold several members (`cat a.gz b.gz`)
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            # max_length stops a gzip bomb after `limit + 1` bytes instead of inflating it all.
            body += inflater.decompress(rest, limit + 1 - len(body))
        except zlib.error as exc:
            raise MalformedBody(f"body is not valid gzip: {exc}") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"body is larger than {limit} bytes once decompressed")
        if not inflater.eof:
            raise MalformedBody("gzip body is truncated")
        rest = inflater.unused_data
    return bytes(body)


def _parse_json(body: bytes) -> list[Any]:
    value = _loads(body, where="body")
    return value if isinstance(value, list) else [value]


def _parse_ndjson(body: bytes) -> list[Any]:
    return [_loads(data, where=where) for data, where in _documents(body, ndjson=True)]


def _documents(body: bytes, ndjson: bool) -> list[tuple[bytes, str]]:
    """The JSON documents of a body, each with how an error names it."""
    if not ndjson:
        return [(body, "body")]
    lines = enumerate(body.splitlines(), start=1)
    return [(line, f"line {number}") for number, line in lines if line.strip()]


def _loads(data: bytes, *, where: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"{where} is not valid JSON: {exc}") from None


def _refuse_duplicate_keys(data: bytes, where: str) -> None:
    # orjson keeps the last of repeated keys silently; {"ok": false, "ok": true} would then mean
    # what the client did not mean to say. orjson has already checked UTF-8, depth and number
    # ranges, so this second pass (about 1 µs per event) only looks for repeated names.
    try:
        json.loads(data, object_pairs_hook=_unique_object)
    except RecursionError:  # orjson allows 1024 levels, Python's parser fewer
        raise MalformedBody(f"{where} is nested too deeply") from None


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = dict(pairs)
    if len(names) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise MalformedBody(f"a JSON object repeats the key {name!r}")
            seen.add(name)
    return names
