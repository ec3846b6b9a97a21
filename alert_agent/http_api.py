"""The agent's HTTP side: POST /ops-alert (evaluate now), GET /api/ops/alerts, probes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web

from ops_common.http.api_keys import authenticate
from ops_common.http.errors import BadParameter, DatabaseUnavailable
from ops_common.http.probes import ReadinessCheck, add_probe_routes
from ops_common.postgres_pool import UNAVAILABLE
from ops_common.settings import Settings

from .agent import AlertAgent
from .alert_store import AlertStore
from .metrics import AlertMetrics

MAX_LIMIT = 500


def add_routes(
    app: web.Application,
    settings: Settings,
    agent: AlertAgent,
    store: AlertStore,
    metrics: AlertMetrics,
    readiness: ReadinessCheck,
) -> None:
    """Register the agent's routes on `app`."""

    async def post_ops_alert(request: web.Request) -> web.Response:
        """Run an evaluation now; answer the seed's body."""
        authenticate(request, settings.api_key_apps)
        with _database():
            result = await agent.evaluate()
        return json_response(result.body())

    async def get_alerts(request: web.Request) -> web.Response:
        """The newest firings and resolutions, newest first."""
        authenticate(request, settings.api_key_apps)
        limit = int_parameter(request, "limit", default=50, low=1, high=MAX_LIMIT)
        with _database():
            alerts = await store.recent(limit)
        return json_response({"alerts": alerts})

    app.router.add_post("/ops-alert", post_ops_alert)
    app.router.add_get("/api/ops/alerts", get_alerts)
    add_probe_routes(app, metrics.registry, readiness)


@contextmanager
def _database() -> Iterator[None]:
    try:
        yield
    except UNAVAILABLE as exc:
        raise DatabaseUnavailable(
            f"PostgreSQL is not reachable ({type(exc).__name__}); retry later", retry_after=5
        ) from None


def int_parameter(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """A query parameter as an integer in [low, high], or 400 saying what is allowed."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(
            f"{name} must be an integer from {low} to {high}",
            details=[{"field": name, "reason": f"{raw!r} is not an integer"}],
        ) from None
    if not low <= value <= high:
        raise BadParameter(
            f"{name} must be an integer from {low} to {high}",
            details=[{"field": name, "reason": f"{value} is out of range"}],
        )
    return value


def json_response(body: Any, status: int = 200) -> web.Response:
    """JSON with datetimes as RFC 3339 (orjson)."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
