"""The worker's own HTTP endpoints: /metrics, /healthz, /readyz."""

from __future__ import annotations

from aiohttp import web
from mode import Service

from ops_common.http.probes import ReadinessCheck, add_probe_routes

from .metrics import WorkerMetrics


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
        self._app = web.Application()
        add_probe_routes(self._app, metrics.registry, readiness)
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
