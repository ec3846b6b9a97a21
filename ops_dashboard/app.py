"""The dashboard application: reader-role pool, HTTP client for test events, routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from ops_common.http.middleware import error_middleware
from ops_common.http.probes import add_probe_routes
from ops_common.http.request_metrics import RequestMetrics
from ops_common.postgres_pool import PostgresPool
from ops_common.settings import Settings

from .queries import DashboardReads
from .routes import add_routes


class DashboardNotConfigured(ValueError):
    """The dashboard has no read token to protect it with."""


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> web.Application:
    """Build the dashboard; refuses to without OPS_DASHBOARD_TOKEN."""
    if settings.dashboard_token is None or not settings.dashboard_token.get_secret_value():
        raise DashboardNotConfigured("set OPS_DASHBOARD_TOKEN: the dashboard never runs open")
    registry = registry or CollectorRegistry()
    metrics = RequestMetrics(registry, "dashboard")
    pool = PostgresPool(
        settings.reader_database_url.get_secret_value(), retry_max_s=settings.db_retry_max_s
    )
    session: dict[str, aiohttp.ClientSession] = {}

    async def readiness() -> dict[str, bool]:
        return {"postgres": await pool.ping()}

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await pool.start()
        session["client"] = aiohttp.ClientSession()
        yield
        await session.pop("client").close()
        await pool.stop()

    app = web.Application(middlewares=[error_middleware(metrics.observe)])
    add_routes(app, settings, DashboardReads(pool), session)
    add_probe_routes(app, registry, readiness)
    app.cleanup_ctx.append(lifecycle)
    return app
