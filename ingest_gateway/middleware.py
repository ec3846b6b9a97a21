"""The gateway's request middleware: the shared error mapping, plus its request metrics."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from ops_common.http.errors import ApiError, MethodNotAllowed, NotFound
from ops_common.http.middleware import error_middleware

from .metrics import GatewayMetrics

#: Refusals of a route, not of events: they do not count as rejected events.
_NOT_EVENT_REFUSALS = (NotFound, MethodNotAllowed)


def build_middleware(metrics: GatewayMetrics) -> Middleware:
    """Middleware that maps errors to JSON answers and records route/status metrics."""

    def observe(
        request: web.Request, response: web.StreamResponse, error: ApiError | None, seconds: float
    ) -> None:
        if error is not None and not isinstance(error, _NOT_EVENT_REFUSALS):
            metrics.events_rejected.labels(error.code).inc(error.events)
        metrics.http.observe(request, response, error, seconds)

    return error_middleware(observe)
