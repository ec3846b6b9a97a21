"""Liveness, readiness and Prometheus routes, the same on every process."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

#: Named dependency checks, e.g. {"kafka": True, "postgres": False}.
ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def add_probe_routes(
    app: web.Application, registry: CollectorRegistry, readiness: ReadinessCheck
) -> None:
    """GET /healthz (the process serves), /readyz (every check passes), /metrics."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        checks = await readiness()
        ready = all(checks.values())
        return web.json_response(
            {"status": "ready" if ready else "unavailable", "checks": checks},
            status=200 if ready else 503,
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
