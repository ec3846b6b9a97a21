"""The worker's own HTTP endpoints: /metrics, /healthz, /readyz."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from mode import Service
from prometheus_client.aiohttp import make_aiohttp_handler

from .metrics import WorkerMetrics

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


class WorkerHttpService(Service):
    """An aiohttp server started and stopped with the Faust worker."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: WorkerMetrics,
        readiness: ReadinessCheck,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._host = host
        self._port = port
        self._readiness = readiness
        self._app = web.Application()
        self._app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
        self._app.router.add_get("/healthz", self._healthz)
        self._app.router.add_get("/readyz", self._readyz)
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        """Bind and serve."""
        self._runner = web.AppRunner(self._app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def on_stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        checks = await self._readiness()
        status = 200 if all(checks.values()) else 503
        return web.json_response(
            {"status": "ready" if status == 200 else "unavailable", "checks": checks}, status=status
        )
