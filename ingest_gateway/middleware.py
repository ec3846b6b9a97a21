"""Request middleware: the one place errors become HTTP answers, and request metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from .errors import GatewayError, MethodNotAllowed, NotFound, PayloadTooLarge
from .metrics import GatewayMetrics

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: GatewayError) -> web.Response:
    """Render a gateway error as the contract's JSON body, with Retry-After when set."""
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
    return web.json_response(error.body(), status=error.status, headers=headers)


def build_middleware(metrics: GatewayMetrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware that maps errors to JSON answers and records route/status metrics."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = _route_label(request)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except GatewayError as exc:
            response = error_response(exc)
            metrics.events_rejected.labels(exc.code).inc(exc.events)
        except web.HTTPNotFound:
            response = error_response(NotFound(f"no route for {request.path}"))
        except web.HTTPMethodNotAllowed:
            response = error_response(MethodNotAllowed(f"{request.method} is not allowed here"))
        except web.HTTPRequestEntityTooLarge as exc:
            response = error_response(PayloadTooLarge(exc.text or "body too large"))
        metrics.requests.labels(route, request.method, str(response.status)).inc()
        metrics.request_duration.labels(route).observe(time.perf_counter() - started)
        return response

    return middleware


def _route_label(request: web.Request) -> str:
    # The route's canonical path keeps the label set bounded whatever paths clients try.
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"
