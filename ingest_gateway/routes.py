"""HTTP handlers: POST /telemetry, plus the shared health, readiness and metrics routes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from aiohttp import web

from ops_common.event import EventValidationError, partition_key, to_wire, validate_events
from ops_common.http.api_keys import authenticate
from ops_common.http.errors import InvalidEvents
from ops_common.http.probes import add_probe_routes
from ops_common.settings import Settings

from .auth import authorize
from .body import read_events
from .metrics import GatewayMetrics
from .openapi import openapi_document
from .producer import EventProducer, Record
from .rate_limit import EventRateLimiter

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", GatewayMetrics)
PRODUCER = web.AppKey("producer", EventProducer)
RATE_LIMITER = web.AppKey("rate_limiter", EventRateLimiter)


async def post_telemetry(request: web.Request) -> web.Response:
    """Validate the request's events, produce them all, answer 201 once Kafka acked them."""
    app = request.app
    settings = app[SETTINGS]
    caller = authenticate(request, settings.api_key_apps)
    items = await read_events(
        request,
        max_body_bytes=settings.max_body_bytes,
        max_decompressed_bytes=settings.max_decompressed_bytes,
        max_events=settings.max_batch_events,
        read_timeout_s=settings.body_read_timeout_s,
    )
    now = datetime.now(UTC)
    try:
        events = validate_events(items, now=now, max_extra_bytes=settings.max_extra_bytes)
    except EventValidationError as exc:
        raise InvalidEvents(
            f"{len(exc.errors)} validation error(s); no event of this request was accepted",
            details=[{"index": e.index, "field": e.field, "reason": e.reason} for e in exc.errors],
            events=len(items),
        ) from None
    authorize(caller.apps, (e.app for e in events))
    app[RATE_LIMITER].take(caller.key_digest, len(events))

    ids: list[str] = []
    records: list[Record] = []
    fresh_ids = _new_ids(sum(1 for e in events if e.id is None))
    for event in events:
        event_id = event.id or next(fresh_ids)
        ids.append(str(event_id))
        records.append(
            (
                partition_key(event.app, event.env, event.event),
                to_wire(event, event_id=event_id, ts=event.ts or now, received_at=now),
            )
        )
    await app[PRODUCER].send_all(records)
    app[METRICS].events_accepted.inc(len(records))
    return web.json_response({"accepted": len(records), "ids": ids}, status=201)


def _new_ids(count: int) -> Iterator[uuid.UUID]:
    # One urandom call for the whole request instead of one per uuid4().
    entropy = os.urandom(16 * count)
    return (uuid.UUID(bytes=entropy[i : i + 16], version=4) for i in range(0, 16 * count, 16))


def add_routes(app: web.Application, metrics: GatewayMetrics) -> None:
    """Register every gateway route on `app`."""
    app.router.add_post("/telemetry", post_telemetry)
    document = openapi_document(app[SETTINGS])

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/openapi.json", openapi)

    async def readiness() -> dict[str, bool]:
        return {"kafka_connected": app[PRODUCER].connected}

    add_probe_routes(app, metrics.registry, readiness)
