"""The gateway application: wiring of settings, metrics, producer and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry

from ops_common.settings import Settings

from .metrics import GatewayMetrics
from .middleware import build_middleware
from .producer import EventProducer
from .rate_limit import EventRateLimiter
from .routes import METRICS, PRODUCER, RATE_LIMITER, SETTINGS, add_routes


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> web.Application:
    """Build the gateway app; the Kafka producer starts and stops with it."""
    settings.api_key_apps  # noqa: B018 -- a broken OPS_API_KEYS stops start-up, not a request
    metrics = GatewayMetrics(registry or CollectorRegistry())
    # body.py reads and inflates the body itself, under its own limits: aiohttp's automatic
    # decompression would inflate a gzip bomb before any limit could apply.
    app = web.Application(
        middlewares=[build_middleware(metrics)],
        client_max_size=settings.max_body_bytes,
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[PRODUCER] = EventProducer(settings, metrics)
    app[RATE_LIMITER] = EventRateLimiter(
        settings.rate_limit_events_per_s, settings.rate_limit_burst_events
    )
    add_routes(app, metrics)
    app.cleanup_ctx.append(_producer_lifecycle)
    return app


async def _producer_lifecycle(app: web.Application) -> AsyncIterator[None]:
    async with app[PRODUCER]:
        yield
