"""The agent's HTTP side: POST /ops-alert (evaluate now), GET /api/ops/alerts, probes."""

from __future__ import annotations

from aiohttp import web

from ops_common.http.api_keys import authenticate
from ops_common.http.probes import ReadinessCheck, add_probe_routes
from ops_common.http.responses import database_errors, int_parameter, json_response
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
        with database_errors():
            result = await agent.evaluate()
        return json_response(result.body())

    async def get_alerts(request: web.Request) -> web.Response:
        """The newest firings and resolutions, newest first."""
        authenticate(request, settings.api_key_apps)
        limit = int_parameter(request, "limit", default=50, low=1, high=MAX_LIMIT)
        with database_errors():
            alerts = await store.recent(limit)
        return json_response({"alerts": alerts})

    app.router.add_post("/ops-alert", post_ops_alert)
    app.router.add_get("/api/ops/alerts", get_alerts)
    add_probe_routes(app, metrics.registry, readiness)
